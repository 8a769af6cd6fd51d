package iser

import (
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
)

// Frame is one iSCSI control-type PDU as received in a SEND: the iSER
// header, then the BHS, the AHS and the data segment as views into the
// receive buffer (pdu.Frame, ready for pdu.Decoder.DecodeFrame).
type Frame struct {
	Header Header
	pdu.Frame
}

// ParseSend splits a received SEND, the first n bytes of a receive
// buffer (n from the receive completion), into its iSER header, BHS, AHS
// and data segment. The views alias b and are capped to their length, so
// an append cannot clobber a neighbour; Data is nil for an empty data
// segment. It allocates nothing.
//
// iSER frames a PDU without padding and without digests (HeaderDigest
// and DataDigest are None on iSER; the RDMA transport's CRC protects the
// data): the SEND holds HeadersLen, then
// TotalAHSLength*4 bytes of AHS (BHS byte 4), then DataSegmentLength bytes
// of data (BHS bytes 5-7). A sender that pads the data segment to a
// multiple of 4 as on TCP is tolerated, as Linux ib_iser does (it accepts
// a received length from the data length up to 4 more): up to the
// padding, never more.
//
// Errors, in the order checked:
//   - a Hello or HelloReply: ErrNotControl (decode it with Hello or
//     HelloReply to log it);
//   - an empty SEND, or one shorter than HeadersLen: ErrBadLength;
//   - a malformed iSER header (Header.UnmarshalBinary): ErrBadHeader;
//   - W or R set on anything but a SCSI Command: ErrBadHeader (only a
//     command advertises buffers, RFC 7145 §9.2);
//   - lengths that do not fit b as described above: ErrBadLength.
//
// ParseSend checks the framing only; the BHS itself is checked by
// pdu.Decoder.DecodeFrame.
func ParseSend(b []byte) (Frame, error) {
	if len(b) == 0 {
		return Frame{}, wireErr(ErrBadLength, "SEND", "length", "empty")
	}
	op, err := PeekOpcode(b)
	if err != nil {
		return Frame{}, err
	}
	if op != OpControl {
		return Frame{}, wireErr(ErrNotControl, "SEND", "Opcode", op.String())
	}
	if len(b) < HeadersLen {
		return Frame{}, wireErr(ErrBadLength, "SEND", "length", fmt.Sprintf("%d bytes, shorter than the %d-byte iSER header and BHS", len(b), HeadersLen))
	}
	var f Frame
	if err := f.Header.UnmarshalBinary(b[:HeaderLen]); err != nil {
		return Frame{}, err
	}
	bhs := pdu.BHS(b[HeaderLen:HeadersLen:HeadersLen])
	if (f.Header.WriteValid || f.Header.ReadValid) && bhs.Opcode() != pdu.OpSCSICommand {
		return Frame{}, wireErr(ErrBadHeader, "iSER header", "W/R", fmt.Sprintf("STags advertised on a %v", bhs.Opcode()))
	}
	ahs := bhs.TotalAHSLength() * 4
	dsl := int(bhs.DataSegmentLength())
	need := HeadersLen + ahs + dsl
	if len(b) < need || len(b) > need+pdu.PadLen(dsl) {
		return Frame{}, wireErr(ErrBadLength, "SEND", "length", fmt.Sprintf(
			"%d bytes, but the BHS announces %d bytes of AHS and %d of data (%d bytes, padding up to %d allowed)",
			len(b), ahs, dsl, need, need+pdu.PadLen(dsl)))
	}
	f.BHS = bhs
	end := HeadersLen + ahs
	f.AHS = b[HeadersLen:end:end]
	if dsl > 0 {
		f.Data = b[end : end+dsl : end+dsl]
	}
	return f, nil
}
