package initiator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

const (
	testTarget    = "iqn.2026-11.org.goiser.test:disk"
	testInitiator = "iqn.2026-11.org.goiser.test:init"
)

// logBuffer collects the server's logs; they are printed when a test fails.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is our target, served in process on 127.0.0.1.
type server struct {
	addr string
	srv  *iscsi.Server
}

// startServer serves one target with a 64 MiB memory LUN 0 on 127.0.0.1.
func startServer(t testing.TB, chap *iscsi.CHAP, neg iscsi.Negotiation) *server {
	t.Helper()
	return startServerWith(t, func(s *iscsi.Server) {
		s.Targets[0].CHAP = chap
		s.Negotiation = neg
	})
}

// startServerWith is startServer with a hook to adjust the Server.
func startServerWith(t testing.TB, adjust func(*iscsi.Server)) *server {
	t.Helper()
	mem, err := backend.NewMemory(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: mem}}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := &iscsi.Server{
		Targets: []*iscsi.Target{{Name: testTarget, LUNs: luns}},
		Logger:  log,
	}
	adjust(srv)
	tr, err := tcp.Listen("127.0.0.1:0", tcp.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tr) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, iscsi.ErrServerClosed) {
			t.Errorf("shutdown: %v", err)
			_ = srv.Close()
		}
		select {
		case err := <-served:
			if !errors.Is(err, iscsi.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
		_ = luns.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &server{addr: tr.Addr().String(), srv: srv}
}

// serverBug fails the test with a bug of our target.
func serverBug(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatal("server bug: " + fmt.Sprintf(format, args...))
}

// dial opens a session to the test target with cfg's options.
func dial(t testing.TB, ctx context.Context, addr string, cfg initiator.Config) *initiator.Session {
	t.Helper()
	cfg.InitiatorName = testInitiator
	cfg.TargetName = testTarget
	s, err := initiator.Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkAlive proves a session still serves I/O.
func checkAlive(t testing.TB, ctx context.Context, s *initiator.Session) {
	t.Helper()
	w := make([]byte, 4096)
	pattern(w, 99)
	if err := s.Write16(ctx, 0, 4096, 512, w); err != nil {
		t.Fatalf("other session: write: %v", err)
	}
	r := make([]byte, 4096)
	if err := s.Read16(ctx, 0, 4096, 512, r); err != nil {
		t.Fatalf("other session: read: %v", err)
	}
	if !bytes.Equal(w, r) {
		t.Fatalf("other session: data differs")
	}
}

func TestServerDiscovery(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	ts, err := initiator.Discover(ctx, srv.addr, initiator.Config{InitiatorName: testInitiator})
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	if len(ts) != 1 || ts[0].Name != testTarget || len(ts[0].Addresses) == 0 {
		t.Fatalf("discover = %+v, want %s with an address", ts, testTarget)
	}
}

func TestServerIO(t *testing.T) {
	for _, tc := range []struct {
		name     string
		neg      iscsi.Negotiation
		cfg      initiator.Config
		wantImm  bool
		wantIR2T bool
	}{
		{name: "imm-r2t", wantImm: true, wantIR2T: true},
		{name: "no-imm-r2t", cfg: initiator.Config{ImmediateData: initiator.No}, wantIR2T: true},
		{name: "imm-unsolicited", cfg: initiator.Config{InitialR2T: initiator.No}, wantImm: true},
		{name: "no-imm-unsolicited", cfg: initiator.Config{ImmediateData: initiator.No, InitialR2T: initiator.No, FirstBurstLength: 16384}},
		{name: "small-segments-outstanding-r2t",
			neg: iscsi.Negotiation{MaxRecvDataSegmentLength: 4096, MaxBurstLength: 16384, MaxOutstandingR2T: 4},
			cfg: initiator.Config{MaxRecvDataSegmentLength: 8192, MaxOutstandingR2T: 4}, wantImm: true, wantIR2T: true},
		{name: "digests", cfg: initiator.Config{HeaderDigest: initiator.DigestRequireCRC32C, DataDigest: initiator.DigestRequireCRC32C},
			wantImm: true, wantIR2T: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, nil, tc.neg)
			ctx := testCtx(t)
			s := dial(t, ctx, srv.addr, tc.cfg)
			p := s.Params()
			if p.ImmediateData != tc.wantImm || p.InitialR2T != tc.wantIR2T {
				t.Fatalf("negotiated ImmediateData=%v InitialR2T=%v, want %v %v", p.ImmediateData, p.InitialR2T, tc.wantImm, tc.wantIR2T)
			}
			if tc.cfg.HeaderDigest == initiator.DigestRequireCRC32C && (!p.HeaderDigest || !p.DataDigest) {
				t.Fatalf("digests not on: %+v", p)
			}
			if tc.neg.MaxRecvDataSegmentLength != 0 && p.TargetMaxRecvDataSegmentLength != tc.neg.MaxRecvDataSegmentLength {
				t.Errorf("server bug: target declared MaxRecvDataSegmentLength %d, want %d (the initiator's own declaration must not suppress the target's, RFC 7143 §13.12)", p.TargetMaxRecvDataSegmentLength, tc.neg.MaxRecvDataSegmentLength)
			}
			exerciseLUN(t, ctx, s, 0)
			if err := s.Logout(ctx); err != nil {
				t.Fatalf("logout: %v", err)
			}
			if err := s.TestUnitReady(ctx, 0); err == nil {
				t.Fatalf("command after logout succeeded")
			}
		})
	}
}

