package initiator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/auth"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/scsi"
)

// tgt is a private tgtd (Debian's C target) for one test.
type tgt struct {
	addr   string // portal host:port
	ctl    string // control port for tgtadm
	target string // target IQN (tid 1)
	// digestTarget (tid 2) allows only CRC32C digests; tid 1 keeps tgt's
	// default (None only).
	digestTarget string
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startTgt starts tgtd on 127.0.0.1 with its own control port, one target
// with a 64 MiB file-backed LUN 1, open to every initiator.
func startTgt(t testing.TB) *tgt {
	t.Helper()
	if _, err := exec.LookPath("tgtd"); err != nil {
		t.Skip("tgtd not installed (Debian package tgt; `make deps` installs it): skipping tests against tgt")
	}
	if os.Geteuid() != 0 {
		t.Skip("tgtd needs root: skipping tests against tgt")
	}
	port := freePort(t)
	ctl := strconv.Itoa(1024 + port%30000)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "tgtd", "-f", "-C", ctl, "--iscsi", fmt.Sprintf("portal=127.0.0.1:%d", port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start tgtd: %v", err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Errorf("tgtd did not exit")
		}
		if t.Failed() {
			t.Logf("tgtd output:\n%s", out.String())
		}
	})
	g := &tgt{addr: fmt.Sprintf("127.0.0.1:%d", port), ctl: ctl, target: "iqn.2026-11.org.goiser.test:tgt",
		digestTarget: "iqn.2026-11.org.goiser.test:tgt-digest"}
	// Wait for the control socket.
	for i := 0; ; i++ {
		err := exec.Command("tgtadm", "-C", ctl, "--lld", "iscsi", "--mode", "target", "--op", "show").Run()
		if err == nil {
			break
		}
		if i > 100 {
			t.Fatalf("tgtd control port %s never answered: %v", ctl, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dir := t.TempDir()
	for tid, name := range []string{g.target, g.digestTarget} {
		backing := filepath.Join(dir, fmt.Sprintf("lun%d", tid))
		if err := os.WriteFile(backing, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(backing, 64<<20); err != nil {
			t.Fatal(err)
		}
		id := strconv.Itoa(tid + 1)
		g.adm(t, "--mode", "target", "--op", "new", "--tid", id, "--targetname", name)
		g.adm(t, "--mode", "logicalunit", "--op", "new", "--tid", id, "--lun", "1", "--backing-store", backing)
		g.adm(t, "--mode", "target", "--op", "bind", "--tid", id, "--initiator-address", "ALL")
	}
	g.adm(t, "--mode", "target", "--op", "update", "--tid", "2", "--name", "HeaderDigest", "--value", "CRC32C")
	g.adm(t, "--mode", "target", "--op", "update", "--tid", "2", "--name", "DataDigest", "--value", "CRC32C")
	return g
}

// adm runs tgtadm against this tgtd.
func (g *tgt) adm(t testing.TB, args ...string) {
	t.Helper()
	args = append([]string{"-C", g.ctl, "--lld", "iscsi"}, args...)
	if out, err := exec.Command("tgtadm", args...).CombinedOutput(); err != nil {
		t.Fatalf("tgtadm %v: %v\n%s", args, err, out)
	}
}

// testCtx returns a context bounded for one test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pattern fills b with bytes derived from seed.
func pattern(b []byte, seed int) {
	for i := range b {
		b[i] = byte(i*7 + seed + i>>9)
	}
}

func TestTgtDiscoveryAndIO(t *testing.T) {
	g := startTgt(t)
	ctx := testCtx(t)
	base := initiator.Config{InitiatorName: "iqn.2026-11.org.goiser.test:init"}
	ts, err := initiator.Discover(ctx, g.addr, base)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	if len(ts) != 2 || ts[0].Name != g.target || len(ts[0].Addresses) == 0 {
		t.Fatalf("discover = %+v, want %s and %s", ts, g.target, g.digestTarget)
	}
	for _, tc := range []struct {
		name          string
		imm, r2t      initiator.Bool
		hd, dd        initiator.Digest
		firstBurst    uint32
		maxRecvSegLen uint32
		digestTarget  bool
	}{
		{name: "defaults"},
		{name: "no-immediate", imm: initiator.No},
		{name: "unsolicited", imm: initiator.Yes, r2t: initiator.No},
		{name: "unsolicited-no-imm", imm: initiator.No, r2t: initiator.No, firstBurst: 16384},
		{name: "digests", hd: initiator.DigestRequireCRC32C, dd: initiator.DigestRequireCRC32C, maxRecvSegLen: 8192, digestTarget: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.TargetName = g.target
			if tc.digestTarget {
				cfg.TargetName = g.digestTarget
			}
			cfg.ImmediateData, cfg.InitialR2T = tc.imm, tc.r2t
			cfg.HeaderDigest, cfg.DataDigest = tc.hd, tc.dd
			cfg.FirstBurstLength = tc.firstBurst
			cfg.MaxRecvDataSegmentLength = tc.maxRecvSegLen
			s, err := initiator.Dial(ctx, g.addr, cfg)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer s.Close()
			p := s.Params()
			if tc.hd == initiator.DigestRequireCRC32C && (!p.HeaderDigest || !p.DataDigest) {
				t.Fatalf("digests not on: %+v", p)
			}
			exerciseLUN(t, ctx, s, 1)
			if err := s.Logout(ctx); err != nil {
				t.Fatalf("logout: %v", err)
			}
		})
	}
}

// exerciseLUN runs the basic commands and data round-trips on lun.
func exerciseLUN(t *testing.T, ctx context.Context, s *initiator.Session, lun uint64) {
	t.Helper()
	if err := s.TestUnitReady(ctx, lun); err != nil {
		// A unit attention after login is normal once.
		if err := s.TestUnitReady(ctx, lun); err != nil {
			t.Fatalf("test unit ready: %v", err)
		}
	}
	inq := make([]byte, 96)
	n, err := s.Inquiry(ctx, lun, false, 0, inq)
	if err != nil || n < 36 || inq[0]&0x1f != 0 {
		t.Fatalf("inquiry: n=%d err=%v data=%x", n, err, inq[:n])
	}
	luns, err := s.ReportLUNs(ctx)
	if err != nil {
		t.Fatalf("report luns: %v", err)
	}
	found := false
	for _, l := range luns {
		found = found || l == lun
	}
	if !found {
		t.Fatalf("report luns = %v, want %d among them", luns, lun)
	}
	c, err := s.ReadCapacity16(ctx, lun)
	if err != nil {
		t.Fatalf("read capacity: %v", err)
	}
	if c.BlockSize == 0 || c.Blocks*uint64(c.BlockSize) < 4<<20 {
		t.Fatalf("capacity %+v too small", c)
	}
	bs := int(c.BlockSize)
	lba := uint64(0)
	for i, size := range []int{512, 4096, 8192, 65536, 65536 + 512, 262144, 1 << 20} {
		if size%bs != 0 {
			continue
		}
		w := make([]byte, size)
		pattern(w, i+1)
		if err := s.Write16(ctx, lun, lba, bs, w); err != nil {
			t.Fatalf("write %d bytes at %d: %v", size, lba, err)
		}
		r := make([]byte, size)
		if err := s.Read16(ctx, lun, lba, bs, r); err != nil {
			t.Fatalf("read %d bytes at %d: %v", size, lba, err)
		}
		if !bytes.Equal(w, r) {
			t.Fatalf("read back %d bytes at %d: data differs", size, lba)
		}
		lba += uint64(size / bs)
	}
	if err := s.SynchronizeCache(ctx, lun); err != nil {
		t.Fatalf("synchronize cache: %v", err)
	}
	if err := s.Ping(ctx, []byte("ping data")); err != nil {
		t.Fatalf("ping: %v", err)
	}
	// Residual: ask for more than the CDB transfers.
	var cdb [16]byte
	cdb[0] = 0x88
	cdb[13] = 1 // one block
	buf := make([]byte, 2*bs)
	r, err := s.Execute(ctx, lun, cdb[:], nil, buf)
	if err != nil || r.Status != scsi.StatusGood || !r.Underflow || r.Residual != uint32(bs) || r.DataInLen != bs {
		t.Fatalf("read with larger buffer: %+v err=%v, want underflow residual %d", r, err, bs)
	}
	// An out-of-range LBA gets CHECK CONDITION with ILLEGAL REQUEST.
	err = s.Read16(ctx, lun, c.Blocks, bs, make([]byte, bs))
	var se *initiator.SCSIError
	if !errors.As(err, &se) || se.Status != scsi.StatusCheckCondition || se.Key != scsi.SenseIllegalRequest {
		t.Fatalf("read beyond the end: %v, want CHECK CONDITION/ILLEGAL REQUEST", err)
	}
}

func TestTgtConcurrency(t *testing.T) {
	g := startTgt(t)
	ctx := testCtx(t)
	s, err := initiator.Dial(ctx, g.addr, initiator.Config{
		InitiatorName: "iqn.2026-11.org.goiser.test:init", TargetName: g.target, MaxTasks: 32,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer s.Close()
	_ = s.TestUnitReady(ctx, 1)
	concurrentIO(t, ctx, s, 1, 512)
}

// concurrentIO runs 32 workers, each writing and reading back its own
// region with several sizes.
func concurrentIO(t *testing.T, ctx context.Context, s *initiator.Session, lun uint64, bs int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := uint64(w) * 1024 // 512 KiB per worker at 512 B blocks
			for i := range 20 {
				size := []int{4096, 512, 65536, 131072}[i%4]
				lba := base + uint64(i%2)*8
				wb := make([]byte, size)
				pattern(wb, w*100+i)
				if err := s.Write16(ctx, lun, lba, bs, wb); err != nil {
					errs <- fmt.Errorf("worker %d write: %w", w, err)
					return
				}
				rb := make([]byte, size)
				if err := s.Read16(ctx, lun, lba, bs, rb); err != nil {
					errs <- fmt.Errorf("worker %d read: %w", w, err)
					return
				}
				if !bytes.Equal(wb, rb) {
					errs <- fmt.Errorf("worker %d: data differs at lba %d size %d", w, lba, size)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTgtCHAP(t *testing.T) {
	g := startTgt(t)
	ctx := testCtx(t)
	g.adm(t, "--mode", "account", "--op", "new", "--user", "alice", "--password", "alicesecret1")
	g.adm(t, "--mode", "account", "--op", "bind", "--tid", "1", "--user", "alice")
	g.adm(t, "--mode", "account", "--op", "new", "--user", "tgtuser", "--password", "targetsecret2")
	g.adm(t, "--mode", "account", "--op", "bind", "--tid", "1", "--user", "tgtuser", "--outgoing")
	cfg := initiator.Config{InitiatorName: "iqn.2026-11.org.goiser.test:init", TargetName: g.target}

	// No credentials: authentication failure.
	_, err := initiator.Dial(ctx, g.addr, cfg)
	var le *initiator.LoginError
	if !errors.As(err, &le) || le.Status.Class() != pdu.ClassInitiatorError {
		t.Fatalf("login without CHAP: %v, want an initiator error", err)
	}
	// Wrong secret.
	cfg.CHAP = &initiator.CHAP{User: "alice", Secret: "wrongsecret12", Algorithms: []int{5}}
	_, err = initiator.Dial(ctx, g.addr, cfg)
	if !errors.As(err, &le) || le.Status != pdu.LoginAuthFailed {
		t.Fatalf("login with a wrong secret: %v, want status %v", err, pdu.LoginAuthFailed)
	}
	// One-way.
	cfg.CHAP = &initiator.CHAP{User: "alice", Secret: "alicesecret1", Algorithms: []int{5}}
	s, err := initiator.Dial(ctx, g.addr, cfg)
	if err != nil {
		t.Fatalf("one-way CHAP: %v", err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	// Mutual.
	cfg.CHAP = &initiator.CHAP{User: "alice", Secret: "alicesecret1", TargetUser: "tgtuser", TargetSecret: "targetsecret2", Algorithms: []int{5}}
	s, err = initiator.Dial(ctx, g.addr, cfg)
	if err != nil {
		t.Fatalf("mutual CHAP: %v", err)
	}
	_ = s.TestUnitReady(ctx, 1)
	if err := s.TestUnitReady(ctx, 1); err != nil {
		t.Fatalf("test unit ready: %v", err)
	}
	s.Close()
	// Mutual with the wrong target secret: we refuse the target.
	cfg.CHAP = &initiator.CHAP{User: "alice", Secret: "alicesecret1", TargetUser: "tgtuser", TargetSecret: "notthesecret", Algorithms: []int{5}}
	if _, err := initiator.Dial(ctx, g.addr, cfg); !errors.Is(err, auth.ErrAuthFailed) {
		t.Fatalf("mutual CHAP with a wrong target secret: %v, want our refusal", err)
	}
}

// TestTgtZeroAllocs guards the datapath: a 4 KiB READ or WRITE allocates
// nothing in steady state. tgt runs in its own process, so every
// allocation counted here is the initiator's.
func TestTgtZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count needs a steady state; skipped with -short")
	}
	g := startTgt(t)
	ctx := context.Background()
	s, err := initiator.Dial(ctx, g.addr, initiator.Config{InitiatorName: testInitiator, TargetName: g.target})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer s.Close()
	_ = s.TestUnitReady(ctx, 1)
	buf := make([]byte, 4096)
	for _, tc := range []struct {
		name string
		io   func() error
	}{
		{"write", func() error { return s.Write16(ctx, 1, 8, 512, buf) }},
		{"read", func() error { return s.Read16(ctx, 1, 8, 512, buf) }},
	} {
		var ioErr error
		allocs := testing.AllocsPerRun(200, func() {
			if err := tc.io(); err != nil {
				ioErr = err
			}
		})
		if ioErr != nil {
			t.Fatalf("%s: %v", tc.name, ioErr)
		}
		if allocs != 0 {
			t.Errorf("%s: %.0f allocations per 4 KiB I/O, want 0", tc.name, allocs)
		}
	}
}

// exerciseResiduals checks the residual rules of RFC 7143 §11.4.5.1 for
// reads and writes whose Expected Data Transfer Length differs from what
// the CDB transfers.
func exerciseResiduals(t *testing.T, ctx context.Context, s *initiator.Session, lun uint64, strict bool) {
	t.Helper()
	rw := func(op byte, blocks int, out, in []byte) initiator.Result {
		t.Helper()
		var cdb [16]byte
		cdb[0] = op
		cdb[9] = 64 // LBA 64
		cdb[13] = byte(blocks)
		r, err := s.Execute(ctx, lun, cdb[:], out, in)
		if err != nil {
			t.Fatalf("opcode %#x: %v", op, err)
		}
		return r
	}
	// READ of 2 blocks into a 1-block buffer: overflow, 512 bytes residual.
	r := rw(0x88, 2, nil, make([]byte, 512))
	if r.Status != scsi.StatusGood || !r.Overflow || r.Underflow || r.Residual != 512 || r.DataInLen != 512 {
		t.Errorf("read overflow: %+v, want GOOD, O, residual 512, 512 bytes", summary(r))
	}
	// WRITE of 1 block with 2 blocks of data: underflow, 512 bytes residual.
	r = rw(0x8a, 1, make([]byte, 1024), nil)
	if r.Status != scsi.StatusGood || !r.Underflow || r.Overflow || r.Residual != 512 {
		t.Errorf("write underflow: %+v, want GOOD, U, residual 512", summary(r))
	}
	// WRITE of 2 blocks with 1 block of data: overflow. Targets either
	// refuse it (CHECK CONDITION) or report O with the missing bytes.
	r = rw(0x8a, 2, make([]byte, 512), nil)
	if r.Status == scsi.StatusGood && (!r.Overflow || r.Residual != 512) {
		t.Errorf("write overflow: %+v, want O and residual 512 (or CHECK CONDITION)", summary(r))
	}
	if !strict {
		return
	}
	// A READ of 1 block with EDTL 0 (no R bit): overflow of 512. tgt
	// (1.0.85) answers GOOD without O, so only our target is held to it.
	r = rw(0x88, 1, nil, nil)
	if r.Status != scsi.StatusGood || !r.Overflow || r.Residual != 512 {
		t.Errorf("read with EDTL 0: %+v, want GOOD, O, residual 512", summary(r))
	}
}

// summary prints the interesting fields of a Result.
func summary(r initiator.Result) string {
	return fmt.Sprintf("status=%v response=%v O=%v U=%v residual=%d dataIn=%d sense=%x",
		r.Status, r.Response, r.Overflow, r.Underflow, r.Residual, r.DataInLen, r.Sense())
}

func TestTgtResiduals(t *testing.T) {
	g := startTgt(t)
	ctx := testCtx(t)
	for _, imm := range []initiator.Bool{initiator.Yes, initiator.No} {
		s, err := initiator.Dial(ctx, g.addr, initiator.Config{InitiatorName: testInitiator, TargetName: g.target, ImmediateData: imm})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_ = s.TestUnitReady(ctx, 1)
		exerciseResiduals(t, ctx, s, 1, false)
		s.Close()
	}
}
