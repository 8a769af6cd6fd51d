package iscsi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/goiser/goiser/iscsi/auth"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

const (
	tName = "iqn.2026-01.io.goiser:unit"
	iName = "iqn.2026-01.io.goiser:initiator"
)

func testServer(t *testing.T, chap *CHAP, acl ...string) *Server {
	t.Helper()
	be, err := backend.NewMemory(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Targets: []*Target{{Name: tName, Alias: "unit", LUNs: luns, CHAP: chap, Initiators: acl, PortalGroupTag: 7}}}
	if err := s.init(); err != nil {
		t.Fatal(err)
	}
	return s
}

func newLogin(s *Server) *loginState {
	return &loginState{srv: s, opts: s.Negotiation.withDefaults()}
}

func keys(kv ...string) []byte {
	var b []byte
	for _, s := range kv {
		b = appendKey(b, strings.SplitN(s, "=", 2)[0], strings.SplitN(s, "=", 2)[1])
	}
	return b
}

func reply(rsp *pdu.LoginResponse) map[string]string {
	m := map[string]string{}
	for _, item := range strings.Split(string(rsp.Data), "\x00") {
		if k, v, ok := strings.Cut(item, "="); ok {
			m[k] = v
		}
	}
	return m
}

// step is one Login Request of a table test and what must come back.
type step struct {
	csg, nsg  pdu.Stage
	transit   bool
	cont      bool
	kv        []string
	wantErr   pdu.LoginStatus // 0: no error
	wantT     bool
	wantNSG   pdu.Stage
	wantKeys  map[string]string
	wantDone  bool
	mutateReq func(*pdu.LoginRequest)
}

