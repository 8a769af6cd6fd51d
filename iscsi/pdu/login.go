package pdu

import "fmt"

// LoginRequest is the Login Request PDU (RFC 7143 §11.12), opcode 0x03,
// always sent with the I bit. The data segment holds text keys.
type LoginRequest struct {
	Transit    bool   // T bit (§11.12.1): ready to move to NSG
	Continue   bool   // C bit (§11.12.2): text continues in the next PDU
	CSG        Stage  // current stage (§11.12.3)
	NSG        Stage  // next stage, valid with Transit (§11.12.3)
	VersionMax uint8  // byte 2 (§11.12.4)
	VersionMin uint8  // byte 3 (§11.12.5)
	ISID       ISID   // bytes 8-13 (§11.12.5)
	TSIH       uint16 // bytes 14-15 (§11.12.6)
	ITT        uint32 // bytes 16-19
	CID        uint16 // bytes 20-21 (§11.12.7)
	CmdSN      uint32 // bytes 24-27 (§11.12.8)
	ExpStatSN  uint32 // bytes 28-31 (§11.12.9)
	Data       []byte // text keys (§11.12.10)
}

// Opcode implements PDU.
func (*LoginRequest) Opcode() Opcode { return OpLoginReq }

// DataSegment implements PDU.
func (p *LoginRequest) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *LoginRequest) SetDataSegment(d []byte) { p.Data = d }

// stageFlags encodes T, C, CSG and NSG into byte 1 of Login PDUs.
func stageFlags(t, c bool, csg, nsg Stage) (byte, error) {
	if csg > 3 || nsg > 3 {
		return 0, fmt.Errorf("pdu: login stage %d/%d does not fit in 2 bits", csg, nsg)
	}
	return flag(t, 0x80) | flag(c, 0x40) | byte(csg)<<2 | byte(nsg), nil
}

// checkStages validates byte 1 of Login PDUs (§11.12.1-3).
func checkStages(h []byte, op Opcode) error {
	if err := zeroBits(h, op, 1, 0x30); err != nil {
		return err
	}
	if h[1]&0xc0 == 0xc0 {
		return protoError(op, "T and C bits", "both set")
	}
	if (h[1]>>2)&3 == 2 {
		return fieldError(op, "CSG", "reserved stage 2")
	}
	if h[1]&0x80 != 0 && h[1]&3 == 2 {
		return fieldError(op, "NSG", "reserved stage 2")
	}
	return nil
}

