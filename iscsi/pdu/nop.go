package pdu

// ReservedTag is the tag value 0xffffffff that means "no task" in ITT and
// TTT fields (RFC 7143 §11.18.2, §11.19.2).
const ReservedTag = 0xffffffff

// NOPOut is the NOP-Out PDU (RFC 7143 §11.18), opcode 0x00: a ping from the
// initiator (ITT valid, TTT 0xffffffff) or the answer to a NOP-In (ITT
// 0xffffffff, TTT copied from the NOP-In).
type NOPOut struct {
	Immediate bool   // I bit
	LUN       LUN    // bytes 8-15 (§11.18.3)
	ITT       uint32 // bytes 16-19 (§11.18.1)
	TTT       uint32 // bytes 20-23 (§11.18.2)
	CmdSN     uint32 // bytes 24-27
	ExpStatSN uint32 // bytes 28-31
	Data      []byte // ping data (§11.18.4)
}

// Opcode implements PDU.
func (*NOPOut) Opcode() Opcode { return OpNOPOut }

// DataSegment implements PDU.
func (p *NOPOut) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *NOPOut) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *NOPOut) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpNOPOut, p.Immediate, finalBit, 0, len(p.Data))
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
func (p *NOPOut) UnmarshalBinary(h []byte) error {
	const op = OpNOPOut
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x7f); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if err := zero(h, op, 32, 48); err != nil {
		return err
	}
	*p = NOPOut{
		Immediate: BHS(h).Immediate(),
		LUN:       getLUN(h),
		ITT:       get32(h, 16),
		TTT:       get32(h, 20),
		CmdSN:     get32(h, 24),
		ExpStatSN: get32(h, 28),
	}
	return nil
}

// NOPIn is the NOP-In PDU (RFC 7143 §11.19), opcode 0x20: the answer to a
// NOP-Out (ITT copied, TTT 0xffffffff) or a target ping (ITT 0xffffffff,
// TTT valid when an answer is wanted).
type NOPIn struct {
	LUN      LUN    // bytes 8-15 (§11.19.3)
	ITT      uint32 // bytes 16-19 (§11.19.1)
	TTT      uint32 // bytes 20-23 (§11.19.2)
	StatSN   uint32 // bytes 24-27 (§11.19.4)
	ExpCmdSN uint32 // bytes 28-31
	MaxCmdSN uint32 // bytes 32-35
	Data     []byte // ping data (§11.19.5)
}

// Opcode implements PDU.
func (*NOPIn) Opcode() Opcode { return OpNOPIn }

// DataSegment implements PDU.
func (p *NOPIn) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *NOPIn) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *NOPIn) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpNOPIn, false, finalBit, 0, len(p.Data))
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
func (p *NOPIn) UnmarshalBinary(h []byte) error {
	const op = OpNOPIn
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x7f); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if err := zero(h, op, 36, 48); err != nil {
		return err
	}
	*p = NOPIn{
		LUN:      getLUN(h),
		ITT:      get32(h, 16),
		TTT:      get32(h, 20),
		StatSN:   get32(h, 24),
		ExpCmdSN: get32(h, 28),
		MaxCmdSN: get32(h, 32),
	}
	return nil
}

// Reject is the Reject PDU (RFC 7143 §11.17), opcode 0x3f. Its data
// segment carries the complete BHS of the rejected PDU (§11.17.3).
type Reject struct {
	Reason   RejectReason // byte 2 (§11.17.1)
	StatSN   uint32       // bytes 24-27
	ExpCmdSN uint32       // bytes 28-31
	MaxCmdSN uint32       // bytes 32-35
	DataSN   uint32       // bytes 36-39 (§11.17.2): DataSN/R2TSN, only for SNACK rejects
	Data     []byte       // header of the rejected PDU (§11.17.3)
}

// Opcode implements PDU.
func (*Reject) Opcode() Opcode { return OpReject }

// DataSegment implements PDU.
func (p *Reject) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *Reject) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU. Bytes 16-19 are always 0xffffffff.
func (p *Reject) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpReject, false, finalBit, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	h[2] = byte(p.Reason)
	put32(h, 16, ReservedTag)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	put32(h, 36, p.DataSN)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *Reject) UnmarshalBinary(h []byte) error {
	const op = OpReject
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x7f); err != nil {
		return err
	}
	if err := zero(h, op, 3, 4); err != nil {
		return err
	}
	if err := zero(h, op, 8, 16); err != nil {
		return err
	}
	if get32(h, 16) != ReservedTag {
		return fieldError(op, "bytes 16-19", "must be 0xffffffff")
	}
	if err := zero(h, op, 20, 24); err != nil {
		return err
	}
	if err := zero(h, op, 40, 48); err != nil {
		return err
	}
	*p = Reject{
		Reason:   RejectReason(h[2]),
		StatSN:   get32(h, 24),
		ExpCmdSN: get32(h, 28),
		MaxCmdSN: get32(h, 32),
		DataSN:   get32(h, 36),
	}
	return nil
}

