package rdma

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// Defaults of BufferPoolConfig.
const (
	// DefaultPoolSize is the registered-memory budget of a BufferPool
	// whose config leaves Size at 0: 256 MiB.
	DefaultPoolSize = 256 << 20
	// DefaultMinBlock is the smallest block a pool hands out: 4 KiB, so
	// every block is page aligned and usable for O_DIRECT.
	DefaultMinBlock = 4 << 10
	// DefaultMaxBlock is the largest block one Get returns: 8 MiB, the
	// largest I/O of one SCSI command.
	DefaultMaxBlock = 8 << 20
)

// BufferPoolConfig specifies a BufferPool. The zero value is a 256 MiB
// pool of blocks from 4 KiB to 8 MiB, registered for local write and
// remote read and write, on huge pages when the kernel has them.
type BufferPoolConfig struct {
	// Size is the total registered memory in bytes: the budget. 0 means
	// DefaultPoolSize. It is rounded up to a multiple of MaxBlock.
	Size int
	// MinBlock is the smallest block; a power of two. 0 means
	// DefaultMinBlock. Get(n) returns a block of the smallest power of two
	// of at least max(n, MinBlock) bytes.
	MinBlock int
	// MaxBlock is the largest block (the largest n Get accepts); a power
	// of two, at least MinBlock. 0 means DefaultMaxBlock.
	MaxBlock int
	// ArenaSize is the size of each registered region (one AllocBuffer,
	// one memory region): a multiple of MaxBlock. 0 means one arena of
	// Size bytes. Several arenas keep each registration smaller than the
	// device's max_mr_size on big budgets.
	ArenaSize int
	// Access is the access the arenas are registered with. 0 means
	// AccessLocalWrite|AccessRemoteRead|AccessRemoteWrite (a target RDMA
	// READs into blocks and RDMA WRITEs from them; an initiator lets the
	// peer do both).
	Access Access
	// NoHugePages forces normal pages (BufferOptions.NoHugePages).
	NoHugePages bool
}

// poolArena is one registered region of a pool.
type poolArena struct {
	buf *Buffer       // immutable
	mr  *MemoryRegion // immutable
}

// Buddy bookkeeping per min-block index: the state of the block that
// starts there, if one does.
const (
	blockNone  = 0    // no free or allocated block starts here
	blockFree  = 0x40 // | order: a free block of that order starts here
	blockInUse = 0x80 // | order: an allocated block of that order starts here
	orderMask  = 0x3f
)

// BufferPool hands out registered, off-heap memory as contiguous blocks:
// a buddy allocator over arenas that were each allocated with AllocBuffer
// and registered once, so no I/O ever registers memory. Blocks are powers
// of two from MinBlock to MaxBlock bytes, each aligned (within its arena,
// and in address up to the page size) to its own size.
//
// Get never blocks: when no block is free it returns false, and the
// caller queues its request (the registered-memory budget is reached:
// back-pressure) and retries when Notify signals that blocks came back.
// Get and Put allocate nothing.
//
// A BufferPool is safe for concurrent use; one mutex guards the
// allocator.
type BufferPool struct {
	pd        *ProtectionDomain // immutable
	minShift  uint              // log2(MinBlock); immutable
	maxOrder  uint8             // log2(MaxBlock/MinBlock); immutable
	arenaMin  int               // min blocks per arena; immutable
	arenas    []poolArena       // immutable after NewBufferPool
	total     int               // bytes; immutable
	freed     chan struct{}     // one pending "blocks were freed" token; immutable
	mu        sync.Mutex
	state     []uint8 // per min block, see blockFree; guarded by mu
	next      []int32 // free-list links per min block; guarded by mu
	prev      []int32 // guarded by mu
	heads     []int32 // free-list head per order, -1 when empty; guarded by mu
	inUse     int     // bytes of outstanding blocks; guarded by mu
	out       int     // outstanding blocks; guarded by mu
	misses    uint64  // Gets that found no block; guarded by mu
	closed    bool    // guarded by mu
	closeErrs bool    // a Close failed part-way; guarded by mu
}

