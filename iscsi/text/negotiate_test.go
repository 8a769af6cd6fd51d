package text

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
)

// pairs builds Pairs from "k=v" strings.
func pairs(kvs ...string) *Pairs {
	var p Pairs
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		p.Set(k, v)
	}
	return &p
}

const (
	sec = pdu.StageSecurity
	op  = pdu.StageOperational
	ffp = pdu.StageFullFeature
)

// TestTargetRules has one row per negotiation rule, seen from the target.
func TestTargetRules(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(c *Config)
		stage pdu.Stage
		in    []string
		want  []string // answers, in order; nil means no answer
		check func(t *testing.T, p Params)
		err   pdu.LoginStatus // non-zero: Receive must fail with this status
	}{
		{name: "Boolean AND yes", stage: op, in: []string{"ImmediateData=Yes"}, want: []string{"ImmediateData=Yes"},
			check: func(t *testing.T, p Params) { expect(t, p.ImmediateData, true) }},
		{name: "Boolean AND local No", cfg: func(c *Config) { c.Local.ImmediateData = false }, stage: op,
			in: []string{"ImmediateData=Yes"}, want: []string{"ImmediateData=No"},
			check: func(t *testing.T, p Params) { expect(t, p.ImmediateData, false) }},
		{name: "Boolean OR local No", cfg: func(c *Config) { c.Local.InitialR2T = false }, stage: op,
			in: []string{"InitialR2T=No"}, want: []string{"InitialR2T=No"},
			check: func(t *testing.T, p Params) { expect(t, p.InitialR2T, false) }},
		{name: "Boolean OR local Yes", stage: op, in: []string{"InitialR2T=No"}, want: []string{"InitialR2T=Yes"},
			check: func(t *testing.T, p Params) { expect(t, p.InitialR2T, true) }},
		{name: "Boolean malformed", stage: op, in: []string{"DataPDUInOrder=Maybe"}, want: []string{"DataPDUInOrder=Reject"},
			check: func(t *testing.T, p Params) { expect(t, p.DataPDUInOrder, true) }},
		{name: "numerical min", stage: op, in: []string{"MaxBurstLength=1048576"}, want: []string{"MaxBurstLength=262144"},
			check: func(t *testing.T, p Params) { expect(t, p.MaxBurstLength, uint32(262144)) }},
		{name: "numerical min offer smaller", stage: op, in: []string{"MaxBurstLength=0x2000"}, want: []string{"MaxBurstLength=8192"},
			check: func(t *testing.T, p Params) { expect(t, p.MaxBurstLength, uint32(8192)) }},
		{name: "numerical above RFC max", stage: op, in: []string{"MaxBurstLength=16777216"}, want: []string{"MaxBurstLength=Reject"},
			check: func(t *testing.T, p Params) { expect(t, p.MaxBurstLength, uint32(262144)) }},
		{name: "numerical below RFC min", stage: op, in: []string{"MaxOutstandingR2T=0"}, want: []string{"MaxOutstandingR2T=Reject"}},
		{name: "numerical not a number", stage: op, in: []string{"ErrorRecoveryLevel=one"}, want: []string{"ErrorRecoveryLevel=Reject"}},
		{name: "numerical max", stage: op, in: []string{"DefaultTime2Wait=0"}, want: []string{"DefaultTime2Wait=2"},
			check: func(t *testing.T, p Params) { expect(t, p.DefaultTime2Wait, uint16(2)) }},
		{name: "ErrorRecoveryLevel min", stage: op, in: []string{"ErrorRecoveryLevel=2"}, want: []string{"ErrorRecoveryLevel=0"}},
		{name: "list first common", cfg: func(c *Config) { c.Local.HeaderDigest = true }, stage: op,
			in: []string{"HeaderDigest=CRC32C,None"}, want: []string{"HeaderDigest=CRC32C"},
			check: func(t *testing.T, p Params) { expect(t, p.HeaderDigest, true) }},
		{name: "list initiator order wins", cfg: func(c *Config) { c.Local.DataDigest = true }, stage: op,
			in: []string{"DataDigest=None,CRC32C"}, want: []string{"DataDigest=None"}},
		{name: "list no common value", stage: op, in: []string{"HeaderDigest=CRC32C"}, want: []string{"HeaderDigest=Reject"},
			check: func(t *testing.T, p Params) { expect(t, p.HeaderDigest, false) }},
		{name: "list malformed", stage: op, in: []string{"HeaderDigest=CRC32C,,None"}, want: []string{"HeaderDigest=Reject"}},
		{name: "unknown key", stage: op, in: []string{"FooBar=1", "X-com.example.k=v", "X#ietf=3"},
			want: []string{"FooBar=NotUnderstood", "X-com.example.k=NotUnderstood", "X#ietf=NotUnderstood"}},
		{name: "FirstBurstLength irrelevant", stage: op,
			in:   []string{"FirstBurstLength=4096", "InitialR2T=Yes", "ImmediateData=No"},
			want: []string{"InitialR2T=Yes", "ImmediateData=No", "FirstBurstLength=Irrelevant"}},
		{name: "FirstBurstLength relevant", stage: op,
			in:   []string{"FirstBurstLength=4096", "InitialR2T=No", "ImmediateData=No"},
			want: []string{"InitialR2T=Yes", "ImmediateData=No", "FirstBurstLength=Irrelevant"}},
		{name: "FirstBurstLength clamped to MaxBurstLength", cfg: func(c *Config) { c.Local.InitialR2T = false }, stage: op,
			in:   []string{"FirstBurstLength=262144", "MaxBurstLength=16384", "InitialR2T=No"},
			want: []string{"MaxBurstLength=16384", "InitialR2T=No", "FirstBurstLength=16384"},
			check: func(t *testing.T, p Params) {
				expect(t, p.FirstBurstLength, uint32(16384))
				expect(t, p.InitialR2T, false)
			}},
		{name: "RDMAExtensions on TCP", stage: op, in: []string{"RDMAExtensions=Yes"}, want: []string{"RDMAExtensions=No"},
			check: func(t *testing.T, p Params) { expect(t, p.RDMAExtensions, false) }},
		{name: "iSER keys on TCP", stage: op, in: []string{"InitiatorRecvDataSegmentLength=262144", "MaxAHSLength=64"},
			want: []string{"InitiatorRecvDataSegmentLength=Irrelevant", "MaxAHSLength=Irrelevant"}},
		{name: "iSER keys on iSER", cfg: func(c *Config) { c.ISER = true; c.Local.TargetRecvDataSegmentLength = 65536 }, stage: op,
			in: []string{"RDMAExtensions=Yes", "TargetRecvDataSegmentLength=262144", "InitiatorRecvDataSegmentLength=4096",
				"MaxRecvDataSegmentLength=262144", "HeaderDigest=CRC32C,None", "MaxOutstandingUnexpectedPDUs=0"},
			want: []string{"RDMAExtensions=Yes", "TargetRecvDataSegmentLength=65536", "InitiatorRecvDataSegmentLength=4096",
				"HeaderDigest=None", "MaxOutstandingUnexpectedPDUs=0"},
			check: func(t *testing.T, p Params) {
				expect(t, p.RDMAExtensions, true)
				expect(t, p.TargetRecvDataSegmentLength, uint32(65536))
				expect(t, p.InitiatorRecvDataSegmentLength, uint32(4096))
				expect(t, p.PeerMaxRecvDataSegmentLength, uint32(8192))
			}},
		{name: "MaxOutstandingUnexpectedPDUs 1", cfg: func(c *Config) { c.ISER = true }, stage: op,
			in: []string{"MaxOutstandingUnexpectedPDUs=1"}, want: []string{"MaxOutstandingUnexpectedPDUs=Reject"}},
		{name: "MaxOutstandingUnexpectedPDUs zero is no limit", cfg: func(c *Config) { c.ISER = true; c.Local.MaxOutstandingUnexpectedPDUs = 0 },
			stage: op, in: []string{"MaxOutstandingUnexpectedPDUs=16"}, want: []string{"MaxOutstandingUnexpectedPDUs=16"}},
		{name: "declarative MaxRecvDataSegmentLength", stage: op, in: []string{"MaxRecvDataSegmentLength=65536"},
			check: func(t *testing.T, p Params) {
				expect(t, p.PeerMaxRecvDataSegmentLength, uint32(65536))
				expect(t, p.MaxRecvDataSegmentLength, uint32(8192))
			}},
		{name: "declarative out of range", stage: op, in: []string{"MaxRecvDataSegmentLength=100"},
			want:  []string{"MaxRecvDataSegmentLength=Reject"},
			check: func(t *testing.T, p Params) { expect(t, p.PeerMaxRecvDataSegmentLength, uint32(8192)) }},
		{name: "names declared", stage: sec, in: []string{"InitiatorName=iqn.a", "TargetName=iqn.t", "InitiatorAlias=host"},
			check: func(t *testing.T, p Params) {
				expect(t, p.InitiatorName, "iqn.a")
				expect(t, p.TargetName, "iqn.t")
				expect(t, p.InitiatorAlias, "host")
			}},
		{name: "discovery irrelevant keys", stage: op,
			in:    []string{"SessionType=Discovery", "MaxBurstLength=4096", "InitialR2T=No", "HeaderDigest=None", "DefaultTime2Wait=3"},
			want:  []string{"MaxBurstLength=Irrelevant", "InitialR2T=Irrelevant", "HeaderDigest=None", "DefaultTime2Wait=3"},
			check: func(t *testing.T, p Params) { expect(t, p.Discovery(), true) }},
		{name: "leading-only on second connection", cfg: func(c *Config) { c.NonLeading = true }, stage: op,
			in: []string{"InitialR2T=No", "HeaderDigest=None"}, want: []string{"InitialR2T=Irrelevant", "HeaderDigest=None"}},
		{name: "obsolete markers", stage: op, in: []string{"IFMarker=Yes", "OFMarker=No", "OFMarkInt=2048~8192"},
			want: []string{"IFMarker=No", "OFMarker=No", "OFMarkInt=Irrelevant"}},
		{name: "AuthMethod CHAP", cfg: func(c *Config) { c.AuthMethods = []string{"CHAP"} }, stage: sec,
			in: []string{"AuthMethod=None,CHAP"}, want: []string{"AuthMethod=CHAP"},
			check: func(t *testing.T, p Params) { expect(t, p.AuthMethod, "CHAP") }},
		{name: "AuthMethod none acceptable", cfg: func(c *Config) { c.AuthMethods = []string{"CHAP"} }, stage: sec,
			in: []string{"AuthMethod=None"}, want: []string{"AuthMethod=Reject"},
			check: func(t *testing.T, p Params) { expect(t, p.AuthMethod, "None") }},
		{name: "CHAP keys left to the caller", stage: sec, in: []string{"CHAP_A=5,7", "CHAP_N=user"}},
		{name: "answers to nothing ignored", stage: op, in: []string{"InitialR2T=Irrelevant", "X-foo=NotUnderstood"}},
		{name: "operational key in security stage", stage: sec, in: []string{"MaxBurstLength=512"}, err: pdu.LoginInitiatorError},
		{name: "security key in operational stage", stage: op, in: []string{"AuthMethod=None"}, err: pdu.LoginInitiatorError},
		{name: "login key in full feature phase", stage: ffp, in: []string{"InitialR2T=No"}, err: pdu.LoginInitiatorError},
		{name: "target key from initiator", stage: op, in: []string{"TargetAlias=x"}, err: pdu.LoginInitiatorError},
		{name: "SendTargets during login", stage: op, in: []string{"SendTargets=All"}, err: pdu.LoginInitiatorError},
		{name: "CHAP key in operational stage", stage: op, in: []string{"CHAP_A=5"}, err: pdu.LoginInitiatorError},
		{name: "SessionType on second connection", cfg: func(c *Config) { c.NonLeading = true }, stage: sec,
			in:    []string{"SessionType=Normal", "InitiatorName=iqn.i"},
			check: func(t *testing.T, p Params) { expect(t, p.InitiatorName, "iqn.i") }},
		{name: "SendTargets in FFP", stage: ffp, in: []string{"SendTargets=All"}},
		{name: "MaxRecvDataSegmentLength in FFP", stage: ffp, in: []string{"MaxRecvDataSegmentLength=16384"},
			check: func(t *testing.T, p Params) { expect(t, p.PeerMaxRecvDataSegmentLength, uint32(16384)) }},
		{name: "bad SessionType", stage: sec, in: []string{"SessionType=Bogus"}, err: pdu.LoginSessionTypeUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Local: DefaultParams()}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			n, err := NewNegotiator(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out Pairs
			err = n.Receive(tt.stage, pairs(tt.in...), &out)
			if tt.err != 0 {
				var ne *Error
				if !errors.As(err, &ne) || ne.Status != tt.err {
					t.Fatalf("got %v, want *Error with status %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range out.All() {
				got = append(got, kv.Key+"="+kv.Value)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("answers %q, want %q", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, n.Params())
			}
		})
	}
}