func TestServerConcurrency(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	s := dial(t, ctx, srv.addr, initiator.Config{MaxTasks: 32, HeaderDigest: initiator.DigestCRC32C})
	_ = s.TestUnitReady(ctx, 0)
	concurrentIO(t, ctx, s, 0, 512)
}

func TestServerCHAP(t *testing.T) {
	chap := &iscsi.CHAP{User: "alice", Secret: "alicesecret1", MutualUser: "disk", MutualSecret: "targetsecret2"}
	srv := startServer(t, chap, iscsi.Negotiation{})
	ctx := testCtx(t)

	// A session that must survive the failed logins below.
	good := dial(t, ctx, srv.addr, initiator.Config{CHAP: &initiator.CHAP{User: "alice", Secret: "alicesecret1"}})
	checkAlive(t, ctx, good)

	for _, tc := range []struct {
		name       string
		chap       *initiator.CHAP
		wantStatus pdu.LoginStatus // 0: success
		wantErr    string          // our own refusal
	}{
		{name: "none", wantStatus: pdu.LoginAuthFailed},
		{name: "wrong-secret", chap: &initiator.CHAP{User: "alice", Secret: "wrongsecret12"}, wantStatus: pdu.LoginAuthFailed},
		{name: "wrong-user", chap: &initiator.CHAP{User: "mallory", Secret: "alicesecret1"}, wantStatus: pdu.LoginAuthFailed},
		{name: "one-way-md5", chap: &initiator.CHAP{User: "alice", Secret: "alicesecret1", Algorithms: []int{5}}},
		{name: "one-way-sha256", chap: &initiator.CHAP{User: "alice", Secret: "alicesecret1", Algorithms: []int{7}}},
		{name: "mutual", chap: &initiator.CHAP{User: "alice", Secret: "alicesecret1", TargetUser: "disk", TargetSecret: "targetsecret2"}},
		{name: "mutual-wrong-target-secret", chap: &initiator.CHAP{User: "alice", Secret: "alicesecret1", TargetUser: "disk", TargetSecret: "nottargetsecret"},
			wantErr: "wrong target CHAP_R"},
		{name: "mutual-wrong-target-name", chap: &initiator.CHAP{User: "alice", Secret: "alicesecret1", TargetUser: "notdisk", TargetSecret: "targetsecret2"},
			wantErr: "target answered as"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := initiator.Dial(ctx, srv.addr, initiator.Config{InitiatorName: testInitiator, TargetName: testTarget, CHAP: tc.chap})
			switch {
			case tc.wantErr != "":
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr)) {
					t.Fatalf("login: %v, want %q", err, tc.wantErr)
				}
			case tc.wantStatus != 0:
				var le *initiator.LoginError
				if !errors.As(err, &le) || le.Status != tc.wantStatus {
					t.Fatalf("login: %v, want status %v (class %d detail %d)", err, tc.wantStatus, tc.wantStatus.Class(), tc.wantStatus.Detail())
				}
			default:
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				checkAlive(t, ctx, s)
				if err := s.Logout(ctx); err != nil {
					t.Fatalf("logout: %v", err)
				}
			}
			checkAlive(t, ctx, good)
		})
	}
}

