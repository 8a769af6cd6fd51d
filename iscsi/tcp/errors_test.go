package tcp_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi/backend"
)

// rawSend writes bytes as they are, bypassing the PDU encoder.
func (c *client) rawSend(b []byte) {
	c.t.Helper()
	if err := c.nc.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("raw send: %v", err)
	}
}

// nopHeader returns an encoded immediate NOP-Out header.
func (c *client) nopHeader(itt uint32) []byte {
	b, err := (&pdu.NOPOut{Immediate: true, ITT: itt, TTT: pdu.ReservedTag, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}).AppendBinary(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// expectReject reads PDUs until a Reject and checks its reason and header.
func (c *client) expectReject(reason pdu.RejectReason, hdr []byte) {
	c.t.Helper()
	p := c.recv()
	rj, ok := p.(*pdu.Reject)
	if !ok {
		c.t.Fatalf("got %v, want Reject", p.Opcode())
	}
	if rj.Reason != reason {
		c.t.Fatalf("Reject reason %v, want %v", rj.Reason, reason)
	}
	if hdr != nil && !bytes.Equal(rj.Data, hdr[:pdu.BHSLen]) {
		c.t.Fatalf("Reject carries header %x, want %x", rj.Data, hdr[:pdu.BHSLen])
	}
}

// TestMalformedPDUs sends bad PDUs: the ones whose header can be trusted get
// a Reject and the connection lives on; the others end it.
func TestMalformedPDUs(t *testing.T) {
	ts := startServer(t, nil)

	t.Run("unknown opcode", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.isid[5] = 1
		c.login()
		h := c.nopHeader(5)
		h[0] = 0x40 | 0x1c // no such initiator opcode
		c.rawSend(h)
		c.expectReject(pdu.RejectCommandNotSupported, h)
		c.nop(nil) // still alive
	})
	t.Run("reserved field", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.isid[5] = 2
		c.login()
		h := c.nopHeader(6)
		h[2] = 0x11 // reserved byte of NOP-Out
		c.rawSend(h)
		c.expectReject(pdu.RejectInvalidPDUField, h)
		c.nop(nil)
	})
	t.Run("SNACK", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.isid[5] = 3
		c.login()
		b, err := (&pdu.SNACKRequest{ITT: 7, TTT: pdu.ReservedTag, ExpStatSN: c.expStatSN}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		c.rawSend(b)
		c.expectReject(pdu.RejectProtocolError, b)
		c.nop(nil)
	})
	t.Run("oversized data segment", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.isid[5] = 4
		c.login()
		h := c.nopHeader(8)
		pdu.BHS(h).SetDataSegmentLength(uint32(c.mrdsl + 4))
		c.rawSend(h)
		c.expectReject(pdu.RejectProtocolError, h)
		c.expectClosed()
	})
	t.Run("bad header digest", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.isid[5] = 5
		c.login("HeaderDigest=CRC32C")
		c.nop(nil)
		h := c.nopHeader(9)
		h = binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))+1)
		c.rawSend(h)
		c.expectClosed()
	})
	t.Run("bad data digest", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.isid[5] = 6
		c.login("DataDigest=CRC32C")
		c.nop([]byte("abcd"))
		h := c.nopHeader(10)
		pdu.BHS(h).SetDataSegmentLength(4)
		h = append(h, "abcd"...)
		h = binary.LittleEndian.AppendUint32(h, 12345)
		c.rawSend(h)
		c.expectReject(pdu.RejectDataDigestError, nil)
		c.expectClosed()
	})
	t.Run("login in full feature phase", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.isid[5] = 7
		c.login()
		c.send(&pdu.LoginRequest{CSG: pdu.StageOperational, ISID: c.isid, ITT: 11, CmdSN: c.cmdSN})
		c.expectReject(pdu.RejectProtocolError, nil)
		c.expectClosed()
	})
	if !strings.Contains(ts.logs.String(), "reject") {
		t.Errorf("no reject log line")
	}
}