// AppendBinary implements PDU.
func (p *LoginRequest) AppendBinary(b []byte) ([]byte, error) {
	fl, err := stageFlags(p.Transit, p.Continue, p.CSG, p.NSG)
	if err != nil {
		return b, err
	}
	b, h, err := appendHeader(b, OpLoginReq, true, fl, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	h[2] = p.VersionMax
	h[3] = p.VersionMin
	copy(h[8:14], p.ISID[:])
	put16(h, 14, p.TSIH)
	put32(h, 16, p.ITT)
	put16(h, 20, p.CID)
	put32(h, 24, p.CmdSN)
	put32(h, 28, p.ExpStatSN)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *LoginRequest) UnmarshalBinary(h []byte) error {
	const op = OpLoginReq
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := checkStages(h, op); err != nil {
		return err
	}
	if err := zero(h, op, 22, 24); err != nil {
		return err
	}
	if err := zero(h, op, 32, 48); err != nil {
		return err
	}
	*p = LoginRequest{
		Transit:    h[1]&0x80 != 0,
		Continue:   h[1]&0x40 != 0,
		CSG:        Stage(h[1] >> 2 & 3),
		NSG:        Stage(h[1] & 3),
		VersionMax: h[2],
		VersionMin: h[3],
		TSIH:       get16(h, 14),
		ITT:        get32(h, 16),
		CID:        get16(h, 20),
		CmdSN:      get32(h, 24),
		ExpStatSN:  get32(h, 28),
	}
	copy(p.ISID[:], h[8:14])
	return nil
}

// LoginResponse is the Login Response PDU (RFC 7143 §11.13), opcode 0x23.
type LoginResponse struct {
	Transit       bool        // T bit (§11.13.1)
	Continue      bool        // C bit (§11.13.1)
	CSG           Stage       // current stage
	NSG           Stage       // next stage, valid with Transit
	VersionMax    uint8       // byte 2 (§11.13.2)
	VersionActive uint8       // byte 3 (§11.13.3)
	ISID          ISID        // bytes 8-13
	TSIH          uint16      // bytes 14-15 (§11.13.4)
	ITT           uint32      // bytes 16-19
	StatSN        uint32      // bytes 24-27 (§11.13.5)
	ExpCmdSN      uint32      // bytes 28-31
	MaxCmdSN      uint32      // bytes 32-35
	Status        LoginStatus // Status-Class byte 36, Status-Detail byte 37 (§11.13.5)
	Data          []byte      // text keys (§11.13.6)
}

// Opcode implements PDU.
func (*LoginResponse) Opcode() Opcode { return OpLoginResp }

// DataSegment implements PDU.
func (p *LoginResponse) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *LoginResponse) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *LoginResponse) AppendBinary(b []byte) ([]byte, error) {
	fl, err := stageFlags(p.Transit, p.Continue, p.CSG, p.NSG)
	if err != nil {
		return b, err
	}
	b, h, err := appendHeader(b, OpLoginResp, false, fl, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	h[2] = p.VersionMax
	h[3] = p.VersionActive
	copy(h[8:14], p.ISID[:])
	put16(h, 14, p.TSIH)
	put32(h, 16, p.ITT)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	put16(h, 36, uint16(p.Status))
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *LoginResponse) UnmarshalBinary(h []byte) error {
	const op = OpLoginResp
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := checkStages(h, op); err != nil {
		return err
	}
	if err := zero(h, op, 20, 24); err != nil {
		return err
	}
	if err := zero(h, op, 38, 48); err != nil {
		return err
	}
	*p = LoginResponse{
		Transit:       h[1]&0x80 != 0,
		Continue:      h[1]&0x40 != 0,
		CSG:           Stage(h[1] >> 2 & 3),
		NSG:           Stage(h[1] & 3),
		VersionMax:    h[2],
		VersionActive: h[3],
		TSIH:          get16(h, 14),
		ITT:           get32(h, 16),
		StatSN:        get32(h, 24),
		ExpCmdSN:      get32(h, 28),
		MaxCmdSN:      get32(h, 32),
		Status:        LoginStatus(get16(h, 36)),
	}
	copy(p.ISID[:], h[8:14])
	return nil
}

// TextRequest is the Text Request PDU (RFC 7143 §11.10), opcode 0x04.
type TextRequest struct {
	Immediate bool   // I bit
	Final     bool   // F bit (§11.10.1)
	Continue  bool   // C bit (§11.10.2)
	LUN       LUN    // bytes 8-15, reserved
	ITT       uint32 // bytes 16-19 (§11.10.3)
	TTT       uint32 // bytes 20-23 (§11.10.4)
	CmdSN     uint32 // bytes 24-27
	ExpStatSN uint32 // bytes 28-31
	Data      []byte // text keys (§11.10.5)
}

// Opcode implements PDU.
func (*TextRequest) Opcode() Opcode { return OpTextReq }

// DataSegment implements PDU.
func (p *TextRequest) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *TextRequest) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *TextRequest) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpTextReq, p.Immediate, flag(p.Final, 0x80)|flag(p.Continue, 0x40), 0, len(p.Data))
	if err != nil {
		return b, err
	}
	putLUN(h, p.LUN)
	put32(h, 16, p.ITT)
	put32(h, 20, p.TTT)
	put32(h, 24, p.CmdSN)
	put32(h, 28, p.ExpStatSN)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *TextRequest) UnmarshalBinary(h []byte) error {
	const op = OpTextReq
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x3f); err != nil {
		return err
	}
	if h[1]&0xc0 == 0xc0 {
		return protoError(op, "F and C bits", "both set")
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if err := zero(h, op, 32, 48); err != nil {
		return err
	}
	*p = TextRequest{
		Immediate: BHS(h).Immediate(),
		Final:     h[1]&0x80 != 0,
		Continue:  h[1]&0x40 != 0,
		LUN:       getLUN(h),
		ITT:       get32(h, 16),
		TTT:       get32(h, 20),
		CmdSN:     get32(h, 24),
		ExpStatSN: get32(h, 28),
	}
	return nil
}

// TextResponse is the Text Response PDU (RFC 7143 §11.11), opcode 0x24.
type TextResponse struct {
	Final    bool   // F bit (§11.11.1)
	Continue bool   // C bit (§11.11.2)
	LUN      LUN    // bytes 8-15, reserved
	ITT      uint32 // bytes 16-19
	TTT      uint32 // bytes 20-23 (§11.11.4)
	StatSN   uint32 // bytes 24-27
	ExpCmdSN uint32 // bytes 28-31
	MaxCmdSN uint32 // bytes 32-35
	Data     []byte // text keys (§11.11.6)
}

// Opcode implements PDU.
func (*TextResponse) Opcode() Opcode { return OpTextResp }

// DataSegment implements PDU.
func (p *TextResponse) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *TextResponse) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *TextResponse) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpTextResp, false, flag(p.Final, 0x80)|flag(p.Continue, 0x40), 0, len(p.Data))
	if err != nil {
		return b, err
	}
	putLUN(h, p.LUN)
	put32(h, 16, p.ITT)
	put32(h, 20, p.TTT)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *TextResponse) UnmarshalBinary(h []byte) error {
	const op = OpTextResp
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x3f); err != nil {
		return err
	}
	if h[1]&0xc0 == 0xc0 {
		return protoError(op, "F and C bits", "both set")
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if err := zero(h, op, 36, 48); err != nil {
		return err
	}
	*p = TextResponse{
		Final:    h[1]&0x80 != 0,
		Continue: h[1]&0x40 != 0,
		LUN:      getLUN(h),
		ITT:      get32(h, 16),
		TTT:      get32(h, 20),
		StatSN:   get32(h, 24),
		ExpCmdSN: get32(h, 28),
		MaxCmdSN: get32(h, 32),
	}
	return nil
}