func expect[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestUnknownKeysBounded checks that one text may carry at most
// MaxUnknownKeys keys we do not know: each costs a NotUnderstood answer,
// and issue 7 saw a 65 KB login of unknown keys answered with one
// 135,792-byte Login Response.
func TestUnknownKeysBounded(t *testing.T) {
	unknown := func(n int) *Pairs {
		var p Pairs
		for i := range n {
			p.Set(fmt.Sprintf("X-vendor.key%d", i), "1")
		}
		p.Set(KeyMaxBurstLength, "65536")
		return &p
	}
	for _, role := range []Role{RoleTarget, RoleInitiator} {
		n, _ := NewNegotiator(Config{Role: role, Local: DefaultParams()})
		var out Pairs
		if err := n.Receive(op, unknown(MaxUnknownKeys), &out); err != nil {
			t.Fatalf("%v: %d unknown keys: %v", role, MaxUnknownKeys, err)
		}
		if v, _ := out.Get("X-vendor.key0"); v != NotUnderstood {
			t.Fatalf("%v: X-vendor.key0=%q", role, v)
		}
		n, _ = NewNegotiator(Config{Role: role, Local: DefaultParams()})
		out.Reset()
		err := n.Receive(op, unknown(MaxUnknownKeys+1), &out)
		var ne *Error
		if !errors.As(err, &ne) || ne.Status != pdu.LoginInitiatorError {
			t.Fatalf("%v: %d unknown keys: %v, want an initiator error", role, MaxUnknownKeys+1, err)
		}
	}
}

func TestKeySentTwice(t *testing.T) {
	n, _ := NewNegotiator(Config{Local: DefaultParams()})
	var out Pairs
	if err := n.Receive(op, pairs("MaxBurstLength=65536"), &out); err != nil {
		t.Fatal(err)
	}
	err := n.Receive(op, pairs("MaxBurstLength=65536"), &out)
	var ne *Error
	if !errors.As(err, &ne) || ne.Key != KeyMaxBurstLength || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("got %v", err)
	}
	// A new FFP exchange may negotiate again.
	n.NewExchange()
	if err := n.Receive(ffp, pairs("MaxRecvDataSegmentLength=4096"), &out); err != nil {
		t.Fatal(err)
	}
	n.NewExchange()
	if err := n.Receive(ffp, pairs("MaxRecvDataSegmentLength=8192"), &out); err != nil {
		t.Fatal(err)
	}
}

