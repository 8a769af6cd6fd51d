package backend

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FileConfig configures OpenFile. The zero value opens an existing file
// read-write with buffered I/O.
type FileConfig struct {
	// Size, when > 0, creates the file if it is missing and extends it
	// (sparsely) to Size bytes if it is shorter. When 0, the file must exist
	// and its current size is the capacity.
	Size int64
	// Direct opens the file with O_DIRECT, bypassing the page cache. Any
	// buffer, offset and length is accepted: I/O aligned to Align goes
	// straight to pread/pwrite, anything else through an aligned bounce
	// buffer (see File). The capacity must be a multiple of Align.
	Direct bool
	// Align is the O_DIRECT alignment in bytes (of buffer addresses,
	// offsets and lengths); 0 means 4096. It is ignored without Direct.
	Align int
	// ReadOnly opens the file read-only; writes fail.
	ReadOnly bool
}

const (
	// bounceSize is the size of a bounce buffer (rounded up to a multiple
	// of the alignment): larger misaligned requests go through it in
	// chunks.
	bounceSize = 64 << 10
	// bounceKeep is how many bounce buffers a File keeps for reuse; more
	// concurrent misaligned requests allocate and drop theirs.
	bounceKeep = 8
	// lockStripes is the number of locks that order O_DIRECT writes, and
	// lockUnit the bytes each lock unit covers (unit u uses lock u mod
	// lockStripes).
	lockStripes = 64
	lockUnit    = 64 << 10
)

// File is a backend over a regular file (or block device) using pread and
// pwrite into the caller's buffers. Flush is fdatasync, Unmap punches holes
// (fallocate PUNCH_HOLE|KEEP_SIZE), Mapped uses SEEK_DATA/SEEK_HOLE.
// File is safe for concurrent use.
//
// With O_DIRECT (FileConfig.Direct), a request whose buffer address, offset
// and length are all multiples of the alignment goes straight to pread or
// pwrite, with no copy. Any other request goes through an aligned bounce
// buffer from a small free list: a read reads the whole aligned blocks and
// copies the asked bytes out; a write copies into the bounce buffer,
// reading first the partial blocks at its edges (read-modify-write), and
// writes whole blocks. Requests larger than a bounce buffer go in chunks.
// Writes take striped locks over the byte ranges they touch: shared for
// writes that replace whole blocks, exclusive for read-modify-write (and
// Unmap), so that two misaligned writes to the same block, or a misaligned
// and an aligned one, never undo each other.
type File struct {
	f      *os.File // immutable
	size   int64    // immutable; a multiple of align when direct
	direct bool     // immutable
	align  int      // immutable; > 0

	// The rest is used only when direct.
	bounce  bouncePool                // free list of aligned buffers
	stripes [lockStripes]sync.RWMutex // locks for write ranges, see stripeMask
	bounced atomic.Uint64             // requests that went through a bounce buffer
}

// OpenFile opens the backing file at path as cfg says.
func OpenFile(path string, cfg FileConfig) (*File, error) {
	if cfg.Size < 0 {
		return nil, fmt.Errorf("open file backend %s: negative size %d", path, cfg.Size)
	}
	align := cfg.Align
	if align <= 0 {
		align = 4096
	}
	flags := os.O_RDWR
	if cfg.ReadOnly {
		flags = os.O_RDONLY
	}
	if cfg.Size > 0 && !cfg.ReadOnly {
		flags |= os.O_CREATE
	}
	if cfg.Direct {
		flags |= unix.O_DIRECT
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && cfg.Size == 0 {
			return nil, fmt.Errorf("open file backend %s: backing file does not exist and no size was given to create it: %w", path, err)
		}
		if cfg.Direct && errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("open file backend %s: the file system refuses O_DIRECT: %w", path, err)
		}
		return nil, fmt.Errorf("open file backend %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open file backend %s: stat: %w", path, err)
	}
	size := st.Size()
	if st.Mode()&os.ModeDevice != 0 {
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open file backend %s: size of device: %w", path, err)
		}
		size = end
	}
	if cfg.Size > 0 && size < cfg.Size {
		if cfg.ReadOnly || st.Mode()&os.ModeDevice != 0 {
			f.Close()
			return nil, fmt.Errorf("open file backend %s: has %d bytes, less than the %d asked", path, size, cfg.Size)
		}
		if err := f.Truncate(cfg.Size); err != nil {
			f.Close()
			return nil, fmt.Errorf("open file backend %s: extend to %d bytes: %w", path, cfg.Size, err)
		}
		size = cfg.Size
	} else if cfg.Size > 0 {
		size = cfg.Size
	}
	if size == 0 {
		f.Close()
		return nil, fmt.Errorf("open file backend %s: file is empty and no size was given", path)
	}
	if cfg.Direct && size%int64(align) != 0 {
		// Whole aligned blocks are read and written: the last one must
		// end at the capacity, not beyond it.
		f.Close()
		return nil, fmt.Errorf("open file backend %s: O_DIRECT needs a capacity that is a multiple of the alignment %d, not %d bytes", path, align, size)
	}
	b := &File{f: f, size: size, direct: cfg.Direct, align: align}
	if cfg.Direct {
		n := (bounceSize + align - 1) / align * align
		b.bounce = bouncePool{size: n, align: align, free: make(chan []byte, bounceKeep)}
	}
	return b, nil
}

