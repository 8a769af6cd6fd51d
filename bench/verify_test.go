package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iser"
	"github.com/goiser/goiser/rdma/soft"
	"github.com/goiser/goiser/scsi/backend"
)

// verifyWorkloads run in this order against one LUN: writes at QD1 and
// QD32 from 512 bytes to 1 MiB, each followed by reads that see them.
var verifyWorkloads = []string{
	"4k-randwrite-qd32", "4k-randread-qd32", "4k-seqwrite-qd1", "4k-randread-qd1",
	"512-randwrite-qd4", "128k-seqread-qd8",
	"1m-randwrite-qd32", "1m-seqread-qd32", "1m-seqwrite-qd1", "1m-randread-qd1",
	"128k-randwrite-qd8", "4k-seqread-qd32",
}

// runVerified fills the LUN of s through a new Verifier, runs every
// workload of names with it briefly, reads the region back and returns
// the Verifier.
func runVerified(t *testing.T, ctx context.Context, s *initiator.Session, capa initiator.Capacity, names []string) *Verifier {
	t.Helper()
	bs := int(capa.BlockSize)
	v, err := NewVerifier(bs, capa.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, s, RunConfig{Workload: Workload{Size: 4096, QueueDepth: 1}, BlockSize: bs, Blocks: capa.Blocks,
		Duration: time.Second, Verify: v}); err == nil || !strings.Contains(err.Error(), "fill the region first") {
		t.Fatalf("verified read before the fill: %v", err)
	}
	if err := v.Fill(ctx, s, 0, 128<<10, 4); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.Written != capa.Blocks || st.Checked != 0 {
		t.Fatalf("after the fill: %+v, want every one of %d blocks written", st, capa.Blocks)
	}
	for _, name := range names {
		wl, err := ParseWorkload(name)
		if err != nil {
			t.Fatal(err)
		}
		before := v.Stats()
		// No warm-up: every command is measured, and verified.
		r, err := Run(ctx, s, RunConfig{Workload: wl, BlockSize: bs, Blocks: capa.Blocks,
			Duration: 100 * time.Millisecond, Verify: v})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after := v.Stats()
		blocks := r.IOs * uint64(wl.Size/bs)
		if wl.Write && (after.Written-before.Written != blocks || after.Checked != before.Checked) ||
			!wl.Write && (after.Checked-before.Checked != blocks || after.Written != before.Written) || r.IOs == 0 {
			t.Errorf("%s: %d I/Os measured, stats %+v -> %+v", name, r.IOs, before, after)
		}
	}
	if err := v.Check(ctx, s, 0, 1<<20, 8); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerifyOverTCP: every write and read of a verified run against our
// target over iSCSI/TCP matches, at QD1 and QD32, 512 bytes to 1 MiB, and
// the read-back of the whole region finds every
// acknowledged write.
func TestVerifyOverTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	s, capa := dial(t, ctx, serve(t, 32<<20), 32)
	v := runVerified(t, ctx, s, capa, verifyWorkloads)
	t.Logf("%+v", v.Stats())
}

// TestVerifyQueueDepthBeyondRegion: reads may outnumber the region's
// slots (overlapping reads see the same blocks); writes may not, since
// each write in flight needs slots of its own.
func TestVerifyQueueDepthBeyondRegion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, capa := dial(t, ctx, serve(t, 8<<20), 32)
	v, err := NewVerifier(int(capa.BlockSize), capa.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Fill(ctx, s, 0, 128<<10, 4); err != nil {
		t.Fatal(err)
	}
	cfg := RunConfig{Workload: Workload{Size: 1 << 20, Pattern: Random, QueueDepth: 32}, BlockSize: int(capa.BlockSize),
		Blocks: capa.Blocks, Duration: 100 * time.Millisecond, Verify: v}
	if r, err := Run(ctx, s, cfg); err != nil || r.IOs == 0 {
		t.Fatalf("1m-randread-qd32 on 8 slots: %v", err)
	}
	cfg.Workload.Write = true
	if _, err := Run(ctx, s, cfg); err == nil || !strings.Contains(err.Error(), "fewer than the queue depth") {
		t.Fatalf("1m-randwrite-qd32 on 8 slots: %v, want a refusal", err)
	}
	if err := v.Check(ctx, s, 0, 1<<20, 8); err != nil {
		t.Fatal(err)
	}
}

