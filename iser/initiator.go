package iser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
)

// Initiator defaults (see InitiatorConfig).
const (
	DefaultInitiatorMemory = 64 << 20
	DefaultInitiatorTasks  = 128
	// initiatorReadDepth is how many RDMA READs we let the target have
	// outstanding against us (our responder resources), as Linux asks
	// for the device's maximum.
	initiatorReadDepth = 16
	beginTaskWait      = 30 * time.Second
)

// InitiatorConfig configures an iSER initiator connection. The zero value
// of each field is the documented default.
type InitiatorConfig struct {
	// Provider opens the RDMA device that reaches the target. Required.
	Provider driver.Provider
	// Logger receives connection errors; nil discards.
	Logger *slog.Logger
	// MaxTasks is the most SCSI commands in flight; it must be at least
	// the session's initiator.Config.MaxTasks. Default 128.
	MaxTasks int
	// Memory is the registered memory the connection stages command data
	// through (bytes): the caller's buffers are Go memory, which is never
	// given to the device, so a write's data is copied in before the
	// command is sent and a read's data copied out when the response
	// arrives. Default 64 MiB.
	Memory int64
	// MaxIOSize is the largest command data (bytes); default 8 MiB.
	MaxIOSize int
	// RecvDataSize is the InitiatorRecvDataSegmentLength declared: the
	// largest data segment the target may send in one PDU. Default 8192.
	RecvDataSize int
}

func (c InitiatorConfig) withDefaults() InitiatorConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxTasks <= 0 {
		c.MaxTasks = DefaultInitiatorTasks
	}
	if c.Memory <= 0 {
		c.Memory = DefaultInitiatorMemory
	}
	if c.MaxIOSize <= 0 {
		c.MaxIOSize = DefaultMaxIOSize
	}
	if c.RecvDataSize <= 0 {
		c.RecvDataSize = DefaultRecvDataSegmentLength
	}
	return c
}

// itask is one SCSI command's staged data.
type itask struct {
	io      *initiator.TaskIO
	out, in rdma.Block
	hasOut  bool
	hasIn   bool
}

// InitiatorConn is one iSER connection on the initiator side: an
// initiator.Transport. Log in over it with initiator.Login (or
// initiator.DiscoverOver). Every PDU is one SEND behind the iSER header;
// the target RDMA WRITEs read data into, and RDMA READs write data from,
// the connection's registered staging pool.
type InitiatorConn struct {
	cfg   InitiatorConfig
	log   *slog.Logger
	dev   *rdma.Device
	pd    *rdma.ProtectionDomain
	group *rdma.PollGroup
	att   *rdma.Attachment
	qp    *rdma.QueuePair
	pool  *rdma.BufferPool
	addr  string

	slabBuf *rdma.Buffer
	slabMR  *rdma.MemoryRegion
	layout  RecvLayout
	nRecv   int
	sendLen int // bytes of one send slot

	recvs   chan rdma.Completion // receive completions, to RecvHeader
	closed  chan struct{}        // closed by Close (or a failure)
	drained chan struct{}        // closed once every WR is reaped

	// Reader state (one goroutine at a time).
	cur   Frame // the PDU RecvHeader returned, until its data is taken
	slot  int   // its receive slot; -1 when none is held
	rwr   [1]rdma.RecvWR
	rsge  [1]rdma.SGE
	rhead bool // cur is valid

	mu        sync.Mutex
	freeSends []int
	sendSGE   [][1]rdma.SGE
	slotFree  chan struct{} // a send slot was freed (capacity 1)
	tasks     map[uint32]*itask
	itasks    []itask  // preallocated task state
	freeIT    []*itask // free entries of itasks
	sq, rq    int
	failErr   error
	closing   bool
	reaped    bool
	wr        [1]rdma.SendWR
	closeOnce sync.Once
	closeErr  error
}

// Errors of the initiator connection.
var errInitiatorClosed = errors.New("iser: initiator connection closed")

