package tcp_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

// parkWrite sends a WRITE(10) of blocks 512-byte blocks without any data
// (ImmediateData=No, InitialR2T=Yes) and returns its ITT.
func (c *client) parkWrite(lba uint32, blocks uint16) uint32 {
	c.t.Helper()
	itt := c.itt
	c.itt++
	cmd := pdu.SCSICommand{Final: true, Write: true, Attr: pdu.AttrSimple, ITT: itt,
		ExpectedDataTransferLength: uint32(blocks) * 512, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	copy(cmd.CDB[:], write10(lba, blocks))
	c.cmdSN++
	c.send(&cmd)
	return itt
}

// TestWindowCloses checks that MaxCmdSN closes the CmdSN window (MaxCmdSN
// = ExpCmdSN - 1, RFC 7143 §4.2.2.1) when QueueDepth commands are in
// flight, and reopens it as they complete.
func TestWindowCloses(t *testing.T) {
	const depth = 4
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.QueueDepth = depth })
	c := dial(t, ts.addr)
	c.login("ImmediateData=No", "InitialR2T=Yes")
	r2ts := map[uint32]pdu.R2T{}
	var last *pdu.R2T
	for i := range depth {
		itt := c.parkWrite(uint32(i*8), 8)
		r, ok := c.recv().(*pdu.R2T)
		if !ok || r.ITT != itt {
			t.Fatalf("write %d: no R2T", i)
		}
		r2ts[itt] = *r
		last = r
	}
	if last.MaxCmdSN != last.ExpCmdSN-1 {
		t.Fatalf("with %d commands in flight and QueueDepth %d: ExpCmdSN %d MaxCmdSN %d, want a closed window (MaxCmdSN = ExpCmdSN-1)",
			depth, depth, last.ExpCmdSN, last.MaxCmdSN)
	}
	// Completing one write opens the window by one.
	out := pattern(4096, 3)
	for itt, r := range r2ts {
		c.sendData(itt, r.TTT, 0, 4096, out)
		p := c.recv()
		rsp, ok := p.(*pdu.SCSIResponse)
		if !ok || rsp.Status != 0 {
			t.Fatalf("write response: %v", p.Opcode())
		}
		if rsp.MaxCmdSN != rsp.ExpCmdSN {
			t.Fatalf("after one completion: ExpCmdSN %d MaxCmdSN %d, want a window of one", rsp.ExpCmdSN, rsp.MaxCmdSN)
		}
		delete(r2ts, itt)
		break
	}
	for itt, r := range r2ts {
		c.sendData(itt, r.TTT, 0, 4096, out)
		if rsp, ok := c.recv().(*pdu.SCSIResponse); !ok || rsp.Status != 0 {
			t.Fatal("write response missing")
		}
	}
	c.logout()
}

// TestParkedWritesBounded checks the audit's finding: writes that never
// send their data must not hold more task memory than the session's
// budget. Commands past the budget end with TASK SET FULL, and the memory
// comes back when the data arrives.
func TestParkedWritesBounded(t *testing.T) {
	const limit = 1 << 20
	const blocks = 512 // 256 KiB per write
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) {
		s.QueueDepth = 64
		s.Limits.MaxSessionTaskMemory = limit
	})
	c := dial(t, ts.addr)
	c.login("ImmediateData=No", "InitialR2T=Yes", "MaxBurstLength=262144")
	// A hostile initiator sends 16 writes at once and never their data.
	for i := range 16 {
		c.parkWrite(uint32(i*blocks), blocks)
	}
	r2ts := map[uint32]pdu.R2T{}
	full := 0
	for range 16 {
		switch p := c.recv().(type) {
		case *pdu.R2T:
			r2ts[p.ITT] = *p
		case *pdu.SCSIResponse:
			if scsi.Status(p.Status) != scsi.StatusTaskSetFull {
				t.Fatalf("ITT %#x: status %#x, want TASK SET FULL", p.ITT, p.Status)
			}
			full++
		default:
			t.Fatalf("unexpected %v", p.Opcode())
		}
	}
	if got := ts.srv.TaskMemory(); got > limit {
		t.Fatalf("session holds %d bytes of task memory, limit %d", got, limit)
	}
	if len(r2ts) != limit/(blocks*512) || full != 16-len(r2ts) {
		t.Fatalf("%d writes got R2Ts and %d TASK SET FULL; want %d and %d", len(r2ts), full, limit/(blocks*512), 16-limit/(blocks*512))
	}
	out := pattern(blocks*512, 9)
	for itt, r := range r2ts {
		c.sendData(itt, r.TTT, int(r.BufferOffset), int(r.DesiredDataTransferLength), out)
		if rsp, ok := c.recv().(*pdu.SCSIResponse); !ok || rsp.Status != 0 {
			t.Fatalf("write ITT %#x did not complete", itt)
		}
	}
	// A buffer is released just after its response is written, so the
	// initiator may see the response first: wait (bounded) for it.
	deadline := time.Now().Add(ioTimeout)
	for ts.srv.TaskMemory() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := ts.srv.TaskMemory(); got != 0 {
		t.Fatalf("%d bytes of task memory held after every write completed", got)
	}
	// The window lets a well-behaved initiator work within the budget:
	// a write the size of the whole budget still succeeds.
	if res := c.scsiCmd(write10(0, 2048), false, 2048*512, pattern(2048*512, 1)); res.status != 0 {
		t.Fatalf("1 MiB write within the budget: status %#x", res.status)
	}
	c.logout()
}

