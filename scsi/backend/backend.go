package backend

// Backend stores the bytes of one logical unit. Implementations are safe for
// concurrent use. They read into and write from caller-provided buffers
// (which may be RDMA-registered memory) and never keep them after returning.
type Backend interface {
	// ReadAt has io.ReaderAt semantics.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt has io.WriterAt semantics.
	WriteAt(p []byte, off int64) (int, error)
	// Size is the capacity in bytes; it never changes.
	Size() int64
	// Flush makes all completed writes durable (fdatasync for files).
	// SYNCHRONIZE CACHE and FUA use it.
	Flush() error
	// Close releases the backend's resources.
	Close() error
}

// Unmapper is implemented by thin-provisioned backends: UNMAP and WRITE SAME
// with the UNMAP bit deallocate the n bytes at off, which then read as zeros
// (hole punching on files).
type Unmapper interface {
	Unmap(off, n int64) error
}

// Mapper is implemented by backends that know which ranges are allocated
// (GET LBA STATUS). Mapped reports whether the run starting at off is mapped
// and how many bytes long the run of the same state is (at least 1 byte,
// at most Size()-off).
type Mapper interface {
	Mapped(off int64) (mapped bool, run int64, err error)
}
