package pdu

import (
	"encoding/binary"
	"fmt"
)

// MaxDataSegmentLength is the largest length the 24-bit DataSegmentLength
// field can carry (RFC 7143 §11.2.1.5).
const MaxDataSegmentLength = 1<<24 - 1

// PDU is implemented by every PDU type of this package (pointer receivers).
//
// AppendBinary appends exactly the 48-byte BHS, with TotalAHSLength and
// DataSegmentLength computed from the PDU's AHS (if any) and its data
// segment; AHS, digests, data and padding are appended by the framing code
// (AppendFrame, Writer). UnmarshalBinary decodes a 48-byte BHS, strictly:
// wrong length, wrong opcode and non-zero reserved fields are *FormatError.
// It leaves the data segment untouched: attach it with SetDataSegment.
type PDU interface {
	// Opcode returns the PDU's opcode.
	Opcode() Opcode
	// AppendBinary appends the encoded BHS to b.
	AppendBinary(b []byte) ([]byte, error)
	// UnmarshalBinary decodes a 48-byte BHS into the receiver.
	UnmarshalBinary(bhs []byte) error
	// DataSegment returns the data segment (without padding); it may alias
	// a caller's buffer.
	DataSegment() []byte
	// SetDataSegment sets the data segment; the PDU keeps a reference to d.
	SetDataSegment(d []byte)
}

// AHSCarrier is implemented by PDUs that can carry Additional Header
// Segments (RFC 7143 §11.2.2); in RFC 7143 only the SCSI Command does.
type AHSCarrier interface {
	PDU
	// AHSLen returns the encoded length of the AHS in bytes (a multiple of 4).
	AHSLen() int
	// AppendAHS appends the encoded AHS.
	AppendAHS(b []byte) []byte
	// DecodeAHS decodes the AHS that followed the BHS; the PDU may keep
	// references into ahs.
	DecodeAHS(ahs []byte) error
}

// appendHeader grows b by a zeroed BHS and fills byte 0 (opcode and I bit),
// byte 1 (flags), TotalAHSLength and DataSegmentLength. It returns the
// extended slice and a view of the new BHS.
func appendHeader(b []byte, op Opcode, imm bool, flags byte, ahsLen, dataLen int) ([]byte, []byte, error) {
	if dataLen > MaxDataSegmentLength {
		return b, nil, fmt.Errorf("pdu: encode %v: data segment of %d bytes exceeds the 24-bit DataSegmentLength", op, dataLen)
	}
	if ahsLen%4 != 0 || ahsLen/4 > 255 {
		return b, nil, fmt.Errorf("pdu: encode %v: AHS of %d bytes is not a multiple of 4 words up to 255", op, ahsLen)
	}
	n := len(b)
	b = append(b, make([]byte, BHSLen)...)
	h := b[n : n+BHSLen]
	h[0] = byte(op)
	if imm {
		h[0] |= immediateBit
	}
	h[1] = flags
	h[4] = byte(ahsLen / 4)
	BHS(h).SetDataSegmentLength(uint32(dataLen))
	return b, h, nil
}

// checkHeader verifies the length, the opcode and the reserved bit 7 of
// byte 0 of bhs. If noAHS is set, TotalAHSLength must be zero: RFC 7143
// defines AHS only for the SCSI Command.
func checkHeader(bhs []byte, op Opcode, noAHS bool) error {
	if len(bhs) != BHSLen {
		return protoError(op, "BHS", fmt.Sprintf("length %d, want %d", len(bhs), BHSLen))
	}
	if got := BHS(bhs).Opcode(); got != op {
		return protoError(op, "Opcode", fmt.Sprintf("got %v", got))
	}
	if bhs[0]&0x80 != 0 {
		return fieldError(op, "Reserved (byte 0 bit 0)", "must be zero")
	}
	if bhs[0]&immediateBit != 0 && (!op.Initiator() || op == OpDataOut || op == OpSNACKReq) {
		return fieldError(op, "Reserved (byte 0 bit 1)", "I bit set in a PDU that has none")
	}
	if noAHS && bhs[4] != 0 {
		return protoError(op, "TotalAHSLength", fmt.Sprintf("%d words, but this PDU carries no AHS", bhs[4]))
	}
	return nil
}

// zero checks that bhs[from:to] is all zero; field names the range.
func zero(bhs []byte, op Opcode, from, to int) error {
	for _, c := range bhs[from:to] {
		if c != 0 {
			return fieldError(op, fmt.Sprintf("Reserved (bytes %d-%d)", from, to-1), "must be zero")
		}
	}
	return nil
}

// zeroBits checks that the masked bits of bhs[i] are zero.
func zeroBits(bhs []byte, op Opcode, i int, mask byte) error {
	if bhs[i]&mask != 0 {
		return fieldError(op, fmt.Sprintf("Reserved (byte %d mask %#02x)", i, mask), "must be zero")
	}
	return nil
}

func get32(h []byte, off int) uint32    { return binary.BigEndian.Uint32(h[off:]) }
func put32(h []byte, off int, v uint32) { binary.BigEndian.PutUint32(h[off:], v) }
func get16(h []byte, off int) uint16    { return binary.BigEndian.Uint16(h[off:]) }
func put16(h []byte, off int, v uint16) { binary.BigEndian.PutUint16(h[off:], v) }
func getLUN(h []byte) LUN               { return LUN(binary.BigEndian.Uint64(h[8:])) }
func putLUN(h []byte, l LUN)            { binary.BigEndian.PutUint64(h[8:], uint64(l)) }

// flag returns bit if cond is true, 0 otherwise.
func flag(cond bool, bit byte) byte {
	if cond {
		return bit
	}
	return 0
}

