package iser

import (
	"encoding/binary"
	"fmt"
)

// Version is the iSER protocol version of RFC 5046 and RFC 7145, carried
// in the version nibbles of Hello and HelloReply (Wireshark's dissector
// accepts no other value).
const Version = 10

// HelloLen is the length of a Hello or HelloReply message: one word of
// fields and two reserved words (RFC 7145 §9.3, §9.4; illumos
// iser_hello_hdr_t and iser_helloreply_hdr_t). A sender that uses the
// 28-byte length of the control-type header instead pads with zeros;
// UnmarshalBinary accepts both.
const HelloLen = 12

// helloReject is the REJ bit of a HelloReply, the low bit of byte 0.
const helloReject = 0x01

// Hello is the optional Hello message an initiator may send as the first
// message on a connection (RFC 7145 §9.3), byte for byte:
//
//	byte 0     opcode 2 in the high nibble, low nibble reserved
//	byte 1     MaxVer (high nibble), MinVer (low nibble)
//	bytes 2-3  iSER-IRD
//	bytes 4-11 reserved
//
// Linux never sends one (it runs the login right away), LIO logs it as an
// error and tgt prints it; this package only decodes it so a target can
// log and drop it (see ErrNotControl). AppendBinary exists for tests.
type Hello struct {
	MaxVersion uint8  // highest iSER version the initiator supports (4 bits)
	MinVersion uint8  // lowest iSER version the initiator supports (4 bits)
	IRD        uint16 // iSER-IRD: RDMA Read requests the initiator can take in
}

// HelloReply is the target's answer to a Hello (RFC 7145 §9.4):
//
//	byte 0     opcode 3 in the high nibble, reserved bits, REJ (low bit)
//	byte 1     MaxVer (high nibble), CurVer (low nibble)
//	bytes 2-3  iSER-ORD
//	bytes 4-11 reserved
//
// goiser never sends one; it decodes one only to log it.
type HelloReply struct {
	Reject         bool   // REJ: the target refuses the connection
	MaxVersion     uint8  // highest iSER version the target supports (4 bits)
	CurrentVersion uint8  // the version the target uses on this connection (4 bits)
	ORD            uint16 // iSER-ORD: RDMA Read requests the target will issue at once
}

// AppendBinary appends the 12-byte Hello. Versions above 15 are an error.
func (h *Hello) AppendBinary(b []byte) ([]byte, error) {
	if h.MaxVersion > 15 || h.MinVersion > 15 {
		return b, fmt.Errorf("iser: encode Hello: versions %d/%d do not fit 4 bits", h.MaxVersion, h.MinVersion)
	}
	return appendHello(b, byte(OpHello)<<4, h.MaxVersion<<4|h.MinVersion, h.IRD), nil
}

// UnmarshalBinary decodes a Hello of HelloLen to HeaderLen bytes,
// strictly: the opcode must be OpHello and every reserved bit and byte
// zero, else ErrBadHeader (ErrNotControl never: a Hello is what the
// caller asked for). The version fields are decoded as sent, not checked
// against Version. On error h is left unchanged.
func (h *Hello) UnmarshalBinary(b []byte) error {
	if err := checkHello(b, OpHello, 0x0f, "Hello"); err != nil {
		return err
	}
	*h = Hello{MaxVersion: b[1] >> 4, MinVersion: b[1] & 0x0f, IRD: binary.BigEndian.Uint16(b[2:])}
	return nil
}

// AppendBinary appends the 12-byte HelloReply. Versions above 15 are an
// error.
func (h *HelloReply) AppendBinary(b []byte) ([]byte, error) {
	if h.MaxVersion > 15 || h.CurrentVersion > 15 {
		return b, fmt.Errorf("iser: encode HelloReply: versions %d/%d do not fit 4 bits", h.MaxVersion, h.CurrentVersion)
	}
	b0 := byte(OpHelloReply) << 4
	if h.Reject {
		b0 |= helloReject
	}
	return appendHello(b, b0, h.MaxVersion<<4|h.CurrentVersion, h.ORD), nil
}

// UnmarshalBinary decodes a HelloReply of HelloLen to HeaderLen bytes,
// strictly, like Hello.UnmarshalBinary; byte 0 bits 4-6 are reserved.
func (h *HelloReply) UnmarshalBinary(b []byte) error {
	if err := checkHello(b, OpHelloReply, 0x0e, "HelloReply"); err != nil {
		return err
	}
	*h = HelloReply{
		Reject:         b[0]&helloReject != 0,
		MaxVersion:     b[1] >> 4,
		CurrentVersion: b[1] & 0x0f,
		ORD:            binary.BigEndian.Uint16(b[2:]),
	}
	return nil
}

// appendHello appends a Hello or HelloReply made of its first word.
func appendHello(b []byte, b0, versions byte, rd uint16) []byte {
	b = append(b, b0, versions)
	b = binary.BigEndian.AppendUint16(b, rd)
	return append(b, make([]byte, HelloLen-4)...)
}

// checkHello checks the length, the opcode, the reserved bits of byte 0
// (mask) and the reserved bytes of a Hello or HelloReply.
func checkHello(b []byte, want Opcode, mask byte, msg string) error {
	if len(b) < HelloLen || len(b) > HeaderLen {
		return wireErr(ErrBadHeader, msg, "length", fmt.Sprintf("%d bytes, want %d to %d", len(b), HelloLen, HeaderLen))
	}
	if op := Opcode(b[0] >> 4); op != want {
		return wireErr(ErrBadHeader, msg, "Opcode", fmt.Sprintf("got %v", op))
	}
	if b[0]&mask != 0 {
		return wireErr(ErrBadHeader, msg, "Reserved (byte 0)", "must be zero")
	}
	for _, c := range b[4:] {
		if c != 0 {
			return wireErr(ErrBadHeader, msg, fmt.Sprintf("Reserved (bytes 4-%d)", len(b)-1), "must be zero")
		}
	}
	return nil
}
