package iser_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iser"
	"github.com/goiser/goiser/rdma/soft"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

const testIQN = "iqn.2026-12.dev.goiser:iser-test"

// logBuf collects the target's log for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testTarget is an iscsi.Server serving one 64 MiB memory LUN over an
// iSER portal of an in-process rdma/soft fabric.
type testTarget struct {
	p    *soft.Provider
	srv  *iscsi.Server
	tr   *iser.Target
	addr string
	logs *logBuf
	done chan error
}

// startTargetB is startTarget for benchmarks: no leak checks.
func startTargetB(b *testing.B) *testTarget {
	p := soft.New(soft.Config{})
	m, err := backend.NewMemory(64 << 20)
	must(b, err)
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: m}}})
	must(b, err)
	srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: testIQN, LUNs: luns}}, NOPInterval: -1}
	tr, err := iser.Listen("127.0.0.1:3260", iser.TargetConfig{Provider: p})
	must(b, err)
	go func() { _ = srv.Serve(tr) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &testTarget{p: p, srv: srv, tr: tr, addr: "127.0.0.1:3260"}
}

func startTarget(t *testing.T, cfg iser.TargetConfig, opts ...func(*iscsi.Server)) *testTarget {
	t.Helper()
	goroutines := runtime.NumGoroutine()
	logs := &logBuf{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := soft.New(soft.Config{})
	m, err := backend.NewMemory(64 << 20)
	must(t, err)
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: m}}})
	must(t, err)
	srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: testIQN, LUNs: luns}}, Logger: log, NOPInterval: -1}
	for _, o := range opts {
		o(srv)
	}
	if sp, ok := cfg.Provider.(*stallProvider); ok {
		sp.Provider = p
	} else {
		cfg.Provider = p
	}
	cfg.Logger = log
	tr, err := iser.Listen("127.0.0.1:3260", cfg)
	must(t, err)
	tt := &testTarget{p: p, srv: srv, tr: tr, addr: "127.0.0.1:3260", logs: logs, done: make(chan error, 1)}
	go func() { tt.done <- srv.Serve(tr) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-tt.done:
			if !errors.Is(err, iscsi.ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
		if err := tr.Wait(ctx); err != nil {
			t.Errorf("the iSER target did not free its devices: %v", err)
		}
		if s := tr.Stats(); s.BlocksOut != 0 || s.Connections != 0 {
			t.Errorf("after shutdown: %+v; want every buffer back and no connection", s)
		}
		// No goroutine of the target is left.
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines left (%d before):\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
		}
		if t.Failed() {
			t.Logf("target log:\n%s", logs.String())
		}
	})
	return tt
}

func fill(b []byte, seed byte) {
	for i := range b {
		b[i] = byte(i*13) ^ seed ^ byte(i>>9)
	}
}

// TestLoginAndDiscovery: a discovery session over iSER lists the portal,
// and a normal login negotiates the iSER keys (RFC 7145 §6).
func TestLoginAndDiscovery(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	c := dialRaw(t, tt.p, tt.addr, false)
	c.login("")
	c.send(iser.Header{}, &pdu.TextRequest{Final: true, ITT: c.itt, TTT: pdu.ReservedTag, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN,
		Data: keys("SendTargets=All")})
	c.itt++
	c.cmdSN++
	rsp, ok := c.recvPDU().(*pdu.TextResponse)
	if !ok {
		t.Fatal("no Text Response")
	}
	got := string(rsp.Data)
	if !strings.Contains(got, "TargetName="+testIQN) || !strings.Contains(got, "TargetAddress=127.0.0.1:3260,1") {
		t.Fatalf("SendTargets: %q", got)
	}
	c.logout()

	n := dialRaw(t, tt.p, tt.addr, false)
	n.login(testIQN)
	for _, k := range []string{"MaxRecvDataSegmentLength", "HeaderDigest", "DataDigest"} {
		if v, ok := n.keys[k]; ok && k == "MaxRecvDataSegmentLength" {
			t.Errorf("the target declared %s=%s on iSER", k, v)
		}
	}
	if v := n.keys["TargetRecvDataSegmentLength"]; v != "" && v != "8192" {
		t.Errorf("TargetRecvDataSegmentLength=%s, want at most the receive size 8192", v)
	}
	if res := n.command([]byte{0x12, 0, 0, 0, 36, 0}, true, 36, 0, 0, 0); res.status != 0 || !bytes.Contains(n.data()[:36], []byte("goiser")) {
		t.Fatalf("INQUIRY: status %#x data %q", res.status, n.data()[:36])
	}
	n.logout()
}

