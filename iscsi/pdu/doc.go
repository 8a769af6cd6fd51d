// Package pdu encodes and decodes iSCSI PDUs (RFC 7143 §11) and frames
// them on a byte stream.
//
// Every PDU has its own Go type (SCSICommand, DataIn, LoginRequest, ...)
// with AppendBinary, which appends the 48-byte Basic Header Segment, and
// UnmarshalBinary, which decodes one strictly: a wrong length, opcode or a
// non-zero reserved field is a *FormatError whose Reason is the Reject
// reason a target sends back (see RejectReasonFor). The data segment is
// not part of the BHS; each type keeps it in its Data field, reachable
// through the PDU interface.
//
// Reading from a connection:
//
//	r := pdu.NewReader(bufio.NewReader(conn))
//	r.MaxDataSegmentLength = 8192 // our MaxRecvDataSegmentLength
//	buf := make([]byte, pdu.FrameBufferSize(8192))
//	var d pdu.Decoder // reuses one value per PDU type: no allocation
//	var f pdu.Frame
//	for {
//		if err := r.ReadFrame(&f, buf); err != nil { ... }
//		p, err := d.DecodeFrame(&f)
//		if reason, ok := pdu.RejectReasonFor(err); ok { ... send a Reject ... }
//		switch p := p.(type) {
//		case *pdu.SCSICommand: ...
//		}
//	}
//
// To place a data segment straight into a task's buffer (a Data-Out
// payload, for example), call ReadHeader, decode, then ReadData with the
// destination instead of ReadFrame.
//
// Writing:
//
//	w := pdu.NewWriter(conn) // one writev per PDU, data not copied
//	w.HeaderDigest = true    // after login negotiated CRC32C
//	err := w.WritePDU(&pdu.DataIn{Final: true, HasStatus: true, ITT: itt, Data: buf})
//
// Digests are CRC32C (hash/crc32, hardware accelerated), sent least
// significant byte first; the data digest covers the padding.
//
// Decoding into a reused Decoder, encoding into a reused buffer and
// ReadFrame/WritePDU allocate nothing per PDU (see the benchmarks).
package pdu