// AsyncMessage is the Asynchronous Message PDU (RFC 7143 §11.9), opcode
// 0x32. For AsyncSCSI its data segment holds sense data (SenseLength
// prefix, §11.9.4).
type AsyncMessage struct {
	LUN        LUN        // bytes 8-15 (for AsyncSCSI), else reserved
	StatSN     uint32     // bytes 24-27
	ExpCmdSN   uint32     // bytes 28-31
	MaxCmdSN   uint32     // bytes 32-35
	Event      AsyncEvent // byte 36 (§11.9.1)
	VCode      uint8      // byte 37 (§11.9.2)
	Parameter1 uint16     // bytes 38-39 (§11.9.1)
	Parameter2 uint16     // bytes 40-41
	Parameter3 uint16     // bytes 42-43
	Data       []byte     // sense data and iSCSI event data (§11.9.4)
}

// Opcode implements PDU.
func (*AsyncMessage) Opcode() Opcode { return OpAsync }

// DataSegment implements PDU.
func (p *AsyncMessage) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *AsyncMessage) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU. Bytes 16-19 are always 0xffffffff.
func (p *AsyncMessage) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpAsync, false, finalBit, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	putLUN(h, p.LUN)
	put32(h, 16, ReservedTag)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	h[36] = byte(p.Event)
	h[37] = p.VCode
	put16(h, 38, p.Parameter1)
	put16(h, 40, p.Parameter2)
	put16(h, 42, p.Parameter3)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *AsyncMessage) UnmarshalBinary(h []byte) error {
	const op = OpAsync
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x7f); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if get32(h, 16) != ReservedTag {
		return fieldError(op, "bytes 16-19", "must be 0xffffffff")
	}
	if err := zero(h, op, 20, 24); err != nil {
		return err
	}
	if err := zero(h, op, 44, 48); err != nil {
		return err
	}
	*p = AsyncMessage{
		LUN:        getLUN(h),
		StatSN:     get32(h, 24),
		ExpCmdSN:   get32(h, 28),
		MaxCmdSN:   get32(h, 32),
		Event:      AsyncEvent(h[36]),
		VCode:      h[37],
		Parameter1: get16(h, 38),
		Parameter2: get16(h, 40),
		Parameter3: get16(h, 42),
	}
	return nil
}

// SNACKRequest is the SNACK Request PDU (RFC 7143 §11.16), opcode 0x10.
// Only meaningful at ErrorRecoveryLevel > 0.
type SNACKRequest struct {
	Type      SNACKType // byte 1 bits 4-7 (§11.16.1)
	LUN       LUN       // bytes 8-15 (DataACK), else reserved
	ITT       uint32    // bytes 16-19, or 0xffffffff
	TTT       uint32    // bytes 20-23: TTT (DataACK) or SNACK Tag (R-Data)
	ExpStatSN uint32    // bytes 28-31
	BegRun    uint32    // bytes 40-43 (§11.16.3)
	RunLength uint32    // bytes 44-47 (§11.16.4)
	Data      []byte    // always empty on the wire; kept for the PDU interface
}

// Opcode implements PDU.
func (*SNACKRequest) Opcode() Opcode { return OpSNACKReq }

// DataSegment implements PDU.
func (p *SNACKRequest) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *SNACKRequest) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *SNACKRequest) AppendBinary(b []byte) ([]byte, error) {
	if p.Type > 0x0f {
		return b, &FormatError{Op: OpSNACKReq, Field: "Type", Detail: "does not fit in 4 bits", Reason: RejectInvalidPDUField}
	}
	b, h, err := appendHeader(b, OpSNACKReq, false, finalBit|byte(p.Type), 0, len(p.Data))
	if err != nil {
		return b, err
	}
	putLUN(h, p.LUN)
	put32(h, 16, p.ITT)
	put32(h, 20, p.TTT)
	put32(h, 28, p.ExpStatSN)
	put32(h, 40, p.BegRun)
	put32(h, 44, p.RunLength)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *SNACKRequest) UnmarshalBinary(h []byte) error {
	const op = OpSNACKReq
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x70); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if err := zero(h, op, 24, 28); err != nil {
		return err
	}
	if err := zero(h, op, 32, 40); err != nil {
		return err
	}
	*p = SNACKRequest{
		Type:      SNACKType(h[1] & 0x0f),
		LUN:       getLUN(h),
		ITT:       get32(h, 16),
		TTT:       get32(h, 20),
		ExpStatSN: get32(h, 28),
		BegRun:    get32(h, 40),
		RunLength: get32(h, 44),
	}
	return nil
}