func TestServerTaskManagement(t *testing.T) {
	// InitialR2T=Yes and no immediate data: a WRITE waits for our Data-Out
	// until we answer its R2T, so it stays in flight for ABORT TASK.
	srv := startServer(t, nil, iscsi.Negotiation{InitialR2T: true, NoImmediateData: true})
	ctx := testCtx(t)
	s := dial(t, ctx, srv.addr, initiator.Config{ImmediateData: initiator.No})
	_ = s.TestUnitReady(ctx, 0)

	startWrite := func() initiator.Call {
		t.Helper()
		var cdb [16]byte
		cdb[0] = 0x8a
		cdb[13] = 16 // 16 blocks
		c, err := s.Start(ctx, 0, cdb[:], make([]byte, 16*512), nil)
		if err != nil {
			t.Fatalf("start write: %v", err)
		}
		return c
	}
	c := startWrite()
	resp, err := s.AbortTask(ctx, c)
	if err != nil || resp != pdu.TMFComplete {
		t.Fatalf("abort task: %v %v, want %v", resp, err, pdu.TMFComplete)
	}
	if _, err := c.Wait(ctx); !errors.Is(err, initiator.ErrAborted) {
		t.Fatalf("aborted write: %v, want ErrAborted", err)
	}
	checkAlive(t, ctx, s)

	for _, fn := range []pdu.TMFunction{pdu.TMFAbortTaskSet, pdu.TMFLogicalUnitReset, pdu.TMFTargetWarmReset} {
		c := startWrite()
		resp, err := s.TaskManagement(ctx, fn, 0, initiator.Call{})
		if err != nil || resp != pdu.TMFComplete {
			t.Fatalf("%v: %v %v, want %v", fn, resp, err, pdu.TMFComplete)
		}
		if _, err := c.Wait(ctx); !errors.Is(err, initiator.ErrAborted) {
			t.Fatalf("write after %v: %v, want ErrAborted", fn, err)
		}
		// A reset leaves a unit attention for this nexus only when another
		// nexus reset it; either way the next commands must work.
		_ = s.TestUnitReady(ctx, 0)
		checkAlive(t, ctx, s)
	}

}

func TestServerTargetColdReset(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	s := dial(t, ctx, srv.addr, initiator.Config{})
	other := dial(t, ctx, srv.addr, initiator.Config{})
	_ = s.TestUnitReady(ctx, 0)
	resp, err := s.TaskManagement(ctx, pdu.TMFTargetColdReset, 0, initiator.Call{})
	if err != nil || resp != pdu.TMFComplete {
		t.Fatalf("target cold reset: %v %v", resp, err)
	}
	// RFC 7143 §11.5.1: after TARGET COLD RESET the target closes all of
	// its connections to all initiators.
	for _, sess := range []*initiator.Session{s, other} {
		select {
		case <-sess.Done():
		case <-time.After(3 * time.Second):
			serverBug(t, "TARGET COLD RESET answered Function complete but the target kept the sessions open (RFC 7143 §11.5.1 requires it to close all connections)")
		}
	}
	again := dial(t, ctx, srv.addr, initiator.Config{})
	_ = again.TestUnitReady(ctx, 0)
	checkAlive(t, ctx, again)
}

func TestServerPingAndCancel(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	s := dial(t, ctx, srv.addr, initiator.Config{})
	if err := s.Ping(ctx, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := s.Ping(ctx, bytes.Repeat([]byte("goiser"), 100)); err != nil {
		t.Fatalf("ping with data: %v", err)
	}
	// A cancelled context ends the call, not the session.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Read16(cctx, 0, 0, 512, make([]byte, 4096)); !errors.Is(err, context.Canceled) {
		t.Fatalf("read with a cancelled context: %v", err)
	}
	_ = s.TestUnitReady(ctx, 0)
	checkAlive(t, ctx, s)
}

// TestServerWindowAndSlots runs 32 workers through a small CmdSN window on
// the target and fewer task slots than workers on our side, so commands
// wait both for MaxCmdSN to advance and for a free ITT.
func TestServerWindowAndSlots(t *testing.T) {
	for _, tc := range []struct {
		name     string
		depth    int
		maxTasks int
	}{
		{"window-2", 2, 64},
		{"slots-4", 128, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServerWith(t, func(s *iscsi.Server) { s.QueueDepth = tc.depth })
			ctx := testCtx(t)
			s := dial(t, ctx, srv.addr, initiator.Config{MaxTasks: tc.maxTasks})
			_ = s.TestUnitReady(ctx, 0)
			concurrentIO(t, ctx, s, 0, 512)
		})
	}
}

