package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// Algorithm is a CHAP_A value: a PPP authentication algorithm number
// (RFC 7143 §12.1.3, RFC 1994; the IANA "PPP Authentication Algorithms"
// registry).
type Algorithm uint8

// CHAP algorithms.
const (
	MD5     Algorithm = 5
	SHA1    Algorithm = 6
	SHA256  Algorithm = 7
	SHA3256 Algorithm = 8
)

// String implements fmt.Stringer.
func (a Algorithm) String() string {
	switch a {
	case MD5:
		return "MD5"
	case SHA1:
		return "SHA-1"
	case SHA256:
		return "SHA-256"
	case SHA3256:
		return "SHA3-256"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// Size returns the digest length in bytes, or 0 for unknown algorithms.
func (a Algorithm) Size() int {
	switch a {
	case MD5:
		return md5.Size
	case SHA1:
		return sha1.Size
	case SHA256, SHA3256:
		return 32
	}
	return 0
}

func (a Algorithm) newHash() hash.Hash {
	switch a {
	case MD5:
		return md5.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA3256:
		return sha3.New256()
	}
	return nil
}

// Response computes the CHAP response H(id || secret || challenge)
// (RFC 1994 §4.1). It panics for unknown algorithms.
func (a Algorithm) Response(id byte, secret, challenge []byte) []byte {
	h := a.newHash()
	if h == nil {
		panic(fmt.Sprintf("auth: CHAP response with unknown algorithm %d", uint8(a)))
	}
	h.Write([]byte{id})
	h.Write(secret)
	h.Write(challenge)
	return h.Sum(nil)
}

// DefaultAlgorithms is the order used when a config names none: strongest
// first.
func DefaultAlgorithms() []Algorithm { return []Algorithm{SHA3256, SHA256, SHA1, MD5} }

// MinSecretLen is the secret length RFC 7143 §12.1.3 asks for (96 bits).
const MinSecretLen = 12

// MaxChallengeLen bounds a received CHAP_C (RFC 7143 §12.1.3: 1024 bytes).
const MaxChallengeLen = 1024

// WeakSecret reports whether secret is shorter than MinSecretLen; callers
// that tolerate such secrets may log a warning.
func WeakSecret(secret []byte) bool { return len(secret) < MinSecretLen }

// Errors a CHAP exchange ends with; *Error wraps one of them and carries
// the Login Response status (RFC 7143 §11.13.5).
var (
	// ErrAuthFailed: wrong secret, unknown user, reflected challenge,
	// no acceptable algorithm. Status 0x0201.
	ErrAuthFailed = errors.New("authentication failure")
	// ErrMalformed: a key with a malformed value or sent out of turn.
	// Status 0x0200.
	ErrMalformed = errors.New("malformed CHAP key")
	// ErrMissing: a required CHAP key is missing. Status 0x0207.
	ErrMissing = errors.New("missing CHAP key")
)

// Error is a failed CHAP step.
type Error struct {
	Status pdu.LoginStatus // Login Response status to send
	Err    error           // ErrAuthFailed, ErrMalformed or ErrMissing
	Msg    string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("auth: CHAP: %v: %s", e.Err, e.Msg) }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func failed(format string, args ...any) error {
	return &Error{Status: pdu.LoginAuthFailed, Err: ErrAuthFailed, Msg: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) error {
	return &Error{Status: pdu.LoginInitiatorError, Err: ErrMalformed, Msg: fmt.Sprintf(format, args...)}
}

func missing(key string) error {
	return &Error{Status: pdu.LoginMissingParameter, Err: ErrMissing, Msg: key + " not sent"}
}

// Encoding selects how binary values we send are written (RFC 7143 §6.1).
type Encoding uint8

// Encodings. The zero value is Hex, which every initiator parses (libiscsi
// accepts only hex).
const (
	Hex Encoding = iota
	Base64
)

func (e Encoding) encode(b []byte) string {
	if e == Base64 {
		return text.EncodeBase64(b)
	}
	return text.EncodeHex(b)
}

// Credentials are a CHAP name and secret.
type Credentials struct {
	User   string
	Secret []byte
}

// parseAlgorithms decodes a CHAP_A list.
func parseAlgorithms(v string) ([]Algorithm, error) {
	items, err := text.SplitList(v)
	if err != nil {
		return nil, malformed("CHAP_A=%q", v)
	}
	out := make([]Algorithm, 0, len(items))
	for _, it := range items {
		n, err := strconv.ParseUint(it, 10, 8)
		if err != nil {
			continue // unknown or non-numeric entries are skipped (RFC 7143 §12.1.3 lets the target pick)
		}
		out = append(out, Algorithm(n))
	}
	return out, nil
}

func formatAlgorithms(algs []Algorithm) string {
	var sb strings.Builder
	for i, a := range algs {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(a)))
	}
	return sb.String()
}

// parseID decodes CHAP_I: a number 0-255, decimal or 0x hex.
func parseID(v string) (byte, error) {
	n, err := text.ParseNumber(v)
	if err != nil || n > 255 {
		return 0, malformed("CHAP_I=%q is not a number 0-255", v)
	}
	return byte(n), nil
}

// decodeValue decodes a binary CHAP key.
func decodeValue(key, v string) ([]byte, error) {
	b, err := text.DecodeBinary(v)
	if err != nil {
		return nil, malformed("%s: %v", key, err)
	}
	return b, nil
}

// randomBytes fills n random bytes from r.
func randomBytes(r io.Reader, n int) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("auth: read random challenge: %w", err)
	}
	return b, nil
}

// equal compares secrets and digests in constant time.
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

func checkAlgorithms(algs []Algorithm) error {
	for _, a := range algs {
		if a.Size() == 0 {
			return fmt.Errorf("auth: unsupported CHAP algorithm %d", uint8(a))
		}
	}
	return nil
}
