package auth

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

func pairs(kvs ...string) *text.Pairs {
	var p text.Pairs
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		p.Set(k, v)
	}
	return &p
}

// TestKnownVectors checks Response against digests computed outside Go
// (Python hashlib) for id 0x2a, secret "abcdefghijkl", challenge 00..0f.
func TestKnownVectors(t *testing.T) {
	id, secret := byte(0x2a), []byte("abcdefghijkl")
	chal := make([]byte, 16)
	for i := range chal {
		chal[i] = byte(i)
	}
	want := map[Algorithm]string{
		MD5:     "cec6cff406e03600ec3585732fc9de13",
		SHA1:    "2e090624943aad63e3f610e6b168f367e57f3c1c",
		SHA256:  "c311614443e3469a010a5bdcb3b6b575b19e315a81aeec1c6e62a117e66c48aa",
		SHA3256: "322439d7eaa82322aa64bb1bb68e0775847af0806118efa4c2261ae204445bf9",
	}
	for alg, w := range want {
		got := hex.EncodeToString(alg.Response(id, secret, chal))
		if got != w {
			t.Errorf("%v: %s, want %s", alg, got, w)
		}
		if alg.Size()*2 != len(w) {
			t.Errorf("%v: Size %d", alg, alg.Size())
		}
	}
	// RFC 1994 §4.1 by hand: MD5 over identifier, secret, challenge.
	h := md5.Sum(append(append([]byte{id}, secret...), chal...))
	if !bytes.Equal(h[:], MD5.Response(id, secret, chal)) {
		t.Error("MD5 differs from the hand-built digest")
	}
	if Algorithm(9).Size() != 0 || Algorithm(9).String() != "Algorithm(9)" || SHA3256.String() != "SHA3-256" {
		t.Error("unknown algorithm")
	}
}

var (
	iniSecret = []byte("initiator-secret-16")
	tgtSecret = []byte("target-secret-0123")
)

func targetCfg() TargetConfig {
	return TargetConfig{
		Secret: func(user string) ([]byte, bool) {
			if user == "iqn.2026-01.test:ini" {
				return iniSecret, true
			}
			return nil, false
		},
		Mutual: &Credentials{User: "iqn.2026-01.test:tgt", Secret: tgtSecret},
	}
}

func iniCfg() InitiatorConfig {
	return InitiatorConfig{Credentials: Credentials{User: "iqn.2026-01.test:ini", Secret: iniSecret}}
}

// exchange runs initiator and target against each other and returns the
// first error.
func exchange(t *testing.T, ic InitiatorConfig, tc TargetConfig) error {
	t.Helper()
	ini, err := NewInitiator(ic)
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := NewTarget(tc)
	if err != nil {
		t.Fatal(err)
	}
	var req text.Pairs
	ini.Start(&req)
	for range 4 {
		var rsp text.Pairs
		tdone, err := tgt.Step(&req, &rsp)
		if err != nil {
			return err
		}
		req.Reset()
		idone, err := ini.Step(&rsp, &req)
		if err != nil {
			return err
		}
		if tdone && idone {
			if !tgt.Done() || !ini.Done() || tgt.User() != ic.User {
				t.Fatal("Done/User inconsistent")
			}
			return nil
		}
	}
	t.Fatal("exchange did not finish in 4 round trips")
	return nil
}

func TestExchanges(t *testing.T) {
	for _, alg := range DefaultAlgorithms() {
		for _, mutual := range []bool{false, true} {
			for _, enc := range []Encoding{Hex, Base64} {
				ic, tc := iniCfg(), targetCfg()
				ic.Algorithms = []Algorithm{alg}
				ic.Encoding = enc
				tc.Encoding = Base64 - enc
				if mutual {
					ic.Mutual = &Credentials{User: "iqn.2026-01.test:tgt", Secret: tgtSecret}
				}
				if err := exchange(t, ic, tc); err != nil {
					t.Errorf("%v mutual=%v encoding=%v: %v", alg, mutual, enc, err)
				}
			}
		}
	}
}

func wantStatus(t *testing.T, err error, status pdu.LoginStatus, sentinel error) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != status || !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want status %v (%v)", err, status, sentinel)
	}
}

func TestWrongSecret(t *testing.T) {
	ic := iniCfg()
	ic.Secret = []byte("not-the-right-secret")
	wantStatus(t, exchange(t, ic, targetCfg()), pdu.LoginAuthFailed, ErrAuthFailed)
	ic = iniCfg()
	ic.User = "iqn.2026-01.test:stranger"
	wantStatus(t, exchange(t, ic, targetCfg()), pdu.LoginAuthFailed, ErrAuthFailed)
}

