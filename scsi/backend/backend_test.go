package backend

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// conformance runs the checks every Backend must pass.
func conformance(t *testing.T, b Backend) {
	t.Helper()
	size := b.Size()
	data := bytes.Repeat([]byte("goiser!"), 1000)[:4096]
	if n, err := b.WriteAt(data, 8192); err != nil || n != len(data) {
		t.Fatalf("WriteAt: %d, %v", n, err)
	}
	got := make([]byte, 4096)
	if n, err := b.ReadAt(got, 8192); err != nil || n != len(got) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	// Unwritten space reads as zeros.
	if _, err := b.ReadAt(got, size-4096); err != nil || !bytes.Equal(got, make([]byte, 4096)) {
		t.Fatalf("unwritten read: %v", err)
	}
	if _, err := b.WriteAt(data, size-100); err == nil {
		t.Fatal("write past the end succeeded")
	}
	if _, err := b.WriteAt(data, -1); err == nil {
		t.Fatal("write at -1 succeeded")
	}
	if n, err := b.ReadAt(got, size-100); n != 100 || err != io.EOF {
		t.Fatalf("read across the end: %d, %v", n, err)
	}
	if err := b.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestMemory(t *testing.T) {
	m, err := NewMemory(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, m)
	if _, err := NewMemory(0); err == nil {
		t.Fatal("size 0 accepted")
	}
}

func TestMemorySparse(t *testing.T) {
	m, err := NewMemory(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	if m.Allocated() != 0 {
		t.Fatal("fresh memory backend allocated chunks")
	}
	buf := bytes.Repeat([]byte{1}, 3*memChunkSize)
	if _, err := m.WriteAt(buf, memChunkSize/2); err != nil {
		t.Fatal(err)
	}
	if got := m.Allocated(); got != 4*memChunkSize {
		t.Fatalf("allocated %d, want %d", got, 4*memChunkSize)
	}
	mapped, run, err := m.Mapped(0)
	if err != nil || !mapped || run != 4*memChunkSize {
		t.Fatalf("Mapped(0) = %v %d %v", mapped, run, err)
	}
	// Unmap whole chunks 1 and 2, and half of chunk 0.
	if err := m.Unmap(memChunkSize/2, 2*memChunkSize+memChunkSize/2); err != nil {
		t.Fatal(err)
	}
	if got := m.Allocated(); got != 2*memChunkSize {
		t.Fatalf("allocated after unmap %d", got)
	}
	mapped, run, _ = m.Mapped(memChunkSize)
	if mapped || run != 2*memChunkSize {
		t.Fatalf("Mapped(chunk 1) = %v %d", mapped, run)
	}
	got := make([]byte, 4*memChunkSize)
	m.ReadAt(got, 0)
	want := make([]byte, 4*memChunkSize)
	copy(want[3*memChunkSize:], buf[:memChunkSize/2])
	if !bytes.Equal(got, want) {
		t.Fatal("unmapped data does not read as zeros")
	}
	if err := m.Unmap(1<<30-10, 20); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("unmap past end: %v", err)
	}
	_, run, _ = m.Mapped(4 * memChunkSize)
	if run != 1<<30-4*memChunkSize {
		t.Fatalf("tail run %d", run)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m, _ := NewMemory(1 << 20)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			buf := bytes.Repeat([]byte{byte(g)}, 8192)
			in := make([]byte, 8192)
			for i := 0; i < 200; i++ {
				off := int64((g*37+i)%100) * 4096
				m.WriteAt(buf, off)
				m.ReadAt(in, off)
				if i%50 == 0 {
					m.Unmap(off, 4096)
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestNull(t *testing.T) {
	n := NewNull(1 << 20)
	buf := bytes.Repeat([]byte{7}, 512)
	if _, err := n.WriteAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, make([]byte, 512)) {
		t.Fatal("null backend read non-zero")
	}
	if _, err := n.WriteAt(buf, 1<<20); err == nil {
		t.Fatal("write past end succeeded")
	}
	if n.Flush() != nil || n.Close() != nil || n.Size() != 1<<20 {
		t.Fatal("null backend basics")
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lun0.img")
	f, err := OpenFile(path, FileConfig{Size: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen without a size: the file's size is the capacity, data persists.
	f, err = OpenFile(path, FileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != 4<<20 {
		t.Fatalf("size %d", f.Size())
	}
	got := make([]byte, 7)
	f.ReadAt(got, 8192)
	if string(got) != "goiser!" {
		t.Fatalf("data lost across reopen: %q", got)
	}
}

func TestFileMissing(t *testing.T) {
	_, err := OpenFile(filepath.Join(t.TempDir(), "nope.img"), FileConfig{})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file without size: %v", err)
	}
	t.Log(err)
	if _, err := OpenFile(filepath.Join(t.TempDir(), "x"), FileConfig{Size: -1}); err == nil {
		t.Fatal("negative size accepted")
	}
}

func TestFileReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.img")
	if err := os.WriteFile(path, make([]byte, 1<<16), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(path, FileConfig{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{1}, 0); err == nil {
		t.Fatal("write to read-only file succeeded")
	}
}

func TestFilePunchHole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thin.img")
	f, err := OpenFile(path, FileConfig{Size: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mapped, run, err := f.Mapped(0)
	if err != nil {
		t.Fatal(err)
	}
	if mapped || run != 8<<20 {
		t.Fatalf("fresh sparse file: mapped %v run %d", mapped, run)
	}
	data := bytes.Repeat([]byte{0xAB}, 1<<20)
	if _, err := f.WriteAt(data, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	mapped, run, _ = f.Mapped(1 << 20)
	if !mapped || run < 1<<20 {
		t.Fatalf("written range: mapped %v run %d", mapped, run)
	}
	if err := f.Unmap(1<<20, 1<<20); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("file system of %s cannot punch holes: %v", path, err)
		}
		t.Fatal(err)
	}
	mapped, _, _ = f.Mapped(1 << 20)
	if mapped {
		t.Fatal("punched range still mapped")
	}
	got := make([]byte, 1<<20)
	f.ReadAt(got, 1<<20)
	if !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Fatal("punched range does not read as zeros")
	}
	if f.Size() != 8<<20 {
		t.Fatal("punch changed the size")
	}
}

func alignedBuf(n, align int) []byte {
	b := make([]byte, n+align)
	off := int(uintptr(unsafe.Pointer(&b[0])) % uintptr(align))
	if off != 0 {
		off = align - off
	}
	return b[off : off+n]
}