// Block is a block of a BufferPool: n contiguous registered bytes (n as
// given to Get) inside a block of Size bytes. It is a small value: copy
// it freely, but Put it back exactly once. The zero Block is invalid.
//
// Ownership: the block is the caller's from Get until Put. While a work
// request that covers it is outstanding, it is the device's (see
// QueuePair.PostSend); Put it only after that work request's completion
// was polled.
type Block struct {
	pool  *BufferPool
	mem   []byte // the n requested bytes; cap n
	addr  uint64 // device address of mem[0]
	lkey  uint32
	rkey  uint32
	index int32 // first min block
	order uint8
}

// NewBufferPool allocates and registers the pool's arenas on pd.
func NewBufferPool(pd *ProtectionDomain, cfg BufferPoolConfig) (*BufferPool, error) {
	if pd == nil {
		return nil, fmt.Errorf("rdma: new buffer pool: nil protection domain")
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultPoolSize
	}
	if cfg.MinBlock == 0 {
		cfg.MinBlock = DefaultMinBlock
	}
	if cfg.MaxBlock == 0 {
		cfg.MaxBlock = DefaultMaxBlock
	}
	if cfg.Access == 0 {
		cfg.Access = AccessLocalWrite | AccessRemoteRead | AccessRemoteWrite
	}
	pow2 := func(v int) bool { return v > 0 && v&(v-1) == 0 }
	switch {
	case cfg.Size < 0:
		return nil, fmt.Errorf("rdma: new buffer pool: negative size %d", cfg.Size)
	case !pow2(cfg.MinBlock) || !pow2(cfg.MaxBlock) || cfg.MaxBlock < cfg.MinBlock:
		return nil, fmt.Errorf("rdma: new buffer pool: blocks %d to %d bytes: both must be powers of two, min <= max", cfg.MinBlock, cfg.MaxBlock)
	case cfg.MaxBlock/cfg.MinBlock > 1<<30:
		return nil, fmt.Errorf("rdma: new buffer pool: blocks %d to %d bytes: too many orders", cfg.MinBlock, cfg.MaxBlock)
	}
	size := (cfg.Size + cfg.MaxBlock - 1) / cfg.MaxBlock * cfg.MaxBlock
	if cfg.ArenaSize == 0 {
		cfg.ArenaSize = size
	}
	if cfg.ArenaSize < 0 || cfg.ArenaSize%cfg.MaxBlock != 0 {
		return nil, fmt.Errorf("rdma: new buffer pool: arena size %d is not a positive multiple of the max block %d", cfg.ArenaSize, cfg.MaxBlock)
	}
	size = (size + cfg.ArenaSize - 1) / cfg.ArenaSize * cfg.ArenaSize
	nMin := size / cfg.MinBlock
	if nMin > 1<<31-1 {
		return nil, fmt.Errorf("rdma: new buffer pool: %d bytes in %d-byte blocks is too many blocks", size, cfg.MinBlock)
	}
	p := &BufferPool{
		pd:       pd,
		minShift: uint(bits.TrailingZeros(uint(cfg.MinBlock))),
		maxOrder: uint8(bits.TrailingZeros(uint(cfg.MaxBlock / cfg.MinBlock))),
		arenaMin: cfg.ArenaSize / cfg.MinBlock,
		total:    size,
		freed:    make(chan struct{}, 1),
		state:    make([]uint8, nMin),
		next:     make([]int32, nMin),
		prev:     make([]int32, nMin),
	}
	p.heads = make([]int32, p.maxOrder+1)
	for i := range p.heads {
		p.heads[i] = -1
	}
	for off := 0; off < size; off += cfg.ArenaSize {
		buf, err := AllocBuffer(cfg.ArenaSize, BufferOptions{NoHugePages: cfg.NoHugePages})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("rdma: new buffer pool of %d bytes: %w", size, err), p.release())
		}
		mr, err := pd.RegisterBuffer(buf, cfg.Access)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("rdma: new buffer pool of %d bytes: %w", size, err), buf.Close(), p.release())
		}
		p.arenas = append(p.arenas, poolArena{buf: buf, mr: mr})
	}
	maxMin := int32(1) << p.maxOrder
	for i := int32(nMin) - maxMin; i >= 0; i -= maxMin {
		p.pushLocked(i, p.maxOrder)
	}
	return p, nil
}

