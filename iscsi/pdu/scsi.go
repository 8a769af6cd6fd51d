package pdu

import (
	"encoding/binary"
	"fmt"
)

// AHS types (RFC 7143 §11.2.2.2).
const (
	AHSExtendedCDB    = 1 // Extended CDB AHS, §11.3.5
	AHSBidiReadLength = 2 // Bidirectional Expected Read-Data Length AHS, §11.3.6
)

// MaxCDBLen is the longest CDB an Extended CDB AHS can complete here
// (SPC variable-length CDBs go up to 260 bytes).
const MaxCDBLen = 260

// SCSICommand is the SCSI Command PDU (RFC 7143 §11.3), opcode 0x01.
// A CDB of up to 16 bytes lives in the BHS; longer CDBs continue in an
// Extended CDB AHS (§11.3.5). Immediate data rides in the data segment.
type SCSICommand struct {
	Immediate bool     // I bit (§11.2.1.1): immediate delivery
	Final     bool     // F bit (§11.3.1): no unsolicited Data-Out follows
	Read      bool     // R bit (§11.3.1): data is expected from the target
	Write     bool     // W bit (§11.3.1): data is sent to the target
	Attr      TaskAttr // ATTR (§11.3.1)
	LUN       LUN      // bytes 8-15 (§11.3.2)
	ITT       uint32   // Initiator Task Tag, bytes 16-19 (§11.2.1.8)
	// ExpectedDataTransferLength is bytes 20-23 (§11.3.3): for a
	// bidirectional command, the write length.
	ExpectedDataTransferLength uint32
	CmdSN                      uint32   // bytes 24-27 (§11.3.4)
	ExpStatSN                  uint32   // bytes 28-31 (§11.3.4)
	CDB                        [16]byte // bytes 32-47 (§11.3.5)
	// ExtCDB holds CDB bytes 16 and on, from the Extended CDB AHS
	// (§11.3.5); nil for CDBs of 16 bytes or less. After DecodeAHS it
	// aliases the AHS buffer.
	ExtCDB []byte
	// BidiReadLength is the Bidirectional Expected Read-Data Length AHS
	// (§11.3.6); encoded when both Read and Write are set.
	BidiReadLength uint32
	// Data is the immediate data (§11.3.7).
	Data []byte
}

// Opcode implements PDU.
func (*SCSICommand) Opcode() Opcode { return OpSCSICommand }

// DataSegment implements PDU.
func (p *SCSICommand) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *SCSICommand) SetDataSegment(d []byte) { p.Data = d }

// CDBLen returns the length of the full CDB: 16 plus len(ExtCDB) when an
// extended CDB is present, else 16 (the BHS field is zero-padded).
func (p *SCSICommand) CDBLen() int { return 16 + len(p.ExtCDB) }

// AppendCDB appends the full CDB (BHS part then extended part) to b.
func (p *SCSICommand) AppendCDB(b []byte) []byte {
	return append(append(b, p.CDB[:]...), p.ExtCDB...)
}

// AHSLen implements AHSCarrier.
func (p *SCSICommand) AHSLen() int {
	n := 0
	if len(p.ExtCDB) > 0 {
		n += 4 + len(p.ExtCDB) + PadLen(len(p.ExtCDB))
	}
	if p.Read && p.Write {
		n += 8
	}
	return n
}

// AppendAHS implements AHSCarrier.
func (p *SCSICommand) AppendAHS(b []byte) []byte {
	if len(p.ExtCDB) > 0 {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.ExtCDB)+1))
		b = append(b, AHSExtendedCDB, 0)
		b = append(b, p.ExtCDB...)
		b = append(b, make([]byte, PadLen(len(p.ExtCDB)))...)
	}
	if p.Read && p.Write {
		b = append(b, 0, 5, AHSBidiReadLength, 0)
		b = binary.BigEndian.AppendUint32(b, p.BidiReadLength)
	}
	return b
}

