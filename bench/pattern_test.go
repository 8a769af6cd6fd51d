package bench

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/goiser/goiser/iscsi/initiator"
)

func TestPatternRoundTrip(t *testing.T) {
	for _, bs := range []int{32, 512, 520, 4096} {
		b := make([]byte, bs)
		putBlock(b, 1234, 0xfeed, 7)
		if off := checkBlock(b, 1234, 0xfeed, 7); off != -1 {
			t.Fatalf("bs %d: a fresh block differs at byte %d", bs, off)
		}
		h := readHeader(b)
		if h != (BlockHeader{Magic: patternMagic, LBA: 1234, Run: 0xfeed, Seq: 7}) {
			t.Errorf("bs %d: header %+v", bs, h)
		}
		if got := string(b[:8]); got != "goiserVB" {
			t.Errorf("magic bytes %q", got)
		}
		// Every byte counts: a change anywhere is found at its offset.
		for i := range b {
			b[i] ^= 0x10
			if off := checkBlock(b, 1234, 0xfeed, 7); off != i {
				t.Fatalf("bs %d: byte %d changed, checkBlock says %d", bs, i, off)
			}
			b[i] ^= 0x10
		}
	}
}

// TestPatternNamesTheWrite: blocks of another LBA, run or write differ
// from the expected one in the header field that says so, and in the body
// too (a torn block: this header over another write's body).
func TestPatternNamesTheWrite(t *testing.T) {
	const bs = 512
	want := make([]byte, bs)
	putBlock(want, 10, 1, 5)
	for _, c := range []struct {
		lba, run, seq uint64
		off           int
	}{
		{11, 1, 5, 8}, {10, 2, 5, 16}, {10, 1, 4, 24}, {10, 1, 6, 24},
	} {
		other := make([]byte, bs)
		putBlock(other, c.lba, c.run, c.seq)
		if off := checkBlock(other, 10, 1, 5); off != c.off {
			t.Errorf("block of (%d, %d, %d) differs at %d, want %d", c.lba, c.run, c.seq, off, c.off)
		}
		torn := append(append([]byte(nil), want[:patternHeader]...), other[patternHeader:]...)
		if off := checkBlock(torn, 10, 1, 5); off < patternHeader {
			t.Errorf("torn block (body of (%d, %d, %d)): first difference at %d, want one in the body", c.lba, c.run, c.seq, off)
		}
		half := append(append([]byte(nil), want[:bs/2]...), other[bs/2:]...)
		if off := checkBlock(half, 10, 1, 5); off < bs/2 {
			t.Errorf("half-torn block: first difference at %d, want >= %d", off, bs/2)
		}
	}
}

func TestVerifierFindsEveryKind(t *testing.T) {
	const bs = 512
	v, err := NewVerifier(bs, 64)
	if err != nil {
		t.Fatal(err)
	}
	if v.Generation() == 0 {
		t.Fatal("generation 0")
	}
	p := make([]byte, 4*bs)
	if _, err := v.done(false, p, 8, 0); err == nil || !strings.Contains(err.Error(), "fill the region first") {
		t.Fatalf("read of never written blocks: %v", err)
	}
	seq := v.prepare(true, p, 8)
	if n, err := v.done(true, p, 8, seq); n != 4 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	old := append([]byte(nil), p...)
	seq2 := v.prepare(true, p, 8)
	if _, err := v.done(true, p, 8, seq2); err != nil || seq2 <= seq {
		t.Fatalf("second write: seq %d after %d, %v", seq2, seq, err)
	}
	good := append([]byte(nil), p...)
	if n, err := v.done(false, p, 8, 0); n != 4 || err != nil {
		t.Fatalf("read back: %d, %v", n, err)
	}
	other, _ := NewVerifier(bs, 64)
	foreign := make([]byte, 4*bs)
	other.prepare(true, foreign, 8)
	for _, c := range []struct {
		name   string
		mangle func(b []byte)
		kind   string
		off    int
	}{
		{"flipped byte", func(b []byte) { b[2*bs+300] ^= 1 }, "corrupt", 300},
		{"stale", func(b []byte) { copy(b[2*bs:3*bs], old[2*bs:]) }, "stale", 24},
		{"misplaced", func(b []byte) { copy(b[2*bs:3*bs], b[3*bs:]) }, "misplaced", 8},
		{"zeroed", func(b []byte) { clear(b[2*bs : 3*bs]) }, "foreign", 0},
		{"other run", func(b []byte) { copy(b[2*bs:3*bs], foreign[2*bs:]) }, "other run", 16},
	} {
		b := append([]byte(nil), good...)
		c.mangle(b)
		_, err := v.done(false, b, 8, 0)
		var me *MismatchError
		if !errors.As(err, &me) {
			t.Fatalf("%s: %v, want a MismatchError", c.name, err)
		}
		// A header field differs in some byte of its word (the other run's
		// number may share low bytes with ours).
		if me.LBA != 10 || me.Offset < c.off || me.Offset >= c.off+8 || me.Kind() != c.kind || me.ReadLBA != 8 || me.ReadBlocks != 4 {
			t.Errorf("%s: %+v (kind %s), want lba 10, offset %d..%d, kind %s", c.name, me, me.Kind(), c.off, c.off+7, c.kind)
		}
		if me.Want.Seq != seq2 || me.Want.LBA != 10 {
			t.Errorf("%s: want header %v", c.name, me.Want)
		}
		msg := err.Error()
		for _, s := range []string{"lba 10,", "byte " + strconv.Itoa(me.Offset) + " of the block", "read at lba 8", c.kind, "want lba 10 run"} {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: %q lacks %q", c.name, msg, s)
			}
		}
	}
	st := v.Stats()
	if st.Written != 0 || st.Checked != 0 || st.BlockSize != bs {
		t.Errorf("stats %+v: counts come from runs, not from done", st)
	}
}