func TestTargetOffers(t *testing.T) {
	local := DefaultParams()
	local.TargetPortalGroupTag = 7
	local.TargetAlias = "disk"
	local.MaxRecvDataSegmentLength = 65536
	n, _ := NewNegotiator(Config{Local: local})
	var out Pairs
	if err := n.Receive(sec, pairs("InitiatorName=iqn.i", "TargetName=iqn.t", "SessionType=Normal", "AuthMethod=None"), &out); err != nil {
		t.Fatal(err)
	}
	n.Offer(sec, &out)
	if got := out.String(); got != "AuthMethod=None TargetPortalGroupTag=7 TargetAlias=disk" {
		t.Errorf("security answer %q", got)
	}
	out.Reset()
	n.Offer(op, &out)
	if got := out.String(); got != "MaxRecvDataSegmentLength=65536" {
		t.Errorf("operational declarations %q", got)
	}
	if err := n.CheckLogin(); err != nil {
		t.Error(err)
	}
	if len(n.Pending()) != 0 {
		t.Errorf("pending %v", n.Pending())
	}

	// Stricter-than-default limits are offered and their answers checked.
	local = DefaultParams()
	local.ImmediateData = false
	local.InitialR2T = false // keeps FirstBurstLength relevant
	local.MaxBurstLength = 65536
	local.FirstBurstLength = 8192
	n, _ = NewNegotiator(Config{Local: local})
	out.Reset()
	n.Offer(op, &out)
	if got := out.String(); got != "TargetPortalGroupTag=0 MaxRecvDataSegmentLength=8192 ImmediateData=No MaxBurstLength=65536 FirstBurstLength=8192" {
		t.Errorf("target offers %q", got)
	}
	// ImmediateData=No (AND with No) decides itself: no answer needed.
	if p := n.Pending(); !reflect.DeepEqual(p, []string{"FirstBurstLength", "MaxBurstLength"}) {
		t.Errorf("pending %v", p)
	}
	out.Reset()
	if err := n.Receive(op, pairs("ImmediateData=No", "MaxBurstLength=16384", "FirstBurstLength=Irrelevant"), &out); err != nil {
		t.Fatal(err)
	}
	p := n.Params()
	expect(t, p.ImmediateData, false)
	expect(t, p.MaxBurstLength, uint32(16384))
	expect(t, p.FirstBurstLength, uint32(16384)) // the default 65536, clamped
	if out.Len() != 0 || len(n.Pending()) != 0 {
		t.Errorf("out %v pending %v", out.All(), n.Pending())
	}
}

