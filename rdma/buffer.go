package rdma

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BufferOptions tunes AllocBuffer. The zero value uses huge pages when it
// can and normal pages otherwise.
type BufferOptions struct {
	// NoHugePages forces normal pages even when huge pages are available.
	NoHugePages bool
}

// Buffer is off-heap memory for RDMA: an anonymous shared mapping made with
// mmap, never Go-heap memory, so the garbage collector never moves or frees
// it while a device accesses it. Register it with
// ProtectionDomain.RegisterBuffer (or a part of it with RegisterMemory).
//
// Huge pages are used when the size is a multiple of the huge page size and
// the kernel has enough free huge pages; otherwise normal pages (HugePages
// reports which). Close unmaps it; Close refuses (ErrBusy) while memory
// regions made by RegisterBuffer on it are open.
//
// Bytes and Slice views must not be used after Close: the memory is gone.
type Buffer struct {
	mem  []byte // the whole mapping; immutable until Close
	huge bool   // immutable
	life lifecycle
}

// AllocBuffer maps size bytes of off-heap memory, zero-filled.
func AllocBuffer(size int, opts BufferOptions) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("rdma: alloc buffer: size %d is not positive", size)
	}
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_SHARED | unix.MAP_ANON
	if !opts.NoHugePages {
		if hp := hugePageSize(); hp > 0 && size%hp == 0 && hugePagesFree(size/hp) {
			if mem, err := unix.Mmap(-1, 0, size, prot, flags|mapHugeTLB); err == nil {
				return &Buffer{mem: mem, huge: true}, nil
			}
			// Reservation raced with another user: fall back.
		}
	}
	mem, err := unix.Mmap(-1, 0, size, prot, flags)
	if err != nil {
		return nil, fmt.Errorf("rdma: alloc buffer: mmap %d bytes: %w", size, err)
	}
	return &Buffer{mem: mem}, nil
}

// Len is the size of the buffer in bytes.
func (b *Buffer) Len() int { return len(b.mem) }

// HugePages reports whether the buffer is backed by huge pages.
func (b *Buffer) HugePages() bool { return b.huge }

// Bytes returns the whole buffer. The slice is valid until Close.
func (b *Buffer) Bytes() []byte { return b.mem }

// Slice returns n bytes at offset off (capacity limited to n). It panics
// when the range is outside the buffer, as slicing does.
func (b *Buffer) Slice(off, n int) []byte {
	if off < 0 || n < 0 || off+n > len(b.mem) || off+n < off {
		panic(fmt.Sprintf("rdma: buffer slice [%d:+%d] out of range of %d bytes", off, n, len(b.mem)))
	}
	return b.mem[off : off+n : off+n]
}

// Addr is the virtual address of the first byte.
func (b *Buffer) Addr() uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b.mem))) }

// Close unmaps the buffer. It refuses with an error wrapping ErrBusy while
// memory regions registered with RegisterBuffer on it are open. Close is
// idempotent.
func (b *Buffer) Close() error {
	b.life.mu.Lock()
	defer b.life.mu.Unlock()
	if b.life.closed {
		return nil
	}
	if n := b.life.children.Load(); n > 0 {
		return fmt.Errorf("rdma: close buffer: %d memory regions still registered: %w", n, ErrBusy)
	}
	if err := unix.Munmap(b.mem); err != nil {
		return fmt.Errorf("rdma: close buffer: munmap: %w", err)
	}
	b.mem = nil
	b.life.closed = true
	return nil
}