func runSteps(t *testing.T, ls *loginState, steps []step) {
	t.Helper()
	for i, st := range steps {
		req := pdu.LoginRequest{Transit: st.transit, Continue: st.cont, CSG: st.csg, NSG: st.nsg, ISID: pdu.ISID{0x80, 0, 0, 0, 0, 1},
			ITT: 1, CmdSN: 5, Data: keys(st.kv...)}
		if st.mutateReq != nil {
			st.mutateReq(&req)
		}
		var rsp pdu.LoginResponse
		err := ls.handle(&req, &rsp)
		var le *loginError
		if st.wantErr != 0 {
			if !errors.As(err, &le) || le.status != st.wantErr {
				t.Fatalf("step %d: err %v, want status %v", i, err, st.wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if rsp.Transit != st.wantT || (st.wantT && rsp.NSG != st.wantNSG) {
			t.Fatalf("step %d: T=%v NSG=%v, want T=%v NSG=%v (%q)", i, rsp.Transit, rsp.NSG, st.wantT, st.wantNSG, rsp.Data)
		}
		got := reply(&rsp)
		for k, v := range st.wantKeys {
			if got[k] != v {
				t.Fatalf("step %d: %s=%q, want %q (all: %q)", i, k, got[k], v, rsp.Data)
			}
		}
		if ls.done != st.wantDone {
			t.Fatalf("step %d: done %v, want %v", i, ls.done, st.wantDone)
		}
	}
}

// TestLoginStateMachine drives the login state machine through the stage
// transitions and failures of RFC 7143 §6 and §11.12-13.
func TestLoginStateMachine(t *testing.T) {
	sec, op, ffp := pdu.StageSecurity, pdu.StageOperational, pdu.StageFullFeature
	first := []string{"InitiatorName=" + iName, "TargetName=" + tName, "SessionType=Normal", "AuthMethod=None"}
	cases := []struct {
		name  string
		chap  *CHAP
		acl   []string
		steps []step
	}{
		{"security-operational-ffp", nil, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: first, wantT: true, wantNSG: op,
				wantKeys: map[string]string{"AuthMethod": "None", "TargetPortalGroupTag": "7", "TargetAlias": "unit"}},
			{csg: op, nsg: ffp, transit: true, kv: []string{"HeaderDigest=CRC32C,None", "MaxRecvDataSegmentLength=65536",
				"ImmediateData=Yes", "InitialR2T=Yes", "MaxBurstLength=1048576", "FirstBurstLength=4096", "ErrorRecoveryLevel=2",
				"MaxConnections=4"},
				wantT: true, wantNSG: ffp, wantDone: true,
				wantKeys: map[string]string{"HeaderDigest": "CRC32C", "MaxRecvDataSegmentLength": "262144", "MaxBurstLength": "262144",
					"FirstBurstLength": "4096", "ErrorRecoveryLevel": "0", "MaxConnections": "1", "InitialR2T": "Yes"}},
		}},
		{"security-straight-to-ffp", nil, nil, []step{
			{csg: sec, nsg: ffp, transit: true, kv: first, wantT: true, wantNSG: ffp, wantDone: true},
		}},
		{"operational-first", nil, nil, []step{
			{csg: op, nsg: ffp, transit: true, kv: []string{"InitiatorName=" + iName, "TargetName=" + tName},
				wantT: true, wantNSG: ffp, wantDone: true},
		}},
		{"stay-in-stage", nil, nil, []step{
			{csg: sec, kv: first, wantT: false},
			{csg: sec, nsg: op, transit: true, wantT: true, wantNSG: op},
			{csg: op, kv: []string{"MaxBurstLength=65536"}, wantT: false, wantKeys: map[string]string{"MaxBurstLength": "65536"}},
			{csg: op, nsg: ffp, transit: true, wantT: true, wantNSG: ffp, wantDone: true},
		}},
		{"continued-text", nil, nil, []step{
			{csg: sec, nsg: op, cont: true, kv: []string{"InitiatorName=" + iName}, wantT: false},
			{csg: sec, nsg: op, transit: true, kv: []string{"TargetName=" + tName, "AuthMethod=None"}, wantT: true, wantNSG: op},
		}},
		{"discovery", nil, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: []string{"InitiatorName=" + iName, "SessionType=Discovery", "AuthMethod=None"},
				wantT: true, wantNSG: op},
			{csg: op, nsg: ffp, transit: true, kv: []string{"HeaderDigest=None", "InitialR2T=Yes"}, wantT: true, wantNSG: ffp,
				wantDone: true, wantKeys: map[string]string{"HeaderDigest": "None", "InitialR2T": "Irrelevant"}},
		}},
		{"operational-key-in-security-stage", nil, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: append(first, "HeaderDigest=None"), wantErr: pdu.LoginInitiatorError},
		}},
		{"not-found", nil, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: []string{"InitiatorName=" + iName, "TargetName=iqn.x:y"}, wantErr: pdu.LoginNotFound},
		}},
		{"acl", nil, []string{"iqn.2026-01.io.goiser:other"}, []step{
			{csg: sec, nsg: op, transit: true, kv: first, wantErr: pdu.LoginAuthorizationFailed},
		}},
		{"acl-case-insensitive", nil, []string{strings.ToUpper(iName)}, []step{
			{csg: sec, nsg: op, transit: true, kv: first, wantT: true, wantNSG: op},
		}},
		{"missing-initiator", nil, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: []string{"TargetName=" + tName}, wantErr: pdu.LoginMissingParameter},
		}},
		{"version", nil, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: first, wantErr: pdu.LoginUnsupportedVersion,
				mutateReq: func(r *pdu.LoginRequest) { r.VersionMax, r.VersionMin = 3, 1 }},
		}},
		{"backwards-transit", nil, nil, []step{
			{csg: op, nsg: sec, transit: true, kv: first[:2], wantErr: pdu.LoginInitiatorError},
		}},
		{"wrong-csg", nil, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: first, wantT: true, wantNSG: op},
			{csg: sec, nsg: op, transit: true, wantErr: pdu.LoginInitiatorError},
		}},
		{"isid-changes", nil, nil, []step{
			{csg: sec, kv: first},
			{csg: sec, nsg: op, transit: true, wantErr: pdu.LoginInitiatorError,
				mutateReq: func(r *pdu.LoginRequest) { r.ISID[5] = 9 }},
		}},
		{"name-twice", nil, nil, []step{
			{csg: sec, kv: first},
			{csg: sec, kv: []string{"InitiatorName=" + iName}, wantErr: pdu.LoginInitiatorError},
		}},
		{"chap-required-but-skipped", &CHAP{User: "u", Secret: "s"}, nil, []step{
			{csg: op, nsg: ffp, transit: true, kv: first[:2], wantErr: pdu.LoginAuthFailed},
		}},
		{"chap-required-none-offered", &CHAP{User: "u", Secret: "s"}, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: first, wantErr: pdu.LoginAuthFailed},
		}},
		{"chap-no-transit-before-auth", &CHAP{User: "u", Secret: "s"}, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: []string{"InitiatorName=" + iName, "TargetName=" + tName, "AuthMethod=CHAP,None"},
				wantT: false, wantKeys: map[string]string{"AuthMethod": "CHAP"}},
			{csg: sec, nsg: op, transit: true, kv: []string{"CHAP_A=56,99"}, wantErr: pdu.LoginAuthFailed},
		}},
		{"tsih-unknown", nil, nil, []step{
			{csg: sec, nsg: op, transit: true, kv: first, wantErr: pdu.LoginSessionNotExist,
				mutateReq: func(r *pdu.LoginRequest) { r.TSIH = 77 }},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ls := newLogin(testServer(t, tc.chap, tc.acl...))
			runSteps(t, ls, tc.steps)
		})
	}
}