// release closes the arenas' regions and buffers (construction failed, or
// Close).
func (p *BufferPool) release() error {
	var errs []error
	for len(p.arenas) > 0 {
		a := p.arenas[len(p.arenas)-1]
		if err := a.mr.Close(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := a.buf.Close(); err != nil {
			errs = append(errs, err)
			break
		}
		p.arenas = p.arenas[:len(p.arenas)-1]
	}
	return errors.Join(errs...)
}

// Size is the pool's total registered bytes (the budget).
func (p *BufferPool) Size() int { return p.total }

// MinBlock is the smallest block size.
func (p *BufferPool) MinBlock() int { return 1 << p.minShift }

// MaxBlock is the largest block size, the largest n Get accepts.
func (p *BufferPool) MaxBlock() int { return 1 << (p.minShift + uint(p.maxOrder)) }

// BlockSize is the size of the block Get(n) returns: the smallest power
// of two of at least max(n, MinBlock). It panics like Get on n outside
// [1, MaxBlock].
func (p *BufferPool) BlockSize(n int) int { return 1 << (p.minShift + uint(p.orderOf(n))) }

func (p *BufferPool) orderOf(n int) uint8 {
	if n <= 0 || n > p.MaxBlock() {
		panic(fmt.Sprintf("rdma: buffer pool: block of %d bytes outside [1, %d]", n, p.MaxBlock()))
	}
	units := (n + 1<<p.minShift - 1) >> p.minShift
	return uint8(bits.Len(uint(units - 1)))
}

// Get takes a block of at least n bytes, n in [1, MaxBlock]. It never
// blocks: it returns false when no block that large is free (or the pool
// is closed); queue the request and retry after Notify. It panics when n
// is outside [1, MaxBlock], a request no amount of waiting satisfies:
// check sizes against MaxBlock first. It allocates nothing.
func (p *BufferPool) Get(n int) (Block, bool) {
	k := p.orderOf(n)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return Block{}, false
	}
	j := k
	for j <= p.maxOrder && p.heads[j] < 0 {
		j++
	}
	if j > p.maxOrder {
		p.misses++
		p.mu.Unlock()
		return Block{}, false
	}
	i := p.heads[j]
	p.removeLocked(i, j)
	for j > k { // split, keeping the lower half
		j--
		p.pushLocked(i+int32(1)<<j, j)
	}
	p.state[i] = blockInUse | k
	p.inUse += 1 << (p.minShift + uint(k))
	p.out++
	p.mu.Unlock()

	a := &p.arenas[int(i)/p.arenaMin]
	off := (int(i) % p.arenaMin) << p.minShift
	return Block{pool: p, mem: a.buf.mem[off : off+n : off+n], addr: a.mr.addr + uint64(off),
		lkey: a.mr.lkey, rkey: a.mr.rkey, index: i, order: k}, true
}

