package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/goiser/goiser/iscsi/initiator"
)

// Verifier remembers, for the region [0, Blocks) of one LUN, which write
// command last put its data in each block, so that every read can be
// compared byte for byte with what the target must return. A Run with
// RunConfig.Verify writes the verify pattern (see BlockHeader) and checks
// every block it reads; Fill writes the whole region in the pattern and
// Check reads the whole region back.
//
// A Verifier keeps 8 bytes per block (16 MiB for 1 GiB of 512-byte
// blocks). One Run, Fill or Check uses it at a time; a second one started
// meanwhile fails. After a write fails, what its blocks hold is unknown:
// the Verifier refuses further use.
type Verifier struct {
	bs     int    // immutable: the LUN's logical block size
	blocks uint64 // immutable: the region's size in blocks
	run    uint64 // immutable, nonzero: this Verifier's generation

	// seqs[lba] is the sequence number of the last acknowledged write to
	// lba, 0 when no write through this Verifier reached it. During a
	// Run, Fill or Check an element is used only by the one goroutine
	// whose command covers its block (no two commands in flight overlap);
	// the run's end orders those uses with the next run's.
	seqs []uint64
	seq  atomic.Uint64 // the last write sequence number handed out

	mu      sync.Mutex
	busy    bool   // guarded by mu: a Run, Fill or Check is using v
	lost    error  // guarded by mu: why v's expectations are unknown, or nil
	written uint64 // guarded by mu: blocks written in the pattern
	checked uint64 // guarded by mu: blocks read and found as expected
}

// NewVerifier returns a Verifier for the region [0, blocks) of a LUN with
// blockSize-byte logical blocks (a multiple of 8, at least 32), with a
// random generation number and no block written yet.
func NewVerifier(blockSize int, blocks uint64) (*Verifier, error) {
	if blockSize < patternHeader || blockSize%8 != 0 {
		return nil, fmt.Errorf("verify: block size %d: want a multiple of 8 of at least %d", blockSize, patternHeader)
	}
	if blocks == 0 {
		return nil, errors.New("verify: empty region")
	}
	var b [8]byte
	for binary.LittleEndian.Uint64(b[:]) == 0 {
		_, _ = rand.Read(b[:])
	}
	return &Verifier{bs: blockSize, blocks: blocks, run: binary.LittleEndian.Uint64(b[:]), seqs: make([]uint64, blocks)}, nil
}

// Generation returns the number every block v writes carries as its run.
func (v *Verifier) Generation() uint64 { return v.run }

// VerifyStats counts what a Verifier has seen, over every Run, Fill and
// Check that used it. A mismatch ends the command that found it, so a
// Verifier whose runs all succeeded has found none.
type VerifyStats struct {
	// BlockSize is the logical block size in bytes.
	BlockSize int
	// Written is the number of blocks written in the pattern and
	// acknowledged (the fill included).
	Written uint64
	// Checked is the number of blocks read back and found to be exactly
	// what the last acknowledged write to them sent.
	Checked uint64
}

// Stats returns the counts so far.
func (v *Verifier) Stats() VerifyStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return VerifyStats{BlockSize: v.bs, Written: v.written, Checked: v.checked}
}

// acquire starts a Run, Fill or Check on the region [0, blocks) of a LUN
// with blockSize-byte blocks.
func (v *Verifier) acquire(blockSize int, blocks uint64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case blockSize != v.bs:
		return fmt.Errorf("verify: block size %d, but the verifier's is %d", blockSize, v.bs)
	case blocks > v.blocks:
		return fmt.Errorf("verify: region of %d blocks, but the verifier covers %d", blocks, v.blocks)
	case v.busy:
		return errors.New("verify: the verifier is in use by another run")
	case v.lost != nil:
		return v.lost
	}
	v.busy = true
	return nil
}

// release ends what acquire started and adds its workers' counts.
func (v *Verifier) release(ws []*worker) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.busy = false
	for _, w := range ws {
		v.written += w.written
		v.checked += w.checked
		w.written, w.checked = 0, 0
	}
}

// prepare readies p (whole blocks from lba) for a write or a read: a
// write's blocks get the pattern of a new write sequence number, which it
// returns; a read's buffer is zeroed, so that a block the target does not
// transfer cannot pass for one it does. It allocates nothing.
func (v *Verifier) prepare(write bool, p []byte, lba uint64) uint64 {
	if !write {
		clear(p)
		return 0
	}
	seq := v.seq.Add(1)
	for i := 0; i < len(p); i += v.bs {
		putBlock(p[i:i+v.bs], lba+uint64(i/v.bs), v.run, seq)
	}
	return seq
}

