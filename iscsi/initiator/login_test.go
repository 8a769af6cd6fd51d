package initiator

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/iscsi/text"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

// scriptedTarget answers Login Requests on one end of a pipe with the
// responses its script returns, one per request.
type scriptedTarget struct {
	c    *Conn
	reqs []pdu.LoginRequest // requests received, with their keys in Data
}

// step reads one Login Request and sends rsp (ISID and ITT copied from the
// request, StatSN counting up).
func (st *scriptedTarget) step(t *testing.T, rsp pdu.LoginResponse) {
	t.Helper()
	st.stepFunc(t, func() pdu.LoginResponse { return rsp })
}

// stepFunc is step with the response built after the request is read.
func (st *scriptedTarget) stepFunc(t *testing.T, build func() pdu.LoginResponse) {
	t.Helper()
	var p PDU
	if err := st.c.ReadPDU(&p); err != nil {
		t.Errorf("target: read: %v", err)
		return
	}
	var req pdu.LoginRequest
	if err := req.UnmarshalBinary(p.BHS[:]); err != nil {
		t.Errorf("target: bad login request: %v", err)
		return
	}
	req.Data = append([]byte(nil), p.Data...)
	st.reqs = append(st.reqs, req)
	rsp := build()
	rsp.ISID, rsp.ITT = req.ISID, req.ITT
	rsp.StatSN = uint32(len(st.reqs))
	rsp.ExpCmdSN, rsp.MaxCmdSN = req.CmdSN, req.CmdSN+8
	var out PDU
	if _, err := rsp.AppendBinary(out.BHS[:0]); err != nil {
		t.Errorf("target: encode: %v", err)
		return
	}
	out.Data = rsp.Data
	if err := st.c.WritePDU(&out); err != nil {
		t.Errorf("target: write: %v", err)
	}
}

// answer builds the target's answer to every key of the last request:
// the first choice of a list, the value offered otherwise, with overrides
// given as key=value strings (key=- leaves the key unanswered).
func (st *scriptedTarget) answer(over ...string) []byte {
	var in text.Pairs
	_ = text.Parse(st.reqs[len(st.reqs)-1].Data, &in)
	o := map[string]string{}
	for _, kv := range over {
		k, v, _ := strings.Cut(kv, "=")
		o[k] = v
	}
	var b []byte
	for _, p := range in.All() {
		v := p.Value
		if i := strings.IndexByte(v, ','); i >= 0 {
			v = v[:i]
		}
		ov, over := o[p.Key]
		if over {
			v = ov
			delete(o, p.Key)
		}
		// Our MaxRecvDataSegmentLength is a declaration, not an answer.
		if v == "-" || p.Key == "MaxRecvDataSegmentLength" && !over {
			continue
		}
		b, _ = text.AppendPair(b, p.Key, v)
	}
	for k, v := range o { // extra keys of the target's own
		b, _ = text.AppendPair(b, k, v)
	}
	return b
}

// keys encodes key=value pairs.
func keys(kv ...string) []byte {
	var b []byte
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		b, _ = text.AppendPair(b, k, v)
	}
	return b
}

// runLogin logs in over a pipe against script, which drives st.
func runLogin(t *testing.T, cfg Config, script func(st *scriptedTarget)) (*Conn, *scriptedTarget, error) {
	t.Helper()
	x, y := net.Pipe()
	t.Cleanup(func() { x.Close(); y.Close() })
	cfg.InitiatorName = "iqn.2026-11.org.goiser:i"
	cfg.TargetName = "iqn.2026-11.org.goiser:t"
	cfg.LoginTimeout = 5 * time.Second
	cfg.DialContext = func(context.Context, string, string) (net.Conn, error) { return x, nil }
	st := &scriptedTarget{c: NewConn(y)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		script(st)
	}()
	c, err := DialConn(context.Background(), "pipe", cfg)
	if err != nil {
		y.Close()
	}
	<-done
	return c, st, err
}

var (
	secToOp = pdu.LoginResponse{Transit: true, CSG: pdu.StageSecurity, NSG: pdu.StageOperational}
	opToFFP = pdu.LoginResponse{Transit: true, CSG: pdu.StageOperational, NSG: pdu.StageFullFeature, TSIH: 9}
)

func with(r pdu.LoginResponse, data []byte) pdu.LoginResponse { r.Data = data; return r }

