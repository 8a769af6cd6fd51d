package iser

import (
	"encoding/binary"
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
)

// HeaderLen is the length of the iSER header that precedes every iSCSI
// control-type PDU in a SEND: the 28-byte layout of RFC 7145 §9.2 (the
// "expanded" header of IBTA Annex A12 for connections without ZBVA), the
// only one Linux ib_iser, LIO isert and tgt use (struct iser_ctrl in
// Linux include/scsi/iser.h; Wireshark packet-iser.c sizes it
// 1+3+4+8+4+8).
const HeaderLen = 28

// HeadersLen is the length of the iSER header and the 48-byte iSCSI BHS:
// the offset of the AHS, or of the data segment when there is no AHS, in
// a received SEND (ISER_HEADERS_LEN in Linux iscsi_iser.h and isert).
const HeadersLen = HeaderLen + pdu.BHSLen

// Opcode is the iSER opcode, the high nibble of byte 0 of every iSER
// message (RFC 7145 §9.1).
type Opcode uint8

// iSER opcodes (RFC 7145 §9.1; Linux ISCSI_CTRL 0x10, ISER_HELLO 0x20,
// ISER_HELLORPLY 0x30 in include/scsi/iser.h carry them shifted into the
// high nibble).
const (
	OpControl    Opcode = 1 // iSCSI control-type PDU, §9.2: every iSCSI PDU on the wire
	OpHello      Opcode = 2 // Hello message, §9.3: initiator to target, optional
	OpHelloReply Opcode = 3 // HelloReply message, §9.4: target to initiator, optional
)

// String returns the RFC 7145 name of the opcode.
func (o Opcode) String() string {
	switch o {
	case OpControl:
		return "iSCSI control-type PDU"
	case OpHello:
		return "Hello"
	case OpHelloReply:
		return "HelloReply"
	}
	return fmt.Sprintf("Opcode(%#x)", uint8(o))
}

// Bits of byte 0 of the control-type header (RFC 7145 §9.2; Linux
// ISER_WSV 0x08 and ISER_RSV 0x04).
const (
	flagWrite       = 0x08 // W: Write STag and Write Base Offset valid
	flagRead        = 0x04 // R: Read STag and Read Base Offset valid
	controlReserved = 0x03 // the low two bits of byte 0
)

// PeekOpcode returns the iSER opcode of a received message, so that a
// transport can tell a control-type PDU (ParseSend) from a Hello
// (Hello.UnmarshalBinary). An empty buffer or an opcode RFC 7145 does not
// define is ErrBadHeader.
func PeekOpcode(b []byte) (Opcode, error) {
	if len(b) == 0 {
		return 0, wireErr(ErrBadHeader, "iSER header", "Opcode", "empty message")
	}
	op := Opcode(b[0] >> 4)
	switch op {
	case OpControl, OpHello, OpHelloReply:
		return op, nil
	}
	return op, wireErr(ErrBadHeader, "iSER header", "Opcode", fmt.Sprintf("unknown opcode %#x", uint8(op)))
}

// Header is the iSER header of an iSCSI control-type PDU (RFC 7145 §9.2):
// the header of every SEND that carries an iSCSI PDU, in either
// direction. Its opcode is always OpControl; Hello and HelloReply have
// their own types.
//
// Only a SCSI Command from the initiator advertises buffers: W with the
// Write STag and Write Base Offset of the buffer the target RDMA READs
// from (solicited Data-Out), R with the Read STag and Read Base Offset of
// the buffer the target RDMA WRITEs into (Data-In). Linux sends
// non-zero-based addresses (the buffer's virtual address) and, for a
// WRITE, a Write Base Offset already advanced past the immediate and
// unsolicited data (iser_prepare_write_cmd in iser_initiator.c): the
// target reads from WriteVA as given.
//
// Invariant, checked by both AppendBinary and UnmarshalBinary: a field
// whose valid bit is clear is zero (RFC 7145 §9.2 makes it reserved;
// Linux clears the whole header before filling it, iser_create_send_desc
// and isert_create_send_desc).
type Header struct {
	WriteValid bool   // W bit
	WriteSTag  uint32 // Write STag: the initiator's rkey for the target's RDMA READ
	WriteVA    uint64 // Write Base Offset: the remote address the RDMA READ starts at
	ReadValid  bool   // R bit
	ReadSTag   uint32 // Read STag: the initiator's rkey for the target's RDMA WRITE
	ReadVA     uint64 // Read Base Offset: the remote address the RDMA WRITE starts at
}

// AppendBinary appends the 28-byte encoded header to b. It fails, leaving
// b as it was, if a field is set whose valid bit is clear.
func (h *Header) AppendBinary(b []byte) ([]byte, error) {
	if !h.WriteValid && (h.WriteSTag != 0 || h.WriteVA != 0) {
		return b, fmt.Errorf("iser: encode header: Write STag/Base Offset set without W")
	}
	if !h.ReadValid && (h.ReadSTag != 0 || h.ReadVA != 0) {
		return b, fmt.Errorf("iser: encode header: Read STag/Base Offset set without R")
	}
	flags := byte(OpControl) << 4
	if h.WriteValid {
		flags |= flagWrite
	}
	if h.ReadValid {
		flags |= flagRead
	}
	b = append(b, flags, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, h.WriteSTag)
	b = binary.BigEndian.AppendUint64(b, h.WriteVA)
	b = binary.BigEndian.AppendUint32(b, h.ReadSTag)
	b = binary.BigEndian.AppendUint64(b, h.ReadVA)
	return b, nil
}

// UnmarshalBinary decodes a control-type header of exactly HeaderLen
// bytes, strictly. Errors: a Hello or HelloReply is ErrNotControl; a
// wrong length, an unknown opcode, a non-zero reserved bit (byte 0 bits
// 6-7) or byte (1-3), or a non-zero STag or Base Offset without its
// valid bit is ErrBadHeader. On error h is left unchanged.
func (h *Header) UnmarshalBinary(b []byte) error {
	op, err := PeekOpcode(b)
	if err != nil {
		return err
	}
	if op != OpControl {
		return wireErr(ErrNotControl, "iSER header", "Opcode", op.String())
	}
	if len(b) != HeaderLen {
		return wireErr(ErrBadHeader, "iSER header", "length", fmt.Sprintf("%d bytes, want %d", len(b), HeaderLen))
	}
	if b[0]&controlReserved != 0 {
		return wireErr(ErrBadHeader, "iSER header", "Reserved (byte 0 bits 6-7)", "must be zero")
	}
	if b[1]|b[2]|b[3] != 0 {
		return wireErr(ErrBadHeader, "iSER header", "Reserved (bytes 1-3)", "must be zero")
	}
	d := Header{
		WriteValid: b[0]&flagWrite != 0,
		WriteSTag:  binary.BigEndian.Uint32(b[4:]),
		WriteVA:    binary.BigEndian.Uint64(b[8:]),
		ReadValid:  b[0]&flagRead != 0,
		ReadSTag:   binary.BigEndian.Uint32(b[16:]),
		ReadVA:     binary.BigEndian.Uint64(b[20:]),
	}
	if !d.WriteValid && (d.WriteSTag != 0 || d.WriteVA != 0) {
		return wireErr(ErrBadHeader, "iSER header", "Write STag/Write Base Offset", "non-zero without the W bit")
	}
	if !d.ReadValid && (d.ReadSTag != 0 || d.ReadVA != 0) {
		return wireErr(ErrBadHeader, "iSER header", "Read STag/Read Base Offset", "non-zero without the R bit")
	}
	*h = d
	return nil
}
