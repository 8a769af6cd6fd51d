package rdma

import (
	"fmt"

	"github.com/goiser/goiser/rdma/driver"
)

// ProtectionDomain groups memory regions and queue pairs: a queue pair can
// only use memory regions of its own protection domain. Its children are
// memory regions and queue pairs; Close refuses while any is open.
//
// A ProtectionDomain is safe for concurrent use.
type ProtectionDomain struct {
	dev  *Device   // immutable; never nil
	pd   driver.PD // immutable; never nil
	life lifecycle
}

// Device is the device the protection domain belongs to.
func (pd *ProtectionDomain) Device() *Device { return pd.dev }

// RegisterBuffer registers the whole of b for local access and the given
// remote access rights. The buffer cannot be closed while the memory region
// is open.
func (pd *ProtectionDomain) RegisterBuffer(b *Buffer, access Access) (*MemoryRegion, error) {
	if b == nil {
		return nil, fmt.Errorf("rdma: register buffer: nil buffer: %w", ErrNotOffHeap)
	}
	b.life.mu.RLock()
	defer b.life.mu.RUnlock()
	if !b.life.liveLocked() {
		return nil, fmt.Errorf("rdma: register buffer: %w", ErrClosed)
	}
	mr, err := pd.register(b.mem, access, b)
	if err != nil {
		return nil, err
	}
	b.life.children.Add(1)
	return mr, nil
}

// RegisterMemory registers mem, which must lie inside one Buffer from
// AllocBuffer (the whole buffer or a part of it), for local access and the
// given remote access rights. Memory that is not (a Go-heap make([]byte),
// a stack array) is refused with an error wrapping ErrNotOffHeap, because a
// device writing into memory the garbage collector manages corrupts the
// heap.
//
// Unlike RegisterBuffer, the owning Buffer is not tracked: keep it open
// until the memory region is closed. The check reads /proc/self/maps; on
// other systems (where only the soft provider runs) it cannot be made and
// any non-empty slice is accepted.
func (pd *ProtectionDomain) RegisterMemory(mem []byte, access Access) (*MemoryRegion, error) {
	if err := checkOffHeap(mem); err != nil {
		return nil, err
	}
	return pd.register(mem, access, nil)
}

func (pd *ProtectionDomain) register(mem []byte, access Access, b *Buffer) (*MemoryRegion, error) {
	pd.life.mu.RLock()
	defer pd.life.mu.RUnlock()
	if !pd.life.liveLocked() {
		return nil, fmt.Errorf("rdma: register %d bytes: %w", len(mem), ErrClosed)
	}
	mr, err := pd.pd.RegMR(mem, access)
	if err != nil {
		return nil, fmt.Errorf("rdma: register %d bytes (%v) on %s: %w", len(mem), access, pd.dev.info.Name, err)
	}
	pd.life.children.Add(1)
	return &MemoryRegion{pd: pd, mr: mr, mem: mem, buf: b, access: access,
		lkey: mr.LKey(), rkey: mr.RKey(), addr: mr.Addr()}, nil
}

// QueuePairConfig specifies a queue pair. Zero capacities get defaults.
type QueuePairConfig struct {
	// SendCQ and RecvCQ receive the completions of the send and receive
	// queues; they may be the same queue. Both are required.
	SendCQ, RecvCQ *CompletionQueue
	// Type is the transport; the zero value means RC, the only one.
	Type QPType
	// MaxSendWR and MaxRecvWR are the outstanding work requests per
	// queue; 0 means 128.
	MaxSendWR, MaxRecvWR int
	// MaxSendSGE and MaxRecvSGE are the SGEs per work request; 0 means 1.
	MaxSendSGE, MaxRecvSGE int
	// MaxInline is the inline data per send WR in bytes (0: no inline).
	MaxInline int
	// SignalAll makes every send WR signaled regardless of FlagSignaled.
	SignalAll bool
}