func TestLoginContinuedResponse(t *testing.T) {
	c, st, err := runLogin(t, Config{}, func(st *scriptedTarget) {
		st.step(t, with(secToOp, keys("AuthMethod=None")))
		// The operational answer comes in two PDUs (C bit).
		var full []byte
		st.stepFunc(t, func() pdu.LoginResponse {
			full = st.answer("MaxRecvDataSegmentLength=4096", "MaxBurstLength=65536", "X-vendor-key=1")
			// The operational answer comes in two PDUs (C bit).
			first := with(opToFFP, full[:20])
			first.Continue, first.Transit, first.NSG, first.TSIH = true, false, 0, 0
			return first
		})
		st.step(t, with(opToFFP, full[20:]))
		// Our answer to X-vendor-key (NotUnderstood) forces one more round.
		st.step(t, opToFFP)
	})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	p := c.Params()
	if p.TSIH != 9 || p.TargetMaxRecvDataSegmentLength != 4096 || p.MaxBurstLength != 65536 {
		t.Fatalf("params %+v", p)
	}
	// The request after a C=1 response is empty with T=0 (RFC 7143 §11.12.2).
	if r := st.reqs[2]; r.Transit || len(r.Data) != 0 {
		t.Fatalf("continuation request T=%v data %q", r.Transit, r.Data)
	}
	if got := string(st.reqs[3].Data); !strings.Contains(got, "X-vendor-key=NotUnderstood") {
		t.Fatalf("no NotUnderstood for the target's unknown key: %q", got)
	}
}

func TestLoginFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		script func(t *testing.T, st *scriptedTarget)
		want   string
	}{
		{
			name: "redirect",
			script: func(t *testing.T, st *scriptedTarget) {
				r := pdu.LoginResponse{Status: pdu.LoginTargetMovedTemp, Data: keys("TargetAddress=10.0.0.1:3260,1")}
				st.step(t, r)
			},
			want: "target moved temporarily",
		},
		{
			name: "tsih-zero",
			script: func(t *testing.T, st *scriptedTarget) {
				st.step(t, with(secToOp, keys("AuthMethod=None")))
				r := opToFFP
				r.TSIH = 0
				st.stepFunc(t, func() pdu.LoginResponse { return with(r, st.answer()) })
			},
			want: "TSIH 0",
		},
		{
			name: "digest-not-offered",
			script: func(t *testing.T, st *scriptedTarget) {
				st.step(t, with(secToOp, keys("AuthMethod=None")))
				st.stepFunc(t, func() pdu.LoginResponse { return with(opToFFP, st.answer("HeaderDigest=CRC32C")) })
			},
			want: "HeaderDigest",
		},
		{
			name: "required-digest-refused",
			cfg:  Config{HeaderDigest: DigestRequireCRC32C},
			script: func(t *testing.T, st *scriptedTarget) {
				st.step(t, with(secToOp, keys("AuthMethod=None")))
				st.stepFunc(t, func() pdu.LoginResponse { return with(opToFFP, st.answer("HeaderDigest=None")) })
			},
			want: "refused CRC32C",
		},
		{
			name: "unanswered-offer",
			script: func(t *testing.T, st *scriptedTarget) {
				st.step(t, with(secToOp, keys("AuthMethod=None")))
				st.stepFunc(t, func() pdu.LoginResponse { return with(opToFFP, st.answer("MaxBurstLength=-")) })
			},
			want: "without answering [MaxBurstLength]",
		},
		{
			name: "skip-operational",
			script: func(t *testing.T, st *scriptedTarget) {
				r := secToOp
				r.NSG = pdu.StageFullFeature
				st.step(t, with(r, keys("AuthMethod=None")))
			},
			want: "without operational negotiation",
		},
		{
			name: "chap-refused",
			cfg:  Config{CHAP: &CHAP{User: "u", Secret: "secretsecret1"}},
			script: func(t *testing.T, st *scriptedTarget) {
				st.step(t, pdu.LoginResponse{CSG: pdu.StageSecurity, Data: keys("AuthMethod=None")})
			},
			want: "AuthMethod",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runLogin(t, tc.cfg, func(st *scriptedTarget) { tc.script(t, st) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("login: %v, want an error mentioning %q", err, tc.want)
			}
			var le *LoginError
			if tc.name == "redirect" && (!errors.As(err, &le) || le.Status.Class() != pdu.ClassRedirection) {
				t.Fatalf("redirect: %v is not a LoginError of class 1", err)
			}
		})
	}
}