// Dial connects to the iSER portal addr ("ip:port", RDMA CM) and returns
// the connection, ready for initiator.Login. On a host or address without
// RDMA it fails; the caller may fall back to TCP (see DialSession).
func Dial(ctx context.Context, addr string, cfg InitiatorConfig) (*InitiatorConn, error) {
	cfg = cfg.withDefaults()
	if cfg.Provider == nil {
		return nil, errors.New("iser: dial: InitiatorConfig.Provider is required")
	}
	d, err := rdma.Dial(ctx, cfg.Provider, addr, rdma.DialConfig{})
	if err != nil {
		return nil, fmt.Errorf("iser: dial %s: %w", addr, err)
	}
	c := &InitiatorConn{cfg: cfg, log: cfg.Logger.With("target", addr), dev: d.Device(), slot: -1,
		closed: make(chan struct{}), drained: make(chan struct{}), slotFree: make(chan struct{}, 1),
		tasks: make(map[uint32]*itask, cfg.MaxTasks), itasks: make([]itask, cfg.MaxTasks+controlSlots)}
	for i := range c.itasks {
		c.freeIT = append(c.freeIT, &c.itasks[i])
	}
	if err := c.setup(ctx, d); err != nil {
		_ = d.Close()
		c.release()
		return nil, fmt.Errorf("iser: dial %s: %w", addr, err)
	}
	c.addr = addr
	go c.watch()
	return c, nil
}

// setup builds the connection and connects it.
func (c *InitiatorConn) setup(ctx context.Context, d *rdma.Dialer) error {
	var err error
	cfg := c.cfg
	if c.pd, err = c.dev.AllocPD(); err != nil {
		return err
	}
	c.pool, err = rdma.NewBufferPool(c.pd, rdma.BufferPoolConfig{Size: int(cfg.Memory), MinBlock: 4096, MaxBlock: maxBlockFor(cfg.MaxIOSize),
		Access: rdma.AccessLocalWrite | rdma.AccessRemoteRead | rdma.AccessRemoteWrite})
	if err != nil {
		return fmt.Errorf("staging pool: %w", err)
	}
	depth := cfg.MaxTasks + controlSlots
	c.nRecv = depth
	if c.layout, err = NewRecvLayout(max(cfg.RecvDataSize, LoginDataLen)); err != nil {
		return err
	}
	// A send slot holds a PDU with up to LoginDataLen of data: login and
	// text requests, immediate and unsolicited data (at most the
	// TargetRecvDataSegmentLength we offer).
	c.sendLen = HeadersLen + LoginDataLen
	nSend := depth
	slab := c.layout.BufferLen(c.nRecv) + nSend*c.sendLen
	if c.slabBuf, err = rdma.AllocBuffer(slab, rdma.BufferOptions{}); err != nil {
		return err
	}
	if c.slabMR, err = c.pd.RegisterBuffer(c.slabBuf, rdma.AccessLocalWrite); err != nil {
		return err
	}
	c.sendSGE = make([][1]rdma.SGE, nSend)
	for i := range nSend {
		c.freeSends = append(c.freeSends, nSend-1-i)
	}
	if c.group, err = rdma.NewPollGroup(c.dev, rdma.PollGroupConfig{CQEntries: 2*depth + nSend + initiatorReadDepth, Logger: c.log}); err != nil {
		return err
	}
	sqMax := nSend
	c.recvs = make(chan rdma.Completion, c.nRecv)
	if c.qp, err = d.CreateQP(c.pd, rdma.QueuePairConfig{SendCQ: c.group.CQ(), RecvCQ: c.group.CQ(),
		MaxSendWR: sqMax, MaxRecvWR: c.nRecv, MaxSendSGE: 1, MaxRecvSGE: 1}); err != nil {
		return err
	}
	if c.att, err = c.group.Attach(c.qp, sqMax, c.nRecv, c); err != nil {
		return err
	}
	c.mu.Lock()
	for i := range c.nRecv {
		if err := c.postRecvLocked(i); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()
	// Our registered pool is one MR: an invalidation of its rkey would
	// break every later command, so we never allow Send with Invalidate.
	var priv [CMHeaderLen]byte
	h := ConnectPrivateData(false)
	b, _ := h.AppendBinary(priv[:0])
	if _, err := d.Connect(ctx, rdma.ConnParam{ResponderResources: initiatorReadDepth, InitiatorDepth: 0, RetryCount: 7, RNRRetryCount: 7}, b); err != nil {
		return err
	}
	return nil
}

// release frees what setup made (after the QP is gone).
func (c *InitiatorConn) release() {
	if c.att != nil {
		c.att.Detach()
	}
	if c.qp != nil {
		_ = c.qp.Close()
	}
	if c.group != nil {
		_ = c.group.Close()
	}
	if c.slabMR != nil {
		_ = c.slabMR.Close()
	}
	if c.slabBuf != nil {
		_ = c.slabBuf.Close()
	}
	if c.pool != nil {
		if err := c.pool.Close(); err != nil {
			c.log.Error("iser: staging pool still in use at close", "err", err)
		}
	}
	if c.pd != nil {
		_ = c.pd.Close()
	}
}

// watch fails the connection when the target disconnects. The target's
// last PDUs (the Logout Response it sent before disconnecting) may still
// be in the completion queue when the CM reports the disconnect: the
// failure waits until the receive ring has flushed (at most
// disconnectGrace), so that they reach the reader first (a queue pair's
// receives complete in order, the flushed ones after them).
func (c *InitiatorConn) watch() {
	select {
	case <-c.qp.Disconnected():
	case <-c.closed:
		return
	}
	deadline := time.Now().Add(disconnectGrace)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		pending := c.rq
		c.mu.Unlock()
		if pending == 0 {
			break
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-c.closed:
			return
		}
	}
	c.fail(fmt.Errorf("iser: target %s disconnected", c.addr))
}