// TestServerTaskMemoryShared checks that MaxTaskMemory bounds the sum over
// sessions.
func TestServerTaskMemoryShared(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.Limits.MaxTaskMemory = 512 << 10 })
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	a.isid[5], b.isid[5] = 1, 2
	a.login("ImmediateData=No", "InitialR2T=Yes")
	b.login("ImmediateData=No", "InitialR2T=Yes")
	a.parkWrite(0, 512) // 256 KiB each: the server's budget holds two
	a.parkWrite(512, 512)
	for range 2 {
		if _, ok := a.recv().(*pdu.R2T); !ok {
			t.Fatal("no R2T for session A")
		}
	}
	b.parkWrite(1024, 512)
	rsp, ok := b.recv().(*pdu.SCSIResponse)
	if !ok || scsi.Status(rsp.Status) != scsi.StatusTaskSetFull {
		t.Fatalf("session B's write past the server's budget: got %T, want TASK SET FULL", rsp)
	}
	if got := ts.srv.TaskMemory(); got != 512<<10 {
		t.Fatalf("server task memory %d, want %d", got, 512<<10)
	}
}

// TestDataOutTimeout checks that a write whose data never comes ends its
// connection after Limits.DataOutTimeout and releases its buffer.
func TestDataOutTimeout(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.Limits.DataOutTimeout = 300 * time.Millisecond })
	c := dial(t, ts.addr)
	c.login("ImmediateData=No", "InitialR2T=Yes")
	c.parkWrite(0, 2048)
	if _, ok := c.recv().(*pdu.R2T); !ok {
		t.Fatal("no R2T")
	}
	if ts.srv.TaskMemory() == 0 {
		t.Fatal("a parked write holds no task memory")
	}
	c.expectClosed()
	ts.waitLog(t, "not received within")
	deadline := time.Now().Add(ioTimeout)
	for ts.srv.TaskMemory() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of task memory still held after the connection ended", ts.srv.TaskMemory())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSessionsPerTarget checks Limits.MaxSessionsPerTarget: the login past
// it fails with Out of Resources; reinstating the one session still works.
func TestSessionsPerTarget(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.Limits.MaxSessionsPerTarget = 1 })
	a := dial(t, ts.addr)
	a.login()
	b := dial(t, ts.addr)
	b.isid[5] = 9
	rsp := b.loginReq(pdu.StageSecurity, pdu.StageFullFeature, true,
		"InitiatorName="+testInitiator, "TargetName="+testTarget, "SessionType=Normal", "AuthMethod=None")
	if rsp.Status != pdu.LoginOutOfResources {
		t.Fatalf("second session: login status %v, want %v", rsp.Status, pdu.LoginOutOfResources)
	}
	// Same ISID: a reinstatement replaces the session, within the limit.
	a2 := dial(t, ts.addr)
	a2.login()
	if res := a2.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("INQUIRY on the reinstated session: %#x", res.status)
	}
}

