package backend

import (
	"errors"
	"fmt"
	"io"
	"os"
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
	// Direct opens the file with O_DIRECT. Every buffer, offset and length
	// must then be aligned to Align; misaligned I/O fails with ErrUnaligned.
	Direct bool
	// Align is the O_DIRECT alignment in bytes; 0 means 4096.
	Align int
	// ReadOnly opens the file read-only; writes fail.
	ReadOnly bool
}

// ErrUnaligned is returned (wrapped) for O_DIRECT I/O whose buffer address,
// offset or length is not a multiple of the configured alignment.
var ErrUnaligned = errors.New("O_DIRECT I/O not aligned")

// File is a backend over a regular file (or block device) using pread and
// pwrite into the caller's buffers. Flush is fdatasync, Unmap punches holes
// (fallocate PUNCH_HOLE|KEEP_SIZE), Mapped uses SEEK_DATA/SEEK_HOLE.
// File is safe for concurrent use.
type File struct {
	f      *os.File // immutable
	size   int64    // immutable
	direct bool     // immutable
	align  int      // immutable
}

// OpenFile opens the backing file at path as cfg says.
func OpenFile(path string, cfg FileConfig) (*File, error) {
	if cfg.Size < 0 {
		return nil, fmt.Errorf("open file backend %s: negative size %d", path, cfg.Size)
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
	align := cfg.Align
	if align <= 0 {
		align = 4096
	}
	return &File{f: f, size: size, direct: cfg.Direct, align: align}, nil
}

func (b *File) checkAlign(p []byte, off int64) error {
	if !b.direct || len(p) == 0 {
		return nil
	}
	a := b.align
	if off%int64(a) != 0 || len(p)%a != 0 || uintptr(unsafe.Pointer(&p[0]))%uintptr(a) != 0 {
		return fmt.Errorf("file backend %s: [%d,+%d) buffer %p, alignment %d: %w", b.f.Name(), off, len(p), &p[0], a, ErrUnaligned)
	}
	return nil
}

// ReadAt reads len(p) bytes at off with pread. Bytes past the end of a
// file that is shorter than Size read as zeros.
func (b *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > b.size {
		return 0, fmt.Errorf("file backend %s: read at %d beyond size %d: %w", b.f.Name(), off, b.size, ErrOutOfRange)
	}
	var eof error
	if int64(len(p)) > b.size-off {
		p = p[:b.size-off]
		eof = io.EOF
	}
	if err := b.checkAlign(p, off); err != nil {
		return 0, err
	}
	n, err := b.f.ReadAt(p, off)
	if err == io.EOF {
		clear(p[n:])
		n, err = len(p), nil
	}
	if err != nil {
		return n, fmt.Errorf("file backend: pread: %w", err)
	}
	return n, eof
}

// WriteAt writes p at off with pwrite.
func (b *File) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > b.size || int64(len(p)) > b.size-off {
		return 0, fmt.Errorf("file backend %s: write [%d,+%d) beyond size %d: %w", b.f.Name(), off, len(p), b.size, ErrOutOfRange)
	}
	if err := b.checkAlign(p, off); err != nil {
		return 0, err
	}
	n, err := b.f.WriteAt(p, off)
	if err != nil {
		return n, fmt.Errorf("file backend: pwrite: %w", err)
	}
	return n, nil
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
