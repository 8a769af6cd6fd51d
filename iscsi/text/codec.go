package text

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits from RFC 7143 §6.1.
const (
	MaxKeyLen = 63 // key names
	// MaxValueLen bounds a simple value, not counting the delimiter.
	MaxValueLen = 255
	// MaxBinaryLen bounds the decoded length of a large binary value
	// (0x.. or 0b..), such as a CHAP challenge.
	MaxBinaryLen = 8192
	// MaxTextLen is the default bound Accumulator puts on a text spanning
	// several PDUs.
	MaxTextLen = 64 << 10
	// MaxUnknownKeys bounds the keys of one text that a Negotiator does
	// not know (each one is answered NotUnderstood); a text with more
	// fails the negotiation.
	MaxUnknownKeys = 64
)

// ErrTextTooLong is wrapped by the error of an Accumulator whose text
// overruns its Max.
var ErrTextTooLong = errors.New("text too long")

// Special answer values (RFC 7143 §6.2).
const (
	NotUnderstood = "NotUnderstood"
	Irrelevant    = "Irrelevant"
	Reject        = "Reject"
	Yes           = "Yes"
	No            = "No"
	None          = "None"
)

// Pair is one key=value pair.
type Pair struct {
	Key, Value string
}

// Pairs is an ordered list of key=value pairs with unique keys, the content
// of a login or text data segment. The zero value is empty and ready; Reset
// empties it keeping its storage. Lookups cost O(1) at any size: a list
// past a login's size (indexAt keys) gets a map index, built lazily, so that
// a small list allocates nothing beyond its slice.
type Pairs struct {
	list []Pair
	// index maps each key of list to its position. It is nil, or holds
	// exactly the keys of list; it exists only once list has grown past
	// indexAt.
	index map[string]int
}

// indexAt is the length past which Pairs indexes its keys; a login carries
// about 20 keys.
const indexAt = 32

// Len returns the number of pairs.
func (p *Pairs) Len() int { return len(p.list) }

// At returns the i-th pair in order.
func (p *Pairs) At(i int) Pair { return p.list[i] }

// All returns the pairs in order; the slice is shared with p until the
// next change.
func (p *Pairs) All() []Pair { return p.list }

// Reset removes all pairs. The index of a large list is dropped, not
// kept for the next use.
func (p *Pairs) Reset() {
	clear(p.list) // release the strings
	p.list = p.list[:0]
	p.index = nil
}

// Get returns the value of key.
func (p *Pairs) Get(key string) (string, bool) {
	if i, _ := p.find(key); i >= 0 {
		return p.list[i].Value, true
	}
	return "", false
}

// Has reports whether key is present.
func (p *Pairs) Has(key string) bool {
	i, _ := p.find(key)
	return i >= 0
}

// Set replaces the value of key, or appends the pair if key is absent.
func (p *Pairs) Set(key, value string) {
	if i, _ := p.find(key); i >= 0 {
		p.list[i].Value = value
		return
	}
	p.push(key, value)
}

// Add appends key=value and fails with *DuplicateKeyError if key is present.
func (p *Pairs) Add(key, value string) error {
	if i, _ := p.find(key); i >= 0 {
		return &DuplicateKeyError{Key: key}
	}
	p.push(key, value)
	return nil
}

// Del removes key if present.
func (p *Pairs) Del(key string) {
	i, _ := p.find(key)
	if i < 0 {
		return
	}
	p.list = append(p.list[:i], p.list[i+1:]...)
	p.list[len(p.list):cap(p.list)][0] = Pair{} // release the strings
	if p.index != nil {
		delete(p.index, key)
		for j := i; j < len(p.list); j++ {
			p.index[p.list[j].Key] = j
		}
	}
}

// push appends a pair whose key is absent, indexing it when the list is
// large.
func (p *Pairs) push(key, value string) {
	p.list = append(p.list, Pair{key, value})
	switch {
	case p.index != nil:
		p.index[key] = len(p.list) - 1
	case len(p.list) > indexAt:
		p.index = make(map[string]int, 2*len(p.list))
		for i, kv := range p.list {
			p.index[kv.Key] = i
		}
	}
}

// find returns the position of key in the list, or -1, and how many keys
// it compared on the way (a map lookup counts as one); tests bound it.
func (p *Pairs) find(key string) (i, probes int) {
	if p.index != nil {
		if i, ok := p.index[key]; ok {
			return i, 1
		}
		return -1, 1
	}
	for i := range p.list {
		if p.list[i].Key == key {
			return i, i + 1
		}
	}
	return -1, len(p.list)
}