// TestConnectionsPerHost checks Limits.MaxConnectionsPerHost: the
// connection past it is closed at once, the others keep working.
func TestConnectionsPerHost(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.Limits.MaxConnectionsPerHost = 2 })
	a := dial(t, ts.addr)
	a.login()
	idle := dial(t, ts.addr)
	_ = idle
	over := dial(t, ts.addr)
	over.expectClosed()
	ts.waitLog(t, "MaxConnectionsPerHost")
	if res := a.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("INQUIRY: %#x", res.status)
	}
}

// flakyListener fails Accept with EMFILE while failing is set.
type flakyListener struct {
	net.Listener
	failing atomic.Bool
	fails   atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failing.Load() {
		l.fails.Add(1)
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsRetried is the audit's first finding: running out of
// file descriptors (EMFILE from accept) must not close the portal.
func TestAcceptErrorsRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: l}
	fl.failing.Store(true)
	luns := newLUNs(t)
	logs := &logBuffer{}
	srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: testTarget, LUNs: luns}}, NOPInterval: -1, Logger: newLogger(logs)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tcp.New(fl, tcp.Config{})) }()
	for fl.fails.Load() < 3 {
		select {
		case err := <-done:
			t.Fatalf("Serve returned on EMFILE: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	fl.failing.Store(false)
	c := dial(t, l.Addr().String())
	c.login()
	if res := c.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("INQUIRY after accept errors: %#x", res.status)
	}
	if !strings.Contains(logs.String(), "accept failed, retrying") {
		t.Error("accept errors were not logged")
	}
	c.logout()
	// Shutdown while Serve backs off from accept errors returns at once.
	fl.failing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, iscsi.ErrServerClosed) {
			t.Fatalf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}

// newLUNs returns a target with one 16 MiB memory LUN.
func newLUNs(t testing.TB) *scsi.Target {
	t.Helper()
	m, err := backend.NewMemory(16 << 20)
	if err != nil {
		t.Fatal(err)
	}
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: m}}})
	if err != nil {
		t.Fatal(err)
	}
	return luns
}

// newLogger logs at debug level into b.
func newLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestTransportSenseFormat checks that the sense data of an error the iSCSI
// core finds itself (here EDTL with neither the R nor the W bit) follows the
// LUN's D_SENSE setting, as the SCSI core's own errors do.
func TestTransportSenseFormat(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.login()
	bad := func() result {
		itt := c.itt
		c.itt++
		cmd := pdu.SCSICommand{Final: true, Attr: pdu.AttrSimple, ITT: itt, ExpectedDataTransferLength: 512, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
		copy(cmd.CDB[:], inquiry(36))
		c.cmdSN++
		c.send(&cmd)
		rsp, ok := c.recv().(*pdu.SCSIResponse)
		if !ok {
			t.Fatal("no SCSI Response")
		}
		s, _ := pdu.SenseData(rsp.Data)
		return result{status: rsp.Status, sense: append([]byte(nil), s...)}
	}
	if r := bad(); r.status != 2 || len(r.sense) == 0 || r.sense[0] != 0x70 {
		t.Fatalf("fixed sense expected: status %#x sense % x", r.status, r.sense)
	}
	// MODE SENSE(6) of the control page, then MODE SELECT(6) with D_SENSE.
	res := c.scsiCmd([]byte{0x1a, 0x08, 0x0a, 0, 255, 0}, true, 255, nil)
	if res.status != 0 || len(res.data) < 4+12 {
		t.Fatalf("MODE SENSE: status %#x, %d bytes", res.status, len(res.data))
	}
	page := append([]byte(nil), res.data[4:4+12]...)
	page[0] &^= 0x80 // PS is reserved in MODE SELECT
	page[2] |= 0x04  // D_SENSE
	sel := append([]byte{0, 0, 0, 0}, page...)
	if res := c.scsiCmd([]byte{0x15, 0x10, 0, 0, byte(len(sel)), 0}, false, len(sel), sel); res.status != 0 {
		t.Fatalf("MODE SELECT: status %#x sense % x", res.status, res.sense)
	}
	if r := bad(); r.status != 2 || len(r.sense) == 0 || r.sense[0] != 0x72 {
		t.Fatalf("descriptor sense expected after D_SENSE=1: status %#x sense % x", r.status, r.sense)
	}
}