// done records an acknowledged write of p at lba with sequence number
// seq, or checks every block of a completed read of p at lba. It returns
// the number of blocks and, for a read, a *MismatchError for the first
// block that differs from what its last acknowledged write sent. It
// allocates nothing unless a block differs.
func (v *Verifier) done(write bool, p []byte, lba, seq uint64) (uint64, error) {
	n := uint64(len(p) / v.bs)
	if write {
		for i := range n {
			v.seqs[lba+i] = seq
		}
		return n, nil
	}
	for i := range n {
		b := p[int(i)*v.bs : int(i+1)*v.bs]
		want := v.seqs[lba+i]
		if want == 0 {
			return 0, fmt.Errorf("verify: read lba %d, which no write of this verifier reached: fill the region first", lba+i)
		}
		if off := checkBlock(b, lba+i, v.run, want); off >= 0 {
			return 0, &MismatchError{
				LBA: lba + i, Offset: off, BlockSize: v.bs, ReadLBA: lba, ReadBlocks: int(n),
				Want: BlockHeader{Magic: patternMagic, LBA: lba + i, Run: v.run, Seq: want}, Got: readHeader(b),
			}
		}
	}
	return n, nil
}

// writeFailed marks the blocks of a write that failed as unknown: v
// refuses further use.
func (v *Verifier) writeFailed(lba uint64, blocks int, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lost == nil {
		v.lost = fmt.Errorf("verify: the contents of lba %d+%d blocks are unknown since their write failed: %w", lba, blocks, err)
	}
}

// MismatchError is a block read back that is not exactly what the last
// acknowledged write to it (or the fill) sent.
type MismatchError struct {
	// LBA is the block that differs.
	LBA uint64
	// Offset is the byte offset in the block of the first difference.
	Offset int
	// BlockSize is the logical block size in bytes.
	BlockSize int
	// ReadLBA and ReadBlocks say which READ returned the block.
	ReadLBA    uint64
	ReadBlocks int
	// Want is the header the block should have had; Got is the header
	// it had.
	Want, Got BlockHeader
}

// Kind says what the block looks like: "foreign" (not a verify pattern),
// "other run" (written by another Verifier, e.g. an earlier invocation),
// "misplaced" (written for another LBA), "stale" (an older write to this
// block), "newer" (a write later than the last acknowledged one) or
// "corrupt" (right header, wrong data after it: a changed byte or a torn
// write).
func (e *MismatchError) Kind() string {
	switch g, w := e.Got, e.Want; {
	case g.Magic != w.Magic:
		return "foreign"
	case g.Run != w.Run:
		return "other run"
	case g.LBA != w.LBA:
		return "misplaced"
	case g.Seq < w.Seq:
		return "stale"
	case g.Seq > w.Seq:
		return "newer"
	}
	return "corrupt"
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("verify: data mismatch at lba %d, byte %d of the block (byte %d of the LUN), in the %d-block read at lba %d: %s: want %v, got %v",
		e.LBA, e.Offset, e.LBA*uint64(e.BlockSize)+uint64(e.Offset), e.ReadBlocks, e.ReadLBA, e.Kind(), e.Want, e.Got)
}

// Fill writes every block of v's region once in the verify pattern, in
// order, with size-byte WRITE(16)s (a shorter last one where the region
// ends mid-I/O) keeping qd in flight, so that every later read has an
// expectation.
func (v *Verifier) Fill(ctx context.Context, s *initiator.Session, lun uint64, size, qd int) error {
	return v.sweep(ctx, s, lun, size, qd, true)
}

// Check reads every block of v's region back with size-byte READ(16)s
// keeping qd in flight and compares each with what the last acknowledged
// write to it sent. The first difference ends it with a *MismatchError.
func (v *Verifier) Check(ctx context.Context, s *initiator.Session, lun uint64, size, qd int) error {
	return v.sweep(ctx, s, lun, size, qd, false)
}

func (v *Verifier) sweep(ctx context.Context, s *initiator.Session, lun uint64, size, qd int, write bool) error {
	op := "check"
	if write {
		op = "fill"
	}
	cfg := RunConfig{
		Workload: Workload{Size: size, Pattern: Sequential, Write: write, QueueDepth: qd},
		LUN:      lun, BlockSize: v.bs, Blocks: v.blocks, Verify: v,
	}
	ws, err := newWorkers(s, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := v.acquire(v.bs, v.blocks); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer v.release(ws)
	ioBlocks := ws[0].ioBlocks
	return sweep(ctx, ws, op, (v.blocks+ioBlocks-1)/ioBlocks, v.blocks)
}
