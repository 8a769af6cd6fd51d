package pdu

// DataOut is the SCSI Data-Out PDU (RFC 7143 §11.7), opcode 0x05.
type DataOut struct {
	Final        bool   // F bit (§11.7.1): last PDU of the sequence
	LUN          LUN    // bytes 8-15 (§11.7.4)
	ITT          uint32 // bytes 16-19
	TTT          uint32 // Target Transfer Tag, bytes 20-23 (§11.7.4); 0xffffffff for unsolicited data
	ExpStatSN    uint32 // bytes 28-31
	DataSN       uint32 // bytes 36-39 (§11.7.5)
	BufferOffset uint32 // bytes 40-43 (§11.7.6)
	Data         []byte // payload (§11.7.7)
}

// Opcode implements PDU.
func (*DataOut) Opcode() Opcode { return OpDataOut }

// DataSegment implements PDU.
func (p *DataOut) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *DataOut) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *DataOut) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpDataOut, false, flag(p.Final, finalBit), 0, len(p.Data))
	if err != nil {
		return b, err
	}
	putLUN(h, p.LUN)
	put32(h, 16, p.ITT)
	put32(h, 20, p.TTT)
	put32(h, 28, p.ExpStatSN)
	put32(h, 36, p.DataSN)
	put32(h, 40, p.BufferOffset)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *DataOut) UnmarshalBinary(h []byte) error {
	const op = OpDataOut
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x7f); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if err := zero(h, op, 24, 28); err != nil {
		return err
	}
	if err := zero(h, op, 32, 36); err != nil {
		return err
	}
	if err := zero(h, op, 44, 48); err != nil {
		return err
	}
	*p = DataOut{
		Final:        h[1]&finalBit != 0,
		LUN:          getLUN(h),
		ITT:          get32(h, 16),
		TTT:          get32(h, 20),
		ExpStatSN:    get32(h, 28),
		DataSN:       get32(h, 36),
		BufferOffset: get32(h, 40),
	}
	return nil
}

// DataIn is the SCSI Data-In PDU (RFC 7143 §11.7), opcode 0x25. With the S
// bit set it also carries the command's status (phase collapse, §11.7.3);
// StatSN, Status and the residual fields are then valid. Over iSER it is
// never sent: data moves by RDMA Write.
type DataIn struct {
	Final             bool   // F bit (§11.7.1)
	Acknowledge       bool   // A bit (§11.7.2): DataACK SNACK requested (ERL > 0)
	ResidualOverflow  bool   // O bit (§11.7.3), only with HasStatus
	ResidualUnderflow bool   // U bit (§11.7.3), only with HasStatus
	HasStatus         bool   // S bit (§11.7.3)
	Status            uint8  // byte 3, SCSI status, valid with HasStatus
	LUN               LUN    // bytes 8-15, with the A bit, else reserved
	ITT               uint32 // bytes 16-19
	TTT               uint32 // bytes 20-23 (§11.7.4), 0xffffffff unless A is set
	StatSN            uint32 // bytes 24-27, valid with HasStatus
	ExpCmdSN          uint32 // bytes 28-31
	MaxCmdSN          uint32 // bytes 32-35
	DataSN            uint32 // bytes 36-39 (§11.7.5)
	BufferOffset      uint32 // bytes 40-43 (§11.7.6)
	ResidualCount     uint32 // bytes 44-47 (§11.4.5), valid with O or U
	Data              []byte // payload
}

// Opcode implements PDU.
func (*DataIn) Opcode() Opcode { return OpDataIn }

// DataSegment implements PDU.
func (p *DataIn) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *DataIn) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *DataIn) AppendBinary(b []byte) ([]byte, error) {
	fl := flag(p.Final, finalBit) | flag(p.Acknowledge, 0x40) | flag(p.ResidualOverflow, 0x04) |
		flag(p.ResidualUnderflow, 0x02) | flag(p.HasStatus, 0x01)
	b, h, err := appendHeader(b, OpDataIn, false, fl, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	h[3] = p.Status
	putLUN(h, p.LUN)
	put32(h, 16, p.ITT)
	put32(h, 20, p.TTT)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	put32(h, 36, p.DataSN)
	put32(h, 40, p.BufferOffset)
	put32(h, 44, p.ResidualCount)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *DataIn) UnmarshalBinary(h []byte) error {
	const op = OpDataIn
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x38); err != nil {
		return err
	}
	if err := zero(h, op, 2, 3); err != nil {
		return err
	}
	if h[1]&0x01 != 0 && h[1]&finalBit == 0 {
		return protoError(op, "S bit", "status without the F bit")
	}
	if h[1]&0x06 == 0x06 {
		return protoError(op, "Flags", "overflow and underflow both set")
	}
	*p = DataIn{
		Final:             h[1]&finalBit != 0,
		Acknowledge:       h[1]&0x40 != 0,
		ResidualOverflow:  h[1]&0x04 != 0,
		ResidualUnderflow: h[1]&0x02 != 0,
		HasStatus:         h[1]&0x01 != 0,
		Status:            h[3],
		LUN:               getLUN(h),
		ITT:               get32(h, 16),
		TTT:               get32(h, 20),
		StatSN:            get32(h, 24),
		ExpCmdSN:          get32(h, 28),
		MaxCmdSN:          get32(h, 32),
		DataSN:            get32(h, 36),
		BufferOffset:      get32(h, 40),
		ResidualCount:     get32(h, 44),
	}
	return nil
}

// R2T is the Ready To Transfer PDU (RFC 7143 §11.8), opcode 0x31.
type R2T struct {
	LUN                       LUN    // bytes 8-15
	ITT                       uint32 // bytes 16-19
	TTT                       uint32 // bytes 20-23 (§11.8.4)
	StatSN                    uint32 // bytes 24-27 (§11.8.5)
	ExpCmdSN                  uint32 // bytes 28-31
	MaxCmdSN                  uint32 // bytes 32-35
	R2TSN                     uint32 // bytes 36-39 (§11.8.2)
	BufferOffset              uint32 // bytes 40-43 (§11.8.3)
	DesiredDataTransferLength uint32 // bytes 44-47 (§11.8.3)
	Data                      []byte // always empty on the wire; kept for the PDU interface
}

// Opcode implements PDU.
func (*R2T) Opcode() Opcode { return OpR2T }

// DataSegment implements PDU.
func (p *R2T) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *R2T) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *R2T) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpR2T, false, finalBit, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	putLUN(h, p.LUN)
	put32(h, 16, p.ITT)
	put32(h, 20, p.TTT)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	put32(h, 36, p.R2TSN)
	put32(h, 40, p.BufferOffset)
	put32(h, 44, p.DesiredDataTransferLength)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *R2T) UnmarshalBinary(h []byte) error {
	const op = OpR2T
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x7f); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	*p = R2T{
		LUN:                       getLUN(h),
		ITT:                       get32(h, 16),
		TTT:                       get32(h, 20),
		StatSN:                    get32(h, 24),
		ExpCmdSN:                  get32(h, 28),
		MaxCmdSN:                  get32(h, 32),
		R2TSN:                     get32(h, 36),
		BufferOffset:              get32(h, 40),
		DesiredDataTransferLength: get32(h, 44),
	}
	return nil
}
