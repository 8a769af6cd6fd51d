package backend

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// memChunkSize is the allocation unit of Memory: a chunk is allocated on its
// first write and freed when an Unmap covers it whole.
const memChunkSize = 64 << 10

// memChunk is one allocation unit of a Memory backend.
type memChunk struct {
	mu   sync.RWMutex
	data []byte // guarded by mu; nil while the chunk is unmapped (reads as zeros)
}

// Memory is a sparse in-memory backend. Chunks of 64 KiB are allocated on
// their first write, so a large LUN that is mostly unwritten costs little
// RAM; Unmap frees whole chunks (and zeroes partial ones). Unallocated
// ranges read as zeros. Memory is safe for concurrent use: each chunk has
// its own lock, so I/O to different chunks proceeds in parallel.
type Memory struct {
	size   int64      // immutable
	chunks []memChunk // immutable length; each element guards itself
}

// NewMemory returns a Memory backend of size bytes (size > 0).
func NewMemory(size int64) (*Memory, error) {
	if size <= 0 {
		return nil, fmt.Errorf("new memory backend: size %d must be positive", size)
	}
	n := (size + memChunkSize - 1) / memChunkSize
	return &Memory{size: size, chunks: make([]memChunk, n)}, nil
}

// ErrOutOfRange is returned (wrapped) for I/O outside the backend's capacity.
var ErrOutOfRange = errors.New("offset out of range")

func (m *Memory) check(off int64, n int) error {
	if off < 0 || off > m.size || int64(n) > m.size-off {
		return fmt.Errorf("memory backend: [%d,+%d) beyond size %d: %w", off, n, m.size, ErrOutOfRange)
	}
	return nil
}

// ReadAt reads len(p) bytes at off. Unwritten ranges read as zeros. A read
// reaching past Size returns the bytes up to Size and io.EOF.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > m.size {
		return 0, m.check(off, len(p))
	}
	var eof error
	if int64(len(p)) > m.size-off {
		p = p[:m.size-off]
		eof = io.EOF
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		c := &m.chunks[pos/memChunkSize]
		in := int(pos % memChunkSize)
		n := min(len(p)-done, memChunkSize-in)
		c.mu.RLock()
		if c.data == nil {
			clear(p[done : done+n])
		} else {
			copy(p[done:done+n], c.data[in:in+n])
		}
		c.mu.RUnlock()
		done += n
	}
	return done, eof
}

// WriteAt writes p at off, allocating chunks as needed. Writes beyond Size
// fail whole with ErrOutOfRange.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	if err := m.check(off, len(p)); err != nil {
		return 0, err
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		c := &m.chunks[pos/memChunkSize]
		in := int(pos % memChunkSize)
		n := min(len(p)-done, memChunkSize-in)
		c.mu.Lock()
		if c.data == nil {
			c.data = make([]byte, m.chunkLen(pos/memChunkSize))
		}
		copy(c.data[in:in+n], p[done:done+n])
		c.mu.Unlock()
		done += n
	}
	return done, nil
}

// chunkLen is the length of chunk i (the last one may be short).
func (m *Memory) chunkLen(i int64) int64 {
	return min(memChunkSize, m.size-i*memChunkSize)
}

// Size returns the capacity in bytes.
func (m *Memory) Size() int64 { return m.size }

// Flush does nothing: memory has no slower medium behind it.
func (m *Memory) Flush() error { return nil }

// Close drops all data.
func (m *Memory) Close() error {
	for i := range m.chunks {
		c := &m.chunks[i]
		c.mu.Lock()
		c.data = nil
		c.mu.Unlock()
	}
	return nil
}

// Unmap deallocates [off, off+n): chunks covered whole are freed, the edges
// of partially covered chunks are zeroed. The range reads as zeros after.
func (m *Memory) Unmap(off, n int64) error {
	if n < 0 || off < 0 || off > m.size || n > m.size-off {
		return fmt.Errorf("memory backend: unmap [%d,+%d) beyond size %d: %w", off, n, m.size, ErrOutOfRange)
	}
	end := off + n
	for pos := off; pos < end; {
		i := pos / memChunkSize
		c := &m.chunks[i]
		in := pos - i*memChunkSize
		cl := m.chunkLen(i)
		k := min(end-pos, cl-in)
		c.mu.Lock()
		if c.data != nil {
			if in == 0 && k == cl {
				c.data = nil
			} else {
				clear(c.data[in : in+k])
			}
		}
		c.mu.Unlock()
		pos += k
	}
	return nil
}

// Mapped reports whether the chunk holding off is allocated and how many
// bytes from off on share that state.
func (m *Memory) Mapped(off int64) (bool, int64, error) {
	if off < 0 || off >= m.size {
		return false, 0, fmt.Errorf("memory backend: mapped at %d beyond size %d: %w", off, m.size, ErrOutOfRange)
	}
	i := off / memChunkSize
	state := m.allocated(i)
	j := i + 1
	for ; j < int64(len(m.chunks)); j++ {
		if m.allocated(j) != state {
			break
		}
	}
	end := min(j*memChunkSize, m.size)
	return state, end - off, nil
}

func (m *Memory) allocated(i int64) bool {
	c := &m.chunks[i]
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.data != nil
}

// Allocated returns the number of bytes of chunk memory in use.
func (m *Memory) Allocated() int64 {
	var total int64
	for i := range m.chunks {
		if m.allocated(int64(i)) {
			total += m.chunkLen(int64(i))
		}
	}
	return total
}
