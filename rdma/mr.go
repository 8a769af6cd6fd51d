package rdma

import (
	"fmt"

	"github.com/goiser/goiser/rdma/driver"
)

// MemoryRegion is registered memory: the device may read it, write it (with
// AccessLocalWrite) and let peers access it (with the remote rights) until
// Close.
//
// A MemoryRegion is safe for concurrent use.
type MemoryRegion struct {
	pd     *ProtectionDomain // immutable; never nil
	mr     driver.MR         // immutable; never nil
	mem    []byte            // the registered bytes; immutable
	buf    *Buffer           // the buffer registered with RegisterBuffer, or nil
	access Access            // immutable
	lkey   uint32            // immutable
	rkey   uint32            // immutable
	addr   uint64            // immutable
	life   lifecycle
}

// RemoteRegion is what a peer needs to address a memory region with RDMA
// READ and WRITE: its address, remote key and length (an iSER STag and VA).
type RemoteRegion struct {
	Addr uint64
	RKey uint32
	Len  uint32
}

// LKey is the local key, used in SGEs.
func (mr *MemoryRegion) LKey() uint32 { return mr.lkey }

// RKey is the remote key a peer uses for RDMA READ and WRITE.
func (mr *MemoryRegion) RKey() uint32 { return mr.rkey }

// Addr is the address of the first byte as SGEs and peers address it.
func (mr *MemoryRegion) Addr() uint64 { return mr.addr }

// Len is the registered length in bytes.
func (mr *MemoryRegion) Len() int { return len(mr.mem) }

// Access is the set of access rights the region was registered with.
func (mr *MemoryRegion) Access() Access { return mr.access }

// Bytes is the registered memory.
func (mr *MemoryRegion) Bytes() []byte { return mr.mem }

// Buffer is the Buffer registered with RegisterBuffer, or nil for a region
// made by RegisterMemory.
func (mr *MemoryRegion) Buffer() *Buffer { return mr.buf }

// ProtectionDomain is the domain the region belongs to.
func (mr *MemoryRegion) ProtectionDomain() *ProtectionDomain { return mr.pd }

// SGE returns the scatter/gather element for n bytes at offset off of the
// region. It panics when the range is outside the region, as slicing does.
func (mr *MemoryRegion) SGE(off, n int) SGE {
	mr.check(off, n)
	return SGE{Addr: mr.addr + uint64(off), Length: uint32(n), LKey: mr.lkey}
}

// Remote returns the remote view of n bytes at offset off, to send to a
// peer. It panics when the range is outside the region.
func (mr *MemoryRegion) Remote(off, n int) RemoteRegion {
	mr.check(off, n)
	return RemoteRegion{Addr: mr.addr + uint64(off), RKey: mr.rkey, Len: uint32(n)}
}

func (mr *MemoryRegion) check(off, n int) {
	if off < 0 || n < 0 || off+n > len(mr.mem) || off+n < off || uint64(n) > uint64(^uint32(0)) {
		panic(fmt.Sprintf("rdma: memory region range [%d:+%d] out of range of %d bytes", off, n, len(mr.mem)))
	}
}

// Close deregisters the region. Every work request that uses it must have
// completed (and its completion been polled) before. Close is idempotent.
func (mr *MemoryRegion) Close() error {
	mr.life.mu.Lock()
	defer mr.life.mu.Unlock()
	if mr.life.closed {
		return nil
	}
	if err := mr.mr.Close(); err != nil {
		return fmt.Errorf("rdma: deregister memory region (lkey %#x): %w", mr.lkey, err)
	}
	mr.life.closed = true
	mr.pd.life.release()
	if mr.buf != nil {
		mr.buf.life.release()
	}
	return nil
}