// disconnectGrace bounds how long a disconnected connection waits for its
// receive ring to flush before it fails.
const disconnectGrace = 2 * time.Second

func (c *InitiatorConn) postRecvLocked(i int) error {
	b := c.layout.Recv(c.slabBuf.Bytes(), i)
	c.rsge[0] = c.slabMR.SGE(i*c.layout.SlotSize+RecvHeaderOffset, len(b))
	c.rwr[0] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: c.rsge[:]}
	if _, err := c.qp.PostRecv(c.rwr[:]); err != nil {
		return fmt.Errorf("iser: post receive: %w", err)
	}
	c.rq++
	return nil
}

// Caps implements initiator.Transport.
func (c *InitiatorConn) Caps() initiator.Caps {
	return initiator.Caps{ISER: true, PlacesDataIn: true, NoR2T: true,
		MaxRecvDataSegmentLength: uint32(c.cfg.RecvDataSize), MaxSendDataSegmentLength: LoginDataLen}
}

// Negotiated implements initiator.Transport.
func (c *InitiatorConn) Negotiated(p initiator.Params) error {
	if !p.RDMAExtensions {
		return errors.New("iser: the target did not accept RDMAExtensions=Yes")
	}
	if p.TargetRecvDataSegmentLength > LoginDataLen {
		return fmt.Errorf("iser: TargetRecvDataSegmentLength %d is more than our send slots hold", p.TargetRecvDataSegmentLength)
	}
	return nil
}

// Send implements initiator.Transport: one SEND from a registered slot;
// a SCSI Command carries its task's STags and VAs in the iSER header.
func (c *InitiatorConn) Send(bhs *[pdu.BHSLen]byte, ahs, data []byte) error {
	var h Header
	if pdu.BHS(bhs[:]).Opcode() == pdu.OpSCSICommand {
		itt := pdu.BHS(bhs[:]).InitiatorTaskTag()
		c.mu.Lock()
		t := c.tasks[itt]
		c.mu.Unlock()
		if t != nil {
			if t.hasIn {
				h.ReadValid, h.ReadSTag, h.ReadVA = true, t.in.RKey(), t.in.Addr()
			}
			if t.hasOut && len(t.io.DataOut) > t.io.Unsolicited {
				h.WriteValid, h.WriteSTag, h.WriteVA = true, t.out.RKey(), t.out.Addr()+uint64(t.io.Unsolicited)
			}
		}
	}
	n := HeadersLen + len(ahs) + len(data)
	if n > c.sendLen {
		return fmt.Errorf("iser: PDU of %d bytes is more than a send slot holds (%d)", n, c.sendLen)
	}
	si, err := c.takeSlot()
	if err != nil {
		return err
	}
	off := c.layout.BufferLen(c.nRecv) + si*c.sendLen
	b := c.slabBuf.Bytes()[off : off+c.sendLen]
	out, _ := h.AppendBinary(b[:0])
	k := len(out)
	k += copy(b[k:], bhs[:])
	k += copy(b[k:], ahs)
	k += copy(b[k:], data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		c.freeSends = append(c.freeSends, si)
		return c.errLocked()
	}
	c.sendSGE[si][0] = c.slabMR.SGE(off, k)
	c.wr[0] = rdma.SendWR{ID: rdma.EncodeWRID(opSend, uint64(si)), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: c.sendSGE[si][:]}
	if _, err := c.qp.PostSend(c.wr[:]); err != nil {
		c.freeSends = append(c.freeSends, si)
		return fmt.Errorf("iser: post send: %w", err)
	}
	c.sq++
	return nil
}

