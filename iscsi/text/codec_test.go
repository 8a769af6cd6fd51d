package text

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseAndEncode(t *testing.T) {
	data := []byte("InitiatorName=iqn.2026-01.test:a\x00SessionType=Normal\x00X-com.example.v=1\x00X#ext=2\x00\x00\x00")
	var p Pairs
	if err := Parse(data, &p); err != nil {
		t.Fatal(err)
	}
	if p.Len() != 4 || p.At(1) != (Pair{"SessionType", "Normal"}) {
		t.Fatalf("parsed %v", p.All())
	}
	if v, ok := p.Get("X#ext"); !ok || v != "2" {
		t.Errorf("X#ext = %q %v", v, ok)
	}
	out, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, bytes.TrimRight(data, "\x00")) && !bytes.Equal(out, data[:len(data)-2]) {
		t.Errorf("re-encoded %q", out)
	}
	p.Set("SessionType", "Discovery")
	p.Del("X-com.example.v")
	if p.Len() != 3 || p.All()[1].Value != "Discovery" || p.Has("X-com.example.v") {
		t.Errorf("after Set/Del: %v", p.All())
	}
	if err := p.Add("SessionType", "x"); err == nil {
		t.Error("Add of a duplicate accepted")
	}
	p.Reset()
	if p.Len() != 0 {
		t.Error("Reset")
	}
	p.Set("CHAP_R", "0xsecret")
	p.Set("CHAP_N", "user")
	if s := p.String(); strings.Contains(s, "secret") || !strings.Contains(s, "CHAP_N=user") {
		t.Errorf("String() = %q", s)
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		name string
		data string
		dup  bool
	}{
		{"unterminated", "A=b", false},
		{"missing =", "Ab\x00", false},
		{"empty key", "=b\x00", false},
		{"digit first", "1abc=1\x00", false},
		{"bad key char", "Ab$c=1\x00", false},
		{"hash not after X", "A#b=1\x00", false},
		{"key too long", strings.Repeat("A", 64) + "=1\x00", false},
		{"value too long", "A=" + long + "\x00", false},
		{"binary too long", "CHAP_C=0x" + strings.Repeat("ab", MaxBinaryLen+1) + "\x00", false},
		{"not UTF-8", "A=\xff\x00", false},
		{"duplicate", "A=1\x00B=2\x00A=1\x00", true},
	}
	for _, tt := range tests {
		var p Pairs
		err := Parse([]byte(tt.data), &p)
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		var de *DuplicateKeyError
		var se *SyntaxError
		if tt.dup && !errors.As(err, &de) || !tt.dup && !errors.As(err, &se) {
			t.Errorf("%s: error %T %v", tt.name, err, err)
		}
	}
	// A long binary value is fine.
	var p Pairs
	if err := Parse([]byte("CHAP_C=0x"+strings.Repeat("ab", 1024)+"\x00"), &p); err != nil {
		t.Errorf("1024-byte challenge: %v", err)
	}
	if _, err := (&Pairs{list: []Pair{{"bad key", "v"}}}).AppendBinary(nil); err == nil {
		t.Error("AppendBinary accepted a bad key")
	}
	if _, err := (&Pairs{list: []Pair{{"K", long}}}).AppendBinary(nil); err == nil {
		t.Error("AppendBinary accepted a long value")
	}
}