// AppendBinary appends the wire form: every pair as key=value followed by
// a NUL (RFC 7143 §6.1). Keys and values are validated.
func (p *Pairs) AppendBinary(b []byte) ([]byte, error) {
	for _, kv := range p.list {
		var err error
		if b, err = AppendPair(b, kv.Key, kv.Value); err != nil {
			return b, err
		}
	}
	return b, nil
}

// AppendPair appends one validated key=value pair and its NUL. Use it for
// texts that repeat keys, which Pairs refuses: a SendTargets answer lists
// TargetName and TargetAddress once per target (RFC 7143 §13.3).
func AppendPair(b []byte, key, value string) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return b, err
	}
	if err := ValidateValue(key, value); err != nil {
		return b, err
	}
	b = append(b, key...)
	b = append(b, '=')
	b = append(b, value...)
	return append(b, 0), nil
}

// String returns the pairs separated by spaces, for logs.
func (p *Pairs) String() string {
	var sb strings.Builder
	for i, kv := range p.list {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(kv.Key)
		sb.WriteByte('=')
		if strings.HasPrefix(kv.Key, "CHAP_") && kv.Key != "CHAP_A" && kv.Key != "CHAP_N" {
			sb.WriteString("...") // keep challenges and responses out of logs
		} else {
			sb.WriteString(kv.Value)
		}
	}
	return sb.String()
}

// Parse decodes a complete text data segment into dst (appending). Every
// pair must be NUL-terminated; empty entries (NUL padding) are skipped.
// Keys and values are validated and a key appearing twice is a
// *DuplicateKeyError (RFC 7143 §6.1: a key may appear once per text).
func Parse(data []byte, dst *Pairs) error {
	for len(data) > 0 {
		i := indexByte(data, 0)
		if i < 0 {
			return &SyntaxError{Text: trim(string(data)), Msg: "key=value not terminated by NUL"}
		}
		entry := data[:i]
		data = data[i+1:]
		if len(entry) == 0 {
			continue
		}
		eq := indexByte(entry, '=')
		if eq < 0 {
			return &SyntaxError{Text: trim(string(entry)), Msg: "missing '='"}
		}
		key, value := string(entry[:eq]), string(entry[eq+1:])
		if err := ValidateKey(key); err != nil {
			return err
		}
		if err := ValidateValue(key, value); err != nil {
			return err
		}
		if err := dst.Add(key, value); err != nil {
			return err
		}
	}
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// trim shortens s for error messages.
func trim(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ValidateKey checks a key name (RFC 7143 §6.1): 1 to 63 characters,
// starting with a letter, then letters, digits and . - + @ _;
// extension keys start with "X-" or "X#".
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return &SyntaxError{Text: trim(key), Msg: "key must have 1 to 63 characters"}
	}
	// RFC 7143 §6.1 asks for a capital letter, yet its own
	// iSCSIProtocolLevel and RFC 7145's iSERHelloRequired start in lower
	// case: accept any letter.
	if c := key[0] | 0x20; c < 'a' || c > 'z' {
		return &SyntaxError{Text: key, Msg: "key must start with a letter"}
	}
	for i := 1; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '-' || c == '+' || c == '@' || c == '_':
		case c == '#' && i == 1 && key[0] == 'X':
		default:
			return &SyntaxError{Text: key, Msg: fmt.Sprintf("invalid character %q in key", c)}
		}
	}
	return nil
}

// ValidateValue checks a value (RFC 7143 §6.1): UTF-8 without NUL, at most
// 255 bytes, or a large binary value (0x../0b..) of up to 8192 bytes
// decoded.
func ValidateValue(key, value string) error {
	if !utf8.ValidString(value) || strings.IndexByte(value, 0) >= 0 {
		return &SyntaxError{Key: key, Text: trim(value), Msg: "value is not UTF-8 text"}
	}
	if len(value) <= MaxValueLen {
		return nil
	}
	if isBinary(value) {
		n := len(value) - 2
		if strings.HasPrefix(value, "0x") || strings.HasPrefix(value, "0X") {
			n /= 2
		} else {
			n = n / 4 * 3
		}
		if n <= MaxBinaryLen {
			return nil
		}
	}
	return &SyntaxError{Key: key, Text: trim(value), Msg: "value too long"}
}

// isBinary reports whether v has a binary encoding prefix.
func isBinary(v string) bool {
	return len(v) > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X' || v[1] == 'b' || v[1] == 'B')
}

// ErrBadBinary is wrapped by DecodeBinary errors.
var ErrBadBinary = errors.New("text: malformed binary value")

