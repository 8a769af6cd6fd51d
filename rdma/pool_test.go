package rdma

import (
	"errors"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/goiser/goiser/rdma/soft"
)

// testPD opens soft0 and allocates a PD, closed at cleanup.
func testPD(t testing.TB) *ProtectionDomain {
	t.Helper()
	dev, err := Open(soft.New(soft.Config{}), "soft0")
	if err != nil {
		t.Fatal(err)
	}
	pd, err := dev.AllocPD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pd.Close(); err != nil {
			t.Errorf("close PD: %v", err)
		}
		if err := dev.Close(); err != nil {
			t.Errorf("close device: %v", err)
		}
	})
	return pd
}

func newTestPool(t testing.TB, pd *ProtectionDomain, cfg BufferPoolConfig) *BufferPool {
	t.Helper()
	cfg.NoHugePages = true
	p, err := NewBufferPool(pd, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close pool: %v", err)
		}
	})
	return p
}

// TestBufferPoolBuddyModel runs random Get/Put sequences against a model
// of the free memory: a Get succeeds exactly when an aligned free run of
// its block size exists (the buddy invariant: free blocks are fully
// merged), blocks never overlap, each is aligned to its size, the bytes
// of a block survive other blocks' use, and once everything is back the
// pool is whole again.
func TestBufferPoolBuddyModel(t *testing.T) {
	pd := testPD(t)
	const minB, maxB = 4 << 10, 256 << 10
	p := newTestPool(t, pd, BufferPoolConfig{Size: 2 << 20, MinBlock: minB, MaxBlock: maxB, ArenaSize: 1 << 20})
	units := p.Size() / minB
	used := make([]bool, units) // per min block: part of an outstanding block
	base := make([]uintptr, len(p.arenas))
	for i, a := range p.arenas {
		base[i] = uintptr(unsafe.Pointer(unsafe.SliceData(a.buf.mem)))
	}
	type held struct {
		b    Block
		seed byte
	}
	var out []held
	rng := rand.New(rand.NewPCG(1, 2))
	fits := func(k int) bool { // an aligned run of 2^k free units?
		run := 1 << k
		for s := 0; s < units; s += run {
			free := true
			for u := s; u < s+run && free; u++ {
				free = !used[u]
			}
			if free {
				return true
			}
		}
		return false
	}
	check := func(h held) {
		for i, v := range h.b.Bytes() {
			if v != h.seed+byte(i) {
				t.Fatalf("block at unit %d: byte %d is %d, want %d: overlapping blocks", h.b.index, i, v, h.seed+byte(i))
			}
		}
	}
	inUse := 0
	for step := 0; step < 4000; step++ {
		if len(out) > 0 && (rng.IntN(2) == 0 || len(out) > 40) {
			k := rng.IntN(len(out))
			h := out[k]
			out[k] = out[len(out)-1]
			out = out[:len(out)-1]
			check(h)
			for u := int(h.b.index); u < int(h.b.index)+h.b.Size()/minB; u++ {
				used[u] = false
			}
			inUse -= h.b.Size()
			p.Put(h.b)
			continue
		}
		n := 1 + rng.IntN(maxB)
		if rng.IntN(3) > 0 {
			n = 1 + rng.IntN(3*minB)
		}
		k := int(p.orderOf(n))
		want := fits(k)
		b, ok := p.Get(n)
		if ok != want {
			t.Fatalf("step %d: Get(%d) = %v, model says %v", step, n, ok, want)
		}
		if !ok {
			continue
		}
		size := b.Size()
		if b.Len() != n || size != p.BlockSize(n) || size < n || size&(size-1) != 0 || (n > minB && size >= 2*n) {
			t.Fatalf("Get(%d): len %d size %d", n, b.Len(), size)
		}
		arena := int(b.index) / p.arenaMin
		off := uintptr(unsafe.Pointer(unsafe.SliceData(b.Bytes()))) - base[arena]
		if off%uintptr(size) != 0 || int(b.index)%(size/minB) != 0 {
			t.Fatalf("Get(%d): block of %d bytes at arena offset %d is not aligned to its size", n, size, off)
		}
		if b.Addr() != p.arenas[arena].mr.Addr()+uint64(off) || b.LKey() != p.arenas[arena].mr.LKey() {
			t.Fatalf("Get(%d): address or key does not match the arena's memory region", n)
		}
		for u := int(b.index); u < int(b.index)+size/minB; u++ {
			if used[u] {
				t.Fatalf("Get(%d): unit %d already in use", n, u)
			}
			used[u] = true
		}
		h := held{b: b, seed: byte(rng.IntN(256))}
		for i := range b.Bytes() {
			b.Bytes()[i] = h.seed + byte(i)
		}
		out = append(out, h)
		inUse += size
		if s := p.Stats(); s.InUse != inUse || s.Outstanding != len(out) || s.Free != s.Total-inUse {
			t.Fatalf("stats %+v, model in use %d in %d blocks", s, inUse, len(out))
		}
	}
	for _, h := range out {
		check(h)
		p.Put(h.b)
	}
	s := p.Stats()
	if s.InUse != 0 || s.Outstanding != 0 || s.LargestFree != maxB || s.Free != s.Total || s.Misses == 0 {
		t.Fatalf("after putting everything back: %+v", s)
	}
	// Fully merged: exactly Size/MaxBlock blocks of MaxBlock fit.
	var all []Block
	for {
		b, ok := p.Get(maxB)
		if !ok {
			break
		}
		all = append(all, b)
	}
	if len(all) != p.Size()/maxB {
		t.Fatalf("%d max blocks after coalescing, want %d", len(all), p.Size()/maxB)
	}
	for _, b := range all {
		p.Put(b)
	}
}