// TestLoginLIOAnswers logs in against a scripted target that answers
// like LIO (drivers/target/iscsi/iscsi_target_parameters.c): it leaves
// out the answers RFC 7143 §6.2 makes optional, the Boolean offers whose
// outcome the offer decides (OR keys offered Yes, AND keys offered No).
// An omitted answer to any other offer still fails the login.
func TestLoginLIOAnswers(t *testing.T) {
	lio := func(omit ...string) func(st *scriptedTarget) {
		return func(st *scriptedTarget) {
			st.step(t, with(secToOp, keys("AuthMethod=None", "TargetPortalGroupTag=1")))
			st.stepFunc(t, func() pdu.LoginResponse {
				over := []string{"MaxRecvDataSegmentLength=262144"}
				for _, k := range omit {
					over = append(over, k+"=-")
				}
				return with(opToFFP, st.answer(over...))
			})
		}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		omit []string
		want string // error; "" for success
	}{
		{name: "defaults", omit: []string{"InitialR2T", "DataPDUInOrder", "DataSequenceInOrder"}},
		{name: "immediate-data-no", cfg: Config{ImmediateData: No},
			omit: []string{"InitialR2T", "DataPDUInOrder", "DataSequenceInOrder", "ImmediateData"}},
		{name: "initial-r2t-no", cfg: Config{InitialR2T: No}, omit: []string{"InitialR2T"},
			want: "without answering [InitialR2T] (RFC 7143 §6.2 requires an answer)"},
		{name: "immediate-data-yes", omit: []string{"ImmediateData"}, want: "without answering [ImmediateData]"},
		{name: "numeric", omit: []string{"MaxOutstandingR2T", "DefaultTime2Wait"},
			want: "without answering [DefaultTime2Wait MaxOutstandingR2T]"},
		{name: "list", omit: []string{"HeaderDigest"}, want: "without answering [HeaderDigest]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, st, err := runLogin(t, tc.cfg, lio(tc.omit...))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("login: %v, want an error mentioning %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			// The omitted keys were offered, once.
			if got := string(st.reqs[1].Data); !strings.Contains(got, "InitialR2T=Yes") || !strings.Contains(got, "DataPDUInOrder=Yes") {
				t.Fatalf("operational offer %q", got)
			}
			p := c.Params()
			if !p.InitialR2T || p.ImmediateData != (tc.cfg.ImmediateData != No) || p.TargetMaxRecvDataSegmentLength != 262144 || p.TargetPortalGroupTag != 1 {
				t.Fatalf("params %+v", p)
			}
		})
	}
}

// TestLoginResponseTooLong has a target continue its Login Response past
// text.MaxTextLen: the initiator gives up instead of buffering it.
func TestLoginResponseTooLong(t *testing.T) {
	piece := bytes.Repeat([]byte{'a'}, 8192)
	_, _, err := runLogin(t, Config{}, func(st *scriptedTarget) {
		for range text.MaxTextLen/len(piece) + 1 {
			st.step(t, pdu.LoginResponse{CSG: pdu.StageSecurity, Continue: true, Data: piece})
		}
	})
	if !errors.Is(err, text.ErrTextTooLong) {
		t.Fatalf("login: %v, want ErrTextTooLong", err)
	}
}

// TestLoginContinuedByServer runs the initiator's login exchanges against
// our target over TCP, declaring MaxRecvDataSegmentLength=512 and adding
// keys the target does not know, so that the target's operational answer
// comes back in several Login Responses with the C bit.
func TestLoginContinuedByServer(t *testing.T) {
	mem, err := backend.NewMemory(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: mem}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: "iqn.2026-11.org.goiser:t", LUNs: luns}}}
	tr, err := tcp.Listen("127.0.0.1:0", tcp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(tr) }()
	t.Cleanup(func() { _ = srv.Close(); _ = luns.Close() })

	cfg, err := Config{InitiatorName: "iqn.2026-11.org.goiser:i", TargetName: "iqn.2026-11.org.goiser:t",
		MaxRecvDataSegmentLength: 512}.withDefaults(false)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	rec := &pduRecorder{Conn: nc}
	c := NewConn(rec)
	t.Cleanup(func() { c.Close() })
	c.SetMaxRecvDataSegmentLength(8192)
	l := &login{t: c, cfg: cfg, log: cfg.Logger}
	if err := l.newNegotiator(); err != nil {
		t.Fatal(err)
	}
	for rounds := 0; l.step != stepFullFeature; rounds++ {
		if rounds > 8 {
			t.Fatal("login did not finish")
		}
		if l.step == stepOperational && !l.out.Has("X-org.goiser.k0") {
			for i := range 40 {
				l.out.Set("X-org.goiser.k"+strconv.Itoa(i), "1")
			}
		}
		if err := l.exchange(); err != nil {
			t.Fatalf("login %v: %v", l.step, err)
		}
	}
	if _, err := l.params(); err != nil {
		t.Fatal(err)
	}
	if rec.continued < 2 {
		t.Fatalf("%d Login Responses with the C bit, want the answer continued", rec.continued)
	}
	if rec.largest > 512 {
		t.Fatalf("a Login Response carried %d bytes, more than the 512 we declared", rec.largest)
	}
}

// pduRecorder watches the Login Responses read through it.
type pduRecorder struct {
	net.Conn
	buf       []byte
	continued int // Login Responses with the C bit
	largest   int // largest data segment
}

func (r *pduRecorder) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	r.buf = append(r.buf, b[:n]...)
	for len(r.buf) >= BHSLen {
		h := pdu.BHS(r.buf[:BHSLen])
		dl := int(h.DataSegmentLength())
		size := BHSLen + (dl+3)&^3
		if len(r.buf) < size {
			break
		}
		if h.Opcode() == pdu.OpLoginResp {
			if r.buf[1]&0x40 != 0 {
				r.continued++
			}
			r.largest = max(r.largest, dl)
		}
		r.buf = r.buf[size:]
	}
	return n, err
}