// TestDataRoundTrip writes and reads back every size from 512 B to 8 MiB,
// with immediate and unsolicited data on and off.
func TestDataRoundTrip(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	for _, mode := range []struct {
		name string
		keys []string
	}{
		{"rdma-only", []string{"ImmediateData=No", "InitialR2T=Yes"}},
		{"immediate", []string{"ImmediateData=Yes", "InitialR2T=Yes"}},
		{"unsolicited", []string{"ImmediateData=Yes", "InitialR2T=No"}},
		{"unsolicited-no-immediate", []string{"ImmediateData=No", "InitialR2T=No"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			c := dialRaw(t, tt.p, tt.addr, false)
			c.login(testIQN, mode.keys...)
			immOK := c.keys["ImmediateData"] == "Yes"
			unsolOK := c.keys["InitialR2T"] == "No"
			for _, size := range []int{512, 4096, 65536, 128 << 10, 1 << 20, 8 << 20} {
				out := c.data()[:size]
				fill(out, byte(size>>9))
				want := append([]byte(nil), out...)
				imm, unsol := 0, 0
				if immOK {
					imm = min(size, 8192)
				}
				if unsolOK {
					unsol = min(size, 65536) - imm
				}
				blocks := uint16(size / 512)
				if size == 8<<20 {
					blocks = 0 // WRITE(10) can't say 16384 blocks: use 16 below
				}
				cdbW, cdbR := write10(2048, blocks), read10(2048, blocks)
				if blocks == 0 {
					cdbW = []byte{0x8a, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0x40, 0, 0, 0}
					cdbR = []byte{0x88, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0x40, 0, 0, 0}
				}
				if res := c.command(cdbW, false, size, 0, imm, unsol); res.status != 0 {
					t.Fatalf("WRITE %d bytes: status %#x sense % x", size, res.status, res.sense)
				}
				in := c.data()[size : 2*size]
				clear(in)
				if res := c.command(cdbR, true, size, size, 0, 0); res.status != 0 || res.residual != 0 {
					t.Fatalf("READ %d bytes: status %#x residual %d", size, res.status, res.residual)
				}
				if !bytes.Equal(in, want) {
					t.Fatalf("READ %d bytes returned other data than was written", size)
				}
			}
			c.logout()
		})
	}
}

// TestQueueDepth64 runs 64 reads and writes at once.
func TestQueueDepth64(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	c := dialRaw(t, tt.p, tt.addr, false)
	c.login(testIQN, "ImmediateData=Yes", "InitialR2T=No")
	const n, size = 64, 8192
	fill(c.data()[:n*size], 5)
	want := append([]byte(nil), c.data()[:n*size]...)
	var itts []uint32
	for i := range n {
		itts = append(itts, c.start(write10(uint32(i*16), size/512), false, size, i*size, 4096, 4096))
	}
	c.waitAll(itts)
	itts = itts[:0]
	clear(c.data()[n*size : 2*n*size])
	for i := range n {
		itts = append(itts, c.start(read10(uint32(i*16), size/512), true, size, n*size+i*size, 0, 0))
	}
	c.waitAll(itts)
	if !bytes.Equal(c.data()[n*size:2*n*size], want) {
		t.Fatal("QD64 reads returned other data than was written")
	}
	c.logout()
}

