package rdma

import (
	"errors"
	"fmt"
)

// SlabConfig specifies a Slab: Count slots, each a Header followed by
// DataSize bytes, the data aligned to Align.
type SlabConfig struct {
	// Count is the number of slots. Required.
	Count int
	// DataSize is the bytes after the header in each slot. Required.
	DataSize int
	// Header is the bytes before each slot's data; 0 means none. For an
	// iSER receive ring it is 76: the 28-byte iSER header and the 48-byte
	// BHS, so the data segment lands aligned (as LIO's isert does).
	Header int
	// Align is the alignment of each slot's data (a power of two); 0
	// means 512, the sector size O_DIRECT backends need. The region is
	// page aligned, so data addresses are Align-aligned for any Align up
	// to the page size.
	Align int
	// Access is the registration's access; 0 means AccessLocalWrite
	// (receive buffers are written by the device only).
	Access Access
	// NoHugePages forces normal pages (BufferOptions.NoHugePages).
	NoHugePages bool
}

// Slab is one registered region cut into Count fixed-size slots, indexed
// 0..Count-1, for a receive ring: slot i's data starts Align-aligned right
// after its Header bytes. There is no Get or Put: the owner (a
// connection) keeps each slot posted or in use itself, and encodes the
// slot index in the work-request id.
//
// A Slab's methods are safe for concurrent use; the bytes of a slot
// follow the ownership of the work request that covers it.
type Slab struct {
	buf    *Buffer       // immutable
	mr     *MemoryRegion // immutable
	cfg    SlabConfig    // immutable
	pad    int           // bytes before slot 0's header; immutable
	stride int           // bytes from one slot to the next; immutable
}

// NewSlab allocates and registers a slab on pd.
func NewSlab(pd *ProtectionDomain, cfg SlabConfig) (*Slab, error) {
	if pd == nil {
		return nil, fmt.Errorf("rdma: new slab: nil protection domain")
	}
	if cfg.Align == 0 {
		cfg.Align = 512
	}
	if cfg.Access == 0 {
		cfg.Access = AccessLocalWrite
	}
	if cfg.Count <= 0 || cfg.DataSize <= 0 || cfg.Header < 0 || cfg.Align < 0 || cfg.Align&(cfg.Align-1) != 0 {
		return nil, fmt.Errorf("rdma: new slab: %d slots of %d+%d bytes aligned to %d: counts and sizes must be positive, the alignment a power of two",
			cfg.Count, cfg.Header, cfg.DataSize, cfg.Align)
	}
	pad := (cfg.Align - cfg.Header%cfg.Align) % cfg.Align
	stride := (pad + cfg.Header + cfg.DataSize + cfg.Align - 1) / cfg.Align * cfg.Align
	if stride > (1<<31-1)/cfg.Count {
		return nil, fmt.Errorf("rdma: new slab: %d slots of %d bytes is too large", cfg.Count, stride)
	}
	buf, err := AllocBuffer(stride*cfg.Count, BufferOptions{NoHugePages: cfg.NoHugePages})
	if err != nil {
		return nil, fmt.Errorf("rdma: new slab of %d slots: %w", cfg.Count, err)
	}
	mr, err := pd.RegisterBuffer(buf, cfg.Access)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("rdma: new slab of %d slots: %w", cfg.Count, err), buf.Close())
	}
	return &Slab{buf: buf, mr: mr, cfg: cfg, pad: pad, stride: stride}, nil
}

// Count is the number of slots.
func (s *Slab) Count() int { return s.cfg.Count }

// SlotSize is the bytes of one slot: Header + DataSize.
func (s *Slab) SlotSize() int { return s.cfg.Header + s.cfg.DataSize }

// Header is the header bytes in front of each slot's data.
func (s *Slab) Header() int { return s.cfg.Header }

// offset is where slot i (its header) starts in the region.
func (s *Slab) offset(i int) int {
	if i < 0 || i >= s.cfg.Count {
		panic(fmt.Sprintf("rdma: slab slot %d out of range [0, %d)", i, s.cfg.Count))
	}
	return i*s.stride + s.pad
}

// Slot returns slot i, header and data (SlotSize bytes, capacity capped).
// It panics when i is out of range.
func (s *Slab) Slot(i int) []byte { return s.buf.Slice(s.offset(i), s.SlotSize()) }

// Data returns the data part of slot i (DataSize bytes, Align-aligned).
func (s *Slab) Data(i int) []byte {
	return s.buf.Slice(s.offset(i)+s.cfg.Header, s.cfg.DataSize)
}

// SGE returns the scatter/gather element covering slot i (header and
// data), for a receive work request.
func (s *Slab) SGE(i int) SGE { return s.mr.SGE(s.offset(i), s.SlotSize()) }

// MemoryRegion is the slab's registered region.
func (s *Slab) MemoryRegion() *MemoryRegion { return s.mr }

// Close deregisters and frees the slab. Every work request covering a
// slot must have been reaped first (see QueuePair.Close). Close is
// idempotent.
func (s *Slab) Close() error {
	if err := s.mr.Close(); err != nil {
		return fmt.Errorf("rdma: close slab: %w", err)
	}
	if err := s.buf.Close(); err != nil {
		return fmt.Errorf("rdma: close slab: %w", err)
	}
	return nil
}