// TestServerAnswersNOPIn idles past the target's NOP-In interval: the
// session must answer the pings and stay up.
func TestServerAnswersNOPIn(t *testing.T) {
	srv := startServerWith(t, func(s *iscsi.Server) {
		s.NOPInterval = 100 * time.Millisecond
		s.NOPTimeout = time.Second
	})
	ctx := testCtx(t)
	s := dial(t, ctx, srv.addr, initiator.Config{})
	_ = s.TestUnitReady(ctx, 0)
	select {
	case <-s.Done():
		t.Fatalf("session ended while idle: %v", s.Err())
	case <-time.After(3 * time.Second): // many pings; an unanswered one drops us after 1 s
	}
	checkAlive(t, ctx, s)
}

// TestServerCancelInFlight abandons a command whose Data-Out the target is
// still waiting for, then aborts it: the session keeps working throughout.
func TestServerCancelInFlight(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{InitialR2T: true, NoImmediateData: true})
	ctx := testCtx(t)
	s := dial(t, ctx, srv.addr, initiator.Config{ImmediateData: initiator.No, MaxTasks: 4})
	_ = s.TestUnitReady(ctx, 0)
	var cdb [16]byte
	cdb[0] = 0x8a
	cdb[13] = 8
	c, err := s.Start(ctx, 0, cdb[:], make([]byte, 8*512), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Do not answer the R2T; give up after a moment.
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	<-wctx.Done()
	if _, err := c.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait: %v, want DeadlineExceeded", err)
	}
	checkAlive(t, ctx, s)
	// The session aborts the abandoned task by itself; a second abort
	// finds it gone or aborts it, depending on which comes first.
	if resp, err := s.AbortTask(ctx, c); err != nil || resp != pdu.TMFComplete && resp != pdu.TMFTaskNotExist {
		t.Fatalf("abort abandoned task: %v %v", resp, err)
	}
	// With a single task slot, an abandoned write the target waits data
	// for must not block the session: the background ABORT TASK frees it.
	one := dial(t, ctx, srv.addr, initiator.Config{ImmediateData: initiator.No, MaxTasks: 1})
	_ = one.TestUnitReady(ctx, 0)
	c1, err := one.Start(ctx, 0, cdb[:], make([]byte, 8*512), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait: %v, want DeadlineExceeded", err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if err := one.Read16(rctx, 0, 0, 512, make([]byte, 4096)); err != nil {
		t.Fatalf("read after abandoning the only slot's task: %v", err)
	}
	// All four slots must be usable again (the abandoned one included).
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Read16(ctx, 0, 0, 512, make([]byte, 4096)); err != nil {
				t.Errorf("read: %v", err)
			}
		}()
	}
	wg.Wait()
}

// TestServerGoneAway closes the server under an idle session: the session
// ends and calls fail at once instead of hanging.
func TestServerGoneAway(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	s := dial(t, ctx, srv.addr, initiator.Config{})
	_ = s.TestUnitReady(ctx, 0)
	if err := srv.srv.Close(); err != nil {
		t.Fatalf("close server: %v", err)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatalf("session did not notice the closed connection")
	}
	if s.Err() == nil {
		t.Fatalf("Err is nil after the session ended")
	}
	if err := s.Read16(ctx, 0, 0, 512, make([]byte, 512)); err == nil {
		t.Fatalf("read on a dead session succeeded")
	}
	if err := s.Ping(ctx, nil); err == nil {
		t.Fatalf("ping on a dead session succeeded")
	}
}

func TestServerResiduals(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	for _, cfg := range []initiator.Config{
		{ImmediateData: initiator.Yes},
		{ImmediateData: initiator.No},
		{ImmediateData: initiator.No, InitialR2T: initiator.No},
	} {
		s := dial(t, ctx, srv.addr, cfg)
		_ = s.TestUnitReady(ctx, 0)
		exerciseResiduals(t, ctx, s, 0, true)
		s.Close()
	}
}