func TestNewVerifierRejects(t *testing.T) {
	for _, c := range []struct {
		bs     int
		blocks uint64
	}{{0, 1}, {16, 1}, {513, 1}, {512, 0}} {
		if _, err := NewVerifier(c.bs, c.blocks); err == nil {
			t.Errorf("NewVerifier(%d, %d) succeeded", c.bs, c.blocks)
		}
	}
	v, _ := NewVerifier(512, 8)
	if err := v.acquire(4096, 8); err == nil {
		t.Error("acquire with another block size succeeded")
	}
	if err := v.acquire(512, 9); err == nil {
		t.Error("acquire of a larger region succeeded")
	}
	if err := v.acquire(512, 8); err != nil {
		t.Fatal(err)
	}
	if err := v.acquire(512, 8); err == nil {
		t.Error("second acquire while busy succeeded")
	}
	v.release(nil)
	v.writeFailed(3, 1, errors.New("boom"))
	if err := v.acquire(512, 8); err == nil || !strings.Contains(err.Error(), "lba 3") {
		t.Errorf("acquire after a failed write: %v", err)
	}
}

// TestPatternAllocs: making and checking the pattern allocates nothing.
func TestPatternAllocs(t *testing.T) {
	v, _ := NewVerifier(4096, 1024)
	p := make([]byte, 128<<10)
	if n := testing.AllocsPerRun(20, func() {
		seq := v.prepare(true, p, 64)
		if _, err := v.done(true, p, 64, seq); err != nil {
			t.Fatal(err)
		}
		if _, err := v.done(false, p, 64, 0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocs per write and check", n)
	}
}

// TestVerifyWorkerStripes: with a Verifier, the writers of a run own
// disjoint stripes of the region that cover it, random or sequential,
// and readers visit the region as without one.
func TestVerifyWorkerStripes(t *testing.T) {
	v, _ := NewVerifier(512, 8*10)
	s := new(initiator.Session) // never used: only offsets are computed
	for _, p := range []Pattern{Random, Sequential} {
		ws, err := newWorkers(s, RunConfig{Workload: Workload{Size: 4096, Pattern: p, Write: true, QueueDepth: 3},
			BlockSize: 512, Blocks: 80, Seed: 1, Verify: v})
		if err != nil {
			t.Fatal(err)
		}
		owner := map[uint64]int{}
		for i, w := range ws {
			for range 200 {
				lba := w.owned()
				if lba%8 != 0 || lba >= 80 {
					t.Fatalf("%v: worker %d: LBA %d out of the region's slots", p, i, lba)
				}
				if o, ok := owner[lba]; ok && o != i {
					t.Fatalf("%v: LBA %d written by workers %d and %d", p, lba, o, i)
				}
				owner[lba] = i
			}
		}
		if len(owner) != 10 {
			t.Errorf("%v: the writers cover %d of 10 slots", p, len(owner))
		}
	}
	ws, err := newWorkers(s, RunConfig{Workload: Workload{Size: 4096, Pattern: Sequential, QueueDepth: 2},
		BlockSize: 512, Blocks: 24, Seed: 1, Verify: v})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for i := range 4 {
		got = append(got, ws[i%2].next())
	}
	if want := []uint64{0, 8, 16, 0}; !equal(got, want) {
		t.Errorf("sequential reads %v, want %v (one shared cursor, as without a Verifier)", got, want)
	}
}