// takeSlot waits for a free send slot.
func (c *InitiatorConn) takeSlot() (int, error) {
	for {
		c.mu.Lock()
		if c.closing {
			err := c.errLocked()
			c.mu.Unlock()
			return 0, err
		}
		if n := len(c.freeSends); n > 0 {
			si := c.freeSends[n-1]
			c.freeSends = c.freeSends[:n-1]
			c.mu.Unlock()
			return si, nil
		}
		c.mu.Unlock()
		select {
		case <-c.slotFree:
		case <-c.closed:
		}
	}
}

func (c *InitiatorConn) errLocked() error {
	if c.failErr != nil {
		return c.failErr
	}
	return errInitiatorClosed
}

// RecvHeader implements initiator.Transport.
func (c *InitiatorConn) RecvHeader(bhs *[pdu.BHSLen]byte, ahs *[]byte) error {
	if c.rhead {
		// The previous PDU's data was not taken: give its slot back.
		if err := c.repost(); err != nil {
			return err
		}
	}
	var wc rdma.Completion
	select {
	case wc = <-c.recvs:
	case <-c.closed:
		select {
		case wc = <-c.recvs:
		default:
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.errLocked()
		}
	}
	_, slot := rdma.DecodeWRID(wc.ID)
	b := c.layout.Recv(c.slabBuf.Bytes(), int(slot))[:wc.ByteLen]
	f, err := ParseSend(b)
	if err != nil {
		c.slot = int(slot)
		_ = c.repost()
		err = fmt.Errorf("%w: receive of %d bytes: %v", ErrProtocol, wc.ByteLen, err)
		c.fail(err)
		return err
	}
	c.cur, c.slot, c.rhead = f, int(slot), true
	copy(bhs[:], f.BHS)
	if cap(*ahs) < len(f.AHS) {
		*ahs = make([]byte, len(f.AHS))
	}
	*ahs = (*ahs)[:len(f.AHS)]
	copy(*ahs, f.AHS)
	if len(f.Data) == 0 {
		return c.repost()
	}
	return nil
}

// repost gives the current receive slot back.
func (c *InitiatorConn) repost() error {
	c.rhead = false
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.slot < 0 {
		c.slot = -1
		return nil
	}
	err := c.postRecvLocked(c.slot)
	c.slot = -1
	return err
}

// RecvData implements initiator.Transport.
func (c *InitiatorConn) RecvData(_ *[pdu.BHSLen]byte, dst []byte) error {
	if len(dst) == 0 {
		return nil
	}
	if !c.rhead || len(dst) != len(c.cur.Data) {
		return fmt.Errorf("iser: RecvData of %d bytes, the PDU has %d", len(dst), len(c.cur.Data))
	}
	copy(dst, c.cur.Data)
	return c.repost()
}

// SkipData implements initiator.Transport.
func (c *InitiatorConn) SkipData(_ *[pdu.BHSLen]byte, n int) error {
	if n == 0 || !c.rhead {
		return nil
	}
	return c.repost()
}

// BeginTask implements initiator.Transport: it takes staging blocks for
// the command's data from the registered pool (waiting while the pool is
// empty) and copies the write data in. It allocates nothing.
func (c *InitiatorConn) BeginTask(io *initiator.TaskIO) error {
	c.mu.Lock()
	if len(c.freeIT) == 0 {
		c.mu.Unlock()
		return fmt.Errorf("iser: more than %d commands in flight (InitiatorConfig.MaxTasks)", c.cfg.MaxTasks)
	}
	t := c.freeIT[len(c.freeIT)-1]
	c.freeIT = c.freeIT[:len(c.freeIT)-1]
	c.mu.Unlock()
	*t = itask{io: io}
	var err error
	if len(io.DataOut) > 0 {
		if t.out, err = c.getBlock(len(io.DataOut)); err != nil {
			c.putTask(t)
			return err
		}
		t.hasOut = true
		copy(t.out.Bytes(), io.DataOut)
	}
	if len(io.DataIn) > 0 {
		if t.in, err = c.getBlock(len(io.DataIn)); err != nil {
			c.putTask(t)
			return err
		}
		t.hasIn = true
	}
	c.mu.Lock()
	c.tasks[io.ITT] = t
	c.mu.Unlock()
	return nil
}