// DecodeAHS implements AHSCarrier: it parses the Extended CDB and
// Bidirectional Read-Data Length AHS (§11.2.2). Unknown AHS types are a
// protocol error.
func (p *SCSICommand) DecodeAHS(ahs []byte) error {
	p.ExtCDB = nil
	p.BidiReadLength = 0
	seenExt, seenBidi := false, false
	for len(ahs) > 0 {
		if len(ahs) < 4 {
			return protoError(OpSCSICommand, "AHS", "truncated AHS header")
		}
		n := int(binary.BigEndian.Uint16(ahs))
		typ := ahs[2]
		if typ&0xc0 != 0 {
			return fieldError(OpSCSICommand, "AHSType", "reserved bits set")
		}
		total := 3 + n + PadLen(3+n)
		if n < 1 || total > len(ahs) {
			return protoError(OpSCSICommand, "AHSLength", fmt.Sprintf("%d does not fit in the AHS", n))
		}
		if ahs[3] != 0 {
			return fieldError(OpSCSICommand, "AHS Reserved (byte 3)", "must be zero")
		}
		switch typ {
		case AHSExtendedCDB:
			if seenExt || n-1 > MaxCDBLen-16 {
				return protoError(OpSCSICommand, "Extended CDB AHS", "duplicate or too long")
			}
			seenExt = true
			p.ExtCDB = ahs[4 : 3+n : 3+n]
		case AHSBidiReadLength:
			if seenBidi || n != 5 {
				return protoError(OpSCSICommand, "Bidirectional Read-Data Length AHS", "duplicate or AHSLength != 5")
			}
			seenBidi = true
			p.BidiReadLength = binary.BigEndian.Uint32(ahs[4:])
		default:
			return protoError(OpSCSICommand, "AHSType", fmt.Sprintf("unsupported type %d", typ))
		}
		ahs = ahs[total:]
	}
	if len(p.ExtCDB) == 0 {
		p.ExtCDB = nil
	}
	return nil
}

// AppendBinary implements PDU.
func (p *SCSICommand) AppendBinary(b []byte) ([]byte, error) {
	if len(p.ExtCDB) > MaxCDBLen-16 {
		return b, fmt.Errorf("pdu: encode %v: CDB of %d bytes is too long", OpSCSICommand, p.CDBLen())
	}
	if p.Attr > 7 {
		return b, fmt.Errorf("pdu: encode %v: task attribute %d does not fit in 3 bits", OpSCSICommand, p.Attr)
	}
	fl := flag(p.Final, finalBit) | flag(p.Read, 0x40) | flag(p.Write, 0x20) | byte(p.Attr)
	b, h, err := appendHeader(b, OpSCSICommand, p.Immediate, fl, p.AHSLen(), len(p.Data))
	if err != nil {
		return b, err
	}
	putLUN(h, p.LUN)
	put32(h, 16, p.ITT)
	put32(h, 20, p.ExpectedDataTransferLength)
	put32(h, 24, p.CmdSN)
	put32(h, 28, p.ExpStatSN)
	copy(h[32:48], p.CDB[:])
	return b, nil
}

// UnmarshalBinary implements PDU. ExtCDB and BidiReadLength are cleared;
// DecodeAHS fills them.
func (p *SCSICommand) UnmarshalBinary(h []byte) error {
	const op = OpSCSICommand
	if err := checkHeader(h, op, false); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x18); err != nil {
		return err
	}
	if err := zero(h, op, 2, 4); err != nil {
		return err
	}
	*p = SCSICommand{
		Immediate:                  BHS(h).Immediate(),
		Final:                      h[1]&finalBit != 0,
		Read:                       h[1]&0x40 != 0,
		Write:                      h[1]&0x20 != 0,
		Attr:                       TaskAttr(h[1] & 0x07),
		LUN:                        getLUN(h),
		ITT:                        get32(h, 16),
		ExpectedDataTransferLength: get32(h, 20),
		CmdSN:                      get32(h, 24),
		ExpStatSN:                  get32(h, 28),
	}
	copy(p.CDB[:], h[32:48])
	return nil
}