// TestBothSidesDeclare: the initiator's MaxRecvDataSegmentLength must not
// suppress the target's own declaration, and receiving the peer's
// declaration after sending ours is not "negotiated twice".
func TestBothSidesDeclare(t *testing.T) {
	local := DefaultParams()
	local.MaxRecvDataSegmentLength = 4096
	n, _ := NewNegotiator(Config{Local: local})
	var out Pairs
	if err := n.Receive(op, pairs("MaxRecvDataSegmentLength=65536"), &out); err != nil {
		t.Fatal(err)
	}
	n.Offer(op, &out)
	if v, _ := out.Get(KeyMaxRecvDataSegmentLength); v != "4096" {
		t.Errorf("target declared %q, want 4096 (out: %v)", v, out.String())
	}
	il := DefaultParams()
	il.InitiatorName, il.TargetName = "iqn.i", "iqn.t"
	il.MaxRecvDataSegmentLength = 16384
	ini, _ := NewNegotiator(Config{Role: RoleInitiator, Local: il})
	out.Reset()
	ini.Offer(op, &out)
	if err := ini.Receive(op, pairs("MaxRecvDataSegmentLength=4096"), &Pairs{}); err != nil {
		t.Fatalf("initiator: %v", err)
	}
	p := ini.Params()
	expect(t, p.MaxRecvDataSegmentLength, uint32(16384))
	expect(t, p.PeerMaxRecvDataSegmentLength, uint32(4096))
	if err := ini.Receive(op, pairs("MaxRecvDataSegmentLength=4096"), &Pairs{}); err == nil {
		t.Error("second declaration by the peer accepted")
	}
}