// TestCmdSNWindow checks RFC 7143 §4.2.2.1: a command outside
// [ExpCmdSN, MaxCmdSN] is ignored; the next good one is served.
func TestCmdSNWindow(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.QueueDepth = 8 })
	c := dial(t, ts.addr)
	c.login()
	if d := c.maxCmdSN - c.cmdSN + 1; d != 8 {
		t.Fatalf("window of %d commands, want 8", d)
	}
	for _, sn := range []uint32{c.maxCmdSN + 1, c.cmdSN - 1, c.cmdSN + 1000} {
		cmd := pdu.SCSICommand{Final: true, Read: true, ITT: 100 + sn, ExpectedDataTransferLength: 36, CmdSN: sn, ExpStatSN: c.expStatSN}
		copy(cmd.CDB[:], inquiry(36))
		c.send(&cmd)
	}
	if p, err := c.tryRecv(200 * time.Millisecond); err == nil {
		t.Fatalf("got %v for a command outside the CmdSN window", p.Opcode())
	}
	if res := c.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("INQUIRY after ignored commands: %#x", res.status)
	}
	if !strings.Contains(ts.logs.String(), "CmdSN outside the window") {
		t.Errorf("no log line for the ignored commands")
	}
	c.logout()
}

// chapLogin runs a CHAP login with MD5; mutual adds the initiator's
// challenge.
func chapLogin(t *testing.T, c *client, user, secret string, mutual bool) (*pdu.LoginResponse, map[string]string) {
	t.Helper()
	rsp := c.loginReq(pdu.StageSecurity, pdu.StageOperational, false,
		"InitiatorName="+testInitiator, "TargetName="+testTarget, "SessionType=Normal", "AuthMethod=CHAP,None")
	if rsp.Status != pdu.LoginSuccess || parseText(rsp.Data)["AuthMethod"] != "CHAP" {
		t.Fatalf("AuthMethod: %v %q", rsp.Status, rsp.Data)
	}
	rsp = c.loginReq(pdu.StageSecurity, pdu.StageOperational, false, "CHAP_A=5")
	kv := parseText(rsp.Data)
	if rsp.Status != pdu.LoginSuccess || kv["CHAP_A"] != "5" {
		t.Fatalf("CHAP_A: %v %q", rsp.Status, rsp.Data)
	}
	id, _ := strconv.Atoi(kv["CHAP_I"])
	ch, err := hex.DecodeString(strings.TrimPrefix(kv["CHAP_C"], "0x"))
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	h.Write([]byte{byte(id)})
	h.Write([]byte(secret))
	h.Write(ch)
	keys := []string{"CHAP_N=" + user, "CHAP_R=0x" + hex.EncodeToString(h.Sum(nil))}
	if mutual {
		keys = append(keys, "CHAP_I=42", "CHAP_C=0x0102030405060708090a0b0c0d0e0f10")
	}
	rsp = c.loginReq(pdu.StageSecurity, pdu.StageOperational, true, keys...)
	return rsp, parseText(rsp.Data)
}