// waitAll waits for the GOOD responses of itts, in any order.
func (c *rawClient) waitAll(itts []uint32) {
	c.t.Helper()
	left := map[uint32]bool{}
	for _, i := range itts {
		left[i] = true
	}
	for len(left) > 0 {
		p := c.recvPDU()
		r, ok := p.(*pdu.SCSIResponse)
		if !ok {
			c.t.Fatalf("unexpected %v", p.Opcode())
		}
		if !left[r.ITT] || r.Status != 0 {
			c.t.Fatalf("response ITT %#x status %#x", r.ITT, r.Status)
		}
		delete(left, r.ITT)
	}
}

// TestMemoryBackPressure: with less registered memory than the commands in
// flight need, commands wait for buffers and all complete; none fails.
func TestMemoryBackPressure(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{Memory: 1 << 20, MaxIOSize: 256 << 10})
	c := dialRaw(t, tt.p, tt.addr, false)
	c.login(testIQN, "ImmediateData=Yes", "InitialR2T=Yes")
	const n, size = 16, 256 << 10 // 4 MiB in flight against 1 MiB of buffers
	fill(c.data()[:n*size], 9)
	var itts []uint32
	for i := range n {
		itts = append(itts, c.start(write10(uint32(i*512), size/512), false, size, i*size, 8192, 0))
	}
	c.waitAll(itts)
	// A buffer goes back once its response SEND's completion is reaped,
	// which may be just after the initiator saw the response.
	deadline := time.Now().Add(5 * time.Second)
	for tt.tr.Stats().BlocksOut != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s := tt.tr.Stats(); s.BlocksOut != 0 {
		t.Fatalf("after every write completed: %+v", s)
	}
	c.logout()
}

// TestBadInput: a bad iSER header, a truncated PDU, and a Write STag the
// initiator does not own each end only their connection, with a log line;
// another session keeps being served.
func TestBadInput(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	other := dialRaw(t, tt.p, tt.addr, false)
	other.login(testIQN)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, c *rawClient)
		log  string
	}{
		{"bad iSER header", func(t *testing.T, c *rawClient) {
			var b [iser.HeadersLen]byte
			b[0] = 0x10 | 0x02 // a reserved bit
			must(t, c.sendRaw(b[:]))
		}, "iSER header"},
		{"truncated PDU", func(t *testing.T, c *rawClient) {
			nop := pdu.NOPOut{Immediate: true, ITT: 7, TTT: pdu.ReservedTag, CmdSN: c.cmdSN, Data: make([]byte, 100)}
			h, _ := (&iser.Header{}).AppendBinary(nil)
			b, _ := nop.AppendBinary(h)
			must(t, c.sendRaw(append(b, make([]byte, 40)...))) // 100 announced, 40 sent
		}, "receive of"},
		{"foreign Write STag", func(t *testing.T, c *rawClient) {
			cmd := pdu.SCSICommand{Final: true, Write: true, Attr: pdu.AttrSimple, ITT: c.itt, ExpectedDataTransferLength: 4096,
				CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
			copy(cmd.CDB[:], write10(0, 8))
			c.send(iser.Header{WriteValid: true, WriteSTag: 0xdead, WriteVA: 0x1000}, &cmd)
		}, "RDMA READ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, tt.p, tt.addr, false)
			c.login(testIQN, "ImmediateData=No", "InitialR2T=Yes")
			tc.run(t, c)
			c.expectClosed()
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(tt.logs.String(), tc.log) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(tt.logs.String(), tc.log) {
				t.Errorf("no log line with %q", tc.log)
			}
			if res := other.command([]byte{0x00, 0, 0, 0, 0, 0}, false, 0, 0, 0, 0); res.status != 0 {
				t.Fatalf("TEST UNIT READY on the other session: %#x", res.status)
			}
		})
	}
	other.logout()
}