func TestCheckLogin(t *testing.T) {
	n, _ := NewNegotiator(Config{Local: DefaultParams()})
	var ne *Error
	if err := n.CheckLogin(); !errors.As(err, &ne) || ne.Status != pdu.LoginMissingParameter {
		t.Errorf("no InitiatorName: %v", err)
	}
	var out Pairs
	_ = n.Receive(sec, pairs("InitiatorName=iqn.i"), &out)
	if err := n.CheckLogin(); !errors.As(err, &ne) || ne.Key != KeyTargetName {
		t.Errorf("no TargetName: %v", err)
	}
	n, _ = NewNegotiator(Config{Local: DefaultParams()})
	_ = n.Receive(sec, pairs("InitiatorName=iqn.i", "SessionType=Discovery"), &out)
	if err := n.CheckLogin(); err != nil {
		t.Errorf("discovery: %v", err)
	}
	n, _ = NewNegotiator(Config{Local: DefaultParams(), ISER: true})
	_ = n.Receive(sec, pairs("InitiatorName=iqn.i", "TargetName=iqn.t"), &out)
	if err := n.CheckLogin(); !errors.As(err, &ne) || ne.Key != KeyRDMAExtensions {
		t.Errorf("iSER without RDMAExtensions: %v", err)
	}
}