// TestCHAP checks one-way and mutual CHAP and the failure of a wrong
// secret (status 0x0201 and a log line).
func TestCHAP(t *testing.T) {
	ts := startServer(t, nil, func(_ *iscsi.Server, tg *iscsi.Target) {
		tg.CHAP = &iscsi.CHAP{User: "alice", Secret: "alice-secret-1", MutualUser: "target", MutualSecret: "target-secret-2"}
	})
	t.Run("wrong secret", func(t *testing.T) {
		c := dial(t, ts.addr)
		rsp, _ := chapLogin(t, c, "alice", "not-the-secret", false)
		if rsp.Status != pdu.LoginAuthFailed {
			t.Fatalf("status %v, want authentication failure", rsp.Status)
		}
		c.expectClosed()
		ts.waitLog(t, "authentication failure")
	})
	t.Run("no auth", func(t *testing.T) {
		c := dial(t, ts.addr)
		rsp := c.loginReq(pdu.StageOperational, pdu.StageFullFeature, true,
			"InitiatorName="+testInitiator, "TargetName="+testTarget)
		if rsp.Status != pdu.LoginAuthFailed {
			t.Fatalf("status %v, want authentication failure", rsp.Status)
		}
	})
	t.Run("one-way", func(t *testing.T) {
		c := dial(t, ts.addr)
		rsp, _ := chapLogin(t, c, "alice", "alice-secret-1", false)
		if rsp.Status != pdu.LoginSuccess || !rsp.Transit {
			t.Fatalf("status %v transit %v", rsp.Status, rsp.Transit)
		}
		rsp = c.loginReq(pdu.StageOperational, pdu.StageFullFeature, true)
		if rsp.Status != pdu.LoginSuccess || rsp.NSG != pdu.StageFullFeature {
			t.Fatalf("operational: %v", rsp.Status)
		}
		c.keys = map[string]string{}
		if res := c.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
			t.Fatalf("INQUIRY: %#x", res.status)
		}
	})
	t.Run("mutual", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.isid[5] = 9
		rsp, kv := chapLogin(t, c, "alice", "alice-secret-1", true)
		if rsp.Status != pdu.LoginSuccess {
			t.Fatalf("status %v", rsp.Status)
		}
		h := md5.New()
		h.Write([]byte{42})
		h.Write([]byte("target-secret-2"))
		h.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		if kv["CHAP_N"] != "target" || kv["CHAP_R"] != "0x"+hex.EncodeToString(h.Sum(nil)) {
			t.Fatalf("target's mutual answer %q/%q", kv["CHAP_N"], kv["CHAP_R"])
		}
	})
}