// Put returns a block to the pool, merging it with its free buddies, and
// signals Notify. It panics on a block of another pool, the zero Block
// and a block already put back (each a use-after-free waiting to
// happen). It allocates nothing.
func (p *BufferPool) Put(b Block) {
	if b.pool != p {
		panic("rdma: buffer pool: Put of a block of another pool (or the zero Block)")
	}
	i, k := b.index, b.order
	p.mu.Lock()
	if p.state[i] != blockInUse|k {
		p.mu.Unlock()
		panic(fmt.Sprintf("rdma: buffer pool: Put of block %d (order %d) that is not outstanding: put twice?", i, k))
	}
	p.state[i] = blockNone
	p.inUse -= 1 << (p.minShift + uint(k))
	p.out--
	for k < p.maxOrder {
		buddy := i ^ int32(1)<<k
		if p.state[buddy] != blockFree|k {
			break
		}
		p.removeLocked(buddy, k)
		p.state[buddy] = blockNone
		i &^= int32(1) << k
		k++
	}
	p.pushLocked(i, k)
	p.mu.Unlock()
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// Notify returns a channel that receives a value after blocks were put
// back (one pending token: several Puts may wake one receive). A
// requester whose Get failed waits on it and retries; with several
// waiting requests, serve them in FIFO order from one goroutine (the
// channel wakes one receiver per token). It never closes.
func (p *BufferPool) Notify() <-chan struct{} { return p.freed }

// pushLocked puts the free block (i, k) at the head of list k.
func (p *BufferPool) pushLocked(i int32, k uint8) {
	h := p.heads[k]
	p.next[i], p.prev[i] = h, -1
	if h >= 0 {
		p.prev[h] = i
	}
	p.heads[k] = i
	p.state[i] = blockFree | k
}

// removeLocked unlinks the free block (i, k) from list k.
func (p *BufferPool) removeLocked(i int32, k uint8) {
	n, pr := p.next[i], p.prev[i]
	if pr >= 0 {
		p.next[pr] = n
	} else {
		p.heads[k] = n
	}
	if n >= 0 {
		p.prev[n] = pr
	}
	p.state[i] = blockNone
}

// BufferPoolStats is a snapshot of a pool's counters.
type BufferPoolStats struct {
	Total       int    // registered bytes (the budget)
	InUse       int    // bytes of outstanding blocks (block sizes, not requested sizes)
	Free        int    // Total - InUse
	Outstanding int    // blocks handed out and not yet put back
	LargestFree int    // the largest block Get could return now (0 when none)
	Misses      uint64 // Gets that found no block of their size
}

// Stats returns the pool's counters. A pool with every block back has
// InUse 0, Outstanding 0 and LargestFree MaxBlock (leak tests assert it).
func (p *BufferPool) Stats() BufferPoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := BufferPoolStats{Total: p.total, InUse: p.inUse, Free: p.total - p.inUse, Outstanding: p.out, Misses: p.misses}
	for k := int(p.maxOrder); k >= 0; k-- {
		if p.heads[k] >= 0 {
			s.LargestFree = 1 << (p.minShift + uint(k))
			break
		}
	}
	return s
}

// Close deregisters and frees the arenas. It refuses with an error
// wrapping ErrBusy while blocks are outstanding. After Close, Get returns
// false. Close is idempotent; when deregistration fails, Close returns
// the error and may be called again.
func (p *BufferPool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed && !p.closeErrs {
		return nil
	}
	if p.out > 0 {
		return fmt.Errorf("rdma: close buffer pool: %d blocks (%d bytes) still outstanding: %w", p.out, p.inUse, ErrBusy)
	}
	p.closed = true
	if err := p.release(); err != nil {
		p.closeErrs = true
		return fmt.Errorf("rdma: close buffer pool: %w", err)
	}
	p.closeErrs = false
	return nil
}

// Bytes returns the n bytes asked for (capacity n). They are valid until
// Put.
func (b Block) Bytes() []byte { return b.mem }

// Len is the n given to Get.
func (b Block) Len() int { return len(b.mem) }

// Size is the size of the underlying block (a power of two, at least
// Len), the memory the block holds in the pool.
func (b Block) Size() int { return 1 << (b.pool.minShift + uint(b.order)) }

// Valid reports whether b came from Get (the zero Block is not).
func (b Block) Valid() bool { return b.pool != nil }

// LKey is the local key of the block's memory region, for SGEs.
func (b Block) LKey() uint32 { return b.lkey }

// RKey is the remote key a peer uses to RDMA READ or WRITE the block.
func (b Block) RKey() uint32 { return b.rkey }

// Addr is the address of Bytes()[0] as the device sees it.
func (b Block) Addr() uint64 { return b.addr }

// SGE returns the scatter/gather element for n bytes at offset off of
// Bytes(). It panics when the range is outside Bytes(), as slicing does.
func (b Block) SGE(off, n int) SGE {
	b.check(off, n)
	return SGE{Addr: b.addr + uint64(off), Length: uint32(n), LKey: b.lkey}
}

// Remote returns the remote view (address, rkey, length; an iSER STag
// and VA) of n bytes at offset off of Bytes(), to advertise to a peer.
// It panics when the range is outside Bytes().
func (b Block) Remote(off, n int) RemoteRegion {
	b.check(off, n)
	return RemoteRegion{Addr: b.addr + uint64(off), RKey: b.rkey, Len: uint32(n)}
}

func (b Block) check(off, n int) {
	if off < 0 || n < 0 || off+n > len(b.mem) || off+n < off {
		panic(fmt.Sprintf("rdma: block range [%d:+%d] out of range of %d bytes", off, n, len(b.mem)))
	}
}