// TestLoginCHAP runs the CHAP exchange with every algorithm.
func TestLoginCHAP(t *testing.T) {
	for _, alg := range []string{"5", "6", "7"} {
		t.Run("CHAP_A="+alg, func(t *testing.T) {
			ls := newLogin(testServer(t, &CHAP{User: "u", Secret: "0123456789ab"}))
			runSteps(t, ls, []step{{csg: pdu.StageSecurity, kv: []string{"InitiatorName=" + iName, "TargetName=" + tName, "AuthMethod=CHAP"},
				wantKeys: map[string]string{"AuthMethod": "CHAP"}}})
			var rsp pdu.LoginResponse
			req := pdu.LoginRequest{CSG: pdu.StageSecurity, ISID: pdu.ISID{0x80, 0, 0, 0, 0, 1}, Data: keys("CHAP_A=" + alg)}
			if err := ls.handle(&req, &rsp); err != nil {
				t.Fatal(err)
			}
			kv := reply(&rsp)
			if kv["CHAP_A"] != alg {
				t.Fatalf("CHAP_A=%q", kv["CHAP_A"])
			}
			id, _ := strconv.Atoi(kv["CHAP_I"])
			ch, err := text.DecodeBinary(kv["CHAP_C"])
			if err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(alg)
			r := auth.Algorithm(n).Response(byte(id), []byte("0123456789ab"), ch)
			req = pdu.LoginRequest{Transit: true, CSG: pdu.StageSecurity, NSG: pdu.StageOperational, ISID: req.ISID,
				Data: keys("CHAP_N=u", "CHAP_R=0b"+b64(r))}
			if err := ls.handle(&req, &rsp); err != nil {
				t.Fatal(err)
			}
			if !rsp.Transit || rsp.NSG != pdu.StageOperational {
				t.Fatalf("no transit after CHAP: %q", rsp.Data)
			}
		})
	}
}

// TestSeqArithmetic checks the serial number arithmetic of RFC 1982 used
// for the CmdSN window.
func TestSeqArithmetic(t *testing.T) {
	cases := []struct {
		x, lo, hi uint32
		in        bool
	}{
		{5, 5, 5, true},
		{4, 5, 10, false},
		{11, 5, 10, false},
		{0, 0xfffffff0, 0x10, true},
		{0xfffffff0, 0xfffffff0, 0x10, true},
		{0x11, 0xfffffff0, 0x10, false},
		{0xffffffef, 0xfffffff0, 0x10, false},
	}
	for _, c := range cases {
		if got := seqInWindow(c.x, c.lo, c.hi); got != c.in {
			t.Errorf("seqInWindow(%#x, %#x, %#x) = %v", c.x, c.lo, c.hi, got)
		}
	}
	if !seqLess(0xffffffff, 0) || seqLess(0, 0xffffffff) || seqLess(3, 3) {
		t.Error("seqLess wraps wrongly")
	}
}

// TestResidualsTable checks O/U computation against EDTL.
func TestResidualsTable(t *testing.T) {
	cases := []struct {
		edtl, want, moved int
		o, u              bool
		count             uint32
	}{
		{512, 512, 512, false, false, 0},
		{512, 1024, 512, true, false, 512},
		{1024, 512, 512, false, true, 512},
		{0, 512, 0, true, false, 512},
		{10000, 512, 512, false, true, 9488},
		{255, 255, 36, false, true, 219},
	}
	for _, c := range cases {
		var r Response
		residuals(&r, c.edtl, c.want, c.moved)
		if r.Overflow != c.o || r.Underflow != c.u || r.Residual != c.count {
			t.Errorf("residuals(%d, %d, %d) = O %v U %v %d", c.edtl, c.want, c.moved, r.Overflow, r.Underflow, r.Residual)
		}
	}
}

