package backend

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// directDir returns an empty directory on a file system that supports
// O_DIRECT. t.TempDir() (under $TMPDIR, or /tmp) is tried first, then
// /var/tmp, which is on disk even where /tmp is a tmpfs (which refuses
// O_DIRECT). Neither working skips the test loudly.
func directDir(tb testing.TB) string {
	tb.Helper()
	var errs []error
	for _, dir := range []string{"", "/var/tmp"} {
		if dir == "" {
			dir = tb.TempDir()
		} else {
			d, err := os.MkdirTemp(dir, "goiser-backend-test-")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			tb.Cleanup(func() { os.RemoveAll(d) })
			dir = d
		}
		probe := filepath.Join(dir, "probe")
		f, err := os.OpenFile(probe, os.O_RDWR|os.O_CREATE|unix.O_DIRECT, 0o600)
		if err == nil {
			f.Close()
			os.Remove(probe)
			return dir
		}
		errs = append(errs, err)
	}
	tb.Skipf("SKIPPED: no directory that supports O_DIRECT (tmpfs refuses it); set TMPDIR to a directory on ext4 or xfs to run this test: %v", errors.Join(errs...))
	return ""
}

// openDirect opens a fresh O_DIRECT file backend of size bytes aligned to
// align in directDir.
func openDirect(tb testing.TB, size int64, align int) *File {
	tb.Helper()
	f, err := OpenFile(filepath.Join(directDir(tb), "direct.img"), FileConfig{Size: size, Direct: true, Align: align})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// misaligned returns a slice of n bytes whose address is skew bytes past an
// address aligned to 4096.
func misaligned(n, skew int) []byte {
	return alignedBuf(n+skew, 4096)[skew:]
}

func fill(p []byte, seed byte) {
	for i := range p {
		p[i] = seed + byte(i*7)
	}
}

// TestFileDirectAligned: aligned requests (512-aligned on a 512-aligned
// LUN, 4096-aligned) go straight to the file, never through a bounce
// buffer.
func TestFileDirectAligned(t *testing.T) {
	f := openDirect(t, 1<<20, 512)
	for _, c := range []struct{ skew, off, n int }{{0, 4096, 4096}, {512, 512, 1024}, {1536, 8192, 128 << 10}} {
		w := misaligned(c.n, c.skew)
		fill(w, byte(c.off))
		if n, err := f.WriteAt(w, int64(c.off)); err != nil || n != c.n {
			t.Fatalf("aligned write %+v: %d, %v", c, n, err)
		}
		r := misaligned(c.n, c.skew)
		if n, err := f.ReadAt(r, int64(c.off)); err != nil || n != c.n || !bytes.Equal(r, w) {
			t.Fatalf("aligned read %+v: %d, %v, equal %v", c, n, err, bytes.Equal(r, w))
		}
	}
	if n := f.bounced.Load(); n != 0 {
		t.Fatalf("%d aligned requests went through a bounce buffer", n)
	}
	// The same buffer one byte off does bounce.
	if _, err := f.ReadAt(misaligned(512, 1), 0); err != nil || f.bounced.Load() != 1 {
		t.Fatalf("misaligned read: %v, bounced %d", err, f.bounced.Load())
	}
}

// TestFileDirectMisaligned checks misaligned buffer addresses, offsets and
// lengths, alone and together, against a model of the file's bytes.
func TestFileDirectMisaligned(t *testing.T) {
	for _, align := range []int{512, 4096} {
		t.Run(fmt.Sprint(align), func(t *testing.T) {
			const size = 1 << 20
			f := openDirect(t, size, align)
			model := make([]byte, size)
			check := func(what string, off, n, skew int) {
				t.Helper()
				r := misaligned(n, skew)
				fill(r, 0xEE) // must all be overwritten
				got, err := f.ReadAt(r, int64(off))
				want := min(n, size-off)
				if got != want || (err != nil && !(err == io.EOF && want < n)) {
					t.Fatalf("%s: read [%d,+%d) skew %d: %d, %v", what, off, n, skew, got, err)
				}
				if !bytes.Equal(r[:got], model[off:off+got]) {
					t.Fatalf("%s: read [%d,+%d) skew %d differs from what was written", what, off, n, skew)
				}
			}
			write := func(what string, off, n, skew int) {
				t.Helper()
				w := misaligned(n, skew)
				fill(w, byte(off+n+skew))
				if got, err := f.WriteAt(w, int64(off)); err != nil || got != n {
					t.Fatalf("%s: write [%d,+%d) skew %d: %d, %v", what, off, n, skew, got, err)
				}
				copy(model[off:], w)
				check(what, off, n, skew)
			}
			// Something under every later write, so that read-modify-write
			// has neighbours to keep.
			base := alignedBuf(size, 4096)
			fill(base, 1)
			if _, err := f.WriteAt(base, 0); err != nil {
				t.Fatal(err)
			}
			copy(model, base)
			write("address only", align, 2*align, 8)
			write("offset only", 3*align+100, align, 0)
			write("length only", 8*align, align+1, 0)
			write("all three", 16*align+7, 3*align-20, 3)
			write("one byte", 20*align+5, 1, 0)
			write("within one block", 21*align+10, 30, 5)
			write("first byte", 0, 1, 1)
			write("last byte", size-1, 1, 0)
			write("the last block, misaligned", size-align+1, align-1, 2)
			write("chunks, misaligned start", 5000, 3*bounceSize+1234, 11)
			write("chunks, aligned start", 32*align, 2*bounceSize+align, 1)
			write("one chunk exactly", bounceSize, bounceSize, 9)
			check("across the end", size-100, 300, 1)
			check("the last byte", size-1, 1, 0)
			check("misaligned, long", 777, 5*bounceSize, 13)

			rng := rand.New(rand.NewPCG(uint64(align), 7))
			for i := range 200 {
				off := rng.IntN(size - 1)
				n := 1 + rng.IntN(min(size-off, 3*align))
				if rng.IntN(4) == 0 {
					n = 1 + rng.IntN(size-off)
				}
				write(fmt.Sprintf("random %d", i), off, n, rng.IntN(4096))
			}
			all := alignedBuf(size, 4096)
			if _, err := f.ReadAt(all, 0); err != nil || !bytes.Equal(all, model) {
				t.Fatalf("whole file differs from the model: %v", err)
			}
			if f.bounced.Load() == 0 {
				t.Fatal("no request went through a bounce buffer")
			}
		})
	}
}

// TestFileDirectReadModifyWrite: a write of part of a block keeps the
// rest of it, and the bytes of neighbouring blocks.
func TestFileDirectReadModifyWrite(t *testing.T) {
	f := openDirect(t, 64<<10, 4096)
	old := alignedBuf(3*4096, 4096)
	fill(old, 0x40)
	if _, err := f.WriteAt(old, 4096); err != nil {
		t.Fatal(err)
	}
	// Ends of two blocks: the end of block 1 and the start of block 2.
	if _, err := f.WriteAt([]byte("hello, world"), 2*4096-5); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(old)
	copy(want[4096-5:], "hello, world")
	got := alignedBuf(3*4096, 4096)
	if _, err := f.ReadAt(got, 4096); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("byte %d after the partial write is %#x, want %#x", 4096+i, got[i], want[i])
	}
	// A partial write over a hole punched under O_DIRECT.
	if err := f.Unmap(4096, 4096); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatal(err)
	} else if err == nil {
		clear(want[:4096])
		if _, err := f.WriteAt([]byte{9}, 4096+100); err != nil {
			t.Fatal(err)
		}
		want[100] = 9
		f.ReadAt(got, 4096)
		if i := firstDiff(got, want); i >= 0 {
			t.Fatalf("after unmap, byte %d is %#x, want %#x", 4096+i, got[i], want[i])
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestFileDirectConcurrentRMW: goroutines writing disjoint misaligned
// pieces of the same two blocks at the same time lose none of each other's
// bytes.
func TestFileDirectConcurrentRMW(t *testing.T) {
	const (
		align   = 512
		writers = 8
		piece   = align / 4 // 8 pieces over blocks 2 and 3
		rounds  = 300
	)
	f := openDirect(t, 1<<20, align)
	start := 2 * align
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, piece-3) // 3 bytes of every piece stay zero
			for r := range rounds {
				for i := range buf {
					buf[i] = byte(g*rounds + r + 1)
				}
				if _, err := f.WriteAt(buf, int64(start+g*piece+1)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := make([]byte, writers*piece)
	if _, err := f.ReadAt(got, int64(start)); err != nil {
		t.Fatal(err)
	}
	for g := range writers {
		p := got[g*piece : (g+1)*piece]
		want := make([]byte, piece)
		for i := 1; i < piece-2; i++ {
			want[i] = byte(g*rounds + rounds)
		}
		if !bytes.Equal(p, want) {
			t.Fatalf("writer %d's last write was lost or damaged: %v", g, p)
		}
	}
}

// TestFileDirectConcurrentAlignedAndRMW: a read-modify-write of part of a
// block never puts back bytes that a concurrent aligned write replaced.
func TestFileDirectConcurrentAlignedAndRMW(t *testing.T) {
	const (
		align  = 4096
		rounds = 200
	)
	f := openDirect(t, 1<<20, align)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { // whole blocks 3 and 4, aligned, then 0..rounds
		defer wg.Done()
		buf := alignedBuf(2*align, align)
		for r := range rounds {
			for i := range buf {
				buf[i] = byte(r + 1)
			}
			if _, err := f.WriteAt(buf, 3*align); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { // bytes [100, 200) of block 4, misaligned
		defer wg.Done()
		buf := make([]byte, 100)
		for range rounds {
			fill(buf, 0xC0)
			if _, err := f.WriteAt(buf, 4*align+100); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := alignedBuf(2*align, align)
	if _, err := f.ReadAt(got, 3*align); err != nil {
		t.Fatal(err)
	}
	for i, c := range got {
		if i >= align+100 && i < align+200 {
			continue // either writer's bytes, depending on who was last
		}
		if c != rounds {
			t.Fatalf("byte %d is %d, not the last aligned write's %d: a read-modify-write put old data back", 3*align+i, c, rounds)
		}
	}
}

// TestFileDirectAllocs: in steady state neither aligned nor misaligned
// requests allocate.
func TestFileDirectAllocs(t *testing.T) {
	f := openDirect(t, 1<<20, 512)
	al := alignedBuf(4096, 4096)
	mis := misaligned(3000, 3)
	for name, fn := range map[string]func(){
		"aligned read":     func() { f.ReadAt(al, 8192) },
		"aligned write":    func() { f.WriteAt(al, 8192) },
		"misaligned read":  func() { f.ReadAt(mis, 8193) },
		"misaligned write": func() { f.WriteAt(mis, 8193) },
	} {
		fn() // fills the bounce free list
		if n := testing.AllocsPerRun(20, fn); n != 0 {
			t.Errorf("%s: %v allocs per request", name, n)
		}
	}
}

// TestFileDirectConformance runs the checks every backend passes, with
// O_DIRECT and any buffers.
func TestFileDirectConformance(t *testing.T) {
	conformance(t, openDirect(t, 4<<20, 512))
}

func TestFileDirectSizeNotAligned(t *testing.T) {
	path := filepath.Join(directDir(t), "odd.img")
	if err := os.WriteFile(path, make([]byte, 4096+512), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFile(path, FileConfig{Direct: true, Align: 4096})
	if err == nil || !strings.Contains(err.Error(), "multiple of the alignment") {
		t.Fatalf("O_DIRECT on a capacity that is not a multiple of the alignment: %v", err)
	}
	t.Log(err)
	f, err := OpenFile(path, FileConfig{Direct: true, Align: 512})
	if err != nil {
		t.Fatalf("O_DIRECT on a capacity that is a multiple of the alignment: %v", err)
	}
	f.Close()
}

func benchDirect(b *testing.B, read bool, p []byte, off int64) {
	f := openDirect(b, 64<<20, 512)
	if _, err := f.WriteAt(bytes.Repeat([]byte{1}, 1<<20), 0); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	var err error
	for b.Loop() {
		if read {
			_, err = f.ReadAt(p, off)
		} else {
			_, err = f.WriteAt(p, off)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileDirectRead4K is an aligned O_DIRECT read: straight pread,
// 0 allocs/op.
func BenchmarkFileDirectRead4K(b *testing.B) { benchDirect(b, true, alignedBuf(4096, 4096), 4096) }

// BenchmarkFileDirectWrite4K is an aligned O_DIRECT write: straight
// pwrite, 0 allocs/op.
func BenchmarkFileDirectWrite4K(b *testing.B) { benchDirect(b, false, alignedBuf(4096, 4096), 4096) }

// BenchmarkFileDirectReadMisaligned4K reads 4 KiB at a misaligned offset
// through a bounce buffer.
func BenchmarkFileDirectReadMisaligned4K(b *testing.B) {
	benchDirect(b, true, misaligned(4096, 1), 4097)
}

// BenchmarkFileDirectWriteMisaligned4K writes 4 KiB at a misaligned
// offset: read-modify-write of two blocks through a bounce buffer.
func BenchmarkFileDirectWriteMisaligned4K(b *testing.B) {
	benchDirect(b, false, misaligned(4096, 1), 4097)
}