// aligned reports whether an O_DIRECT request may go straight to the file:
// buffer address, offset and length are multiples of the alignment.
func (b *File) aligned(p []byte, off int64) bool {
	a := b.align
	return off%int64(a) == 0 && len(p)%a == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%uintptr(a) == 0
}

// ReadAt reads len(p) bytes at off with pread. Bytes past the end of a
// file that is shorter than Size read as zeros. A read reaching past Size
// returns the bytes up to Size and io.EOF.
func (b *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > b.size {
		return 0, fmt.Errorf("file backend %s: read at %d beyond size %d: %w", b.f.Name(), off, b.size, ErrOutOfRange)
	}
	var eof error
	if int64(len(p)) > b.size-off {
		p = p[:b.size-off]
		eof = io.EOF
	}
	if len(p) == 0 {
		return 0, eof
	}
	var n int
	var err error
	if b.direct && !b.aligned(p, off) {
		n, err = b.readBounced(p, off)
	} else {
		n, err = b.pread(p, off)
	}
	if err != nil {
		return n, err
	}
	return n, eof
}

// pread fills p from off; bytes past the end of the file read as zeros.
func (b *File) pread(p []byte, off int64) (int, error) {
	n, err := b.f.ReadAt(p, off)
	if err == io.EOF {
		clear(p[n:])
		return len(p), nil
	}
	if err != nil {
		return n, fmt.Errorf("file backend %s: pread [%d,+%d): %w", b.f.Name(), off, len(p), err)
	}
	return n, nil
}

// pwrite writes p at off.
func (b *File) pwrite(p []byte, off int64) (int, error) {
	n, err := b.f.WriteAt(p, off)
	if err != nil {
		return n, fmt.Errorf("file backend %s: pwrite [%d,+%d): %w", b.f.Name(), off, len(p), err)
	}
	return n, nil
}

// readBounced serves a misaligned O_DIRECT read: whole aligned blocks go
// into a bounce buffer, chunk by chunk, and the asked bytes are copied out.
// [off, off+len(p)) lies within the capacity.
func (b *File) readBounced(p []byte, off int64) (int, error) {
	b.bounced.Add(1)
	buf := b.bounce.get()
	defer b.bounce.put(buf)
	a := int64(b.align)
	end := roundUp(off+int64(len(p)), a)
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		start := pos - pos%a
		chunk := buf[:min(start+int64(len(buf)), end)-start]
		if _, err := b.pread(chunk, start); err != nil {
			return done, err
		}
		done += copy(p[done:], chunk[pos-start:])
	}
	return done, nil
}

// WriteAt writes p at off with pwrite. Writes beyond Size fail whole with
// ErrOutOfRange.
func (b *File) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > b.size || int64(len(p)) > b.size-off {
		return 0, fmt.Errorf("file backend %s: write [%d,+%d) beyond size %d: %w", b.f.Name(), off, len(p), b.size, ErrOutOfRange)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !b.direct {
		return b.pwrite(p, off)
	}
	if !b.aligned(p, off) {
		return b.writeBounced(p, off)
	}
	m := b.stripeMask(off, int64(len(p)))
	b.lock(m, false)
	defer b.unlock(m, false)
	return b.pwrite(p, off)
}