// New returns a new zero PDU of the type for op, or *UnknownOpcodeError.
func New(op Opcode) (PDU, error) {
	switch op {
	case OpNOPOut:
		return new(NOPOut), nil
	case OpSCSICommand:
		return new(SCSICommand), nil
	case OpTaskMgmtReq:
		return new(TaskMgmtRequest), nil
	case OpLoginReq:
		return new(LoginRequest), nil
	case OpTextReq:
		return new(TextRequest), nil
	case OpDataOut:
		return new(DataOut), nil
	case OpLogoutReq:
		return new(LogoutRequest), nil
	case OpSNACKReq:
		return new(SNACKRequest), nil
	case OpNOPIn:
		return new(NOPIn), nil
	case OpSCSIResponse:
		return new(SCSIResponse), nil
	case OpTaskMgmtResp:
		return new(TaskMgmtResponse), nil
	case OpLoginResp:
		return new(LoginResponse), nil
	case OpTextResp:
		return new(TextResponse), nil
	case OpDataIn:
		return new(DataIn), nil
	case OpLogoutResp:
		return new(LogoutResponse), nil
	case OpR2T:
		return new(R2T), nil
	case OpAsync:
		return new(AsyncMessage), nil
	case OpReject:
		return new(Reject), nil
	}
	return nil, &UnknownOpcodeError{Op: op}
}

// Decode decodes a 48-byte BHS into a newly allocated PDU of the right type.
// An undefined opcode gives *UnknownOpcodeError. Use a Decoder on hot paths:
// it reuses its PDU values and does not allocate.
func Decode(bhs []byte) (PDU, error) {
	if len(bhs) < BHSLen {
		return nil, protoError(0, "BHS", fmt.Sprintf("length %d, want %d", len(bhs), BHSLen))
	}
	p, err := New(BHS(bhs).Opcode())
	if err != nil {
		return nil, err
	}
	if err := p.UnmarshalBinary(bhs); err != nil {
		return nil, err
	}
	return p, nil
}

// Decoder decodes PDUs into PDU values it owns, one per opcode, so that
// decoding allocates nothing. The PDU returned by Decode is valid until the
// next Decode of the same opcode. The zero Decoder is ready to use; it is
// not safe for concurrent use (one per connection reader).
type Decoder struct {
	nopOut   NOPOut
	cmd      SCSICommand
	tmfReq   TaskMgmtRequest
	loginReq LoginRequest
	textReq  TextRequest
	dataOut  DataOut
	logout   LogoutRequest
	snack    SNACKRequest
	nopIn    NOPIn
	rsp      SCSIResponse
	tmfRsp   TaskMgmtResponse
	loginRsp LoginResponse
	textRsp  TextResponse
	dataIn   DataIn
	logoutR  LogoutResponse
	r2t      R2T
	async    AsyncMessage
	reject   Reject
}

// pduFor returns the Decoder's PDU value for op.
func (d *Decoder) pduFor(op Opcode) PDU {
	switch op {
	case OpNOPOut:
		return &d.nopOut
	case OpSCSICommand:
		return &d.cmd
	case OpTaskMgmtReq:
		return &d.tmfReq
	case OpLoginReq:
		return &d.loginReq
	case OpTextReq:
		return &d.textReq
	case OpDataOut:
		return &d.dataOut
	case OpLogoutReq:
		return &d.logout
	case OpSNACKReq:
		return &d.snack
	case OpNOPIn:
		return &d.nopIn
	case OpSCSIResponse:
		return &d.rsp
	case OpTaskMgmtResp:
		return &d.tmfRsp
	case OpLoginResp:
		return &d.loginRsp
	case OpTextResp:
		return &d.textRsp
	case OpDataIn:
		return &d.dataIn
	case OpLogoutResp:
		return &d.logoutR
	case OpR2T:
		return &d.r2t
	case OpAsync:
		return &d.async
	case OpReject:
		return &d.reject
	}
	return nil
}

// Decode decodes a 48-byte BHS into the Decoder's PDU for its opcode.
func (d *Decoder) Decode(bhs []byte) (PDU, error) {
	if len(bhs) < BHSLen {
		return nil, protoError(0, "BHS", fmt.Sprintf("length %d, want %d", len(bhs), BHSLen))
	}
	op := BHS(bhs).Opcode()
	p := d.pduFor(op)
	if p == nil {
		return nil, &UnknownOpcodeError{Op: op}
	}
	if err := p.UnmarshalBinary(bhs); err != nil {
		return nil, err
	}
	return p, nil
}

// DecodeFrame decodes a whole frame read by a Reader: the BHS, the AHS (an
// error unless the PDU is an AHSCarrier) and the data segment, which the
// returned PDU references.
func (d *Decoder) DecodeFrame(f *Frame) (PDU, error) {
	p, err := d.Decode(f.BHS)
	if err != nil {
		return nil, err
	}
	if err := attach(p, f); err != nil {
		return nil, err
	}
	return p, nil
}

// DecodeFrame is like Decoder.DecodeFrame but allocates a new PDU.
func DecodeFrame(f *Frame) (PDU, error) {
	p, err := Decode(f.BHS)
	if err != nil {
		return nil, err
	}
	if err := attach(p, f); err != nil {
		return nil, err
	}
	return p, nil
}

// attach decodes f's AHS into p and sets p's data segment.
func attach(p PDU, f *Frame) error {
	if a, ok := p.(AHSCarrier); ok {
		if err := a.DecodeAHS(f.AHS); err != nil {
			return err
		}
	} else if len(f.AHS) != 0 {
		return protoError(p.Opcode(), "TotalAHSLength", "this PDU carries no AHS")
	}
	if len(f.Data) == 0 {
		p.SetDataSegment(nil)
	} else {
		p.SetDataSegment(f.Data)
	}
	return nil
}
