package iser_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/iser"
)

// goSession logs the Go initiator in over iSER to tt.
func goSession(t *testing.T, tt *testTarget, maxTasks int, keys ...string) *initiator.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := initiator.Config{InitiatorName: "iqn.2026-12.dev.goiser:go-iser", TargetName: testIQN, MaxTasks: maxTasks}
	for _, kv := range keys {
		switch kv {
		case "ImmediateData=No":
			cfg.ImmediateData = initiator.No
		case "InitialR2T=Yes":
			cfg.InitialR2T = initiator.Yes
		case "InitialR2T=No":
			cfg.InitialR2T = initiator.No
		}
	}
	s, transport, err := iser.DialSession(ctx, tt.addr, iser.SessionConfig{Initiator: cfg,
		ISER: iser.InitiatorConfig{Provider: tt.p, MaxTasks: maxTasks}})
	if err != nil {
		t.Fatalf("iSER login: %v", err)
	}
	if transport != iser.TransportISER {
		t.Fatalf("transport %s, want iser", transport)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rw16(op byte, lba uint64, blocks uint32) []byte {
	return []byte{op, 0, byte(lba >> 56), byte(lba >> 48), byte(lba >> 40), byte(lba >> 32), byte(lba >> 24), byte(lba >> 16),
		byte(lba >> 8), byte(lba), byte(blocks >> 24), byte(blocks >> 16), byte(blocks >> 8), byte(blocks), 0, 0}
}

// TestGoInitiatorRoundTrip: the Go initiator over iSER against our target,
// sizes from 512 B to 8 MiB, with immediate and unsolicited data on and
// off.
func TestGoInitiatorRoundTrip(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	for _, keys := range [][]string{{"ImmediateData=No", "InitialR2T=Yes"}, {"InitialR2T=No"}, {"InitialR2T=Yes"}} {
		t.Run(strings.Join(keys, ","), func(t *testing.T) {
			s := goSession(t, tt, 8, keys...)
			ctx := context.Background()
			for _, size := range []int{512, 4096, 64 << 10, 1 << 20, 8 << 20} {
				out := make([]byte, size)
				fill(out, byte(size>>10))
				r, err := s.Execute(ctx, 0, rw16(0x8a, 100, uint32(size/512)), out, nil)
				if err != nil || r.Status != 0 {
					t.Fatalf("WRITE %d: %v status %#x", size, err, r.Status)
				}
				in := make([]byte, size)
				r, err = s.Execute(ctx, 0, rw16(0x88, 100, uint32(size/512)), nil, in)
				if err != nil || r.Status != 0 || r.DataInLen != size {
					t.Fatalf("READ %d: %v status %#x len %d", size, err, r.Status, r.DataInLen)
				}
				if !bytes.Equal(in, out) {
					t.Fatalf("READ %d returned other data than was written", size)
				}
			}
			if err := s.Logout(ctx); err != nil {
				t.Fatalf("logout: %v", err)
			}
		})
	}
}

// TestGoInitiatorQD64: 64 goroutines read and write at once.
func TestGoInitiatorQD64(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	s := goSession(t, tt, 64)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, in := make([]byte, 16<<10), make([]byte, 16<<10)
			fill(out, byte(g))
			lba := uint64(g * 64)
			for range 8 {
				if r, err := s.Execute(ctx, 0, rw16(0x8a, lba, 32), out, nil); err != nil || r.Status != 0 {
					errs <- fmt.Errorf("write: %v %#x", err, r.Status)
					return
				}
				if r, err := s.Execute(ctx, 0, rw16(0x88, lba, 32), nil, in); err != nil || r.Status != 0 {
					errs <- fmt.Errorf("read: %v %#x", err, r.Status)
					return
				}
				if !bytes.Equal(in, out) {
					errs <- fmt.Errorf("goroutine %d: data mismatch", g)
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

// TestGoInitiatorFaultsEndWithErrors: a target that vanishes mid-I/O
// makes commands fail with an error, never silently wrong data.
func TestGoInitiatorFaultsEndWithErrors(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	s := goSession(t, tt, 16)
	ctx := context.Background()
	tt.p.SetCompletionDelay(5 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		in := make([]byte, 1<<20)
		for {
			r, err := s.Execute(ctx, 0, rw16(0x88, 0, 2048), nil, in)
			if err != nil {
				done <- err
				return
			}
			if r.Status != 0 {
				done <- fmt.Errorf("status %#x", r.Status)
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	_ = tt.srv.Close() // drops every connection at once
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("I/O went on after the target dropped the connection")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("I/O did not end after the target dropped the connection")
	}
	tt.p.SetCompletionDelay(0)
}

// TestFallbackToTCP: with Fallback, a portal with no iSER listener is
// reached over TCP, and the result and a log line say so.
func TestFallbackToTCP(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	tcpTr := tcp.New(l, tcp.Config{})
	go func() { _ = tt.srv.Serve(tcpTr) }()
	var logs logBuf
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := iser.SessionConfig{
		Initiator: initiator.Config{InitiatorName: "iqn.2026-12.dev.goiser:fallback", TargetName: testIQN},
		ISER:      iser.InitiatorConfig{Provider: tt.p, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
	}
	if _, _, err := iser.DialSession(ctx, l.Addr().String(), cfg); err == nil {
		t.Fatal("iSER dial to a portal without an iSER listener succeeded without Fallback")
	}
	cfg.Fallback = true
	s, transport, err := iser.DialSession(ctx, l.Addr().String(), cfg)
	if err != nil {
		t.Fatalf("fallback: %v", err)
	}
	defer s.Close()
	if transport != iser.TransportTCP || !strings.Contains(logs.String(), "falling back to iSCSI over TCP") {
		t.Fatalf("transport %q, log %q", transport, logs.String())
	}
	out := make([]byte, 4096)
	fill(out, 3)
	if r, err := s.Execute(ctx, 0, rw16(0x8a, 8, 8), out, nil); err != nil || r.Status != 0 {
		t.Fatalf("WRITE over the fallback: %v %#x", err, r.Status)
	}
	_ = s.Logout(ctx)
}

var _ = errors.New
var _ = iscsi.ErrServerClosed

// TestISERZeroAllocs proves the iSER datapath allocates nothing per I/O,
// end to end over rdma/soft: the Go initiator's staging and SENDs, the
// target's receive, pool, RDMA WRITE/READ and response, the SCSI core and
// the memory backend, counted over the whole process.
func TestISERZeroAllocs(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	s := goSession(t, tt, 4)
	ctx := context.Background()
	out, in := make([]byte, 4096), make([]byte, 4096)
	fill(out, 1)
	wcdb, rcdb := rw16(0x8a, 8, 8), rw16(0x88, 8, 8)
	write := func() {
		if r, err := s.Execute(ctx, 0, wcdb, out, nil); err != nil || r.Status != 0 {
			t.Fatalf("WRITE: %v %#x", err, r.Status)
		}
	}
	read := func() {
		if r, err := s.Execute(ctx, 0, rcdb, nil, in); err != nil || r.Status != 0 {
			t.Fatalf("READ: %v %#x", err, r.Status)
		}
	}
	for range 50 {
		write()
		read()
	}
	if n := testing.AllocsPerRun(200, write); n > 0 {
		t.Errorf("%.2f allocations per 4 KiB iSER WRITE, want 0", n)
	}
	if n := testing.AllocsPerRun(200, read); n > 0 {
		t.Errorf("%.2f allocations per 4 KiB iSER READ, want 0", n)
	}
}

// benchISER measures one 4 KiB command per iteration over iSER on
// rdma/soft, end to end (see TestISERZeroAllocs).
func benchISER(b *testing.B, write bool) {
	tt := startTargetB(b)
	ctx := context.Background()
	s, _, err := iser.DialSession(ctx, tt.addr, iser.SessionConfig{
		Initiator: initiator.Config{InitiatorName: "iqn.2026-12.dev.goiser:bench", TargetName: testIQN, MaxTasks: 4},
		ISER:      iser.InitiatorConfig{Provider: tt.p, MaxTasks: 4}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 4096)
	cdb := rw16(0x88, 8, 8)
	if write {
		cdb = rw16(0x8a, 8, 8)
	}
	b.SetBytes(4096)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var err error
		if write {
			_, err = s.Execute(ctx, 0, cdb, buf, nil)
		} else {
			_, err = s.Execute(ctx, 0, cdb, nil, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkISERRead4K is a 4 KiB READ at QD1 over iSER on rdma/soft.
func BenchmarkISERRead4K(b *testing.B) { benchISER(b, false) }

// BenchmarkISERWrite4K is a 4 KiB WRITE (immediate data) at QD1.
func BenchmarkISERWrite4K(b *testing.B) { benchISER(b, true) }
