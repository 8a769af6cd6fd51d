package initiator

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// kv is one key=value pair of a text or login data segment (RFC 7143 §6.1).
type kv struct{ key, value string }

// keyList is an ordered list of pairs; order matters on the wire only for
// readability, so lookups are linear (lists are short).
type keyList []kv

// add appends key=value.
func (l *keyList) add(key, value string) { *l = append(*l, kv{key, value}) }

// get returns the value of key.
func (l keyList) get(key string) (string, bool) {
	for _, p := range l {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

// encode appends the pairs as NUL-terminated key=value strings.
func (l keyList) encode(b []byte) []byte {
	for _, p := range l {
		b = append(b, p.key...)
		b = append(b, '=')
		b = append(b, p.value...)
		b = append(b, 0)
	}
	return b
}

// parseKeys decodes a data segment of NUL-terminated key=value strings. A
// trailing fragment without NUL is accepted (some targets omit the last
// terminator). Pairs without '=' are an error.
func parseKeys(b []byte) (keyList, error) {
	var l keyList
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		var s []byte
		if i < 0 {
			s, b = b, nil
		} else {
			s, b = b[:i], b[i+1:]
		}
		if len(s) == 0 {
			continue // padding or stray NUL
		}
		k, v, ok := strings.Cut(string(s), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parse keys: %q is not key=value", s)
		}
		l.add(k, v)
	}
	return l, nil
}

// parseNumber decodes a decimal or 0x-hex numerical value (RFC 7143 §6.1).
func parseNumber(s string) (uint64, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return strconv.ParseUint(s[2:], 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// decodeBinary decodes a binary value in 0x (hex) or 0b (base64) form
// (RFC 7143 §6.1, binary-value).
func decodeBinary(s string) ([]byte, error) {
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		h := s[2:]
		if len(h)%2 == 1 {
			h = "0" + h
		}
		return hex.DecodeString(h)
	case strings.HasPrefix(s, "0b") || strings.HasPrefix(s, "0B"):
		return base64.StdEncoding.DecodeString(s[2:])
	}
	return nil, fmt.Errorf("binary value %q lacks a 0x or 0b prefix", s)
}

// CHAP algorithm identifiers (CHAP_A, RFC 7143 §12.1.3; 7 is SHA-256 as
// registered by RFC 7143's IANA CHAP algorithm table).
const (
	chapMD5    = 5
	chapSHA256 = 7
)

// chapHash returns a new hash for a CHAP algorithm.
func chapHash(alg int) (hash.Hash, bool) {
	switch alg {
	case chapMD5:
		return md5.New(), true
	case chapSHA256:
		return sha256.New(), true
	}
	return nil, false
}

// chapResponse computes H(id || secret || challenge) (RFC 1994 §4.1).
func chapResponse(alg int, id byte, secret string, challenge []byte) ([]byte, error) {
	h, ok := chapHash(alg)
	if !ok {
		return nil, fmt.Errorf("chap: algorithm %d not supported", alg)
	}
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	return h.Sum(nil), nil
}

// chapVerify reports whether resp is the right answer to (id, challenge).
func chapVerify(alg int, id byte, secret string, challenge, resp []byte) bool {
	want, err := chapResponse(alg, id, secret, challenge)
	return err == nil && subtle.ConstantTimeCompare(want, resp) == 1
}