func TestMutualFailures(t *testing.T) {
	// Target answers with the wrong secret.
	ic := iniCfg()
	ic.Mutual = &Credentials{User: "iqn.2026-01.test:tgt", Secret: []byte("expected-other-secret")}
	wantStatus(t, exchange(t, ic, targetCfg()), pdu.LoginAuthFailed, ErrAuthFailed)
	// Target answers under another name.
	ic.Mutual = &Credentials{User: "iqn.2026-01.test:other", Secret: tgtSecret}
	wantStatus(t, exchange(t, ic, targetCfg()), pdu.LoginAuthFailed, ErrAuthFailed)
	// Mutual requested but not configured on the target.
	ic.Mutual = &Credentials{User: "iqn.2026-01.test:tgt", Secret: tgtSecret}
	tc := targetCfg()
	tc.Mutual = nil
	wantStatus(t, exchange(t, ic, tc), pdu.LoginAuthFailed, ErrAuthFailed)
	// Mutual required but not requested.
	tc = targetCfg()
	tc.RequireMutual = true
	wantStatus(t, exchange(t, iniCfg(), tc), pdu.LoginAuthFailed, ErrAuthFailed)
	// Same secret both ways: the initiator refuses to start...
	ic.Mutual = &Credentials{User: "x", Secret: iniSecret}
	if _, err := NewInitiator(ic); err == nil {
		t.Error("identical secrets accepted by the initiator")
	}
	// ...and the target refuses to answer.
	tc = targetCfg()
	tc.Mutual = &Credentials{User: "t", Secret: iniSecret}
	tgt, _ := NewTarget(tc)
	out := startTarget(t, tgt, "5")
	r := MD5.Response(chapI(t, out), iniSecret, chapC(t, out))
	_, err := tgt.Step(pairs("CHAP_N=iqn.2026-01.test:ini", "CHAP_R="+text.EncodeHex(r), "CHAP_I=1", "CHAP_C=0x0102030405060708090a0b0c0d0e0f10"), &text.Pairs{})
	wantStatus(t, err, pdu.LoginAuthFailed, ErrAuthFailed)
}

// startTarget sends CHAP_A=algs and returns the target's answer.
func startTarget(t *testing.T, tgt *Target, algs string) *text.Pairs {
	t.Helper()
	var out text.Pairs
	if done, err := tgt.Step(pairs("CHAP_A="+algs), &out); err != nil || done {
		t.Fatalf("CHAP_A: done=%v err=%v", done, err)
	}
	return &out
}