// SCSIResponse is the SCSI Response PDU (RFC 7143 §11.4), opcode 0x21.
// Its data segment holds sense data and response data (§11.4.7); see
// AppendSenseData and SenseData.
type SCSIResponse struct {
	BidiReadOverflow  bool         // o bit (§11.4.1)
	BidiReadUnderflow bool         // u bit (§11.4.1)
	ResidualOverflow  bool         // O bit (§11.4.1)
	ResidualUnderflow bool         // U bit (§11.4.1)
	Response          ResponseCode // byte 2 (§11.4.3)
	Status            uint8        // byte 3, SCSI status (§11.4.2)
	ITT               uint32       // bytes 16-19
	SNACKTag          uint32       // bytes 20-23 (§11.4.6)
	StatSN            uint32       // bytes 24-27 (§11.4.4)
	ExpCmdSN          uint32       // bytes 28-31 (§11.4.4)
	MaxCmdSN          uint32       // bytes 32-35 (§11.4.4)
	ExpDataSN         uint32       // bytes 36-39 (§11.4.8)
	// BidiReadResidualCount is bytes 40-43 (§11.4.5); valid with o or u.
	BidiReadResidualCount uint32
	// ResidualCount is bytes 44-47 (§11.4.5); valid with O or U.
	ResidualCount uint32
	Data          []byte // sense and response data (§11.4.7)
}

// Opcode implements PDU.
func (*SCSIResponse) Opcode() Opcode { return OpSCSIResponse }

// DataSegment implements PDU.
func (p *SCSIResponse) DataSegment() []byte { return p.Data }

// SetDataSegment implements PDU.
func (p *SCSIResponse) SetDataSegment(d []byte) { p.Data = d }

// AppendBinary implements PDU.
func (p *SCSIResponse) AppendBinary(b []byte) ([]byte, error) {
	fl := finalBit | flag(p.BidiReadOverflow, 0x10) | flag(p.BidiReadUnderflow, 0x08) |
		flag(p.ResidualOverflow, 0x04) | flag(p.ResidualUnderflow, 0x02)
	b, h, err := appendHeader(b, OpSCSIResponse, false, fl, 0, len(p.Data))
	if err != nil {
		return b, err
	}
	h[2] = byte(p.Response)
	h[3] = p.Status
	put32(h, 16, p.ITT)
	put32(h, 20, p.SNACKTag)
	put32(h, 24, p.StatSN)
	put32(h, 28, p.ExpCmdSN)
	put32(h, 32, p.MaxCmdSN)
	put32(h, 36, p.ExpDataSN)
	put32(h, 40, p.BidiReadResidualCount)
	put32(h, 44, p.ResidualCount)
	return b, nil
}

// UnmarshalBinary implements PDU.
func (p *SCSIResponse) UnmarshalBinary(h []byte) error {
	const op = OpSCSIResponse
	if err := checkHeader(h, op, true); err != nil {
		return err
	}
	if err := zeroBits(h, op, 1, 0x61); err != nil {
		return err
	}
	if err := zero(h, op, 8, 16); err != nil {
		return err
	}
	if h[1]&0x18 == 0x18 || h[1]&0x06 == 0x06 {
		return protoError(op, "Flags", "overflow and underflow both set")
	}
	*p = SCSIResponse{
		BidiReadOverflow:      h[1]&0x10 != 0,
		BidiReadUnderflow:     h[1]&0x08 != 0,
		ResidualOverflow:      h[1]&0x04 != 0,
		ResidualUnderflow:     h[1]&0x02 != 0,
		Response:              ResponseCode(h[2]),
		Status:                h[3],
		ITT:                   get32(h, 16),
		SNACKTag:              get32(h, 20),
		StatSN:                get32(h, 24),
		ExpCmdSN:              get32(h, 28),
		MaxCmdSN:              get32(h, 32),
		ExpDataSN:             get32(h, 36),
		BidiReadResidualCount: get32(h, 40),
		ResidualCount:         get32(h, 44),
	}
	return nil
}

// AppendSenseData appends the data segment of a SCSI Response carrying
// sense: the 2-byte SenseLength then the sense bytes (RFC 7143 §11.4.7.2).
func AppendSenseData(b, sense []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(sense)))
	return append(b, sense...)
}

// SenseData returns the sense bytes of a SCSI Response data segment
// (RFC 7143 §11.4.7.2); an empty segment has none.
func SenseData(seg []byte) ([]byte, error) {
	if len(seg) == 0 {
		return nil, nil
	}
	if len(seg) < 2 {
		return nil, protoError(OpSCSIResponse, "SenseLength", "truncated")
	}
	n := int(binary.BigEndian.Uint16(seg))
	if 2+n > len(seg) {
		return nil, protoError(OpSCSIResponse, "SenseLength", fmt.Sprintf("%d exceeds the data segment", n))
	}
	return seg[2 : 2+n], nil
}
