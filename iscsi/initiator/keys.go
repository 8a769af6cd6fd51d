package initiator

import (
	"bytes"
	"fmt"
	"strings"
)

// kv is one key=value pair of a text data segment (RFC 7143 §6.1).
type kv struct{ key, value string }

// parseRepeated decodes a data segment of NUL-terminated key=value strings
// in which keys may repeat, as in a SendTargets answer (RFC 7143
// Appendix C), which text.Pairs (unique keys) refuses.
func parseRepeated(b []byte) ([]kv, error) {
	var l []kv
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, fmt.Errorf("parse text: %q is not NUL-terminated", b)
		}
		s := b[:i]
		b = b[i+1:]
		if len(s) == 0 {
			continue // padding
		}
		k, v, ok := strings.Cut(string(s), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parse text: %q is not key=value", s)
		}
		l = append(l, kv{k, v})
	}
	return l, nil
}