// getBlock takes a staging block of n bytes, waiting for one while the
// pool is empty (bounded).
func (c *InitiatorConn) getBlock(n int) (rdma.Block, error) {
	if n > c.cfg.MaxIOSize {
		return rdma.Block{}, fmt.Errorf("iser: %d bytes of command data, more than MaxIOSize %d", n, c.cfg.MaxIOSize)
	}
	if b, ok := c.pool.Get(n); ok {
		return b, nil
	}
	timer := time.NewTimer(beginTaskWait)
	defer timer.Stop()
	for {
		select {
		case <-c.pool.Notify():
		case <-c.closed:
			return rdma.Block{}, errInitiatorClosed
		case <-timer.C:
			return rdma.Block{}, fmt.Errorf("iser: no staging memory for %d bytes in %v", n, beginTaskWait)
		}
		if b, ok := c.pool.Get(n); ok {
			return b, nil
		}
	}
}

// putTask returns t's blocks and t itself.
func (c *InitiatorConn) putTask(t *itask) {
	if t.hasIn {
		c.pool.Put(t.in)
	}
	if t.hasOut {
		c.pool.Put(t.out)
	}
	*t = itask{}
	c.mu.Lock()
	c.freeIT = append(c.freeIT, t)
	c.mu.Unlock()
}

// EndTask implements initiator.Transport: read data is copied out of the
// staging block, and the blocks go back to the pool.
func (c *InitiatorConn) EndTask(itt uint32, dataInLen int) {
	c.mu.Lock()
	t := c.tasks[itt]
	delete(c.tasks, itt)
	c.mu.Unlock()
	if t == nil {
		return
	}
	if t.hasIn && dataInLen > 0 {
		copy(t.io.DataIn[:dataInLen], t.in.Bytes())
	}
	c.putTask(t)
}

// HandleCompletions implements rdma.CompletionHandler.
func (c *InitiatorConn) HandleCompletions(wcs []rdma.Completion) {
	c.mu.Lock()
	freed := false
	for i := range wcs {
		wc := &wcs[i]
		op, slot := rdma.DecodeWRID(wc.ID)
		if wc.Status != rdma.WCSuccess && wc.Status != rdma.WCWRFlushErr {
			c.failLocked(fmt.Errorf("iser: %s failed: %w", opName(op), wc.Err()))
		}
		switch op {
		case opRecv:
			c.rq--
			if wc.Status == rdma.WCSuccess {
				// Even when closing: a PDU that arrived before the
				// disconnect (a Logout Response) is still read.
				c.recvs <- *wc // one per posted receive: never blocks
			}
		case opSend:
			c.sq--
			c.freeSends = append(c.freeSends, int(slot))
			freed = true
		}
	}
	done := c.closing && c.sq == 0 && c.rq == 0 && !c.reaped
	if done {
		c.reaped = true
	}
	c.mu.Unlock()
	if freed {
		select {
		case c.slotFree <- struct{}{}:
		default:
		}
	}
	if done {
		close(c.drained)
	}
}

// HandleError implements rdma.CompletionHandler.
func (c *InitiatorConn) HandleError(err error) { c.fail(fmt.Errorf("iser: completion queue: %w", err)) }

func (c *InitiatorConn) fail(err error) {
	c.mu.Lock()
	c.failLocked(err)
	done := c.closing && c.sq == 0 && c.rq == 0 && !c.reaped
	if done {
		c.reaped = true
	}
	c.mu.Unlock()
	if done {
		close(c.drained)
	}
}

func (c *InitiatorConn) failLocked(err error) {
	if c.closing {
		return
	}
	c.closing = true
	c.failErr = err
	close(c.closed)
	if err != errInitiatorClosed {
		c.log.Warn("iser: connection failed", "err", err)
	}
	if err := c.qp.Disconnect(); err != nil {
		_ = c.qp.Modify(rdma.QPAttr{State: rdma.QPError})
	}
}

// Close implements initiator.Transport: it disconnects, waits until every
// work request is reaped (so the target can no longer touch a staging
// block), then frees everything; tasks not yet ended give their blocks
// back here. Close is idempotent.
func (c *InitiatorConn) Close() error {
	c.closeOnce.Do(func() {
		c.fail(errInitiatorClosed)
		select {
		case <-c.drained:
		case <-time.After(10 * time.Second):
			c.closeErr = fmt.Errorf("iser: close: work requests still outstanding after 10 s")
			return
		}
		c.mu.Lock()
		var left []*itask
		for itt, t := range c.tasks {
			left = append(left, t)
			delete(c.tasks, itt)
		}
		c.mu.Unlock()
		for _, t := range left {
			c.putTask(t)
		}
		c.release()
	})
	return c.closeErr
}

// maxBlockFor is the pool's largest block for I/O of up to n bytes: a
// power of two.
func maxBlockFor(n int) int {
	b := 4096
	for b < n {
		b <<= 1
	}
	return b
}
