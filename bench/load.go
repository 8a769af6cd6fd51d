package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goiser/goiser/iscsi/initiator"
)

// RunConfig describes one measurement: a workload on one LUN of an open
// session for a while.
type RunConfig struct {
	// Workload says what to issue and at which queue depth.
	Workload Workload
	// LUN is the logical unit to use.
	LUN uint64
	// BlockSize is the LUN's logical block size in bytes (READ CAPACITY);
	// Workload.Size must be a multiple of it.
	BlockSize int
	// Blocks bounds the region used: LBAs [0, Blocks). It must hold at
	// least one I/O.
	Blocks uint64
	// Duration is how long commands are measured (> 0).
	Duration time.Duration
	// Warmup is how long commands are issued before measuring starts;
	// their latencies are not recorded. Zero means none.
	Warmup time.Duration
	// Seed makes the random offsets repeatable; 0 picks a random seed.
	Seed uint64
	// Verify, when not nil, checks the data: every write carries the
	// verify pattern of its blocks (see BlockHeader) and every read is
	// compared block by block with what the last acknowledged write to
	// each block sent; the first difference ends the run with a
	// *MismatchError. A read workload visits the region as without
	// Verify: no block changes while it runs, so reads in flight may
	// overlap. In a write workload each of the QueueDepth goroutines
	// owns the I/O-size slots of the region whose index modulo
	// QueueDepth is its own (random workloads pick uniformly among them,
	// sequential ones walk them in order), so no two writes in flight
	// overlap and each block's last acknowledged write is known; the
	// region must hold at least QueueDepth slots. Every block a read can
	// reach must have been written through Verify (Verifier.Fill). The
	// pattern is made before and checked after each command's measured
	// latency, but it costs CPU time: IOPS are lower than without.
	Verify *Verifier
}

// Result is the outcome of one Run.
type Result struct {
	Workload Workload
	// IOs is the number of commands measured (started after the warm-up
	// and completed).
	IOs uint64
	// Bytes is the data they moved.
	Bytes uint64
	// Elapsed runs from the end of the warm-up to the last completion.
	Elapsed time.Duration
	// Latency holds every measured command's latency, from just before it
	// was sent to the return of its status.
	Latency Histogram
}

// IOPS returns the measured commands per second.
func (r *Result) IOPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.IOs) / r.Elapsed.Seconds()
}

// MBps returns the measured throughput in megabytes (10^6 bytes) per second.
func (r *Result) MBps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds()
}

// worker is one of the QueueDepth goroutines of a Run. Each owns its
// buffer, random source and histogram; only seq is shared.
type worker struct {
	s        *initiator.Session
	lun      uint64
	bs       int
	write    bool
	v        *Verifier // nil: no verification
	random   bool
	slots    uint64 // I/O-size slots in the region
	ioBlocks uint64
	seq      *atomic.Uint64 // next sequential slot, shared by the workers
	rng      mrand.PCG
	buf      []byte
	hist     Histogram
	ios      uint64
	lastDone time.Time

	// With v and write, the worker owns slots first, first+stride, ...
	// (own of them); cursor is the next one a sequential workload visits.
	first, stride, own, cursor uint64
	written, checked           uint64 // blocks, with v
}

// next returns the LBA of the worker's next command.
func (w *worker) next() uint64 {
	var slot uint64
	if w.random {
		slot, _ = bits.Mul64(w.rng.Uint64(), w.slots) // uniform in [0, slots)
	} else {
		slot = (w.seq.Add(1) - 1) % w.slots
	}
	return slot * w.ioBlocks
}

// owned returns the LBA of the worker's next write with v: a slot of its
// own stripe of the region.
func (w *worker) owned() uint64 {
	var k uint64
	if w.random {
		k, _ = bits.Mul64(w.rng.Uint64(), w.own) // uniform in [0, own)
	} else {
		k = w.cursor
		w.cursor = (w.cursor + 1) % w.own
	}
	return (w.first + k*w.stride) * w.ioBlocks
}

