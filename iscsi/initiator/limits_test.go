package initiator_test

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// rawLogin logs in by hand over TCP, one Login Request per stage with
// the given keys (security, then operational), fetching continued Login
// Responses with empty requests. It checks every response against the
// rules of RFC 7143 §11.13 that a long answer exercises and returns the
// connection in the full feature phase, the joined operational answer,
// and how many PDUs it took.
func rawLogin(t *testing.T, ctx context.Context, addr string, maxRecv uint32, sec, op []string) (*initiator.Conn, text.Pairs, int) {
	t.Helper()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := initiator.NewConn(nc)
	t.Cleanup(func() { c.Close() })
	// ReadPDU fails on a data segment longer than this.
	c.SetMaxRecvDataSegmentLength(maxRecv)
	isid := pdu.ISID{0x80, 0, 0, 0, 0x51, 0x7}
	var statSN uint32
	send := func(r pdu.LoginRequest) {
		t.Helper()
		r.ISID, r.ITT, r.CmdSN, r.ExpStatSN = isid, 1, 10, statSN+1
		p := &initiator.PDU{Data: r.Data}
		if _, err := r.AppendBinary(p.BHS[:0]); err != nil {
			t.Fatal(err)
		}
		if err := c.WritePDU(p); err != nil {
			t.Fatalf("send login: %v", err)
		}
	}
	// exchange sends req and reads the whole answer.
	exchange := func(req pdu.LoginRequest, kv []string) (pdu.LoginResponse, []byte, int) {
		t.Helper()
		for _, s := range kv {
			k, v, _ := bytes.Cut([]byte(s), []byte("="))
			req.Data, _ = text.AppendPair(req.Data, string(k), string(v))
		}
		send(req)
		var all []byte
		for n := 1; ; n++ {
			p := &initiator.PDU{}
			if err := c.ReadPDUContext(ctx, p); err != nil {
				t.Fatalf("login response %d: %v", n, err)
			}
			var rsp pdu.LoginResponse
			if err := rsp.UnmarshalBinary(p.BHS[:]); err != nil {
				t.Fatalf("login response %d: %v", n, err)
			}
			if rsp.Status != pdu.LoginSuccess {
				t.Fatalf("login response %d: status %v", n, rsp.Status)
			}
			statSN = rsp.StatSN
			all = append(all, p.Data...)
			if !rsp.Continue {
				return rsp, all, n
			}
			send(pdu.LoginRequest{CSG: req.CSG}) // fetch the rest
		}
	}
	rsp, _, _ := exchange(pdu.LoginRequest{Transit: true, CSG: pdu.StageSecurity, NSG: pdu.StageOperational}, sec)
	if !rsp.Transit || rsp.NSG != pdu.StageOperational {
		t.Fatalf("security stage: T=%v NSG=%v", rsp.Transit, rsp.NSG)
	}
	rsp, data, n := exchange(pdu.LoginRequest{Transit: true, CSG: pdu.StageOperational, NSG: pdu.StageFullFeature}, op)
	if !rsp.Transit || rsp.NSG != pdu.StageFullFeature || rsp.TSIH == 0 {
		t.Fatalf("operational stage: T=%v NSG=%v TSIH=%d", rsp.Transit, rsp.NSG, rsp.TSIH)
	}
	var got text.Pairs
	if err := text.Parse(data, &got); err != nil {
		t.Fatalf("joined operational answer: %v", err)
	}
	c.SetSeqNumbers(10, statSN+1)
	return c, got, n
}

// TestServerLoginResponseContinued logs in to our target over TCP
// declaring MaxRecvDataSegmentLength=512 with keys whose answers need
// more: the target splits its Login Response with the C bit, and the
// session works afterwards.
func TestServerLoginResponseContinued(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	op := []string{"MaxRecvDataSegmentLength=512", "HeaderDigest=None", "DataDigest=None"}
	for i := range 40 {
		op = append(op, "X-org.goiser.test.key-"+strconv.Itoa(i)+"=1")
	}
	c, got, n := rawLogin(t, ctx, srv.addr, 512,
		[]string{"InitiatorName=" + testInitiator, "TargetName=" + testTarget, "AuthMethod=None"}, op)
	if n < 3 {
		t.Fatalf("operational answer in %d PDUs, want it continued", n)
	}
	if v, _ := got.Get("X-org.goiser.test.key-39"); v != text.NotUnderstood {
		t.Fatalf("X-org.goiser.test.key-39=%q", v)
	}
	checkRawAlive(t, c)
}

// TestServerTextBounded drives a discovery session over TCP with Text
// Requests continued past the target's MaxTextLength: the exchange ends
// with a Reject and the session still answers SendTargets.
func TestServerTextBounded(t *testing.T) {
	srv := startServerWith(t, func(s *iscsi.Server) { s.MaxTextLength = 32 << 10 })
	ctx := testCtx(t)
	c, _, _ := rawLogin(t, ctx, srv.addr, 8192,
		[]string{"InitiatorName=" + testInitiator, "SessionType=Discovery", "AuthMethod=None"}, nil)
	textReq := func(ttt uint32, cont bool, data []byte) *initiator.PDU {
		t.Helper()
		cmdSN, expStatSN, _ := c.SeqNumbers()
		r := pdu.TextRequest{Immediate: true, Final: !cont, Continue: cont, ITT: 5, TTT: ttt, CmdSN: cmdSN, ExpStatSN: expStatSN, Data: data}
		p := &initiator.PDU{Data: data}
		if _, err := r.AppendBinary(p.BHS[:0]); err != nil {
			t.Fatal(err)
		}
		if err := c.WritePDU(p); err != nil {
			t.Fatal(err)
		}
		rp := &initiator.PDU{}
		if err := c.ReadPDUContext(ctx, rp); err != nil {
			t.Fatalf("text: %v", err)
		}
		advance(c, rp)
		return rp
	}
	chunk := bytes.Repeat([]byte{'a'}, 8192)
	ttt := uint32(0xffffffff)
	for i := range 64 { // 512 KiB
		p := textReq(ttt, true, chunk)
		if p.Opcode() == pdu.OpReject {
			if i != 4 { // 5 * 8 KiB > 32 KiB
				t.Fatalf("Reject after %d PDUs, want 5", i+1)
			}
			break
		}
		if p.Opcode() != pdu.OpTextResp || i == 63 {
			t.Fatalf("PDU %d: %v, want a Reject past 32 KiB", i, p.Opcode())
		}
		ttt = p.U32(20)
	}
	p := textReq(0xffffffff, false, []byte("SendTargets=All\x00"))
	if p.Opcode() != pdu.OpTextResp || !bytes.Contains(p.Data, []byte("TargetName="+testTarget)) {
		t.Fatalf("SendTargets after the Reject: %v %q", p.Opcode(), p.Data)
	}
}