// serveISER starts our target with be as LUN 0 behind an iSER portal of
// an in-process rdma/soft fabric and logs the Go initiator in over iSER
// with room for qd commands.
func serveISER(t *testing.T, ctx context.Context, be backend.Backend, qd int) (*initiator.Session, initiator.Capacity) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := soft.New(soft.Config{Logger: log})
	tr, err := iser.Listen("127.0.0.1:3260", iser.TargetConfig{Provider: p, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, log, be, tr, -1, tr.Wait)
	icfg := initiator.Config{InitiatorName: "iqn.2026-11.dev.goiser:bench-client", TargetName: testIQN, MaxTasks: qd}
	s, transport, err := iser.DialSession(ctx, "127.0.0.1:3260", iser.SessionConfig{Initiator: icfg,
		ISER: iser.InitiatorConfig{Provider: p, Logger: log, MaxTasks: qd}})
	if err != nil {
		t.Fatalf("iSER login: %v", err)
	}
	if transport != iser.TransportISER {
		t.Fatalf("transport %s, want iser", transport)
	}
	t.Cleanup(func() { _ = s.Close() }) // runs before the target's cleanup
	c, err := s.ReadCapacity16(ctx, 0)
	if err != nil {
		t.Fatalf("read capacity: %v", err)
	}
	return s, c
}

// TestVerifyOverISER is TestVerifyOverTCP over iSER on rdma/soft: the
// data goes by RDMA WRITE and READ between registered buffers.
func TestVerifyOverISER(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	mem, err := backend.NewMemory(32 << 20)
	if err != nil {
		t.Fatal(err)
	}
	s, capa := serveISER(t, ctx, mem, 32)
	v := runVerified(t, ctx, s, capa, verifyWorkloads)
	t.Logf("%+v", v.Stats())
}

// fault is how faultyBackend breaks its block.
type fault int32

const (
	noFault       fault = iota
	flipOnRead          // one byte of the block read changes
	dropWrite           // writes to the block are acknowledged and lost
	readNeighbour       // reading the block returns the next block's data
	zeroOnRead          // the block reads as zeros (as if unmapped)
)

// faultyBackend is a backend that, once a fault is armed, breaks the
// one block at lba; I/O to every other block is left alone. It breaks
// only commands that contain the whole block in one call.
type faultyBackend struct {
	backend.Backend
	bs, lba int64 // immutable
	fault   atomic.Int32
}

// block returns where the broken block starts in the n bytes at off, or
// -1 when they do not hold it whole.
func (f *faultyBackend) block(off int64, n int) int64 {
	start := f.lba*f.bs - off
	if start < 0 || start+f.bs > int64(n) {
		return -1
	}
	return start
}

func (f *faultyBackend) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.Backend.ReadAt(p, off)
	start := f.block(off, n)
	if start < 0 {
		return n, err
	}
	b := p[start : start+f.bs]
	switch fault(f.fault.Load()) {
	case flipOnRead:
		b[100] ^= 0x04
	case readNeighbour:
		if _, err := f.Backend.ReadAt(b, (f.lba+1)*f.bs); err != nil {
			return 0, err
		}
	case zeroOnRead:
		clear(b)
	}
	return n, err
}

func (f *faultyBackend) WriteAt(p []byte, off int64) (int, error) {
	start := f.block(off, len(p))
	if start < 0 || fault(f.fault.Load()) != dropWrite {
		return f.Backend.WriteAt(p, off)
	}
	if _, err := f.Backend.WriteAt(p[:start], off); err != nil {
		return 0, err
	}
	if _, err := f.Backend.WriteAt(p[start+f.bs:], off+start+f.bs); err != nil {
		return 0, err
	}
	return len(p), nil
}