// writeBounced serves a misaligned O_DIRECT write chunk by chunk through a
// bounce buffer. [off, off+len(p)) lies within the capacity.
func (b *File) writeBounced(p []byte, off int64) (int, error) {
	b.bounced.Add(1)
	buf := b.bounce.get()
	defer b.bounce.put(buf)
	a := int64(b.align)
	end := off + int64(len(p))
	alignedEnd := roundUp(end, a)
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		start := pos - pos%a
		stop := min(start+int64(len(buf)), alignedEnd)
		n, err := b.writeChunk(buf[:stop-start], start, p[done:min(int64(len(p)), int64(done)+stop-pos)], pos-start)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// writeChunk writes data at byte at of the aligned range that chunk covers
// (chunk is a bounce buffer of whole blocks for the file range starting at
// start, and data fits in it). A partial block at either edge is read
// first, under exclusive locks, so that the bytes around data keep what the
// last completed write put there. It returns len(data) or 0 and the error.
func (b *File) writeChunk(chunk []byte, start int64, data []byte, at int64) (int, error) {
	a := int64(b.align)
	head := at != 0                                  // first block partly written
	tail := at+int64(len(data)) != int64(len(chunk)) // last block partly written
	rmw := head || tail
	m := b.stripeMask(start, int64(len(chunk)))
	b.lock(m, rmw)
	defer b.unlock(m, rmw)
	if head {
		if _, err := b.pread(chunk[:a], start); err != nil {
			return 0, err
		}
	}
	if last := int64(len(chunk)) - a; tail && (!head || last > 0) {
		if _, err := b.pread(chunk[last:], start+last); err != nil {
			return 0, err
		}
	}
	copy(chunk[at:], data)
	if _, err := b.pwrite(chunk, start); err != nil {
		return 0, err
	}
	return len(data), nil
}

// roundUp rounds n up to a multiple of a.
func roundUp(n, a int64) int64 { return (n + a - 1) / a * a }

// stripeMask returns the set of stripe locks (bit i: stripes[i]) covering
// the lock units that [off, off+n) touches, n > 0. Two ranges that share a
// byte share a unit, so they share a lock.
func (b *File) stripeMask(off, n int64) uint64 {
	u0, u1 := off/lockUnit, (off+n-1)/lockUnit
	if u1-u0+1 >= lockStripes {
		return ^uint64(0)
	}
	var m uint64
	for u := u0; u <= u1; u++ {
		m |= 1 << (u % lockStripes)
	}
	return m
}

// lock takes the stripe locks in m in ascending order (which excludes
// deadlock between writers), exclusively or shared.
func (b *File) lock(m uint64, exclusive bool) {
	for ; m != 0; m &= m - 1 {
		if i := bits.TrailingZeros64(m); exclusive {
			b.stripes[i].Lock()
		} else {
			b.stripes[i].RLock()
		}
	}
}

// unlock releases what lock(m, exclusive) took.
func (b *File) unlock(m uint64, exclusive bool) {
	for ; m != 0; m &= m - 1 {
		if i := bits.TrailingZeros64(m); exclusive {
			b.stripes[i].Unlock()
		} else {
			b.stripes[i].RUnlock()
		}
	}
}

// bouncePool is a bounded free list of aligned bounce buffers. Buffers are
// allocated on first use; at most cap(free) are kept, so in steady state a
// misaligned request allocates nothing.
type bouncePool struct {
	size  int         // immutable: bytes per buffer, a multiple of align
	align int         // immutable
	free  chan []byte // buffers ready for reuse
}

// get returns a buffer of p.size bytes whose address is aligned.
func (p *bouncePool) get() []byte {
	select {
	case buf := <-p.free:
		return buf
	default:
	}
	raw := make([]byte, p.size+p.align-1)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) % uintptr(p.align)); r != 0 {
		skip = p.align - r
	}
	return raw[skip : skip+p.size : skip+p.size]
}

// put gives buf back, or drops it when the free list is full.
func (p *bouncePool) put(buf []byte) {
	select {
	case p.free <- buf:
	default:
	}
}

// Size returns the capacity in bytes.
func (b *File) Size() int64 { return b.size }

// Flush makes completed writes durable with fdatasync.
func (b *File) Flush() error {
	if err := unix.Fdatasync(int(b.f.Fd())); err != nil {
		return fmt.Errorf("file backend %s: fdatasync: %w", b.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (b *File) Close() error {
	if err := b.f.Close(); err != nil {
		return fmt.Errorf("file backend: close: %w", err)
	}
	return nil
}

// Unmap punches a hole over [off, off+n) keeping the size; the range then
// reads as zeros. File systems without hole punching give an error
// wrapping unix.EOPNOTSUPP.
func (b *File) Unmap(off, n int64) error {
	if n < 0 || off < 0 || off > b.size || n > b.size-off {
		return fmt.Errorf("file backend %s: unmap [%d,+%d) beyond size %d: %w", b.f.Name(), off, n, b.size, ErrOutOfRange)
	}
	if n == 0 {
		return nil
	}
	if b.direct {
		// A read-modify-write around the hole must not put old data back.
		m := b.stripeMask(off, n)
		b.lock(m, true)
		defer b.unlock(m, true)
	}
	err := unix.Fallocate(int(b.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err != nil {
		return fmt.Errorf("file backend %s: fallocate punch hole [%d,+%d): %w", b.f.Name(), off, n, err)
	}
	return nil
}

// Mapped reports whether off lies in data or in a hole (SEEK_DATA,
// SEEK_HOLE) and the length of that run, clipped to Size.
func (b *File) Mapped(off int64) (bool, int64, error) {
	if off < 0 || off >= b.size {
		return false, 0, fmt.Errorf("file backend %s: mapped at %d beyond size %d: %w", b.f.Name(), off, b.size, ErrOutOfRange)
	}
	fd := int(b.f.Fd())
	data, err := unix.Seek(fd, off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return false, b.size - off, nil // no data from off to the end of the file
	}
	if err != nil {
		return false, 0, fmt.Errorf("file backend %s: lseek SEEK_DATA %d: %w", b.f.Name(), off, err)
	}
	if data > off {
		return false, min(data, b.size) - off, nil
	}
	hole, err := unix.Seek(fd, off, unix.SEEK_HOLE)
	if err != nil {
		return false, 0, fmt.Errorf("file backend %s: lseek SEEK_HOLE %d: %w", b.f.Name(), off, err)
	}
	return true, min(hole, b.size) - off, nil
}
