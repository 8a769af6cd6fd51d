package pdu

import (
	"errors"
	"fmt"
)

// FormatError reports a BHS, AHS or framing field that a conformant peer
// never sends: a non-zero reserved field, a bad length, a wrong opcode. The
// target answers it with a Reject PDU carrying Reason (RFC 7143 §11.17.1).
type FormatError struct {
	Op     Opcode       // opcode of the offending PDU
	Field  string       // field name as in RFC 7143, e.g. "Reserved (bytes 24-27)"
	Detail string       // what is wrong with it
	Reason RejectReason // reason for the Reject the target should send
}

// Error implements error.
func (e *FormatError) Error() string {
	return fmt.Sprintf("pdu: %v: %s: %s", e.Op, e.Field, e.Detail)
}

// UnknownOpcodeError reports an opcode that RFC 7143 does not define, or one
// that is not expected in this direction. Targets answer it with a Reject,
// reason RejectCommandNotSupported (RFC 7143 §11.17.1).
type UnknownOpcodeError struct {
	Op Opcode
}

// Error implements error.
func (e *UnknownOpcodeError) Error() string {
	return fmt.Sprintf("pdu: unsupported opcode %#02x", uint8(e.Op))
}

// DataSegmentTooLongError reports a data segment longer than the receiver's
// MaxRecvDataSegmentLength (RFC 7143 §13.12). The reader does not consume
// the segment; the connection is out of sync and must be dropped after a
// Reject (reason RejectProtocolError).
type DataSegmentTooLongError struct {
	Op     Opcode
	Length uint32 // DataSegmentLength announced in the BHS
	Max    uint32 // the limit in force
}

// Error implements error.
func (e *DataSegmentTooLongError) Error() string {
	return fmt.Sprintf("pdu: %v: data segment of %d bytes exceeds limit %d", e.Op, e.Length, e.Max)
}

// DigestError reports a header or data digest mismatch (RFC 7143 §7.8).
// A data digest error is answered with Reject reason RejectDataDigestError;
// a header digest error means the PDU boundaries cannot be trusted and the
// connection should be dropped.
type DigestError struct {
	Op     Opcode
	Header bool   // true for HeaderDigest, false for DataDigest
	Got    uint32 // digest received
	Want   uint32 // digest computed
}

// Error implements error.
func (e *DigestError) Error() string {
	kind := "data"
	if e.Header {
		kind = "header"
	}
	return fmt.Sprintf("pdu: %v: %s digest mismatch: got %#08x, want %#08x", e.Op, kind, e.Got, e.Want)
}

// ErrShortBuffer is returned when a caller-supplied buffer cannot hold a PDU.
var ErrShortBuffer = errors.New("pdu: buffer too short")

// RejectReasonFor maps an error from this package to the Reject reason a
// target should send (RFC 7143 §11.17.1). ok is false for errors that do
// not call for a Reject (I/O errors, for example).
func RejectReasonFor(err error) (reason RejectReason, ok bool) {
	var fe *FormatError
	if errors.As(err, &fe) {
		return fe.Reason, true
	}
	var ue *UnknownOpcodeError
	if errors.As(err, &ue) {
		return RejectCommandNotSupported, true
	}
	var de *DataSegmentTooLongError
	if errors.As(err, &de) {
		return RejectProtocolError, true
	}
	var dg *DigestError
	if errors.As(err, &dg) && !dg.Header {
		return RejectDataDigestError, true
	}
	return 0, false
}

// fieldError builds a FormatError with reason "Invalid PDU field".
func fieldError(op Opcode, field, detail string) error {
	return &FormatError{Op: op, Field: field, Detail: detail, Reason: RejectInvalidPDUField}
}

// protoError builds a FormatError with reason "Protocol Error".
func protoError(op Opcode, field, detail string) error {
	return &FormatError{Op: op, Field: field, Detail: detail, Reason: RejectProtocolError}
}