// TestVerifyFindsCorruption: a target that changes a byte, loses a
// write, returns a neighbour's block or zeros makes the verified run fail
// with a MismatchError naming the broken LBA, over TCP and over iSER.
func TestVerifyFindsCorruption(t *testing.T) {
	const badLBA = 40
	for _, c := range []struct {
		name  string
		iser  bool
		fault fault
		// writes, when set, runs (verified, unbroken) before the read
		writes string
		reads  string // a workload, or "check" for Verifier.Check
		kind   string
		offset int
	}{
		{name: "flipped byte", fault: flipOnRead, reads: "4k-seqread-qd4", kind: "corrupt", offset: 100},
		{name: "flipped byte over iSER", iser: true, fault: flipOnRead, reads: "1m-randread-qd1", kind: "corrupt", offset: 100},
		{name: "lost write", fault: dropWrite, writes: "4k-seqwrite-qd4", reads: "check", kind: "stale", offset: 24},
		{name: "lost write over iSER", iser: true, fault: dropWrite, writes: "4k-randwrite-qd8", reads: "check", kind: "stale", offset: 24},
		{name: "misplaced block", fault: readNeighbour, reads: "check", kind: "misplaced", offset: 8},
		{name: "zeroed block", fault: zeroOnRead, reads: "4k-randread-qd1", kind: "foreign", offset: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			mem, err := backend.NewMemory(32 << 20)
			if err != nil {
				t.Fatal(err)
			}
			be := &faultyBackend{Backend: mem, bs: 512, lba: badLBA}
			var (
				s    *initiator.Session
				capa initiator.Capacity
			)
			if c.iser {
				s, capa = serveISER(t, ctx, be, 32)
			} else {
				s, capa = dial(t, ctx, serveBackend(t, be), 32)
			}
			if capa.BlockSize != 512 {
				t.Fatalf("block size %d", capa.BlockSize)
			}
			v, err := NewVerifier(512, capa.Blocks)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Fill(ctx, s, 0, 128<<10, 8); err != nil {
				t.Fatal(err)
			}
			be.fault.Store(int32(c.fault))
			// The sequential and the small random workloads stay in the
			// first 64 KiB, so that they reach the broken block at once.
			region := func(wl Workload) uint64 {
				if wl.Size <= 4096 {
					return 128
				}
				return capa.Blocks
			}
			if c.writes != "" {
				wl, _ := ParseWorkload(c.writes)
				if _, err := Run(ctx, s, RunConfig{Workload: wl, BlockSize: 512, Blocks: region(wl),
					Duration: 200 * time.Millisecond, Verify: v}); err != nil {
					t.Fatalf("%s: %v", c.writes, err)
				}
			}
			if c.reads == "check" {
				err = v.Check(ctx, s, 0, 128<<10, 8)
			} else {
				wl, _ := ParseWorkload(c.reads)
				_, err = Run(ctx, s, RunConfig{Workload: wl, BlockSize: 512, Blocks: region(wl),
					Duration: 30 * time.Second, Verify: v})
			}
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("%s: %v, want a MismatchError", c.reads, err)
			}
			if me.LBA != badLBA || me.Kind() != c.kind || me.Offset < c.offset || me.Offset >= c.offset+8 {
				t.Errorf("%+v (kind %s), want lba %d, kind %s, offset %d", me, me.Kind(), badLBA, c.kind, c.offset)
			}
			if c.fault == flipOnRead && me.Offset != c.offset {
				t.Errorf("offset %d, want %d", me.Offset, c.offset)
			}
			if c.fault == readNeighbour && me.Got.LBA != badLBA+1 {
				t.Errorf("got header %v, want the block of lba %d", me.Got, badLBA+1)
			}
			want := "run " + c.reads + ": "
			if c.reads == "check" {
				want = "check lba "
			}
			if msg := err.Error(); !strings.Contains(msg, want) || !strings.Contains(msg, "lba 40,") || !strings.Contains(msg, c.kind) {
				t.Errorf("error %q does not name the workload (%q), the LBA and the kind", msg, want)
			}
			t.Log(err)
		})
	}
}

// BenchmarkStepVerify is BenchmarkStep with verification: the pattern is
// made or checked for every command, and allocs/op must still be 0.
func BenchmarkStepVerify(b *testing.B) {
	for _, name := range []string{"4k-randread-qd1", "4k-randwrite-qd1", "128k-seqread-qd1", "128k-seqwrite-qd1"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, capa := dial(b, ctx, serve(b, 64<<20), 1)
			wl, err := ParseWorkload(name)
			if err != nil {
				b.Fatal(err)
			}
			v, err := NewVerifier(int(capa.BlockSize), capa.Blocks)
			if err != nil {
				b.Fatal(err)
			}
			if err := v.Fill(ctx, s, 0, 128<<10, 1); err != nil {
				b.Fatal(err)
			}
			ws, err := newWorkers(s, RunConfig{Workload: wl, BlockSize: int(capa.BlockSize), Blocks: capa.Blocks, Seed: 1, Verify: v})
			if err != nil {
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
