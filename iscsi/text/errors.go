package text

import (
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
)

// SyntaxError reports a malformed key, value or text segment.
type SyntaxError struct {
	Key  string // key whose value is malformed; empty for key errors
	Text string // offending text, shortened
	Msg  string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("text: %s=%q: %s", e.Key, e.Text, e.Msg)
	}
	return fmt.Sprintf("text: %q: %s", e.Text, e.Msg)
}

// DuplicateKeyError reports a key that appears twice in one text.
type DuplicateKeyError struct {
	Key string
}

// Error implements error.
func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("text: key %s sent twice", e.Key)
}

// Error is a negotiation failure that ends the login (or the text
// exchange): a key sent twice, a key not allowed in this phase, a response
// outside what was offered. Status is the Login Response status to send
// (RFC 7143 §11.13.5): usually pdu.LoginInitiatorError.
type Error struct {
	Key    string
	Status pdu.LoginStatus
	Msg    string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Key == "" {
		return "text: negotiate: " + e.Msg
	}
	return fmt.Sprintf("text: negotiate %s: %s", e.Key, e.Msg)
}

func negErr(key, format string, args ...any) error {
	return &Error{Key: key, Status: pdu.LoginInitiatorError, Msg: fmt.Sprintf(format, args...)}
}
