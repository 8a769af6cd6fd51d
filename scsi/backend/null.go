package backend

import (
	"fmt"
	"io"
)

// Null is a backend that stores nothing: reads return zeros and writes are
// discarded. It measures the cost of everything above the storage.
type Null struct {
	size int64 // immutable
}

// NewNull returns a Null backend that reports size bytes of capacity.
func NewNull(size int64) *Null { return &Null{size: size} }

// ReadAt fills p with zeros.
func (n *Null) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > n.size {
		return 0, fmt.Errorf("null backend: read at %d beyond size %d: %w", off, n.size, ErrOutOfRange)
	}
	var eof error
	if int64(len(p)) > n.size-off {
		p = p[:n.size-off]
		eof = io.EOF
	}
	clear(p)
	return len(p), eof
}

// WriteAt discards p.
func (n *Null) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > n.size || int64(len(p)) > n.size-off {
		return 0, fmt.Errorf("null backend: write [%d,+%d) beyond size %d: %w", off, len(p), n.size, ErrOutOfRange)
	}
	return len(p), nil
}

// Size returns the capacity in bytes.
func (n *Null) Size() int64 { return n.size }

// Flush does nothing.
func (n *Null) Flush() error { return nil }

// Close does nothing.
func (n *Null) Close() error { return nil }