// TestServerManySessions runs 16 sessions at once, each with 4 workers.
func TestServerManySessions(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := initiator.Dial(ctx, srv.addr, initiator.Config{InitiatorName: fmt.Sprintf("%s-%d", testInitiator, i), TargetName: testTarget})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			_ = s.TestUnitReady(ctx, 0)
			var inner sync.WaitGroup
			for w := range 4 {
				inner.Add(1)
				go func() {
					defer inner.Done()
					lba := uint64(i*4+w) * 64
					wb := make([]byte, 8192)
					pattern(wb, i*10+w)
					rb := make([]byte, 8192)
					for range 10 {
						if err := s.Write16(ctx, 0, lba, 512, wb); err != nil {
							errs <- err
							return
						}
						if err := s.Read16(ctx, 0, lba, 512, rb); err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(wb, rb) {
							errs <- fmt.Errorf("session %d worker %d: data differs", i, w)
							return
						}
					}
				}()
			}
			inner.Wait()
			if err := s.Logout(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestServerReinstatement logs in twice with the same initiator name and
// ISID: the target must end the old session (RFC 7143 §6.3.5).
func TestServerReinstatement(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	isid := pdu.ISID{0x80, 0, 0x12, 0x34, 0x56, 0x78}
	old := dial(t, ctx, srv.addr, initiator.Config{ISID: isid})
	_ = old.TestUnitReady(ctx, 0)
	s := dial(t, ctx, srv.addr, initiator.Config{ISID: isid})
	select {
	case <-old.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("old session still up after reinstatement")
	}
	_ = s.TestUnitReady(ctx, 0)
	checkAlive(t, ctx, s)
	if s.Params().TSIH == old.Params().TSIH {
		t.Errorf("reinstated session reuses TSIH %d", s.Params().TSIH)
	}
}

func TestServerLoginErrors(t *testing.T) {
	srv := startServerWith(t, func(s *iscsi.Server) { s.Targets[0].Initiators = []string{"iqn.2026-11.org.goiser.test:allowed"} })
	ctx := testCtx(t)
	for _, tc := range []struct {
		name, initiator, target string
		want                    pdu.LoginStatus
	}{
		{"unknown-target", "iqn.2026-11.org.goiser.test:allowed", "iqn.2026-11.org.goiser.test:nosuch", pdu.LoginNotFound},
		{"not-in-acl", testInitiator, testTarget, pdu.LoginAuthorizationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := initiator.Dial(ctx, srv.addr, initiator.Config{InitiatorName: tc.initiator, TargetName: tc.target})
			var le *initiator.LoginError
			if !errors.As(err, &le) || le.Status != tc.want {
				t.Fatalf("login: %v, want status %v", err, tc.want)
			}
		})
	}
	s, err := initiator.Dial(ctx, srv.addr, initiator.Config{InitiatorName: "iqn.2026-11.org.goiser.test:allowed", TargetName: testTarget})
	if err != nil {
		t.Fatalf("allowed initiator: %v", err)
	}
	s.Close()
}

// TestLoginTimeout dials a listener that never answers: Dial must give up
// after LoginTimeout instead of hanging.
func TestLoginTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	_, err = initiator.Dial(context.Background(), l.Addr().String(), initiator.Config{
		InitiatorName: testInitiator, TargetName: testTarget, LoginTimeout: 200 * time.Millisecond,
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial a silent listener: %v, want DeadlineExceeded", err)
	}
}

// TestServerRestartFileBackend writes a pattern through one server on a
// file-backed LUN, shuts it down, serves the same file from a new server
// and reads the pattern back: nothing acknowledged is lost.
func TestServerRestartFileBackend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lun0.img")
	ctx := testCtx(t)
	want := make([]byte, 1<<20)
	pattern(want, 42)
	serve := func() (*iscsi.Server, string, *scsi.Target) {
		f, err := backend.OpenFile(path, backend.FileConfig{Size: 16 << 20})
		if err != nil {
			t.Fatal(err)
		}
		luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: f}}})
		if err != nil {
			t.Fatal(err)
		}
		srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: testTarget, LUNs: luns}}}
		tr, err := tcp.Listen("127.0.0.1:0", tcp.Config{})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(tr) }()
		return srv, tr.Addr().String(), luns
	}
	stop := func(srv *iscsi.Server, luns *scsi.Target) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := luns.Close(); err != nil {
			t.Errorf("close LUNs: %v", err)
		}
	}

	srv, addr, luns := serve()
	s, err := initiator.Dial(ctx, addr, initiator.Config{InitiatorName: testInitiator, TargetName: testTarget})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.TestUnitReady(ctx, 0)
	if err := s.Write16(ctx, 0, 100, 512, want); err != nil {
		t.Fatalf("write: %v", err)
	}
	// No SYNCHRONIZE CACHE: a clean shutdown must not lose acknowledged
	// writes either.
	if err := s.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	stop(srv, luns)

	srv, addr, luns = serve()
	defer stop(srv, luns)
	s, err = initiator.Dial(ctx, addr, initiator.Config{InitiatorName: testInitiator, TargetName: testTarget})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.TestUnitReady(ctx, 0)
	got := make([]byte, len(want))
	if err := s.Read16(ctx, 0, 100, 512, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("pattern lost across the restart")
	}
}
