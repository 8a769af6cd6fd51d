package pdu

import (
	"encoding/binary"
	"fmt"
)

// BHSLen is the length of the Basic Header Segment (RFC 7143 §11.2.1).
const BHSLen = 48

// Opcode is the 6-bit iSCSI operation code in byte 0 of the BHS
// (RFC 7143 §11.2.1.2). Initiator opcodes are 0x00-0x1f, target opcodes
// 0x20-0x3f.
type Opcode uint8

// Initiator opcodes (RFC 7143 §11.2.1.2).
const (
	OpNOPOut       Opcode = 0x00 // NOP-Out, §11.18
	OpSCSICommand  Opcode = 0x01 // SCSI Command, §11.3
	OpTaskMgmtReq  Opcode = 0x02 // SCSI Task Management Function Request, §11.5
	OpLoginReq     Opcode = 0x03 // Login Request, §11.12
	OpTextReq      Opcode = 0x04 // Text Request, §11.10
	OpDataOut      Opcode = 0x05 // SCSI Data-Out, §11.7
	OpLogoutReq    Opcode = 0x06 // Logout Request, §11.14
	OpSNACKReq     Opcode = 0x10 // SNACK Request, §11.16
	OpNOPIn        Opcode = 0x20 // NOP-In, §11.19
	OpSCSIResponse Opcode = 0x21 // SCSI Response, §11.4
	OpTaskMgmtResp Opcode = 0x22 // SCSI Task Management Function Response, §11.6
	OpLoginResp    Opcode = 0x23 // Login Response, §11.13
	OpTextResp     Opcode = 0x24 // Text Response, §11.11
	OpDataIn       Opcode = 0x25 // SCSI Data-In, §11.7
	OpLogoutResp   Opcode = 0x26 // Logout Response, §11.15
	OpR2T          Opcode = 0x31 // Ready To Transfer, §11.8
	OpAsync        Opcode = 0x32 // Asynchronous Message, §11.9
	OpReject       Opcode = 0x3f // Reject, §11.17
)

// opcodeMask selects the opcode bits of BHS byte 0.
const opcodeMask = 0x3f

// immediateBit is the I bit of BHS byte 0 (RFC 7143 §11.2.1.1).
const immediateBit = 0x40

// finalBit is the F bit in BHS byte 1 shared by most PDUs.
const finalBit = 0x80

// String returns the RFC name of the opcode, or "Opcode(0x..)" if unknown.
func (o Opcode) String() string {
	switch o {
	case OpNOPOut:
		return "NOP-Out"
	case OpSCSICommand:
		return "SCSI Command"
	case OpTaskMgmtReq:
		return "Task Management Request"
	case OpLoginReq:
		return "Login Request"
	case OpTextReq:
		return "Text Request"
	case OpDataOut:
		return "Data-Out"
	case OpLogoutReq:
		return "Logout Request"
	case OpSNACKReq:
		return "SNACK Request"
	case OpNOPIn:
		return "NOP-In"
	case OpSCSIResponse:
		return "SCSI Response"
	case OpTaskMgmtResp:
		return "Task Management Response"
	case OpLoginResp:
		return "Login Response"
	case OpTextResp:
		return "Text Response"
	case OpDataIn:
		return "Data-In"
	case OpLogoutResp:
		return "Logout Response"
	case OpR2T:
		return "R2T"
	case OpAsync:
		return "Async Message"
	case OpReject:
		return "Reject"
	}
	return fmt.Sprintf("Opcode(%#02x)", uint8(o))
}

// Known reports whether o is an opcode defined by RFC 7143.
func (o Opcode) Known() bool {
	switch o {
	case OpNOPOut, OpSCSICommand, OpTaskMgmtReq, OpLoginReq, OpTextReq, OpDataOut,
		OpLogoutReq, OpSNACKReq, OpNOPIn, OpSCSIResponse, OpTaskMgmtResp, OpLoginResp,
		OpTextResp, OpDataIn, OpLogoutResp, OpR2T, OpAsync, OpReject:
		return true
	}
	return false
}

// Initiator reports whether o is sent by initiators (0x00-0x1f).
func (o Opcode) Initiator() bool { return o < 0x20 }

// BHS is a view of a raw 48-byte Basic Header Segment (RFC 7143 §11.2.1).
// Its accessors read the fields common to every PDU; they panic if the
// slice is shorter than BHSLen, like any slice index.
type BHS []byte

// Opcode returns the opcode in byte 0 (§11.2.1.2).
func (h BHS) Opcode() Opcode { return Opcode(h[0] & opcodeMask) }

// Immediate returns the I bit of byte 0 (§11.2.1.1).
func (h BHS) Immediate() bool { return h[0]&immediateBit != 0 }

// Final returns the F bit of byte 1 (meaning depends on the opcode).
func (h BHS) Final() bool { return h[1]&finalBit != 0 }

// TotalAHSLength returns the total AHS length in 4-byte words (byte 4, §11.2.1.4).
func (h BHS) TotalAHSLength() int { return int(h[4]) }

// DataSegmentLength returns the 24-bit data segment length in bytes without
// padding (bytes 5-7, §11.2.1.5).
func (h BHS) DataSegmentLength() uint32 {
	return uint32(h[5])<<16 | uint32(h[6])<<8 | uint32(h[7])
}

// InitiatorTaskTag returns bytes 16-19 (§11.2.1.8).
func (h BHS) InitiatorTaskTag() uint32 { return binary.BigEndian.Uint32(h[16:20]) }

// SetDataSegmentLength stores n (which must fit in 24 bits) in bytes 5-7.
func (h BHS) SetDataSegmentLength(n uint32) {
	h[5], h[6], h[7] = byte(n>>16), byte(n>>8), byte(n)
}

// PadLen returns the number of zero bytes that pad n bytes to a multiple of
// four (RFC 7143 §11.1: every segment ends on a 4-byte boundary).
func PadLen(n int) int { return -n & 3 }