func TestBufferPoolGetPutAllocatesNothing(t *testing.T) {
	p := newTestPool(t, testPD(t), BufferPoolConfig{Size: 16 << 20})
	sizes := []int{512, 4096, 65536, 1 << 20, 8 << 20}
	i := 0
	allocs := testing.AllocsPerRun(500, func() {
		b, ok := p.Get(sizes[i%len(sizes)])
		if !ok {
			t.Fatal("Get failed")
		}
		i++
		_ = b.SGE(0, b.Len())
		p.Put(b)
	})
	if allocs != 0 {
		t.Fatalf("Get+Put allocates %.1f times", allocs)
	}
}

func TestBufferPoolExhaustionAndNotify(t *testing.T) {
	p := newTestPool(t, testPD(t), BufferPoolConfig{Size: 1 << 20, MaxBlock: 512 << 10})
	a, ok1 := p.Get(512 << 10)
	b, ok2 := p.Get(300 << 10)
	if !ok1 || !ok2 {
		t.Fatal("the first two half-pool blocks failed")
	}
	if _, ok := p.Get(1); ok {
		t.Fatal("Get from an exhausted pool succeeded")
	}
	select {
	case <-p.Notify():
		t.Fatal("Notify before any Put")
	default:
	}
	p.Put(a)
	select {
	case <-p.Notify():
	default:
		t.Fatal("no Notify after Put")
	}
	c, ok := p.Get(4096)
	if !ok {
		t.Fatal("Get after Put failed")
	}
	if s := p.Stats(); s.Outstanding != 2 || s.InUse != 512<<10+4096 || s.LargestFree != 256<<10 {
		t.Fatalf("stats %+v", s)
	}
	p.Put(b)
	p.Put(c)
}

func TestBufferPoolCloseRefusesWhileBlocksAreOut(t *testing.T) {
	pd := testPD(t)
	p, err := NewBufferPool(pd, BufferPoolConfig{Size: 1 << 20, MaxBlock: 1 << 20, NoHugePages: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Get(100)
	if err := p.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close with a block out: %v, want ErrBusy", err)
	}
	if err := pd.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("PD Close under a pool: %v, want ErrBusy", err)
	}
	p.Put(b)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, ok := p.Get(100); ok {
		t.Fatal("Get after Close succeeded")
	}
}

func TestBufferPoolMisuse(t *testing.T) {
	p := newTestPool(t, testPD(t), BufferPoolConfig{Size: 1 << 20, MaxBlock: 1 << 20})
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", what)
			}
		}()
		f()
	}
	mustPanic("Get(0)", func() { p.Get(0) })
	mustPanic("Get(MaxBlock+1)", func() { p.Get(p.MaxBlock() + 1) })
	mustPanic("Put(zero Block)", func() { p.Put(Block{}) })
	b, _ := p.Get(10)
	mustPanic("SGE past the end", func() { b.SGE(5, 6) })
	mustPanic("Remote past the end", func() { b.Remote(0, 11) })
	if r := b.Remote(2, 8); r.Addr != b.Addr()+2 || r.RKey != b.RKey() || r.Len != 8 {
		t.Errorf("Remote = %+v", r)
	}
	p.Put(b)
	mustPanic("Put twice", func() { p.Put(b) })
	for _, cfg := range []BufferPoolConfig{
		{MinBlock: 3000}, {MaxBlock: 4096, MinBlock: 8192}, {Size: -1}, {MaxBlock: 1 << 20, ArenaSize: 1<<20 + 4096},
	} {
		if _, err := NewBufferPool(p.pd, cfg); err == nil {
			t.Errorf("NewBufferPool(%+v) succeeded", cfg)
		}
	}
	if s := p.Stats(); s.Outstanding != 0 {
		t.Fatalf("stats after misuse: %+v", s)
	}
}

func TestSlab(t *testing.T) {
	pd := testPD(t)
	s, err := NewSlab(pd, SlabConfig{Count: 8, DataSize: 8192, Header: 76, NoHugePages: true})
	if err != nil {
		t.Fatal(err)
	}
	prevEnd := uintptr(0)
	for i := range s.Count() {
		slot, data := s.Slot(i), s.Data(i)
		sa := uintptr(unsafe.Pointer(unsafe.SliceData(slot)))
		da := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
		if len(slot) != 76+8192 || len(data) != 8192 || da != sa+76 || da%512 != 0 {
			t.Fatalf("slot %d: %d bytes at %#x, data %d bytes at %#x", i, len(slot), sa, len(data), da)
		}
		if sa < prevEnd {
			t.Fatalf("slot %d overlaps the previous one", i)
		}
		prevEnd = sa + uintptr(len(slot))
		if sge := s.SGE(i); sge.Addr != s.MemoryRegion().Addr()+uint64(sa-uintptr(unsafe.Pointer(unsafe.SliceData(s.buf.mem)))) ||
			sge.Length != uint32(s.SlotSize()) || sge.LKey != s.MemoryRegion().LKey() {
			t.Fatalf("slot %d: SGE %+v", i, sge)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Slot(Count) did not panic")
			}
		}()
		s.Slot(s.Count())
	}()
	if _, err := NewSlab(pd, SlabConfig{Count: 1, DataSize: 1, Align: 3}); err == nil {
		t.Fatal("alignment 3 accepted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func BenchmarkBufferPoolGetPut(b *testing.B) {
	p := newTestPool(b, testPD(b), BufferPoolConfig{Size: 64 << 20})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		blk, ok := p.Get(4096 << (i % 8))
		if !ok {
			b.Fatal("Get failed")
		}
		p.Put(blk)
	}
}