// gateBackend is a memory backend whose reads wait for a gate, to hold
// commands in flight.
type gateBackend struct {
	*backend.Memory
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func newGateBackend(t testing.TB) *gateBackend {
	m, err := backend.NewMemory(16 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return &gateBackend{Memory: m, entered: make(chan struct{}, 64), gate: make(chan struct{})}
}

func (g *gateBackend) ReadAt(p []byte, off int64) (int, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.Memory.ReadAt(p, off)
}

func (g *gateBackend) open() { g.once.Do(func() { close(g.gate) }) }

// TestTMFAbort aborts a WRITE that waits for its Data-Out and a READ that
// is executing: no response comes for either, the TMF responses come after
// they are gone, and an unknown task gets "task does not exist".
func TestTMFAbort(t *testing.T) {
	g := newGateBackend(t)
	ts := startServer(t, g)
	t.Cleanup(g.open)
	c := dial(t, ts.addr)
	c.login("ImmediateData=No", "InitialR2T=Yes")

	// A WRITE that gets an R2T we never answer.
	w := pdu.SCSICommand{Final: true, Write: true, ITT: 500, ExpectedDataTransferLength: 4096, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	copy(w.CDB[:], write10(0, 8))
	c.cmdSN++
	c.send(&w)
	if r2t, ok := c.recv().(*pdu.R2T); !ok || r2t.ITT != 500 {
		t.Fatalf("no R2T for the WRITE")
	}
	c.send(&pdu.TaskMgmtRequest{Immediate: true, Function: pdu.TMFAbortTask, ITT: 501, ReferencedTaskTag: 500,
		CmdSN: c.cmdSN, ExpStatSN: c.expStatSN, RefCmdSN: w.CmdSN})
	if r, ok := c.recv().(*pdu.TaskMgmtResponse); !ok || r.ITT != 501 || r.Response != pdu.TMFComplete {
		t.Fatalf("ABORT TASK of the WRITE: %+v", r)
	}
	// A late Data-Out for the aborted task is discarded silently.
	c.send(&pdu.DataOut{Final: true, ITT: 500, TTT: 1, Data: make([]byte, 512)})

	// A READ blocked in the backend.
	r := pdu.SCSICommand{Final: true, Read: true, ITT: 600, ExpectedDataTransferLength: 512, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	copy(r.CDB[:], read10(0, 1))
	c.cmdSN++
	c.send(&r)
	select {
	case <-g.entered:
	case <-time.After(ioTimeout):
		t.Fatal("READ never reached the backend")
	}
	c.send(&pdu.TaskMgmtRequest{Immediate: true, Function: pdu.TMFAbortTask, ITT: 601, ReferencedTaskTag: 600,
		CmdSN: c.cmdSN, ExpStatSN: c.expStatSN})
	if p, err := c.tryRecv(100 * time.Millisecond); err == nil {
		t.Fatalf("got %v while the aborted READ still runs", p.Opcode())
	}
	g.open()
	p := c.recv()
	if tr, ok := p.(*pdu.TaskMgmtResponse); !ok || tr.ITT != 601 || tr.Response != pdu.TMFComplete {
		t.Fatalf("after the READ ended: got %v, want the TMF response", p.Opcode())
	}
	// Unknown task, unsupported functions.
	for _, tc := range []struct {
		fn   pdu.TMFunction
		want pdu.TMFResponse
	}{
		{pdu.TMFAbortTask, pdu.TMFTaskNotExist},
		{pdu.TMFClearACA, pdu.TMFNotSupported},
		{pdu.TMFTaskReassign, pdu.TMFReassignNotSupported},
		{pdu.TMFLogicalUnitReset, pdu.TMFComplete},
		{pdu.TMFAbortTaskSet, pdu.TMFComplete},
	} {
		c.send(&pdu.TaskMgmtRequest{Immediate: true, Function: tc.fn, ITT: 700, ReferencedTaskTag: 12345, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN})
		if r, ok := c.recv().(*pdu.TaskMgmtResponse); !ok || r.Response != tc.want {
			t.Fatalf("%v: %+v, want %v", tc.fn, r, tc.want)
		}
	}
	// The session still works (the LU reset left a unit attention).
	for range 3 {
		res := c.scsiCmd([]byte{0, 0, 0, 0, 0, 0}, false, 0, nil)
		if res.status == 0 {
			c.logout()
			return
		}
	}
	t.Fatal("TEST UNIT READY never succeeded after the reset")
}

// TestNOPPingTimeout checks that the target pings an idle connection and
// drops it when the ping is not answered, and keeps one that answers.
func TestNOPPingTimeout(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) {
		s.NOPInterval = 30 * time.Millisecond
		s.NOPTimeout = 100 * time.Millisecond
	})
	silent := dial(t, ts.addr)
	silent.login()
	answering := dial(t, ts.addr)
	answering.isid[5] = 1
	answering.login()

	var wg sync.WaitGroup
	wg.Add(1)
	pings := 0
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(600 * time.Millisecond)
		for time.Now().Before(deadline) {
			p, err := answering.tryRecv(time.Until(deadline))
			if err != nil {
				return
			}
			if n, ok := p.(*pdu.NOPIn); ok && n.TTT != pdu.ReservedTag {
				pings++
				if err := answering.w.WritePDU(&pdu.NOPOut{Immediate: true, ITT: pdu.ReservedTag, TTT: n.TTT,
					CmdSN: answering.cmdSN, ExpStatSN: answering.expStatSN}); err != nil {
					return
				}
			}
		}
	}()
	got := 0
	for {
		p, err := silent.tryRecv(ioTimeout)
		if err != nil {
			break
		}
		if n, ok := p.(*pdu.NOPIn); !ok || n.ITT != pdu.ReservedTag || n.TTT == pdu.ReservedTag {
			t.Fatalf("got %v, want a target ping", p.Opcode())
		}
		got++
	}
	if got == 0 {
		t.Fatal("connection closed without a ping")
	}
	wg.Wait()
	if pings == 0 {
		t.Fatal("the answering connection got no ping")
	}
	if res := answering.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("answering connection: INQUIRY %#x", res.status)
	}
	ts.waitLog(t, "NOP-In ping unanswered")
}

