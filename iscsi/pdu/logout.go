package pdu

// LogoutRequest is the Logout Request PDU (RFC 7143 §11.14), opcode 0x06.
type LogoutRequest struct {
	Immediate bool         // I bit
	Reason    LogoutReason // byte 1 bits 1-7 (§11.14.1)
	ITT       uint32       // bytes 16-19
	CID       uint16       // bytes 20-21 (§11.14.3), reserved when closing the session
	CmdSN     uint32       // bytes 24-27
	ExpStatSN uint32       // bytes 28-31 (§11.14.4)
	Data      []byte       // always empty on the wire; kept for the PDU interface
}

// Opcode implements PDU.
func (*LogoutRequest) Opcode() Opcode { return OpLogoutReq }

// DataSegment implements PDU.
func (p *LogoutRequest) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *LogoutRequest) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *LogoutRequest) AppendBinary(b []byte) ([]byte, error) {
	if p.Reason > 0x7f {
		return b, &FormatError{Op: OpLogoutReq, Field: "Reason Code", Detail: "does not fit in 7 bits", Reason: RejectInvalidPDUField}
	}
	b, h, err := appendHeader(b, OpLogoutReq, p.Immediate, finalBit|byte(p.Reason), 0, len(p.Data))
	if err != nil {
		return b, err
	}
	put32(h, 16, p.ITT)
	put16(h, 20, p.CID)
	put32(h, 24, p.CmdSN)
	put32(h, 28, p.ExpStatSN)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *LogoutRequest) UnmarshalBinary(h []byte) error {
	const op = OpLogoutReq
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if err := zero(h, op, 8, 16); err != nil {
		return err
	}
	if err := zero(h, op, 22, 24); err != nil {
		return err
	}
	if err := zero(h, op, 32, 48); err != nil {
		return err
	}
	*p = LogoutRequest{
		Immediate: BHS(h).Immediate(),
		Reason:    LogoutReason(h[1] & 0x7f),
		ITT:       get32(h, 16),
		CID:       get16(h, 20),
		CmdSN:     get32(h, 24),
		ExpStatSN: get32(h, 28),
	}
	return nil
}

// LogoutResponse is the Logout Response PDU (RFC 7143 §11.15), opcode 0x26.
type LogoutResponse struct {
	Response    LogoutResponseCode // byte 2 (§11.15.1)
	ITT         uint32             // bytes 16-19
	StatSN      uint32             // bytes 24-27
	ExpCmdSN    uint32             // bytes 28-31
	MaxCmdSN    uint32             // bytes 32-35
	Time2Wait   uint16             // bytes 40-41 (§11.15.2)
	Time2Retain uint16             // bytes 42-43 (§11.15.3)
	Data        []byte             // always empty on the wire; kept for the PDU interface
}

// Opcode implements PDU.
func (*LogoutResponse) Opcode() Opcode { return OpLogoutResp }

// DataSegment implements PDU.
func (p *LogoutResponse) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *LogoutResponse) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *LogoutResponse) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpLogoutResp, false, finalBit, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	h[2] = byte(p.Response)
	put32(h, 16, p.ITT)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	put16(h, 40, p.Time2Wait)
	put16(h, 42, p.Time2Retain)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *LogoutResponse) UnmarshalBinary(h []byte) error {
	const op = OpLogoutResp
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
	if err := zero(h, op, 20, 24); err != nil {
		return err
	}
	if err := zero(h, op, 36, 40); err != nil {
		return err
	}
	if err := zero(h, op, 44, 48); err != nil {
		return err
	}
	*p = LogoutResponse{
		Response:    LogoutResponseCode(h[2]),
		ITT:         get32(h, 16),
		StatSN:      get32(h, 24),
		ExpCmdSN:    get32(h, 28),
		MaxCmdSN:    get32(h, 32),
		Time2Wait:   get16(h, 40),
		Time2Retain: get16(h, 42),
	}
	return nil
}