func TestAppendPairRepeats(t *testing.T) {
	var b []byte
	var err error
	for _, kv := range [][2]string{{"TargetName", "iqn.a"}, {"TargetAddress", "127.0.0.1:3260,1"}, {"TargetName", "iqn.b"}} {
		if b, err = AppendPair(b, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if string(b) != "TargetName=iqn.a\x00TargetAddress=127.0.0.1:3260,1\x00TargetName=iqn.b\x00" {
		t.Errorf("%q", b)
	}
	if _, err := AppendPair(nil, "bad key", "v"); err == nil {
		t.Error("bad key accepted")
	}
	if _, err := AppendPair(nil, "K", "a\x00b"); err == nil {
		t.Error("NUL in value accepted")
	}
}

func TestBinary(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		ok   bool
	}{
		{"0x00ff10", []byte{0, 0xff, 0x10}, true},
		{"0XABC", []byte{0x0a, 0xbc}, true},
		{"0b3q2+7w==", []byte{0xde, 0xad, 0xbe, 0xef}, true},
		{"0b3q2+7w", []byte{0xde, 0xad, 0xbe, 0xef}, true},
		{"0B3q2+7w==", []byte{0xde, 0xad, 0xbe, 0xef}, true},
		{"0xzz", nil, false},
		{"0b!!", nil, false},
		{"1234", nil, false},
		{"0x", nil, false},
	}
	for _, tt := range tests {
		got, err := DecodeBinary(tt.in)
		if tt.ok != (err == nil) || !bytes.Equal(got, tt.want) {
			t.Errorf("DecodeBinary(%q) = %x, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadBinary) {
			t.Errorf("DecodeBinary(%q) error %v does not wrap ErrBadBinary", tt.in, err)
		}
	}
	b := []byte{1, 2, 0xfe}
	for _, enc := range []string{EncodeHex(b), EncodeBase64(b)} {
		got, err := DecodeBinary(enc)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("round trip %q: %x %v", enc, got, err)
		}
	}
	if EncodeHex(b) != "0x0102fe" || EncodeBase64(b) != "0bAQL+" {
		t.Errorf("encodings %s %s", EncodeHex(b), EncodeBase64(b))
	}
}

func TestNumbersAndBools(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "8192": 8192, "0x2000": 8192, "18446744073709551615": 1<<64 - 1} {
		if got, err := ParseNumber(in); err != nil || got != want {
			t.Errorf("ParseNumber(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "1.5", "18446744073709551616", "0xg", "+3", " 1"} {
		if _, err := ParseNumber(bad); err == nil {
			t.Errorf("ParseNumber(%q) accepted", bad)
		}
	}
	if b, err := ParseBool("Yes"); !b || err != nil {
		t.Error("Yes")
	}
	if b, err := ParseBool("No"); b || err != nil {
		t.Error("No")
	}
	if _, err := ParseBool("yes"); err == nil {
		t.Error("lower-case yes accepted")
	}
	if items, err := SplitList("CRC32C,None"); err != nil || len(items) != 2 {
		t.Errorf("SplitList %v %v", items, err)
	}
	if _, err := SplitList("CRC32C,,None"); err == nil {
		t.Error("empty list item accepted")
	}
}

func TestAccumulatorAndSplit(t *testing.T) {
	full := []byte("TargetName=iqn.2026-01.test:t1\x00TargetAddress=127.0.0.1:3260,1\x00")
	chunks := Split(full, 10)
	if len(chunks) != (len(full)+9)/10 {
		t.Fatalf("%d chunks", len(chunks))
	}
	var a Accumulator
	for i, c := range chunks {
		last := i == len(chunks)-1
		got, done, err := a.Add(c, !last)
		if err != nil || done != last {
			t.Fatalf("chunk %d: done=%v err=%v", i, done, err)
		}
		if last && !bytes.Equal(got, full) {
			t.Errorf("joined %q", got)
		}
		if !last && !a.Pending() {
			t.Error("not pending mid-text")
		}
	}
	a.Max = 16
	if _, _, err := a.Add(full, true); err == nil {
		t.Error("over-long text accepted")
	}
	a.Reset()
	if a.Pending() {
		t.Error("pending after Reset")
	}
	if got := Split(nil, 0); len(got) != 1 || len(got[0]) != 0 {
		t.Errorf("Split(nil) = %v", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("InitiatorName=iqn.x\x00HeaderDigest=CRC32C,None\x00"))
	f.Add([]byte("CHAP_C=0x0102\x00CHAP_I=7\x00"))
	f.Add([]byte("A=\x00\x00"))
	f.Add(append(manyKeys(40), "K3=again\x00"...)) // indexed list with a duplicate
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Pairs
		if err := Parse(data, &p); err != nil {
			return
		}
		enc, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var q Pairs
		if err := Parse(enc, &q); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if q.String() != p.String() || q.Len() != p.Len() {
			t.Fatalf("unstable: %v vs %v", p.All(), q.All())
		}
	})
}

func FuzzDecodeBinary(f *testing.F) {
	f.Add("0x0102")
	f.Add("0bAQL+")
	f.Fuzz(func(t *testing.T, v string) {
		b, err := DecodeBinary(v)
		if err != nil {
			return
		}
		for _, enc := range []string{EncodeHex(b), EncodeBase64(b)} {
			c, err := DecodeBinary(enc)
			if err != nil || !bytes.Equal(b, c) {
				t.Fatalf("%q -> %x -> %q -> %x %v", v, b, enc, c, err)
			}
		}
	})
}

// manyKeys returns a text of n distinct keys K0, K1, ... (base 36).
func manyKeys(n int) []byte {
	var b []byte
	for i := range n {
		b = append(b, 'K')
		b = strconv.AppendInt(b, int64(i), 36)
		b = append(b, "=v\x00"...)
	}
	return b
}

// TestParseManyKeysLinear parses 100k distinct keys, far more than any
// login carries, and checks that finding a key costs a bounded number of
// comparisons however many keys came before, so that Parse (one lookup per
// key for duplicates) does O(n) work, not O(n²): issue 7 measured 80k keys
// at 5.3 s. It counts comparisons, never time.
func TestParseManyKeysLinear(t *testing.T) {
	const n, maxProbes = 100_000, 32
	var p Pairs
	if err := Parse(manyKeys(n), &p); err != nil {
		t.Fatal(err)
	}
	if p.Len() != n {
		t.Fatalf("%d pairs, want %d", p.Len(), n)
	}
	worst := 0
	for i := 0; i < n; i += 97 {
		k := "K" + strconv.FormatInt(int64(i), 36)
		at, probes := p.find(k)
		if at != i {
			t.Fatalf("find(%s) = %d, want %d", k, at, i)
		}
		worst = max(worst, probes)
	}
	if at, probes := p.find("Absent"); at != -1 || probes > maxProbes {
		t.Fatalf("find(Absent) = %d after %d comparisons", at, probes)
	}
	if worst > maxProbes {
		t.Fatalf("a lookup among %d keys compared %d keys, want at most %d", n, worst, maxProbes)
	}
	var dup *DuplicateKeyError
	if err := Parse([]byte("K2s=w\x00"), &p); !errors.As(err, &dup) || dup.Key != "K2s" {
		t.Fatalf("duplicate among many keys: %v", err)
	}
}

// TestPairsEdits checks that Get, Set, Add and Del agree on small and
// large lists alike, after deletions and a Reset.
func TestPairsEdits(t *testing.T) {
	for _, n := range []int{3, 31, 32, 33, 40, 1000} {
		var p Pairs
		for i := range n {
			p.Set("K"+strconv.Itoa(i), strconv.Itoa(i))
		}
		// Delete every third key, then check every key.
		for i := 0; i < n; i += 3 {
			p.Del("K" + strconv.Itoa(i))
		}
		for i := range n {
			k := "K" + strconv.Itoa(i)
			v, ok := p.Get(k)
			if want := i%3 != 0; ok != want || (ok && v != strconv.Itoa(i)) {
				t.Fatalf("n=%d: Get(%s) = %q, %v after deletes", n, k, v, ok)
			}
		}
		if err := p.Add("K0", "again"); err != nil {
			t.Fatalf("n=%d: Add of a deleted key: %v", n, err)
		}
		if err := p.Add("K1", "x"); err == nil {
			t.Fatalf("n=%d: Add of a present key accepted", n)
		}
		p.Set("K1", "y")
		if v, _ := p.Get("K1"); v != "y" || p.At(p.Len()-1).Key != "K0" {
			t.Fatalf("n=%d: Set/Add order broken: K1=%q last=%v", n, v, p.At(p.Len()-1))
		}
		p.Reset()
		if p.Len() != 0 || p.Has("K1") {
			t.Fatalf("n=%d: not empty after Reset", n)
		}
		p.Set("K1", "z")
		if v, _ := p.Get("K1"); v != "z" || p.Len() != 1 {
			t.Fatalf("n=%d: reuse after Reset: %q", n, v)
		}
	}
}

// TestPairsSmallNoAlloc checks that a login-sized list (about 20 keys)
// reused with Reset allocates nothing: no index for small lists.
func TestPairsSmallNoAlloc(t *testing.T) {
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = "Key" + strconv.Itoa(i)
	}
	var p Pairs
	allocs := testing.AllocsPerRun(100, func() {
		p.Reset()
		for _, k := range keys {
			if err := p.Add(k, "v"); err != nil {
				t.Fatal(err)
			}
		}
		if !p.Has("Key19") || p.Has("Key20") {
			t.Fatal("lookup")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per reuse of a 20-key list, want 0", allocs)
	}
}

// BenchmarkParse parses a login-sized text and a text of many keys.
func BenchmarkParse(b *testing.B) {
	login := []byte("InitiatorName=iqn.1994-05.com.redhat:abc\x00InitiatorAlias=host\x00TargetName=iqn.2026-01.io.goiser:t\x00" +
		"SessionType=Normal\x00AuthMethod=None\x00HeaderDigest=None\x00DataDigest=None\x00DefaultTime2Wait=2\x00" +
		"DefaultTime2Retain=0\x00IFMarker=No\x00OFMarker=No\x00ErrorRecoveryLevel=0\x00InitialR2T=No\x00" +
		"ImmediateData=Yes\x00MaxBurstLength=16776192\x00FirstBurstLength=262144\x00MaxOutstandingR2T=1\x00" +
		"MaxConnections=1\x00DataPDUInOrder=Yes\x00DataSequenceInOrder=Yes\x00MaxRecvDataSegmentLength=262144\x00")
	for _, bc := range []struct {
		name string
		text []byte
	}{{"login", login}, {"keys=16k", manyKeys(16 << 10)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.text)))
			var p Pairs
			for b.Loop() {
				p.Reset()
				if err := Parse(bc.text, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAccumulatorBounds checks what an Accumulator keeps: nothing once a
// text is complete or has overrun Max (issue 7: a session kept every byte
// of continued Text PDUs), and no copy of a text that fits in one PDU.
func TestAccumulatorBounds(t *testing.T) {
	var a Accumulator
	one := []byte("A=1\x00")
	allocs := testing.AllocsPerRun(10, func() {
		got, done, err := a.Add(one, false)
		if err != nil || !done || &got[0] != &one[0] {
			t.Fatalf("one PDU: %q %v %v, want the data itself", got, done, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations for a one-PDU text", allocs)
	}

	a.Max = 100
	if _, _, err := a.Add(make([]byte, 60), true); err != nil {
		t.Fatal(err)
	}
	_, done, err := a.Add(make([]byte, 41), true)
	if !errors.Is(err, ErrTextTooLong) || done {
		t.Fatalf("101 bytes with Max 100: done=%v err=%v, want ErrTextTooLong", done, err)
	}
	if a.Pending() || cap(a.buf) != 0 {
		t.Fatalf("after an overrun the accumulator still holds %d bytes", cap(a.buf))
	}
	// Exactly Max is fine, and the joined text leaves with the caller.
	if _, _, err := a.Add(make([]byte, 60), true); err != nil {
		t.Fatal(err)
	}
	got, done, err := a.Add(make([]byte, 40), false)
	if err != nil || !done || len(got) != 100 {
		t.Fatalf("100 bytes with Max 100: %d %v %v", len(got), done, err)
	}
	if cap(a.buf) != 0 {
		t.Fatalf("after a complete text the accumulator still holds %d bytes", cap(a.buf))
	}
}