func chapI(t *testing.T, p *text.Pairs) byte {
	v, _ := p.Get(text.KeyCHAPI)
	id, err := parseID(v)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func chapC(t *testing.T, p *text.Pairs) []byte {
	v, _ := p.Get(text.KeyCHAPC)
	c, err := text.DecodeBinary(v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReflectionRefused(t *testing.T) {
	tgt, _ := NewTarget(targetCfg())
	out := startTarget(t, tgt, "5")
	cv, _ := out.Get(text.KeyCHAPC)
	r := MD5.Response(chapI(t, out), iniSecret, chapC(t, out))
	_, err := tgt.Step(pairs("CHAP_N=iqn.2026-01.test:ini", "CHAP_R="+text.EncodeHex(r), "CHAP_I=7", "CHAP_C="+cv), &text.Pairs{})
	wantStatus(t, err, pdu.LoginAuthFailed, ErrAuthFailed)
	if !strings.Contains(err.Error(), "reflected") {
		t.Errorf("error %v does not name the reflection", err)
	}
}

// TestDeterministicTarget pins the wire format with a fixed random source:
// CHAP_I decimal, CHAP_C hex with 0x, as libiscsi expects.
func TestDeterministicTarget(t *testing.T) {
	tc := targetCfg()
	tc.Rand = bytes.NewReader(append([]byte{200}, bytes.Repeat([]byte{0xab}, 32)...))
	tgt, _ := NewTarget(tc)
	out := startTarget(t, tgt, "9,7,5") // 9 is unknown: skipped
	if v, _ := out.Get(text.KeyCHAPA); v != "7" {
		t.Errorf("CHAP_A=%s, want 7", v)
	}
	if v, _ := out.Get(text.KeyCHAPI); v != "200" {
		t.Errorf("CHAP_I=%s", v)
	}
	if v, _ := out.Get(text.KeyCHAPC); v != "0x"+strings.Repeat("ab", 32) {
		t.Errorf("CHAP_C=%s, want 32 bytes of 0xab", v)
	}
	// A source that runs dry is a target error, not a panic.
	tc.Rand = bytes.NewReader([]byte{1, 2})
	short, _ := NewTarget(tc)
	_, err := short.Step(pairs("CHAP_A=5"), &text.Pairs{})
	wantStatus(t, err, pdu.LoginTargetError, ErrAuthFailed)
	// Answer like libiscsi: upper-case hex.
	r := strings.ToUpper(hex.EncodeToString(SHA256.Response(200, iniSecret, bytes.Repeat([]byte{0xab}, 32))))
	done, err := tgt.Step(pairs("CHAP_N=iqn.2026-01.test:ini", "CHAP_R=0x"+r), &text.Pairs{})
	if err != nil || !done {
		t.Fatalf("done=%v err=%v", done, err)
	}
	if tgt.Algorithm() != SHA256 {
		t.Errorf("algorithm %v", tgt.Algorithm())
	}
}

func TestMalformed(t *testing.T) {
	good := func(tgt *Target, out *text.Pairs) string {
		return text.EncodeHex(MD5.Response(chapI(t, out), iniSecret, chapC(t, out)))
	}
	tests := []struct {
		name   string
		keys   func(r string) []string
		status pdu.LoginStatus
		is     error
	}{
		{"bad hex", func(string) []string { return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=0xZZ"} }, pdu.LoginInitiatorError, ErrMalformed},
		{"bad base64", func(string) []string { return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=0b!!"} }, pdu.LoginInitiatorError, ErrMalformed},
		{"not binary", func(string) []string { return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=1234"} }, pdu.LoginInitiatorError, ErrMalformed},
		{"short response", func(string) []string { return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=0x0102"} }, pdu.LoginInitiatorError, ErrMalformed},
		{"missing CHAP_R", func(string) []string { return []string{"CHAP_N=iqn.2026-01.test:ini"} }, pdu.LoginMissingParameter, ErrMissing},
		{"missing CHAP_N", func(r string) []string { return []string{"CHAP_R=" + r} }, pdu.LoginMissingParameter, ErrMissing},
		{"missing both", func(string) []string { return nil }, pdu.LoginMissingParameter, ErrMissing},
		{"CHAP_I without CHAP_C", func(r string) []string {
			return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=" + r, "CHAP_I=1"}
		}, pdu.LoginMissingParameter, ErrMissing},
		{"CHAP_I out of range", func(r string) []string {
			return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=" + r, "CHAP_I=256", "CHAP_C=0x01"}
		}, pdu.LoginInitiatorError, ErrMalformed},
		{"CHAP_C malformed", func(r string) []string {
			return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=" + r, "CHAP_I=1", "CHAP_C=0xq"}
		}, pdu.LoginInitiatorError, ErrMalformed},
		{"CHAP_C too long", func(r string) []string {
			return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=" + r, "CHAP_I=1", "CHAP_C=0x" + strings.Repeat("00", MaxChallengeLen+1)}
		}, pdu.LoginInitiatorError, ErrMalformed},
		{"CHAP_A again", func(r string) []string { return []string{"CHAP_A=5"} }, pdu.LoginInitiatorError, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt, _ := NewTarget(targetCfg())
			out := startTarget(t, tgt, "5")
			_, err := tgt.Step(pairs(tt.keys(good(tgt, out))...), &text.Pairs{})
			wantStatus(t, err, tt.status, tt.is)
			if _, err := tgt.Step(pairs(), &text.Pairs{}); err == nil {
				t.Error("Step after failure succeeded")
			}
		})
	}
}

func TestAlgorithmNegotiation(t *testing.T) {
	tc := targetCfg()
	tc.Algorithms = []Algorithm{SHA256}
	tgt, _ := NewTarget(tc)
	var out text.Pairs
	_, err := tgt.Step(pairs("CHAP_A=5,6"), &out)
	wantStatus(t, err, pdu.LoginAuthFailed, ErrAuthFailed)
	if v, _ := out.Get(text.KeyCHAPA); v != text.Reject {
		t.Errorf("CHAP_A=%s, want Reject", v)
	}
	// Unknown entries are skipped; the initiator's order wins.
	tgt, _ = NewTarget(targetCfg())
	out = *startTarget(t, tgt, "x,0x99,6,7")
	if v, _ := out.Get(text.KeyCHAPA); v != "6" {
		t.Errorf("CHAP_A=%s, want 6", v)
	}
	// Keys before CHAP_A, and AuthMethod-only PDUs.
	tgt, _ = NewTarget(targetCfg())
	if done, err := tgt.Step(pairs("AuthMethod=CHAP"), &out); done || err != nil {
		t.Errorf("AuthMethod only: %v %v", done, err)
	}
	_, err = tgt.Step(pairs("CHAP_R=0x01"), &out)
	wantStatus(t, err, pdu.LoginInitiatorError, ErrMalformed)
	tgt, _ = NewTarget(targetCfg())
	_, err = tgt.Step(pairs("CHAP_A=5", "CHAP_N=x"), &out)
	wantStatus(t, err, pdu.LoginInitiatorError, ErrMalformed)
	_, err = tgt.Step(pairs("CHAP_A=,"), &out)
	if err == nil {
		t.Error("step after failure")
	}
	tgt, _ = NewTarget(targetCfg())
	_, err = tgt.Step(pairs("CHAP_A=5,,6"), &out)
	wantStatus(t, err, pdu.LoginInitiatorError, ErrMalformed)
}

func TestInitiatorChecks(t *testing.T) {
	newIni := func() *Initiator {
		ic := iniCfg()
		ic.Algorithms = []Algorithm{MD5}
		ic.Mutual = &Credentials{User: "t", Secret: tgtSecret}
		ini, err := NewInitiator(ic)
		if err != nil {
			t.Fatal(err)
		}
		var out text.Pairs
		ini.Start(&out)
		if v, _ := out.Get(text.KeyCHAPA); v != "5" {
			t.Fatalf("CHAP_A=%s", v)
		}
		return ini
	}
	cases := map[string][]string{
		"unoffered algorithm": {"CHAP_A=7", "CHAP_I=1", "CHAP_C=0x0102"},
		"rejected algorithm":  {"CHAP_A=Reject"},
		"missing challenge":   {"CHAP_A=5", "CHAP_I=1"},
		"bad identifier":      {"CHAP_A=5", "CHAP_I=x", "CHAP_C=0x0102"},
		"bad challenge":       {"CHAP_A=5", "CHAP_I=1", "CHAP_C=0x"},
	}
	for name, keys := range cases {
		if _, err := newIni().Step(pairs(keys...), &text.Pairs{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ini := newIni()
	if done, err := ini.Step(pairs(), &text.Pairs{}); done || err != nil {
		t.Errorf("empty response: %v %v", done, err)
	}
	var out text.Pairs
	if _, err := ini.Step(pairs("CHAP_A=5", "CHAP_I=1", "CHAP_C=0x0102"), &out); err != nil {
		t.Fatal(err)
	}
	if c, _ := out.Get(text.KeyCHAPC); c == "0x0102" || !out.Has(text.KeyCHAPI) {
		t.Errorf("mutual challenge %q", c)
	}
	if _, err := ini.Step(pairs("CHAP_N=t"), &text.Pairs{}); !errors.Is(err, ErrMissing) {
		t.Errorf("missing CHAP_R: %v", err)
	}
	if _, err := (&Initiator{}).Step(pairs(), &text.Pairs{}); err == nil {
		t.Error("Step before Start accepted")
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := NewTarget(TargetConfig{}); err == nil {
		t.Error("target without Secret")
	}
	tc := targetCfg()
	tc.Algorithms = []Algorithm{42}
	if _, err := NewTarget(tc); err == nil {
		t.Error("algorithm 42")
	}
	tc = targetCfg()
	tc.Mutual = nil
	tc.RequireMutual = true
	if _, err := NewTarget(tc); err == nil {
		t.Error("RequireMutual without credentials")
	}
	tc = targetCfg()
	tc.ChallengeLen = MaxChallengeLen + 1
	if _, err := NewTarget(tc); err == nil {
		t.Error("huge challenge")
	}
	tc = targetCfg()
	tc.RequireStrongSecrets = true
	tc.Mutual.Secret = []byte("short")
	if _, err := NewTarget(tc); err == nil {
		t.Error("weak target secret")
	}
	if _, err := NewInitiator(InitiatorConfig{}); err == nil {
		t.Error("initiator without credentials")
	}
	ic := iniCfg()
	ic.Secret = []byte("short")
	ic.RequireStrongSecrets = true
	if _, err := NewInitiator(ic); err == nil {
		t.Error("weak initiator secret")
	}
	ic = iniCfg()
	ic.Algorithms = []Algorithm{}
	if _, err := NewInitiator(ic); err == nil {
		t.Error("no algorithms")
	}
	if !WeakSecret([]byte("11 bytes...")) || WeakSecret([]byte("twelve bytes")) {
		t.Error("WeakSecret")
	}
	// A weak stored secret fails the login when strong secrets are required.
	tc = targetCfg()
	tc.RequireStrongSecrets = true
	tc.Secret = func(string) ([]byte, bool) { return []byte("weak"), true }
	ic = iniCfg()
	ic.Secret = []byte("weak")
	wantStatus(t, exchange(t, ic, tc), pdu.LoginAuthFailed, ErrAuthFailed)
}

// FuzzTargetStep feeds arbitrary CHAP values to a target: it must never
// panic, and any error must carry a login status.
func FuzzTargetStep(f *testing.F) {
	f.Add("5", "iqn.x", "0x00112233445566778899aabbccddeeff", "", "")
	f.Add("7,5", "u", "0bAAECAwQFBgcICQoLDA0ODw==", "3", "0x0102")
	f.Fuzz(func(t *testing.T, a, n, r, i, c string) {
		tc := targetCfg()
		tgt, err := NewTarget(tc)
		if err != nil {
			t.Fatal(err)
		}
		var out text.Pairs
		in := pairs("CHAP_A=" + a)
		if _, err := tgt.Step(in, &out); err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status == 0 {
				t.Fatalf("error without status: %v", err)
			}
			return
		}
		in = pairs("CHAP_N="+n, "CHAP_R="+r)
		if i != "" {
			in.Set("CHAP_I", i)
		}
		if c != "" {
			in.Set("CHAP_C", c)
		}
		if _, err := tgt.Step(in, &out); err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status == 0 {
				t.Fatalf("error without status: %v", err)
			}
		}
	})
}

// TestTargetTransitions is the target state machine as a table:
// {from, keys received, want state}.
func TestTargetTransitions(t *testing.T) {
	respond := func(tgt *Target) string {
		return "CHAP_R=" + text.EncodeHex(tgt.alg.Response(tgt.id, iniSecret, tgt.challenge))
	}
	tests := []struct {
		from targetState
		in   func(tgt *Target) []string
		want targetState
	}{
		{tsWaitAlgorithm, func(*Target) []string { return nil }, tsWaitAlgorithm},
		{tsWaitAlgorithm, func(*Target) []string { return []string{"CHAP_A=5"} }, tsWaitResponse},
		{tsWaitAlgorithm, func(*Target) []string { return []string{"CHAP_A=99"} }, tsFailed},
		{tsWaitAlgorithm, func(*Target) []string { return []string{"CHAP_N=u"} }, tsFailed},
		{tsWaitResponse, func(tgt *Target) []string { return []string{"CHAP_N=iqn.2026-01.test:ini", respond(tgt)} }, tsDone},
		{tsWaitResponse, func(*Target) []string { return []string{"CHAP_N=iqn.2026-01.test:ini", "CHAP_R=0x00"} }, tsFailed},
		{tsWaitResponse, func(*Target) []string { return nil }, tsFailed},
		{tsDone, func(*Target) []string { return nil }, tsDone},
		{tsDone, func(*Target) []string { return []string{"CHAP_A=5"} }, tsFailed},
		{tsFailed, func(*Target) []string { return nil }, tsFailed},
	}
	for _, tt := range tests {
		tgt, _ := NewTarget(targetCfg())
		if tt.from != tsWaitAlgorithm {
			startTarget(t, tgt, "5")
		}
		tgt.state = tt.from
		_, err := tgt.Step(pairs(tt.in(tgt)...), &text.Pairs{})
		if tgt.state != tt.want || (err != nil) != (tt.want == tsFailed) {
			t.Errorf("%v + %v: state %v err %v, want %v", tt.from, tt.in(tgt), tgt.state, err, tt.want)
		}
	}
	for s := tsWaitAlgorithm; s <= tsFailed+1; s++ {
		if s.String() == "" {
			t.Error("empty state name")
		}
	}
	for s := isStart; s <= isFailed+1; s++ {
		if s.String() == "" {
			t.Error("empty state name")
		}
	}
}