// TaskMgmtRequest is the SCSI Task Management Function Request PDU
// (RFC 7143 §11.5), opcode 0x02.
type TaskMgmtRequest struct {
	Immediate bool       // I bit
	Function  TMFunction // byte 1 bits 1-7 (§11.5.1)
	LUN       LUN        // bytes 8-15 (§11.5.2)
	ITT       uint32     // bytes 16-19
	// ReferencedTaskTag is bytes 20-23 (§11.5.2): the ITT of the task to
	// abort, or 0xffffffff.
	ReferencedTaskTag uint32
	CmdSN             uint32 // bytes 24-27
	ExpStatSN         uint32 // bytes 28-31
	RefCmdSN          uint32 // bytes 32-35 (§11.5.3)
	ExpDataSN         uint32 // bytes 36-39 (§11.5.4)
	Data              []byte // always empty on the wire; kept for the PDU interface
}

// Opcode implements PDU.
func (*TaskMgmtRequest) Opcode() Opcode { return OpTaskMgmtReq }

// DataSegment implements PDU.
func (p *TaskMgmtRequest) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *TaskMgmtRequest) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *TaskMgmtRequest) AppendBinary(b []byte) ([]byte, error) {
	if p.Function > 0x7f {
		return b, &FormatError{Op: OpTaskMgmtReq, Field: "Function", Detail: "does not fit in 7 bits", Reason: RejectInvalidPDUField}
	}
	b, h, err := appendHeader(b, OpTaskMgmtReq, p.Immediate, finalBit|byte(p.Function), 0, len(p.Data))
	if err != nil {
		return b, err
	}
	putLUN(h, p.LUN)
	put32(h, 16, p.ITT)
	put32(h, 20, p.ReferencedTaskTag)
	put32(h, 24, p.CmdSN)
	put32(h, 28, p.ExpStatSN)
	put32(h, 32, p.RefCmdSN)
	put32(h, 36, p.ExpDataSN)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *TaskMgmtRequest) UnmarshalBinary(h []byte) error {
	const op = OpTaskMgmtReq
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	if err := zero(h, op, 40, 48); err != nil {
		return err
	}
	*p = TaskMgmtRequest{
		Immediate:         BHS(h).Immediate(),
		Function:          TMFunction(h[1] & 0x7f),
		LUN:               getLUN(h),
		ITT:               get32(h, 16),
		ReferencedTaskTag: get32(h, 20),
		CmdSN:             get32(h, 24),
		ExpStatSN:         get32(h, 28),
		RefCmdSN:          get32(h, 32),
		ExpDataSN:         get32(h, 36),
	}
	return nil
}

// TaskMgmtResponse is the SCSI Task Management Function Response PDU
// (RFC 7143 §11.6), opcode 0x22.
type TaskMgmtResponse struct {
	Response TMFResponse // byte 2 (§11.6.1)
	ITT      uint32      // bytes 16-19
	StatSN   uint32      // bytes 24-27
	ExpCmdSN uint32      // bytes 28-31
	MaxCmdSN uint32      // bytes 32-35
	Data     []byte      // always empty on the wire; kept for the PDU interface
}

// Opcode implements PDU.
func (*TaskMgmtResponse) Opcode() Opcode { return OpTaskMgmtResp }

// DataSegment implements PDU.
func (p *TaskMgmtResponse) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *TaskMgmtResponse) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *TaskMgmtResponse) AppendBinary(b []byte) ([]byte, error) {
	b, h, err := appendHeader(b, OpTaskMgmtResp, false, finalBit, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	h[2] = byte(p.Response)
	put32(h, 16, p.ITT)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *TaskMgmtResponse) UnmarshalBinary(h []byte) error {
	const op = OpTaskMgmtResp
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
	if err := zero(h, op, 20, 24); err != nil {
		return err
	}
	if err := zero(h, op, 36, 48); err != nil {
		return err
	}
	*p = TaskMgmtResponse{
		Response: TMFResponse(h[2]),
		ITT:      get32(h, 16),
		StatSN:   get32(h, 24),
		ExpCmdSN: get32(h, 28),
		MaxCmdSN: get32(h, 32),
	}
	return nil
}
