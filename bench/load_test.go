package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

const testIQN = "iqn.2026-11.dev.goiser:bench-test"

// serve starts our target in process on 127.0.0.1 with a memory LUN 0 of
// size bytes and returns its address.
func serve(tb testing.TB, size int64) string {
	tb.Helper()
	mem, err := backend.NewMemory(size)
	if err != nil {
		tb.Fatal(err)
	}
	return serveBackend(tb, mem)
}

// serveBackend starts our target in process on 127.0.0.1 with be as LUN 0
// and returns its address.
func serveBackend(tb testing.TB, be backend.Backend) string {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr, err := tcp.Listen("127.0.0.1:0", tcp.Config{Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	serveOn(tb, log, be, tr, 0, nil)
	return tr.Addr().String()
}

// serveOn serves be as LUN 0 on tr until the test ends (NOPInterval nop).
// At the end it shuts the server down and, when wait is not nil, checks
// the transport's own drain with it.
func serveOn(tb testing.TB, log *slog.Logger, be backend.Backend, tr iscsi.Transport, nop time.Duration, wait func(context.Context) error) {
	tb.Helper()
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: testIQN, LUNs: luns}}, Logger: log, NOPInterval: nop}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tr) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, iscsi.ErrServerClosed) {
			tb.Errorf("shutdown: %v", err)
			_ = srv.Close()
		}
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			tb.Errorf("Serve did not return after Shutdown")
		}
		if wait != nil {
			if err := wait(ctx); err != nil {
				tb.Errorf("the transport did not drain: %v", err)
			}
		}
		_ = luns.Close()
	})
}

// dial logs in to the test target with room for qd commands.
func dial(tb testing.TB, ctx context.Context, addr string, qd int) (*initiator.Session, initiator.Capacity) {
	tb.Helper()
	s, err := initiator.Dial(ctx, addr, initiator.Config{
		InitiatorName: "iqn.2026-11.dev.goiser:bench-client", TargetName: testIQN, MaxTasks: qd,
	})
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	c, err := s.ReadCapacity16(ctx, 0)
	if err != nil {
		tb.Fatalf("read capacity: %v", err)
	}
	return s, c
}