// io issues one command at lba and returns when its status is back.
func (w *worker) io(ctx context.Context, lba uint64) error {
	if w.write {
		return w.s.Write16(ctx, w.lun, lba, w.bs, w.buf)
	}
	return w.s.Read16(ctx, w.lun, lba, w.bs, w.buf)
}

// step issues one command and records its latency when it started at or
// after from. It allocates nothing.
func (w *worker) step(ctx context.Context, from time.Time) error {
	if w.v != nil {
		return w.stepVerify(ctx, from)
	}
	lba := w.next()
	t0 := time.Now()
	if err := w.io(ctx, lba); err != nil {
		return fmt.Errorf("%s lba %d: %w", w.op(), lba, err)
	}
	t1 := time.Now()
	if !t0.Before(from) {
		w.hist.Record(t1.Sub(t0))
		w.ios++
		w.lastDone = t1
	}
	return nil
}

// stepVerify is step with w.v: the pattern is made before the command
// and checked after it, outside its measured latency. It allocates
// nothing unless the data differs.
func (w *worker) stepVerify(ctx context.Context, from time.Time) error {
	var lba uint64
	if w.write {
		lba = w.owned()
	} else {
		lba = w.next()
	}
	seq := w.v.prepare(w.write, w.buf, lba)
	t0 := time.Now()
	if err := w.io(ctx, lba); err != nil {
		if w.write {
			w.v.writeFailed(lba, len(w.buf)/w.bs, err)
		}
		return fmt.Errorf("%s lba %d: %w", w.op(), lba, err)
	}
	t1 := time.Now()
	if err := w.verified(lba, w.buf, seq); err != nil {
		return err
	}
	if !t0.Before(from) {
		w.hist.Record(t1.Sub(t0))
		w.ios++
		w.lastDone = t1
	}
	return nil
}

// verified records a completed write or checks a completed read of p at
// lba (see Verifier.done) and counts its blocks.
func (w *worker) verified(lba uint64, p []byte, seq uint64) error {
	n, err := w.v.done(w.write, p, lba, seq)
	if err != nil {
		return err
	}
	if w.write {
		w.written += n
	} else {
		w.checked += n
	}
	return nil
}

func (w *worker) op() string {
	if w.write {
		return "write"
	}
	return "read"
}