// TestTooLarge: a command larger than MaxIOSize ends with CHECK
// CONDITION, and the session goes on.
func TestTooLarge(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{MaxIOSize: 1 << 20})
	c := dialRaw(t, tt.p, tt.addr, false)
	c.login(testIQN)
	res := c.command(read10(0, 4096), true, 2<<20, 0, 0, 0)
	if res.status != 2 {
		t.Fatalf("2 MiB READ with MaxIOSize 1 MiB: status %#x, want CHECK CONDITION", res.status)
	}
	if res := c.command(read10(0, 8), true, 4096, 0, 0, 0); res.status != 0 {
		t.Fatalf("READ after: %#x", res.status)
	}
	c.logout()
}

// TestDropMidWrite: the initiator vanishes while the target RDMA READs
// its data; every buffer comes back (checked in the cleanup).
func TestDropMidWrite(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	tt.p.SetCompletionDelay(20 * time.Millisecond)
	c := dialRaw(t, tt.p, tt.addr, false)
	c.login(testIQN, "ImmediateData=No", "InitialR2T=Yes")
	for i := range 8 {
		c.start(write10(uint32(i*2048), 2048), false, 1<<20, i<<20, 0, 0)
	}
	c.close()
	deadline := time.Now().Add(10 * time.Second)
	for tt.srv.Sessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	tt.p.SetCompletionDelay(0)
	if n := tt.srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions after the initiator vanished", n)
	}
}

// TestSendWithInvalidate: when the initiator allows it, the SCSI Response
// invalidates exactly the STag its command advertised (Linux fails the
// connection on any other), and never when it does not.
func TestSendWithInvalidate(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	for _, allow := range []bool{false, true} {
		c := dialRaw(t, tt.p, tt.addr, allow)
		if h, err := iser.ParseCMPrivateData(c.private); err != nil || h.SendWithInvNotSupported == allow {
			t.Fatalf("accept private data %x (%+v, %v) for an initiator that allows Send with Invalidate: %v", c.private, h, err, allow)
		}
		c.login(testIQN)
		res := c.command(read10(0, 8), true, 4096, 0, 0, 0)
		if res.status != 0 {
			t.Fatalf("READ: %#x", res.status)
		}
		want := uint32(0)
		if allow {
			want = c.dmr.RKey()
		}
		if c.lastInv != want {
			t.Fatalf("allow=%v: the response invalidated rkey %#x, want %#x", allow, c.lastInv, want)
		}
		if !allow {
			c.logout()
		}
	}
}

var _ = fmt.Sprintf

// TestDiscoveryWithoutRDMAExtensions: open-iscsi's discovery over iSER
// does not offer RDMAExtensions; LIO serves it, and so do we (found on rxe
// with the Linux initiator).
func TestDiscoveryWithoutRDMAExtensions(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	c := dialRaw(t, tt.p, tt.addr, false)
	rsp := c.loginReq(pdu.StageSecurity, pdu.StageOperational, "InitiatorName=iqn.2026-12.dev.goiser:raw", "AuthMethod=None", "SessionType=Discovery")
	if rsp.Status != pdu.LoginSuccess {
		t.Fatalf("security stage: %v", rsp.Status)
	}
	rsp = c.loginReq(pdu.StageOperational, pdu.StageFullFeature, "HeaderDigest=None", "DataDigest=None", "MaxRecvDataSegmentLength=32768")
	if rsp.Status != pdu.LoginSuccess || rsp.NSG != pdu.StageFullFeature {
		t.Fatalf("operational stage: %v", rsp.Status)
	}
	c.send(iser.Header{}, &pdu.TextRequest{Final: true, ITT: c.itt, TTT: pdu.ReservedTag, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN,
		Data: keys("SendTargets=All")})
	if r, ok := c.recvPDU().(*pdu.TextResponse); !ok || !strings.Contains(string(r.Data), testIQN) {
		t.Fatal("no SendTargets answer")
	}
	c.logout()
}