// TestRunAgainstOurTarget runs every kind of workload briefly against the
// target in process and checks that the accounting adds up. It never
// looks at how fast anything was.
func TestRunAgainstOurTarget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, capa := dial(t, ctx, serve(t, 16<<20), 32)
	if err := Fill(ctx, s, 0, int(capa.BlockSize), capa.Blocks, 128<<10, 4); err != nil {
		t.Fatal(err)
	}
	last := make([]byte, capa.BlockSize)
	if err := s.Read16(ctx, 0, capa.Blocks-1, int(capa.BlockSize), last); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(last, make([]byte, len(last))) {
		t.Fatalf("Fill left the last block zero")
	}
	for _, name := range []string{"4k-randread-qd1", "4k-randwrite-qd32", "128k-seqread-qd8", "128k-seqwrite-qd2"} {
		t.Run(name, func(t *testing.T) {
			wl, err := ParseWorkload(name)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Run(ctx, s, RunConfig{
				Workload: wl, BlockSize: int(capa.BlockSize), Blocks: capa.Blocks,
				Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			h := &r.Latency
			switch {
			case r.IOs == 0:
				t.Fatalf("no I/O measured")
			case h.Count() != r.IOs:
				t.Errorf("histogram holds %d latencies for %d I/Os", h.Count(), r.IOs)
			case r.Bytes != r.IOs*uint64(wl.Size):
				t.Errorf("bytes %d for %d I/Os of %d", r.Bytes, r.IOs, wl.Size)
			case r.Elapsed <= 0 || r.IOPS() <= 0 || r.MBps() <= 0:
				t.Errorf("elapsed %v, IOPS %v, MB/s %v", r.Elapsed, r.IOPS(), r.MBps())
			case !(h.Min() <= h.Median() && h.Median() <= h.Percentile(0.99) && h.Percentile(0.99) <= h.Max()) || h.Min() <= 0:
				t.Errorf("percentiles out of order: min %v p50 %v p99 %v max %v", h.Min(), h.Median(), h.Percentile(0.99), h.Max())
			}
			if row := RowOf("goiser", r); row.Workload != name || row.Rounds != 1 {
				t.Errorf("RowOf = %+v", row)
			}
		})
	}
}

// TestRunFailsOnCommandError gives Run a region larger than the LUN: the
// first command past the end fails, and Run returns that error promptly.
func TestRunFailsOnCommandError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, capa := dial(t, ctx, serve(t, 1<<20), 4)
	_, err := Run(ctx, s, RunConfig{
		Workload:  Workload{Size: 4096, Pattern: Random, QueueDepth: 4},
		BlockSize: int(capa.BlockSize), Blocks: capa.Blocks * 1000, Duration: 20 * time.Second,
	})
	var se *initiator.SCSIError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "read lba") {
		t.Fatalf("Run past the end of the LUN: %v, want a SCSI error naming the LBA", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Run did not stop at the first error")
	}
	if err := Fill(ctx, s, 0, int(capa.BlockSize), capa.Blocks+8, 4096, 2); !errors.As(err, &se) {
		t.Fatalf("Fill past the end of the LUN: %v, want a SCSI error", err)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	for _, c := range []RunConfig{
		{Workload: Workload{Size: 4096, QueueDepth: 1}, BlockSize: 512, Blocks: 100},                        // no duration
		{Workload: Workload{Size: 1000, QueueDepth: 1}, BlockSize: 512, Blocks: 100, Duration: time.Second}, // not a multiple
		{Workload: Workload{Size: 4096, QueueDepth: 0}, BlockSize: 512, Blocks: 100, Duration: time.Second}, // no depth
		{Workload: Workload{Size: 4096, QueueDepth: 1}, BlockSize: 512, Blocks: 7, Duration: time.Second},   // region too small
	} {
		if _, err := Run(ctx, new(initiator.Session), c); err == nil {
			t.Errorf("Run(%+v) succeeded", c)
		}
	}
	if _, err := Run(ctx, nil, RunConfig{Workload: Workload{Size: 512, QueueDepth: 1}, BlockSize: 512, Blocks: 1, Duration: time.Second}); err == nil {
		t.Errorf("Run without a session succeeded")
	}
}

func TestWorkerOffsets(t *testing.T) {
	s := new(initiator.Session) // never used: next only computes offsets
	ws, err := newWorkers(s, RunConfig{Workload: Workload{Size: 4096, Pattern: Sequential, QueueDepth: 2},
		BlockSize: 512, Blocks: 8*3 + 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for i := range 7 {
		got = append(got, ws[i%2].next())
	}
	if want := []uint64{0, 8, 16, 0, 8, 16, 0}; !equal(got, want) {
		t.Errorf("sequential LBAs %v, want %v (shared by the workers, wrapping)", got, want)
	}
	ws, err = newWorkers(s, RunConfig{Workload: Workload{Size: 4096, Pattern: Random, QueueDepth: 1},
		BlockSize: 512, Blocks: 8 * 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for range 1000 {
		lba := ws[0].next()
		if lba%8 != 0 || lba >= 80 {
			t.Fatalf("random LBA %d: not a multiple of 8 below 80", lba)
		}
		seen[lba] = true
	}
	if len(seen) != 10 {
		t.Errorf("1000 random offsets hit %d of 10 slots", len(seen))
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkStep measures one command of a Run against the target in
// process; allocs/op counts both sides and must be 0.
func BenchmarkStep(b *testing.B) {
	for _, name := range []string{"4k-randread-qd1", "4k-randwrite-qd1", "128k-seqread-qd1", "128k-seqwrite-qd1"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, capa := dial(b, ctx, serve(b, 64<<20), 1)
			wl, err := ParseWorkload(name)
			if err != nil {
				b.Fatal(err)
			}
			ws, err := newWorkers(s, RunConfig{Workload: wl, BlockSize: int(capa.BlockSize), Blocks: capa.Blocks, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			// The memory backend allocates its chunks on first write: fill
			// it so that allocs/op counts the datapath only.
			if err := Fill(ctx, s, 0, int(capa.BlockSize), capa.Blocks, 128<<10, 1); err != nil {
				b.Fatal(err)
			}
			w := ws[0]
			for range 16 { // warm up: grow every buffer once
				if err := w.step(ctx, time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(wl.Size))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.step(ctx, time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