// DecodeBinary decodes a binary value: "0x" or "0X" followed by hex digits
// (an odd count gets a leading zero nibble, RFC 7143 §6.1), or "0b"/"0B"
// followed by base64 (RFC 4648, padding optional).
func DecodeBinary(v string) ([]byte, error) {
	if !isBinary(v) {
		return nil, fmt.Errorf("decode %q: %w", trim(v), ErrBadBinary)
	}
	body := v[2:]
	if strings.ContainsAny(body, "\r\n") { // encoding/base64 would skip them
		return nil, fmt.Errorf("decode %q: %w", trim(v), ErrBadBinary)
	}
	switch v[1] {
	case 'x', 'X':
		if len(body)%2 == 1 {
			body = "0" + body
		}
		b, err := hex.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("decode hex %q: %w", trim(v), ErrBadBinary)
		}
		return b, nil
	default:
		enc := base64.StdEncoding
		if len(body)%4 != 0 {
			enc = base64.RawStdEncoding
		}
		b, err := enc.DecodeString(body)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("decode base64 %q: %w", trim(v), ErrBadBinary)
		}
		return b, nil
	}
}

// EncodeHex returns "0x" followed by the lower-case hex digits of b.
func EncodeHex(b []byte) string { return "0x" + hex.EncodeToString(b) }

// EncodeBase64 returns "0b" followed by the padded base64 of b.
func EncodeBase64(b []byte) string { return "0b" + base64.StdEncoding.EncodeToString(b) }

// ParseNumber decodes a numerical value (RFC 7143 §6.1): decimal, or hex
// with a 0x prefix, below 2^64.
func ParseNumber(v string) (uint64, error) {
	if v == "" {
		return 0, &SyntaxError{Text: v, Msg: "empty number"}
	}
	var n uint64
	var err error
	if len(v) > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') {
		n, err = strconv.ParseUint(v[2:], 16, 64)
	} else {
		for _, c := range v {
			if c < '0' || c > '9' {
				return 0, &SyntaxError{Text: trim(v), Msg: "not a number"}
			}
		}
		n, err = strconv.ParseUint(v, 10, 64)
	}
	if err != nil {
		return 0, &SyntaxError{Text: trim(v), Msg: "not a number below 2^64"}
	}
	return n, nil
}

// ParseBool decodes "Yes" or "No".
func ParseBool(v string) (bool, error) {
	switch v {
	case Yes:
		return true, nil
	case No:
		return false, nil
	}
	return false, &SyntaxError{Text: trim(v), Msg: "want Yes or No"}
}

// FormatBool returns "Yes" or "No".
func FormatBool(b bool) string {
	if b {
		return Yes
	}
	return No
}

// SplitList splits a list value at commas; empty items are an error.
func SplitList(v string) ([]string, error) {
	items := strings.Split(v, ",")
	for _, it := range items {
		if it == "" {
			return nil, &SyntaxError{Text: trim(v), Msg: "empty list item"}
		}
	}
	return items, nil
}

// Accumulator joins a text that spans several Login or Text PDUs with the
// C (continue) bit (RFC 7143 §6.1, §11.10.2), up to a bound. The zero value
// accepts up to MaxTextLen bytes. It keeps memory only while a text is
// partial: a complete text goes to the caller, and an overrun drops what
// was buffered.
type Accumulator struct {
	// Max bounds the total text; 0 or less means MaxTextLen.
	Max int
	buf []byte // the partial text; nil between texts
}

// Add appends one PDU's data segment. When cont is false the text is
// complete and returned, and the Accumulator is ready for the next text: a
// text of several PDUs is a new slice the caller owns; a text of one PDU is
// data itself, not copied. A text longer than Max fails with an error
// wrapping ErrTextTooLong, and what was buffered is dropped.
func (a *Accumulator) Add(data []byte, cont bool) (text []byte, done bool, err error) {
	limit := a.Max
	if limit <= 0 {
		limit = MaxTextLen
	}
	if len(a.buf)+len(data) > limit {
		a.buf = nil
		return nil, false, fmt.Errorf("text: accumulate: %w: over %d bytes", ErrTextTooLong, limit)
	}
	if !cont && a.buf == nil {
		return data, true, nil
	}
	a.buf = append(a.buf, data...)
	if cont {
		return nil, false, nil
	}
	text, a.buf = a.buf, nil
	return text, true, nil
}

// Pending reports whether a partial text is buffered.
func (a *Accumulator) Pending() bool { return len(a.buf) > 0 }

// Reset drops any partial text.
func (a *Accumulator) Reset() { a.buf = nil }

// Split cuts an encoded text into chunks of at most max bytes, one per PDU;
// every chunk but the last is sent with the C bit set.
func Split(text []byte, max int) [][]byte {
	if max <= 0 {
		max = 1
	}
	var out [][]byte
	for len(text) > max {
		out = append(out, text[:max])
		text = text[max:]
	}
	return append(out, text)
}