// newWorkers checks cfg and builds its workers.
func newWorkers(s *initiator.Session, cfg RunConfig) ([]*worker, error) {
	wl := cfg.Workload
	switch {
	case s == nil:
		return nil, errors.New("no session")
	case cfg.BlockSize <= 0 || wl.Size <= 0 || wl.Size%cfg.BlockSize != 0:
		return nil, fmt.Errorf("I/O size %d is not a multiple of the block size %d", wl.Size, cfg.BlockSize)
	case wl.QueueDepth < 1:
		return nil, fmt.Errorf("queue depth %d < 1", wl.QueueDepth)
	}
	ioBlocks := uint64(wl.Size / cfg.BlockSize)
	slots := cfg.Blocks / ioBlocks
	if slots == 0 {
		return nil, fmt.Errorf("region of %d blocks holds no %d-byte I/O", cfg.Blocks, wl.Size)
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	seq := new(atomic.Uint64)
	ws := make([]*worker, wl.QueueDepth)
	for i := range ws {
		w := &worker{
			s: s, lun: cfg.LUN, bs: cfg.BlockSize, write: wl.Write, random: wl.Pattern == Random,
			slots: slots, ioBlocks: ioBlocks, seq: seq, buf: make([]byte, wl.Size), v: cfg.Verify,
		}
		w.rng.Seed(seed, uint64(i))
		if cfg.Verify != nil && wl.Write {
			w.first, w.stride = uint64(i), uint64(len(ws))
			if w.first < slots {
				w.own = (slots - w.first + w.stride - 1) / w.stride
			}
		}
		if cfg.Verify == nil && wl.Write {
			_, _ = rand.Read(w.buf) // incompressible data
		}
		ws[i] = w
	}
	return ws, nil
}

// Run keeps cfg.Workload.QueueDepth commands in flight on s (one goroutine
// per slot, each issuing its next command when the previous one returns)
// for cfg.Warmup plus cfg.Duration, and returns the latencies of the
// commands started after the warm-up. The session's Config.MaxTasks must
// be at least the queue depth, or commands queue in the initiator and the
// latencies include that wait. The first failed command ends the run with
// its error. Per command, Run allocates nothing.
func Run(ctx context.Context, s *initiator.Session, cfg RunConfig) (*Result, error) {
	name := cfg.Workload.String()
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("run %s: duration %v <= 0", name, cfg.Duration)
	}
	ws, err := newWorkers(s, cfg)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
	if v := cfg.Verify; v != nil {
		if slots := ws[0].slots; cfg.Workload.Write && slots < uint64(len(ws)) {
			return nil, fmt.Errorf("run %s: verify: the region holds %d writes of %d bytes, fewer than the queue depth: each write in flight needs slots of its own", name, slots, cfg.Workload.Size)
		}
		if err := v.acquire(cfg.BlockSize, cfg.Blocks); err != nil {
			return nil, fmt.Errorf("run %s: %w", name, err)
		}
		defer v.release(ws)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	from := start.Add(cfg.Warmup)
	end := from.Add(cfg.Duration)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for _, w := range ws {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				if err := w.step(ctx, from); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("run %s: %w", name, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
	r := &Result{Workload: cfg.Workload}
	last := from
	for _, w := range ws {
		r.IOs += w.ios
		r.Latency.Merge(&w.hist)
		if w.lastDone.After(last) {
			last = w.lastDone
		}
	}
	r.Bytes = r.IOs * uint64(cfg.Workload.Size)
	r.Elapsed = last.Sub(from)
	return r, nil
}

// Fill writes every I/O-size slot of the region [0, blocks) once, in
// order, with size-byte WRITE(16)s keeping qd in flight, so that later
// reads hit allocated storage and writes do not pay for first allocation.
// Verifier.Fill is the same in the verify pattern.
func Fill(ctx context.Context, s *initiator.Session, lun uint64, blockSize int, blocks uint64, size, qd int) error {
	cfg := RunConfig{
		Workload: Workload{Size: size, Pattern: Sequential, Write: true, QueueDepth: qd},
		LUN:      lun, BlockSize: blockSize, Blocks: blocks,
	}
	ws, err := newWorkers(s, cfg)
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	return sweep(ctx, ws, "fill", ws[0].slots, blocks)
}

// sweep issues one command for each of the slots I/O-size slots of the
// region [0, blocks) with the workers, in order, each slot once: the
// last one is cut short where the region ends. op names the sweep in
// errors.
func sweep(ctx context.Context, ws []*worker, op string, slots, blocks uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for _, w := range ws {
		wg.Go(func() {
			for ctx.Err() == nil {
				slot := w.seq.Add(1) - 1
				if slot >= slots {
					return
				}
				lba := slot * w.ioBlocks
				if err := w.sweepOne(ctx, lba, min(w.ioBlocks, blocks-lba)); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("%s lba %d: %w", op, lba, err); cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// sweepOne issues one command of n blocks at lba, through w.v when set.
func (w *worker) sweepOne(ctx context.Context, lba, n uint64) error {
	if w.v == nil {
		return w.io(ctx, lba)
	}
	p := w.buf[:n*uint64(w.bs)]
	seq := w.v.prepare(w.write, p, lba)
	var err error
	if w.write {
		err = w.s.Write16(ctx, w.lun, lba, w.bs, p)
	} else {
		err = w.s.Read16(ctx, w.lun, lba, w.bs, p)
	}
	if err != nil {
		if w.write {
			w.v.writeFailed(lba, int(n), err)
		}
		return err
	}
	return w.verified(lba, p, seq)
}