func TestInitiatorChecksAnswers(t *testing.T) {
	tests := []struct {
		answer string
		ok     bool
	}{
		{"HeaderDigest=None", true},
		{"HeaderDigest=CRC32C", false}, // not offered
		{"ImmediateData=Yes", false},   // we offered No under AND
		{"InitialR2T=No", false},       // we offered Yes under OR
		{"MaxBurstLength=65536", true},
		{"MaxBurstLength=1048576", false}, // above our offer under min
		{"DefaultTime2Wait=1", false},     // below our offer under max
		{"DefaultTime2Wait=5", true},
		{"ErrorRecoveryLevel=Reject", true},
		{"MaxConnections=NotUnderstood", true},
	}
	for _, tt := range tests {
		local := DefaultParams()
		local.InitiatorName = "iqn.i"
		local.TargetName = "iqn.t"
		local.ImmediateData = false
		n, _ := NewNegotiator(Config{Role: RoleInitiator, Local: local})
		var out Pairs
		n.Offer(op, &out)
		err := n.Receive(op, pairs(tt.answer), &Pairs{})
		if (err == nil) != tt.ok {
			t.Errorf("answer %s: err %v", tt.answer, err)
		}
	}
}

// TestInitiatorAgainstTarget runs a whole login between the two roles and
// checks that both sides agree.
func TestInitiatorAgainstTarget(t *testing.T) {
	for _, iser := range []bool{false, true} {
		il := DefaultParams()
		il.InitiatorName, il.TargetName, il.InitiatorAlias = "iqn.2026-01.test:i", "iqn.2026-01.test:t", "host"
		il.HeaderDigest, il.DataDigest = true, false
		il.InitialR2T = false
		il.MaxBurstLength, il.FirstBurstLength = 1<<20, 1<<18
		il.MaxRecvDataSegmentLength = 262144
		il.ErrorRecoveryLevel = 1
		il.InitiatorRecvDataSegmentLength = 262144
		ini, err := NewNegotiator(Config{Role: RoleInitiator, Local: il, ISER: iser, AuthMethods: []string{"CHAP", "None"}})
		if err != nil {
			t.Fatal(err)
		}
		tl := DefaultParams()
		tl.HeaderDigest, tl.DataDigest = true, true
		tl.InitialR2T = false
		tl.MaxRecvDataSegmentLength = 65536
		tl.TargetPortalGroupTag = 1
		tl.TargetRecvDataSegmentLength = 65536
		tl.InitiatorRecvDataSegmentLength = 1 << 20
		tgt, err := NewNegotiator(Config{Local: tl, ISER: iser, AuthMethods: []string{"None"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, stage := range []pdu.Stage{sec, op} {
			var req, rsp Pairs
			ini.Offer(stage, &req)
			if err := tgt.Receive(stage, &req, &rsp); err != nil {
				t.Fatalf("iser=%v %v: target: %v\nrequest %v", iser, stage, err, req.String())
			}
			tgt.Offer(stage, &rsp)
			var back Pairs
			if err := ini.Receive(stage, &rsp, &back); err != nil {
				t.Fatalf("iser=%v %v: initiator: %v\nresponse %v", iser, stage, err, rsp.String())
			}
			if back.Len() != 0 {
				t.Errorf("initiator answered %v", back.String())
			}
			if p := ini.Pending(); len(p) != 0 {
				t.Errorf("iser=%v %v: initiator pending %v after %v", iser, stage, p, rsp.String())
			}
		}
		if err := tgt.CheckLogin(); err != nil {
			t.Error(err)
		}
		ip, tp := ini.Params(), tgt.Params()
		// Per-direction limits are mirrored (each side declares its own,
		// whatever the other declared); everything else is equal.
		expect(t, ip.MaxRecvDataSegmentLength, tp.PeerMaxRecvDataSegmentLength)
		expect(t, tp.MaxRecvDataSegmentLength, ip.PeerMaxRecvDataSegmentLength)
		if !iser {
			expect(t, tp.PeerMaxRecvDataSegmentLength, uint32(262144))
			expect(t, ip.PeerMaxRecvDataSegmentLength, uint32(65536))
		}
		ip.MaxRecvDataSegmentLength, ip.PeerMaxRecvDataSegmentLength = 0, 0
		tp.MaxRecvDataSegmentLength, tp.PeerMaxRecvDataSegmentLength = 0, 0
		if ip != tp {
			t.Errorf("iser=%v: initiator and target disagree:\n%+v\n%+v", iser, ip, tp)
		}
		expect(t, tp.InitialR2T, false)
		expect(t, tp.MaxBurstLength, uint32(262144))
		expect(t, tp.FirstBurstLength, uint32(65536))
		expect(t, tp.ErrorRecoveryLevel, uint8(0))
		expect(t, tp.AuthMethod, "None")
		expect(t, tp.TargetPortalGroupTag, uint16(1))
		expect(t, tp.InitiatorAlias, "host")
		expect(t, tp.RDMAExtensions, iser)
		if iser {
			expect(t, tp.HeaderDigest, false)
			expect(t, tp.InitiatorRecvDataSegmentLength, uint32(262144))
			expect(t, tp.TargetRecvDataSegmentLength, uint32(8192))
		} else {
			expect(t, tp.HeaderDigest, true)
			expect(t, tp.DataDigest, false)
		}
	}
}

func TestNewNegotiatorValidates(t *testing.T) {
	bad := DefaultParams()
	bad.MaxBurstLength = 100
	if _, err := NewNegotiator(Config{Local: bad}); err == nil {
		t.Error("MaxBurstLength 100 accepted")
	}
	bad = DefaultParams()
	bad.SessionType = "Other"
	if _, err := NewNegotiator(Config{Local: bad}); err == nil {
		t.Error("SessionType Other accepted")
	}
	if _, err := NewNegotiator(Config{Local: DefaultParams(), AuthMethods: []string{"Magic"}}); err == nil {
		t.Error("AuthMethod Magic accepted")
	}
}

func TestLookupTable(t *testing.T) {
	for _, name := range KeyNames() {
		d, ok := Lookup(name)
		if !ok || d.Name != name || d.Kind == 0 || d.Use == 0 || d.Senders == 0 {
			t.Errorf("%s: incomplete definition %+v", name, d)
		}
		if err := ValidateKey(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if d.Numeric && d.Default != "" {
			if err := d.checkValue(d.Default); err != nil {
				t.Errorf("%s: default %q invalid: %v", name, d.Default, err)
			}
		}
	}
	if _, ok := Lookup("X-com.example"); ok {
		t.Error("extension key found")
	}
	// One source: every key's Default is what DefaultParams holds.
	def := DefaultParams()
	for _, name := range KeyNames() {
		d, _ := Lookup(name)
		v, ok := def.value(name)
		if d.Default == "" || !ok || name == KeySessionType {
			continue
		}
		if v != d.Default {
			t.Errorf("%s: KeyDef.Default %q, DefaultParams %q", name, d.Default, v)
		}
	}
	if KindBoolAnd.String() != "Boolean-AND" || RoleInitiator.String() != "initiator" {
		t.Error("String")
	}
}

// An initiator offers RDMAExtensions only on iSER: on TCP the key is the
// default (No), common initiators never send it, and some targets misbehave
// when they see it.
func TestInitiatorOffersRDMAExtensionsOnlyOnISER(t *testing.T) {
	for _, iser := range []bool{false, true} {
		local := DefaultParams()
		local.InitiatorName, local.TargetName = "iqn.i", "iqn.t"
		n, err := NewNegotiator(Config{Role: RoleInitiator, Local: local, ISER: iser})
		if err != nil {
			t.Fatal(err)
		}
		var out Pairs
		n.Offer(pdu.StageOperational, &out)
		v, ok := out.Get(KeyRDMAExtensions)
		switch {
		case !iser && ok:
			t.Errorf("TCP offer has RDMAExtensions=%s: %s", v, out.String())
		case iser && (!ok || v != "Yes"):
			t.Errorf("iSER offer lacks RDMAExtensions=Yes: %s", out.String())
		}
	}
}

// TestOmittedAnswers checks RFC 7143 §6.2's rule on which answers a
// responder may leave out: those of Boolean offers whose outcome the
// offer decides (AND offered No, OR offered Yes). Everything else stays
// pending, and an answer that does come is still checked.
func TestOmittedAnswers(t *testing.T) {
	op := pdu.StageOperational
	newInit := func(adjust func(*Params)) *Negotiator {
		local := DefaultParams()
		local.InitiatorName, local.TargetName = "iqn.i", "iqn.t"
		if adjust != nil {
			adjust(&local)
		}
		n, err := NewNegotiator(Config{Role: RoleInitiator, Local: local})
		if err != nil {
			t.Fatal(err)
		}
		var out Pairs
		n.Offer(op, &out)
		return n
	}
	// LIO's answer to a default offer: the OR keys offered Yes are left out.
	n := newInit(nil)
	var out Pairs
	lio := pairs("HeaderDigest=None", "DataDigest=None", "MaxConnections=1", "ImmediateData=Yes",
		"MaxBurstLength=262144", "FirstBurstLength=65536", "DefaultTime2Wait=2", "DefaultTime2Retain=0",
		"MaxOutstandingR2T=1", "ErrorRecoveryLevel=0", "MaxRecvDataSegmentLength=262144")
	if err := n.Receive(op, lio, &out); err != nil {
		t.Fatal(err)
	}
	if p := n.Pending(); len(p) != 0 {
		t.Fatalf("pending %v after an answer that omits only OR keys offered Yes", p)
	}
	p := n.Params()
	expect(t, p.InitialR2T, true)
	expect(t, p.DataPDUInOrder, true)
	expect(t, p.DataSequenceInOrder, true)

	// An OR key offered No, an AND key offered Yes, numbers: required.
	n = newInit(func(l *Params) { l.InitialR2T = false })
	out.Reset()
	if err := n.Receive(op, pairs("MaxBurstLength=262144", "DataPDUInOrder=Yes"), &out); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{KeyInitialR2T, KeyImmediateData, KeyFirstBurstLength, KeyHeaderDigest, KeyErrorRecoveryLevel} {
		if !slices.Contains(n.Pending(), k) {
			t.Errorf("%s: omitted answer accepted, pending %v", k, n.Pending())
		}
	}
	// ImmediateData offered No decides itself; InitialR2T offered No does not.
	n = newInit(func(l *Params) { l.InitialR2T, l.ImmediateData = false, false })
	expect(t, n.Params().ImmediateData, false)
	if !slices.Contains(n.Pending(), KeyInitialR2T) || slices.Contains(n.Pending(), KeyImmediateData) {
		t.Errorf("pending %v, want InitialR2T and not ImmediateData", n.Pending())
	}
	// An answer to an optional offer is still held to the offer.
	n = newInit(nil)
	out.Reset()
	if err := n.Receive(op, pairs("DataPDUInOrder=No"), &out); err == nil {
		t.Error("DataPDUInOrder=No accepted for an OR offer of Yes")
	}
	// Irrelevant brings back the default.
	n = newInit(func(l *Params) { l.ImmediateData = false })
	out.Reset()
	if err := n.Receive(op, pairs("ImmediateData=Irrelevant"), &out); err != nil {
		t.Fatal(err)
	}
	expect(t, n.Params().ImmediateData, true)
	// Offers are made once: a second Offer in the stage repeats none.
	out.Reset()
	n.Offer(op, &out)
	if out.Len() != 0 {
		t.Errorf("second offer repeats %s", out.String())
	}
}