func TestFoldNameAndLUN(t *testing.T) {
	if foldName("IQN.2026-01.IO:X") != "iqn.2026-01.io:x" || foldName("iqn.a") != "iqn.a" {
		t.Error("foldName")
	}
	if decodeLUN(uint64(pdu.EncodeLUN(5))) != 5 || decodeLUN(uint64(pdu.EncodeLUN(300))) != 300 {
		t.Error("decodeLUN")
	}
	if decodeLUN(0xc000_0000_0000_0000) == 0 {
		t.Error("decodeLUN accepted an unsupported addressing method")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestLoginISER negotiates the RFC 7145 keys on an iSER connection:
// RDMAExtensions=Yes, the two RecvDataSegmentLengths, no digests.
func TestLoginISER(t *testing.T) {
	ls := newLogin(testServer(t, nil))
	ls.iser = true
	sec, op, ffp := pdu.StageSecurity, pdu.StageOperational, pdu.StageFullFeature
	runSteps(t, ls, []step{
		{csg: sec, nsg: op, transit: true, kv: []string{"InitiatorName=" + iName, "TargetName=" + tName, "AuthMethod=None"},
			wantT: true, wantNSG: op},
		{csg: op, nsg: ffp, transit: true, kv: []string{"RDMAExtensions=Yes", "InitiatorRecvDataSegmentLength=131072",
			"TargetRecvDataSegmentLength=1048576", "HeaderDigest=CRC32C,None"},
			wantT: true, wantNSG: ffp, wantDone: true,
			wantKeys: map[string]string{"RDMAExtensions": "Yes", "InitiatorRecvDataSegmentLength": "131072",
				"TargetRecvDataSegmentLength": "262144", "HeaderDigest": "None"}},
	})
	p := ls.params()
	if !p.RDMAExtensions || p.HeaderDigest || p.TargetMaxRecvDSL != 262144 || p.InitiatorMaxRecvDSL != 131072 {
		t.Fatalf("params %+v", p)
	}
	// Without RDMAExtensions=Yes an iSER login cannot complete.
	ls = newLogin(testServer(t, nil))
	ls.iser = true
	runSteps(t, ls, []step{
		{csg: sec, nsg: ffp, transit: true, kv: []string{"InitiatorName=" + iName, "TargetName=" + tName, "AuthMethod=None"},
			wantErr: pdu.LoginInitiatorError},
	})
}

// TestLoginTextBounded continues a login text over several PDUs (C bit)
// past Server.MaxTextLength: the login fails with an initiator error
// (LIO answers an oversized login text the same way), within the limit it
// goes on.
func TestLoginTextBounded(t *testing.T) {
	sec, op := pdu.StageSecurity, pdu.StageOperational
	pad := func(k string, n int) string { return "X-pad" + k + "=" + strings.Repeat("a", n) }
	for _, tc := range []struct {
		name  string
		limit int
		steps []step
	}{
		{"default-over", 0, []step{
			{csg: sec, cont: true, kv: []string{"InitiatorName=" + iName}},
			{csg: sec, cont: true, mutateReq: func(r *pdu.LoginRequest) { r.Data = make([]byte, 64<<10) },
				wantErr: pdu.LoginInitiatorError},
		}},
		{"configured-over", 1000, []step{
			{csg: sec, cont: true, kv: []string{"InitiatorName=" + iName, pad("1", 200)}},
			{csg: sec, cont: true, kv: []string{pad("2", 250), pad("3", 240)}},
			{csg: sec, nsg: op, transit: true, kv: []string{"TargetName=" + tName, "AuthMethod=None", pad("4", 230)},
				wantErr: pdu.LoginInitiatorError},
		}},
		{"configured-within", 1000, []step{
			{csg: sec, cont: true, kv: []string{"InitiatorName=" + iName, pad("1", 200)}},
			{csg: sec, cont: true, kv: []string{pad("2", 250), pad("3", 240)}},
			{csg: sec, nsg: op, transit: true, kv: []string{"TargetName=" + tName, "AuthMethod=None"},
				wantT: true, wantNSG: op, wantKeys: map[string]string{"X-pad1": text.NotUnderstood, "X-pad3": text.NotUnderstood}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testServer(t, nil)
			s.MaxTextLength = tc.limit
			runSteps(t, newLogin(s), tc.steps)
		})
	}
}

// loginPDU sends one Login Request to ls and returns the response.
func loginPDU(t *testing.T, ls *loginState, req pdu.LoginRequest) (pdu.LoginResponse, error) {
	t.Helper()
	req.ISID = pdu.ISID{0x80, 0, 0, 0, 0, 1}
	req.ITT, req.CmdSN = 1, 5
	var rsp pdu.LoginResponse
	err := ls.handle(&req, &rsp)
	rsp.Data = bytes.Clone(rsp.Data)
	return rsp, err
}

// TestLoginResponseContinued checks that a Login Response longer than
// the initiator may receive goes out in pieces with the C bit (RFC 7143
// §11.13.3: T=0 until the last piece), each fetched with an empty Login
// Request, and that the stage moves only with the last piece. Issue 7 saw
// a 135,792-byte Login Response in one PDU.
func TestLoginResponseContinued(t *testing.T) {
	sec, op, ffp := pdu.StageSecurity, pdu.StageOperational, pdu.StageFullFeature
	ls := newLogin(testServer(t, nil))
	if _, err := loginPDU(t, ls, pdu.LoginRequest{Transit: true, CSG: sec, NSG: op,
		Data: keys("InitiatorName="+iName, "TargetName="+tName, "AuthMethod=None")}); err != nil {
		t.Fatal(err)
	}
	// The initiator declares it receives 512 bytes; 40 unknown keys make
	// the answer about 1.5 KB.
	kv := []string{"MaxRecvDataSegmentLength=512", "HeaderDigest=None", "MaxBurstLength=65536"}
	for i := range 40 {
		kv = append(kv, "X-vendor.unknown-key-"+strconv.Itoa(i)+"=1")
	}
	rsp, err := loginPDU(t, ls, pdu.LoginRequest{Transit: true, CSG: op, NSG: ffp, Data: keys(kv...)})
	var all []byte
	pieces := 0
	for ; err == nil && rsp.Continue; pieces++ {
		if rsp.Transit || len(rsp.Data) > 512 || len(rsp.Data) == 0 || ls.done || ls.stage != op {
			t.Fatalf("piece %d: T=%v %d bytes done=%v stage=%v", pieces, rsp.Transit, len(rsp.Data), ls.done, ls.stage)
		}
		all = append(all, rsp.Data...)
		rsp, err = loginPDU(t, ls, pdu.LoginRequest{CSG: op})
	}
	if err != nil {
		t.Fatalf("after %d pieces: %v", pieces, err)
	}
	all = append(all, rsp.Data...)
	if pieces < 2 || len(rsp.Data) > 512 {
		t.Fatalf("%d continued pieces, last of %d bytes; want the answer split at 512", pieces, len(rsp.Data))
	}
	if !rsp.Transit || rsp.NSG != ffp || !ls.done {
		t.Fatalf("last piece: T=%v NSG=%v done=%v", rsp.Transit, rsp.NSG, ls.done)
	}
	var got text.Pairs
	if err := text.Parse(all, &got); err != nil {
		t.Fatalf("joined answer: %v", err)
	}
	if v, _ := got.Get("X-vendor.unknown-key-39"); v != text.NotUnderstood {
		t.Fatalf("X-vendor.unknown-key-39=%q", v)
	}
	if v, _ := got.Get(text.KeyMaxBurstLength); v != "65536" {
		t.Fatalf("MaxBurstLength=%q", v)
	}
	if p := ls.params(); p.InitiatorMaxRecvDSL != 512 {
		t.Fatalf("params %+v", p)
	}
}

// TestLoginResponseContinuedMisuse sends keys while the target still has
// a continued response to deliver: the login fails.
func TestLoginResponseContinuedMisuse(t *testing.T) {
	sec, op, ffp := pdu.StageSecurity, pdu.StageOperational, pdu.StageFullFeature
	ls := newLogin(testServer(t, nil))
	if _, err := loginPDU(t, ls, pdu.LoginRequest{Transit: true, CSG: sec, NSG: op,
		Data: keys("InitiatorName="+iName, "TargetName="+tName, "AuthMethod=None")}); err != nil {
		t.Fatal(err)
	}
	kv := []string{"MaxRecvDataSegmentLength=512"}
	for i := range 40 {
		kv = append(kv, "X-vendor.unknown-key-"+strconv.Itoa(i)+"=1")
	}
	rsp, err := loginPDU(t, ls, pdu.LoginRequest{Transit: true, CSG: op, NSG: ffp, Data: keys(kv...)})
	if err != nil || !rsp.Continue {
		t.Fatalf("C=%v err=%v, want a continued response", rsp.Continue, err)
	}
	_, err = loginPDU(t, ls, pdu.LoginRequest{CSG: op, Data: keys("MaxBurstLength=65536")})
	var le *loginError
	if !errors.As(err, &le) || le.status != pdu.LoginInitiatorError {
		t.Fatalf("keys during a continued response: %v, want an initiator error", err)
	}
}
