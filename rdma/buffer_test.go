package rdma

import (
	"errors"
	"syscall"
	"testing"

	"github.com/goiser/goiser/rdma/driver"
)

func TestBuffer(t *testing.T) {
	b, err := AllocBuffer(3*4096+5, BufferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 3*4096+5 || len(b.Bytes()) != b.Len() || b.HugePages() {
		t.Fatalf("len %d, huge %v", b.Len(), b.HugePages())
	}
	for i, v := range b.Bytes() {
		if v != 0 {
			t.Fatalf("byte %d not zero", i)
		}
	}
	s := b.Slice(4096, 10)
	s[0] = 7
	if b.Bytes()[4096] != 7 || cap(s) != 10 {
		t.Fatalf("Slice is not a view with capped capacity")
	}
	if err := checkOffHeap(b.Bytes()); err != nil {
		t.Fatalf("buffer not seen as off-heap: %v", err)
	}
	if err := checkOffHeap(make([]byte, 100)); !errors.Is(err, ErrNotOffHeap) {
		t.Fatalf("heap slice: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("out-of-range Slice did not panic")
			}
		}()
		b.Slice(b.Len()-1, 2)
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := AllocBuffer(0, BufferOptions{}); err == nil {
		t.Fatal("zero-size buffer allocated")
	}
}

// TestBufferHugePages allocates a huge-page multiple: it uses huge pages
// exactly when the kernel has them free, and records which.
func TestBufferHugePages(t *testing.T) {
	hp := hugePageSize()
	if hp == 0 {
		t.Skip("no huge page size known on this system")
	}
	want := hugePagesFree(1)
	b, err := AllocBuffer(hp, BufferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.HugePages() != want {
		t.Fatalf("HugePages() = %v with %v free huge pages", b.HugePages(), want)
	}
	if err := checkOffHeap(b.Bytes()); err != nil {
		t.Fatalf("huge-page buffer not seen as off-heap: %v", err)
	}
	n, err := AllocBuffer(hp, BufferOptions{NoHugePages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.HugePages() {
		t.Fatal("NoHugePages buffer uses huge pages")
	}
	t.Logf("huge page size %d, huge pages used: %v", hp, b.HugePages())
}

func TestErrorsWrapErrno(t *testing.T) {
	err := driver.NewVerbsError("ibv_create_cq", syscall.ENOMEM)
	if !errors.Is(err, syscall.ENOMEM) {
		t.Fatal("VerbsError does not unwrap to its errno")
	}
	if errors.Is(err, ErrNotSupported) {
		t.Fatal("ENOMEM matches ErrNotSupported")
	}
	var ve *VerbsError
	if !errors.As(driver.NewVerbsError("ibv_reg_mr", syscall.EOPNOTSUPP), &ve) || !errors.Is(ve, ErrNotSupported) {
		t.Fatal("EOPNOTSUPP is not ErrNotSupported")
	}
	if ErrClosed != driver.ErrClosed || ErrInvalidState != driver.ErrInvalidState {
		t.Fatal("sentinels are not the driver's")
	}
}