func (c QueuePairConfig) driverConfig() (driver.QPConfig, error) {
	if c.SendCQ == nil || c.RecvCQ == nil {
		return driver.QPConfig{}, fmt.Errorf("rdma: queue pair config: SendCQ and RecvCQ are required")
	}
	if c.Type == 0 {
		c.Type = RC
	}
	if c.Type != RC {
		return driver.QPConfig{}, fmt.Errorf("rdma: queue pair type %d: %w", c.Type, ErrNotSupported)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxSendWR, 128)
	def(&c.MaxRecvWR, 128)
	def(&c.MaxSendSGE, 1)
	def(&c.MaxRecvSGE, 1)
	if c.MaxSendWR < 0 || c.MaxRecvWR < 0 || c.MaxSendSGE < 0 || c.MaxRecvSGE < 0 || c.MaxInline < 0 {
		return driver.QPConfig{}, fmt.Errorf("rdma: queue pair config: negative capacity")
	}
	return driver.QPConfig{Type: c.Type, MaxSendWR: c.MaxSendWR, MaxRecvWR: c.MaxRecvWR,
		MaxSendSGE: c.MaxSendSGE, MaxRecvSGE: c.MaxRecvSGE, MaxInline: c.MaxInline, SignalAll: c.SignalAll}, nil
}

// NewQueuePair creates a queue pair in state Reset for a manual connection
// (see QueuePair.Modify and QueuePair.ConnectManual). Connections through
// the connection manager create their queue pair with ConnRequest.CreateQP
// or Dialer.CreateQP instead.
func (pd *ProtectionDomain) NewQueuePair(cfg QueuePairConfig) (*QueuePair, error) {
	dcfg, err := cfg.driverConfig()
	if err != nil {
		return nil, err
	}
	return pd.newQP(cfg, dcfg, QPReset, func(send, recv driver.CQ) (driver.QP, error) {
		return pd.pd.CreateQP(dcfg, send, recv)
	})
}

// newQP creates a queue pair through create with pd and both CQs held open,
// and accounts it as their child.
func (pd *ProtectionDomain) newQP(cfg QueuePairConfig, dcfg driver.QPConfig, state QPState, create func(send, recv driver.CQ) (driver.QP, error)) (*QueuePair, error) {
	if cfg.SendCQ.dev.info.Name != pd.dev.info.Name || cfg.RecvCQ.dev.info.Name != pd.dev.info.Name {
		return nil, fmt.Errorf("rdma: create QP on %s: completion queue of another device", pd.dev.info.Name)
	}
	cqs := []*CompletionQueue{cfg.SendCQ}
	if cfg.RecvCQ != cfg.SendCQ {
		cqs = append(cqs, cfg.RecvCQ)
	}
	for _, cq := range cqs {
		cq.life.mu.RLock()
		defer cq.life.mu.RUnlock()
		if !cq.life.liveLocked() {
			return nil, fmt.Errorf("rdma: create QP on %s: completion queue: %w", pd.dev.info.Name, ErrClosed)
		}
	}
	pd.life.mu.RLock()
	defer pd.life.mu.RUnlock()
	if !pd.life.liveLocked() {
		return nil, fmt.Errorf("rdma: create QP on %s: %w", pd.dev.info.Name, ErrClosed)
	}
	q, err := create(cfg.SendCQ.cq, cfg.RecvCQ.cq)
	if err != nil {
		return nil, fmt.Errorf("rdma: create QP on %s: %w", pd.dev.info.Name, err)
	}
	pd.life.children.Add(1)
	for _, cq := range cqs {
		cq.life.children.Add(1)
	}
	qp := &QueuePair{pd: pd, qp: q, num: q.Num(), cqs: cqs, cfg: dcfg}
	qp.state.Store(uint32(state))
	return qp, nil
}

// Close deallocates the protection domain. It refuses with an error
// wrapping ErrBusy while memory regions or queue pairs of the domain are
// open. Close is idempotent.
func (pd *ProtectionDomain) Close() error {
	pd.life.mu.Lock()
	defer pd.life.mu.Unlock()
	if pd.life.closed {
		return nil
	}
	if n := pd.life.children.Load(); n > 0 {
		return fmt.Errorf("rdma: close PD on %s: %d memory regions and queue pairs still open: %w", pd.dev.info.Name, n, ErrBusy)
	}
	if err := pd.pd.Close(); err != nil {
		return fmt.Errorf("rdma: close PD on %s: %w", pd.dev.info.Name, err)
	}
	pd.life.closed = true
	pd.dev.life.release()
	return nil
}