// TestShutdownInFlight shuts the server down while a READ runs: the READ
// completes with its data, the initiator is asked to log out, and Shutdown
// returns once it has.
func TestShutdownInFlight(t *testing.T) {
	g := newGateBackend(t)
	ts := startServer(t, g)
	t.Cleanup(g.open)
	c := dial(t, ts.addr)
	c.login()
	r := pdu.SCSICommand{Final: true, Read: true, ITT: 42, ExpectedDataTransferLength: 4096, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	copy(r.CDB[:], read10(0, 8))
	c.cmdSN++
	c.send(&r)
	<-g.entered

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		shut <- ts.srv.Shutdown(ctx)
	}()
	gotAsync := false
	deadline := time.After(ioTimeout)
	for !gotAsync {
		p := c.recv()
		a, ok := p.(*pdu.AsyncMessage)
		if !ok || a.Event != pdu.AsyncLogoutRequested {
			t.Fatalf("got %v, want an Async logout request", p.Opcode())
		}
		gotAsync = true
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a command was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.open()
	p := c.recv()
	din, ok := p.(*pdu.DataIn)
	if !ok || !din.HasStatus || din.Status != 0 || len(din.Data) != 4096 {
		t.Fatalf("READ response after shutdown started: %v", p.Opcode())
	}
	c.logout()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-deadline:
		t.Fatal("Shutdown did not return after the logout")
	}
	// New connections are refused.
	if _, err := dialErr(ts.addr); err == nil {
		t.Fatal("connected after Shutdown")
	}
}

// TestSessionIsolation breaks one session with garbage while another runs
// I/O; the other never notices.
func TestSessionIsolation(t *testing.T) {
	ts := startServer(t, nil)
	good := dial(t, ts.addr)
	good.login()
	data := pattern(8192, 5)
	for i := range 20 {
		bad := dial(t, ts.addr)
		bad.isid[5] = byte(i + 1)
		if i%2 == 0 {
			bad.login()
		}
		bad.rawSend(bytes.Repeat([]byte{0xff}, 100))
		res := good.scsiCmd(write10(uint32(i*16), 16), false, len(data), data)
		if res.status != 0 {
			t.Fatalf("WRITE %d on the good session: %#x", i, res.status)
		}
		res = good.scsiCmd(read10(uint32(i*16), 16), true, len(data), nil)
		if res.status != 0 || !bytes.Equal(res.data, data) {
			t.Fatalf("READ %d on the good session failed", i)
		}
		bad.expectClosed()
	}
	good.logout()
}

