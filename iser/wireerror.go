package iser

import (
	"errors"
	"fmt"
)

// Sentinels for the wire errors of this package; match them with
// errors.Is. Every decoder returns a *WireError that unwraps to one of
// them.
var (
	// ErrBadHeader reports a malformed iSER header (RFC 7145 §9): a
	// buffer shorter than the header, an unknown opcode, a non-zero
	// reserved bit or byte, or an STag field filled in without its valid
	// bit. The peer is broken: drop the connection.
	ErrBadHeader = errors.New("iser: malformed iSER header")

	// ErrNotControl reports a well-formed Hello or HelloReply where an
	// iSCSI control-type PDU was expected. Linux never sends either; a
	// target logs the message (decode it with Hello.UnmarshalBinary or
	// HelloReply.UnmarshalBinary) and drops it (RFC 7145 §9.3, §9.4).
	ErrNotControl = errors.New("iser: Hello message, not an iSCSI control-type PDU")

	// ErrBadLength reports a received SEND whose length does not match the
	// lengths its BHS announces (iSER sends no padding and no digests).
	ErrBadLength = errors.New("iser: SEND length does not match the PDU")

	// ErrBadCMPrivateData reports RDMA CM private data that holds no iSER
	// CM header (IBTA Annex A12).
	ErrBadCMPrivateData = errors.New("iser: malformed CM private data")
)

// WireError describes what is wrong with a received iSER message. It
// unwraps to one of ErrBadHeader, ErrNotControl, ErrBadLength or
// ErrBadCMPrivateData.
type WireError struct {
	Msg    string // the message: "iSER header", "Hello", "SEND", ...
	Field  string // the field, as RFC 7145 names it
	Detail string // what is wrong with it
	Kind   error  // the sentinel this error matches
}

// Error implements error.
func (e *WireError) Error() string {
	return fmt.Sprintf("iser: %s: %s: %s", e.Msg, e.Field, e.Detail)
}

// Unwrap returns the sentinel, for errors.Is.
func (e *WireError) Unwrap() error { return e.Kind }

// wireErr builds a *WireError.
func wireErr(kind error, msg, field, detail string) error {
	return &WireError{Msg: msg, Field: field, Detail: detail, Kind: kind}
}