// TestLUNResetOtherSession resets a LUN from one session while another
// session has a READ executing on it: the READ ends with TASK ABORTED, and
// the reset's response comes only after that (SAM-5 7.6, RFC 7143
// §4.2.3.4).
func TestLUNResetOtherSession(t *testing.T) {
	g := newGateBackend(t)
	ts := startServer(t, g)
	t.Cleanup(g.open)
	a := dial(t, ts.addr)
	a.login()
	b := dial(t, ts.addr)
	b.isid[5] = 1
	b.login()
	r := pdu.SCSICommand{Final: true, Read: true, ITT: 70, ExpectedDataTransferLength: 512, CmdSN: b.cmdSN, ExpStatSN: b.expStatSN}
	copy(r.CDB[:], read10(0, 1))
	b.cmdSN++
	b.send(&r)
	<-g.entered
	a.send(&pdu.TaskMgmtRequest{Immediate: true, Function: pdu.TMFLogicalUnitReset, ITT: 71, ReferencedTaskTag: pdu.ReservedTag,
		CmdSN: a.cmdSN, ExpStatSN: a.expStatSN})
	if p, err := a.tryRecv(100 * time.Millisecond); err == nil {
		t.Fatalf("got %v before the other session's READ ended", p.Opcode())
	}
	g.open()
	if rsp, ok := b.recv().(*pdu.SCSIResponse); !ok || rsp.ITT != 70 || rsp.Status != 0x40 {
		t.Fatalf("other session's READ: %+v, want TASK ABORTED", rsp)
	}
	if rsp, ok := a.recv().(*pdu.TaskMgmtResponse); !ok || rsp.Response != pdu.TMFComplete {
		t.Fatalf("LU reset: %+v", rsp)
	}
	// Both reset at once: neither waits for the other forever.
	for _, c := range []*client{a, b} {
		c.send(&pdu.TaskMgmtRequest{Immediate: true, Function: pdu.TMFLogicalUnitReset, ITT: 80, ReferencedTaskTag: pdu.ReservedTag,
			CmdSN: c.cmdSN, ExpStatSN: c.expStatSN})
	}
	for _, c := range []*client{a, b} {
		if rsp, ok := c.recv().(*pdu.TaskMgmtResponse); !ok || rsp.Response != pdu.TMFComplete {
			t.Fatalf("simultaneous LU reset: %+v", rsp)
		}
	}
}

// TestShutdownNoLogout shuts down while an initiator ignores the logout
// request: after LoginTimeout the connection is closed and Shutdown
// returns; a Shutdown whose context ends first closes everything at once.
func TestShutdownNoLogout(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.LoginTimeout = 100 * time.Millisecond })
	c := dial(t, ts.addr)
	c.login()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if a, ok := c.recv().(*pdu.AsyncMessage); !ok || a.Event != pdu.AsyncLogoutRequested {
		t.Fatal("no logout request")
	}
	c.expectClosed()

	ts2 := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.LoginTimeout = time.Hour })
	c2 := dial(t, ts2.addr)
	c2.login()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := ts2.srv.Shutdown(ctx2); err == nil {
		t.Fatal("Shutdown returned nil although the initiator never logged out")
	}
	c2.expectClosed()
}

// TestLogoutReasons checks the Logout Response codes of RFC 7143 §11.15.1.
func TestLogoutReasons(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.login()
	for _, tc := range []struct {
		reason pdu.LogoutReason
		cid    uint16
		want   pdu.LogoutResponseCode
	}{
		{pdu.LogoutRemoveForRecovery, 0, pdu.LogoutRecoveryUnsupported},
		{pdu.LogoutCloseConnection, 7, pdu.LogoutCIDNotFound},
		{pdu.LogoutCloseConnection, 0, pdu.LogoutSuccess},
	} {
		c.send(&pdu.LogoutRequest{Immediate: true, Reason: tc.reason, CID: tc.cid, ITT: 33, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN})
		if r, ok := c.recv().(*pdu.LogoutResponse); !ok || r.Response != tc.want {
			t.Fatalf("logout %v CID %d: %+v, want %v", tc.reason, tc.cid, r, tc.want)
		}
	}
	c.expectClosed()
}

// TestSetParamsIncomplete: the core always hands over negotiated values;
// zero lengths are refused instead of silently defaulted.
func TestSetParamsIncomplete(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	c := tcp.NewConn(b, tcp.Config{})
	defer c.Close()
	good := iscsi.Params{TargetMaxRecvDSL: 8192, InitiatorMaxRecvDSL: 8192, MaxBurstLength: 262144,
		FirstBurstLength: 65536, MaxOutstandingR2T: 1}
	if err := c.SetParams(good, nil); err != nil {
		t.Fatalf("complete parameters: %v", err)
	}
	bad := good
	bad.MaxBurstLength = 0
	if err := c.SetParams(bad, nil); err == nil {
		t.Fatal("SetParams accepted MaxBurstLength 0")
	}
}
