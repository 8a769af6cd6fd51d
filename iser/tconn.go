package iser

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/rdma"
)

// Work request kinds, encoded with a slot index in every WR id
// (rdma.EncodeWRID): never a Go pointer.
const (
	opRecv  uint8 = iota + 1 // receive slot
	opSend                   // small send slot
	opBig                    // control PDU sent from a pool block (big send slot)
	opWrite                  // RDMA WRITE chained before the send slot's SEND (unsignaled)
	opRead                   // RDMA READ of a task's Data-Out (task index)
)

// Errors of the iSER target connection.
var (
	// ErrProtocol reports a PDU that breaks RFC 7145 or RFC 7143 (bad
	// iSER header, truncated PDU, Data-Out out of sequence).
	ErrProtocol = errors.New("iser: protocol error")
	// errConnClosed is returned by Recv after Close.
	errConnClosed = errors.New("iser: connection closed")
	// ErrDisconnected reports that the initiator closed the RDMA
	// connection (a CM disconnect), as it does after discovery or when
	// it goes away; the core logs the end of the connection.
	ErrDisconnected = errors.New("iser: initiator disconnected")
)

// taskState is where a task of the transport is.
type taskState uint8

const (
	tFree     taskState = iota // on the free list
	tNeedBuf                   // waiting for a pool block (held receive slots keep its data)
	tActive                    // has its buffer; owned by the core
	tReleased                  // the core released it; WRs still use the buffer
)

// String names the state.
func (s taskState) String() string {
	switch s {
	case tFree:
		return "free"
	case tNeedBuf:
		return "need-buffer"
	case tActive:
		return "active"
	case tReleased:
		return "released"
	}
	return "taskState(?)"
}

// maxHeld is the most receive slots a task waiting for its buffer may hold
// (the command with its immediate data, then unsolicited Data-Out).
const maxHeld = 16

// held is a received data segment kept in its receive slot until the
// task's buffer comes.
type held struct {
	slot int
	off  int // offset in the task's data
	data []byte
}

// ttask is the transport's state of one SCSI task: it implements
// iscsi.TaskData. Guarded by tconn.mu.
type ttask struct {
	c     *tconn // immutable
	idx   int
	state taskState
	itt   uint32
	edtl  int
	size  int // buffer length: min(EDTL, MaxIOSize)
	write bool
	hdr   Header // STags and VAs of the command
	blk   rdma.Block
	buf   []byte // blk's bytes[:size]; nil while waiting
	// charged: bytes taken from the session budget.
	charged int64

	imm      int // immediate data bytes
	unsolEnd int // end of unsolicited data (imm with InitialR2T=Yes)
	unsolGot int // next expected unsolicited offset
	unsolSN  uint32
	want     int  // bytes GetData asked for; 0 before
	waiting  bool // GetData returned false: report InDataDone
	reading  bool // an RDMA READ is posted or pending
	readDone bool // the READ part (if any) is complete
	failed   bool // the data phase failed; InDataDone with Err sent
	inflight int  // WRs (READ, WRITE+SEND) that use buf

	nheld int
	held  [maxHeld]held
	sge   [1]rdma.SGE // of the RDMA READ
}

// Buffer implements iscsi.TaskData. The core calls it from its own
// goroutines; the buffer is set under the connection's lock.
func (t *ttask) Buffer() []byte {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.buf
}

// reset clears t for reuse, keeping its index and connection.
func (t *ttask) reset() {
	idx, c := t.idx, t.c
	*t = ttask{idx: idx, c: c}
}

// evKind says what a connection event carries to Recv.
type evKind uint8

const (
	evRecv     evKind = iota + 1 // a receive slot completed: slot, n
	evDataDone                   // a task's Data-Out is complete (or failed: err)
	evBufReady                   // a task that waited got its buffer
	evFail                       // the connection failed: err
)

// event goes from the poll group (completions) to Recv.
type event struct {
	kind evKind
	slot int
	n    int
	task *ttask
	itt  uint32 // of task, copied under mu (Recv reads it without mu)
	err  error
}

// sendSlot is a registered buffer for one control PDU or SCSI Response
// SEND, with its work requests ready made.
type sendSlot struct {
	buf  []byte // HeadersLen + smallSendData bytes of the slab
	sge  [1]rdma.SGE
	wsge [1]rdma.SGE // of the chained RDMA WRITE
	wrs  int         // WRs of this post still on the send queue
	task *ttask      // task whose buffer the WRITE reads, or whose response this is
}

// bigSend is a control PDU too large for a send slot, sent from a pool
// block.
type bigSend struct {
	blk  rdma.Block
	sge  [1]rdma.SGE
	used bool
}

// maxBigSends is how many big control PDUs may be in flight at once.
const maxBigSends = 4

// pendingSend is a send that found no free slot or no send-queue room.
type pendingSend struct {
	task *ttask // PutData (a response, maybe with a WRITE)
	rsp  []byte // encoded SCSI Response BHS + data (a copy)
	ctl  []byte // or an encoded control PDU (a copy)
	dlen int    // PutData: Data-In bytes
}

// tconn is one iSER connection on the target side: an
// iscsi.TransportConn. The core calls Recv from its reader goroutine and
// the other methods from its owner goroutine; the poll group calls
// HandleCompletions. mu guards the state they share.
type tconn struct {
	t       *Target   // immutable
	d       *devState // immutable
	qp      *rdma.QueuePair
	group   *rdma.PollGroup
	att     *rdma.Attachment
	log     *slog.Logger
	remote  net.Addr
	local   net.Addr
	sendInv bool // Send with Invalidate agreed (immutable)
	ird     int  // RDMA READs we may have outstanding (immutable)

	// Registered per-connection memory: receive slots (the login slot is
	// 0) and small send slots, one slab registered once.
	slabBuf *rdma.Buffer
	slabMR  *rdma.MemoryRegion
	layout  RecvLayout
	nRecv   int

	events  chan event    // poll group -> Recv
	drained chan struct{} // closed once everything is reaped and returned

	mu        sync.Mutex
	params    *iscsi.Params // nil during login
	budget    *iscsi.Budget
	recvPost  [1]rdma.RecvWR
	recvSGE   [1]rdma.SGE
	sends     []sendSlot
	freeSends []int
	bigs      [maxBigSends]bigSend
	tasks     []ttask
	freeTasks []int
	byITT     map[uint32]*ttask
	waitBuf   []*ttask // tasks waiting for a block, FIFO
	pendSend  []pendingSend
	pendRead  []*ttask
	sq, sqMax int // send-queue WRs outstanding, and the queue's size
	rq        int // receives posted
	reads     int // RDMA READs outstanding
	blocks    int // pool blocks held (tasks and big sends)
	wrBuf     [2]rdma.SendWR
	closed    bool // Close called, or the connection failed
	reaped    bool // every WR reaped after closed
	freed     bool // resources freed
	failErr   error
	enc       []byte // scratch for encoding a SCSI Response
}

// newTConn allocates a connection's queue pair and registered slots and
// posts the login receive (before the CM accept: the initiator may send
// its first Login Request at once).
func newTConn(t *Target, d *devState, req *rdma.ConnRequest, sendInv bool, ird int) (*tconn, error) {
	cfg := t.cfg
	depth := cfg.QueueDepth + controlSlots
	layout, err := NewRecvLayout(max(cfg.RecvDataSize, LoginDataLen))
	if err != nil {
		return nil, err
	}
	c := &tconn{t: t, d: d, log: t.log.With("peer", req.RemoteAddr().String()), remote: req.RemoteAddr(), local: req.LocalAddr(),
		sendInv: sendInv, ird: ird, layout: layout, nRecv: depth,
		byITT: make(map[uint32]*ttask, depth), drained: make(chan struct{})}
	nSend := depth
	c.sqMax = 2*depth + ird + controlSlots // a WRITE+SEND per task, READs, control PDUs
	c.events = make(chan event, c.nRecv+2*depth+4)
	slab := layout.BufferLen(c.nRecv) + nSend*(HeadersLen+smallSendData)
	c.slabBuf, err = rdma.AllocBuffer(slab, rdma.BufferOptions{})
	if err != nil {
		return nil, fmt.Errorf("receive and send slots: %w", err)
	}
	c.slabMR, err = d.pd.RegisterBuffer(c.slabBuf, rdma.AccessLocalWrite)
	if err != nil {
		_ = c.slabBuf.Close()
		return nil, fmt.Errorf("register slots: %w", err)
	}
	sendBase := layout.BufferLen(c.nRecv)
	c.sends = make([]sendSlot, nSend)
	c.freeSends = make([]int, 0, nSend)
	for i := range c.sends {
		off := sendBase + i*(HeadersLen+smallSendData)
		c.sends[i].buf = c.slabBuf.Bytes()[off : off+HeadersLen+smallSendData]
		c.freeSends = append(c.freeSends, nSend-1-i)
	}
	c.tasks = make([]ttask, depth)
	c.freeTasks = make([]int, 0, depth)
	for i := range c.tasks {
		c.tasks[i].idx, c.tasks[i].c = i, c
		c.freeTasks = append(c.freeTasks, depth-1-i)
	}
	c.enc = make([]byte, 0, pdu.BHSLen)
	t.mu.Lock()
	c.group = d.groups[d.next%len(d.groups)]
	d.next++
	t.mu.Unlock()
	c.qp, err = req.CreateQP(d.pd, rdma.QueuePairConfig{SendCQ: c.group.CQ(), RecvCQ: c.group.CQ(),
		MaxSendWR: c.sqMax, MaxRecvWR: c.nRecv, MaxSendSGE: 1, MaxRecvSGE: 1})
	if err != nil {
		c.freeSlab()
		return nil, err
	}
	c.att, err = c.group.Attach(c.qp, c.sqMax, c.nRecv, c)
	if err != nil {
		_ = c.qp.Close()
		c.freeSlab()
		return nil, err
	}
	// Only the login receive is posted during login (RFC 7145 §5:
	// the login runs over SENDs); the ring follows in SetParams.
	c.mu.Lock()
	err = c.postRecvLocked(0)
	c.mu.Unlock()
	if err != nil {
		c.abortSetup()
		return nil, err
	}
	return c, nil
}

// start watches the CM connection once it is established.
func (c *tconn) start() {
	go func() {
		select {
		case <-c.qp.Disconnected():
			c.fail(fmt.Errorf("%w: %s", ErrDisconnected, c.remote))
		case <-c.drained:
		}
	}()
}

// abortSetup undoes newTConn after a failed accept.
func (c *tconn) abortSetup() {
	c.t.mu.Lock()
	c.t.conns++ // connGone decrements
	c.t.mu.Unlock()
	_ = c.Close()
}

func (c *tconn) freeSlab() {
	if c.slabMR != nil {
		if err := c.slabMR.Close(); err != nil {
			c.log.Error("iser: deregister slots", "err", err)
		}
	}
	if c.slabBuf != nil {
		if err := c.slabBuf.Close(); err != nil {
			c.log.Error("iser: free slots", "err", err)
		}
	}
}

// ISER implements iscsi.ISERConn.
func (c *tconn) ISER() bool { return true }

// TargetRecvDataSegmentLength implements iscsi.ISERConn: the largest data
// segment a receive slot holds.
func (c *tconn) TargetRecvDataSegmentLength() uint32 { return uint32(c.t.cfg.RecvDataSize) }

// RemoteAddr implements iscsi.TransportConn.
func (c *tconn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr implements iscsi.TransportConn.
func (c *tconn) LocalAddr() net.Addr { return c.local }

// Drained implements iscsi.TransportConn.
func (c *tconn) Drained() <-chan struct{} { return c.drained }

// postRecvLocked posts receive slot i.
func (c *tconn) postRecvLocked(i int) error {
	b := c.layout.Recv(c.slabBuf.Bytes(), i)
	off := i*c.layout.SlotSize + RecvHeaderOffset
	c.recvSGE[0] = c.slabMR.SGE(off, len(b))
	c.recvPost[0] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: c.recvSGE[:]}
	if _, err := c.qp.PostRecv(c.recvPost[:]); err != nil {
		return fmt.Errorf("iser: post receive: %w", err)
	}
	c.rq++
	return nil
}

// repostLocked gives a receive slot back to the device, unless the
// connection is closing.
func (c *tconn) repostLocked(i int) error {
	if c.closed {
		return nil
	}
	return c.postRecvLocked(i)
}

// SetParams implements iscsi.TransportConn: it posts the full feature
// receive ring before the last Login Response goes out.
func (c *tconn) SetParams(p iscsi.Params, _ iscsi.SeqNumbers) error {
	if !p.RDMAExtensions {
		return fmt.Errorf("iser: login ended without RDMAExtensions=Yes")
	}
	if p.CmdWindow > c.t.cfg.QueueDepth {
		return fmt.Errorf("iser: command window %d is larger than the transport's QueueDepth %d", p.CmdWindow, c.t.cfg.QueueDepth)
	}
	if p.TargetMaxRecvDSL > uint32(c.t.cfg.RecvDataSize) {
		return fmt.Errorf("iser: TargetRecvDataSegmentLength %d is more than the receive slots hold (%d)", p.TargetMaxRecvDSL, c.t.cfg.RecvDataSize)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errConnClosed
	}
	pp := p
	c.params = &pp
	c.budget = p.Budget
	for i := 1; i < c.nRecv; i++ {
		if err := c.postRecvLocked(i); err != nil {
			return err
		}
	}
	return nil
}

// Recv implements iscsi.TransportConn.
func (c *tconn) Recv(ctx context.Context, in *iscsi.Inbound) error {
	in.Reset()
	for {
		var ev event
		select {
		case ev = <-c.events:
		case <-ctx.Done():
			return ctx.Err()
		}
		switch ev.kind {
		case evRecv:
			ok, err := c.recvPDU(ev.slot, ev.n, in)
			if err != nil {
				c.fail(err)
				return err
			}
			if ok {
				return nil
			}
		case evDataDone:
			in.Kind, in.ITT, in.Task, in.Err = iscsi.InDataDone, ev.itt, ev.task, ev.err
			return nil
		case evBufReady:
			in.Kind, in.ITT, in.Task = iscsi.InBufferReady, ev.itt, ev.task
			return nil
		case evFail:
			return ev.err
		}
	}
}

// recvPDU handles one received SEND; it reports whether in holds an event
// for the core.
func (c *tconn) recvPDU(slot, n int, in *iscsi.Inbound) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, c.closedErrLocked()
	}
	b := c.layout.Recv(c.slabBuf.Bytes(), slot)[:n]
	f, err := ParseSend(b)
	if errors.Is(err, ErrNotControl) {
		// Hello/HelloReply: Linux never sends them; LIO logs and drops.
		c.log.Warn("iser: dropped an iSER Hello message", "err", err)
		return false, c.repostLocked(slot)
	}
	if err != nil {
		return false, fmt.Errorf("%w: receive of %d bytes: %v", ErrProtocol, n, err)
	}
	if c.params == nil {
		c.log.Debug("iser: login PDU received", "opcode", f.BHS.Opcode().String(), "bytes", n)
	}
	copy(in.BHS[:], f.BHS)
	if len(f.AHS) > 0 {
		copy(in.GrowAHS(len(f.AHS)), f.AHS)
	}
	op := f.BHS.Opcode()
	switch {
	case c.params != nil && !c.params.Discovery && op == pdu.OpSCSICommand:
		return c.recvCommandLocked(slot, &f, in)
	case c.params != nil && !c.params.Discovery && op == pdu.OpDataOut:
		return c.recvDataOutLocked(slot, &f, in)
	}
	if len(f.Data) > 0 {
		copy(in.Grow(len(f.Data)), f.Data)
	}
	in.Kind = iscsi.InPDU
	return true, c.repostLocked(slot)
}

// recvCommandLocked takes a SCSI Command: the task's buffer from the pool
// (or a place in the queue for one) and its immediate data.
func (c *tconn) recvCommandLocked(slot int, f *Frame, in *iscsi.Inbound) (bool, error) {
	in.Kind = iscsi.InPDU
	b := f.BHS
	flags := b[1]
	write, read := flags&0x20 != 0, flags&0x40 != 0
	edtl := int(binary.BigEndian.Uint32(b[20:24]))
	itt := b.InitiatorTaskTag()
	dsl := len(f.Data)
	if edtl == 0 && dsl == 0 || !read && !write {
		// No data (or a transfer the core refuses): no task state.
		return true, c.repostLocked(slot)
	}
	if len(c.freeTasks) == 0 || c.byITT[itt] != nil {
		// More commands than the window admits (or an ITT in use): the
		// core answers (TASK SET FULL, or a Reject); no buffer.
		if len(c.freeTasks) == 0 {
			in.NoMemory = true
		}
		return true, c.repostLocked(slot)
	}
	t := &c.tasks[c.freeTasks[len(c.freeTasks)-1]]
	c.freeTasks = c.freeTasks[:len(c.freeTasks)-1]
	t.reset()
	t.state, t.itt, t.edtl, t.size, t.write, t.hdr = tNeedBuf, itt, edtl, min(edtl, c.t.cfg.MaxIOSize), write, f.Header
	c.byITT[itt] = t
	p := c.params
	if write {
		t.imm = min(dsl, t.size)
		t.unsolGot = t.imm
		t.unsolEnd = t.imm
		if !p.InitialR2T {
			t.unsolEnd = max(t.imm, min(int(p.FirstBurstLength), edtl, t.size))
		}
	}
	in.Task, in.Imm = t, t.imm
	if t.imm > 0 {
		// The immediate data stays in its receive slot until the
		// task's buffer takes it.
		t.held[0] = held{slot: slot, off: 0, data: f.Data[:t.imm]}
		t.nheld = 1
	} else if err := c.repostLocked(slot); err != nil {
		return true, err
	}
	if len(c.waitBuf) == 0 && c.allocLocked(t) {
		return true, c.placeHeldLocked(t)
	}
	// No buffer yet: the command waits, keeping its receive slot(s).
	c.waitBuf = append(c.waitBuf, t)
	c.d.addWaiter(c)
	in.NeedBuffer = true
	return true, nil
}

// allocLocked gives t its buffer from the session budget and the pool;
// false when either has no room.
func (c *tconn) allocLocked(t *ttask) bool {
	if t.size == 0 {
		t.state = tActive
		return true
	}
	blk, ok := c.d.pool.Get(t.size)
	if !ok {
		return false
	}
	charge := int64(blk.Size())
	if !c.budget.TryAcquire(charge) {
		c.d.pool.Put(blk)
		return false
	}
	t.blk, t.buf, t.charged = blk, blk.Bytes()[:t.size], charge
	t.state = tActive
	c.blocks++
	return true
}

// placeHeldLocked copies the data kept in receive slots into t's buffer
// and reposts the slots.
func (c *tconn) placeHeldLocked(t *ttask) error {
	for i := range t.nheld {
		h := &t.held[i]
		copy(t.buf[h.off:], h.data)
		if err := c.repostLocked(h.slot); err != nil {
			return err
		}
		t.held[i] = held{}
	}
	t.nheld = 0
	return nil
}

// retryBuffers gives waiting tasks their buffers, in arrival order, after
// blocks came back to the pool; it reports whether tasks still wait.
func (c *tconn) retryBuffers() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	for len(c.waitBuf) > 0 {
		t := c.waitBuf[0]
		if t.state != tNeedBuf {
			c.waitBuf = c.waitBuf[1:]
			continue
		}
		if !c.allocLocked(t) {
			return true
		}
		c.waitBuf = c.waitBuf[1:]
		if err := c.placeHeldLocked(t); err != nil {
			c.failLocked(err)
			return false
		}
		// The core calls GetData only after this event, so no data
		// phase can be waiting yet.
		c.pushLocked(event{kind: evBufReady, task: t, itt: t.itt})
	}
	return false
}

// recvDataOutLocked places an unsolicited Data-Out (RFC 7145 §7.3.2: only
// unsolicited data arrives in SENDs; the rest is RDMA READ).
func (c *tconn) recvDataOutLocked(slot int, f *Frame, in *iscsi.Inbound) (bool, error) {
	b := f.BHS
	itt := b.InitiatorTaskTag()
	ttt := binary.BigEndian.Uint32(b[20:24])
	dataSN := binary.BigEndian.Uint32(b[36:40])
	off := int(binary.BigEndian.Uint32(b[40:44]))
	dsl := len(f.Data)
	t := c.byITT[itt]
	if t == nil || t.failed || !t.write {
		// Aborted, failed or unknown: discard, as on TCP.
		return false, c.repostLocked(slot)
	}
	var bad string
	switch {
	case ttt != pdu.ReservedTag:
		bad = fmt.Sprintf("solicited Data-Out (TTT %#x) in a SEND: iSER solicits data with RDMA READ", ttt)
	case off != t.unsolGot:
		bad = fmt.Sprintf("unsolicited offset %d, want %d", off, t.unsolGot)
	case off+dsl > t.unsolEnd:
		bad = fmt.Sprintf("unsolicited data past FirstBurstLength (%d+%d > %d)", off, dsl, t.unsolEnd)
	case dataSN != t.unsolSN:
		bad = fmt.Sprintf("unsolicited DataSN %d, want %d", dataSN, t.unsolSN)
	}
	if bad != "" {
		t.failed = true
		in.Kind, in.ITT, in.Task = iscsi.InDataDone, itt, t
		in.Err = fmt.Errorf("%w: Data-Out ITT %#x: %s", ErrProtocol, itt, bad)
		return true, c.repostLocked(slot)
	}
	t.unsolGot += dsl
	t.unsolSN++
	if t.state == tNeedBuf {
		if t.nheld == maxHeld {
			t.failed = true
			in.Kind, in.ITT, in.Task = iscsi.InDataDone, itt, t
			in.Err = fmt.Errorf("%w: Data-Out ITT %#x: more than %d unsolicited PDUs before the buffer", ErrProtocol, itt, maxHeld)
			return true, c.repostLocked(slot)
		}
		t.held[t.nheld] = held{slot: slot, off: off, data: f.Data}
		t.nheld++
		return false, nil
	}
	copy(t.buf[off:], f.Data)
	if err := c.repostLocked(slot); err != nil {
		return false, err
	}
	if t.waiting && c.dataCompleteLocked(t) {
		t.waiting = false
		in.Kind, in.ITT, in.Task = iscsi.InDataDone, itt, t
		return true, nil
	}
	return false, nil
}

// dataCompleteLocked reports whether every byte below want is in t.buf.
func (c *tconn) dataCompleteLocked(t *ttask) bool {
	return t.state == tActive && !t.failed && t.unsolGot >= min(t.unsolEnd, t.want) && (t.readDone || t.want <= t.unsolEnd)
}

// GetData implements iscsi.TransportConn: the bytes past the unsolicited
// ones are RDMA READ from the initiator's Write STag, whose address Linux
// already advanced past the immediate and unsolicited data.
func (c *tconn) GetData(it *iscsi.Task, want int) (bool, error) {
	t, _ := it.Data.(*ttask)
	c.mu.Lock()
	defer c.mu.Unlock()
	if t == nil || t.state != tActive {
		return false, fmt.Errorf("iser: GetData for ITT %#x without a buffer", it.ITT)
	}
	if c.closed {
		return false, c.closedErrLocked()
	}
	t.want = min(want, len(t.buf))
	if t.want > t.unsolEnd && !t.readDone {
		if !t.hdr.WriteValid {
			t.failed = true
			c.pushLocked(event{kind: evDataDone, task: t, itt: t.itt,
				err: fmt.Errorf("%w: ITT %#x needs %d bytes past the unsolicited %d, but its command advertised no Write STag", ErrProtocol, t.itt, t.want, t.unsolEnd)})
			return false, nil
		}
		t.reading = true
		c.pendRead = append(c.pendRead, t)
		if err := c.kickReadsLocked(); err != nil {
			return false, err
		}
	}
	if c.dataCompleteLocked(t) {
		return true, nil
	}
	t.waiting = true
	return false, nil
}

// kickReadsLocked posts pending RDMA READs within the READ depth and the
// send queue.
func (c *tconn) kickReadsLocked() error {
	for len(c.pendRead) > 0 && c.reads < c.ird && c.sq < c.sqMax {
		t := c.pendRead[0]
		c.pendRead = c.pendRead[1:]
		if t.state != tActive {
			continue // released meanwhile
		}
		n := t.want - t.unsolEnd
		wr := &c.wrBuf[0]
		*wr = rdma.SendWR{ID: rdma.EncodeWRID(opRead, uint64(t.idx)), Op: rdma.OpRDMARead, Flags: rdma.FlagSignaled,
			Remote: t.hdr.WriteVA, RKey: t.hdr.WriteSTag}
		t.sge[0] = t.blk.SGE(t.unsolEnd, n)
		wr.SGL = t.sge[:]
		if _, err := c.qp.PostSend(c.wrBuf[:1]); err != nil {
			return fmt.Errorf("iser: post RDMA READ: %w", err)
		}
		c.sq++
		c.reads++
		t.inflight++
	}
	return nil
}

// PutData implements iscsi.TransportConn: Data-In is an RDMA WRITE to the
// initiator's Read STag, chained with the SCSI Response SEND (signaled
// alone) in one post; the send queue or a busy slot list queues it.
func (c *tconn) PutData(it *iscsi.Task, rsp *iscsi.Response) error {
	t, _ := it.Data.(*ttask)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.closedErrLocked()
	}
	dlen := rsp.DataLen
	if dlen > 0 && (t == nil || !t.hdr.ReadValid) {
		return fmt.Errorf("iser: Data-In for ITT %#x, whose command advertised no Read STag", it.ITT)
	}
	var p pdu.SCSIResponse
	p.ITT = it.ITT
	p.Status = rsp.Status
	p.StatSN, p.ExpCmdSN, p.MaxCmdSN = rsp.StatSN, rsp.ExpCmdSN, rsp.MaxCmdSN
	p.ResidualOverflow, p.ResidualUnderflow, p.ResidualCount = rsp.Overflow, rsp.Underflow, rsp.Residual
	var sense []byte
	if len(rsp.Sense) > 0 {
		var sb [2 + 252]byte
		binary.BigEndian.PutUint16(sb[:2], uint16(len(rsp.Sense)))
		n := copy(sb[2:], rsp.Sense)
		sense = sb[:2+n]
	}
	p.Data = sense
	hdr, err := p.AppendBinary(c.enc[:0])
	if err != nil {
		return fmt.Errorf("iser: encode SCSI Response: %w", err)
	}
	c.enc = hdr[:0]
	if t != nil && t.buf == nil {
		// No buffer (a command answered before it got one): the
		// response uses nothing of the task but its STags.
		t = nil
	}
	if t != nil {
		t.inflight++ // the WRITE reads t.buf; the SEND completion ends it
	}
	if len(c.freeSends) == 0 || c.sq+2 > c.sqMax || len(c.pendSend) > 0 {
		c.pendSend = append(c.pendSend, pendingSend{task: t, rsp: append(append([]byte(nil), hdr...), sense...), dlen: dlen})
		return nil
	}
	return c.postResponseLocked(t, hdr, sense, dlen)
}

// postResponseLocked sends a SCSI Response (hdr, data) from a free send
// slot, chained after an RDMA WRITE of dlen bytes of t's buffer.
func (c *tconn) postResponseLocked(t *ttask, hdr, data []byte, dlen int) error {
	si := c.freeSends[len(c.freeSends)-1]
	c.freeSends = c.freeSends[:len(c.freeSends)-1]
	s := &c.sends[si]
	n := c.fillSlot(s.buf, Header{}, hdr, data)
	s.sge[0] = c.slabMR.SGE(c.slotOff(si), n)
	s.task = t
	wrs := c.wrBuf[:0]
	if dlen > 0 {
		s.wsge[0] = t.blk.SGE(0, dlen)
		wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(si)), Op: rdma.OpRDMAWrite,
			Remote: t.hdr.ReadVA, RKey: t.hdr.ReadSTag, SGL: s.wsge[:]})
	}
	send := rdma.SendWR{ID: rdma.EncodeWRID(opSend, uint64(si)), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: s.sge[:]}
	if c.sendInv && t != nil {
		// Invalidate the STag the command advertised (isert: the Read
		// STag if any, else the Write STag), exactly that one: Linux
		// checks it is the task's.
		switch {
		case t.hdr.ReadValid:
			send.Op, send.InvalidateRKey = rdma.OpSendInv, t.hdr.ReadSTag
		case t.hdr.WriteValid:
			send.Op, send.InvalidateRKey = rdma.OpSendInv, t.hdr.WriteSTag
		}
	}
	wrs = append(wrs, send)
	s.wrs = len(wrs)
	if _, err := c.qp.PostSend(wrs); err != nil {
		return fmt.Errorf("iser: post SCSI Response: %w", err)
	}
	c.sq += len(wrs)
	return nil
}

// slotOff is the offset of send slot i in the slab.
func (c *tconn) slotOff(i int) int {
	return c.layout.BufferLen(c.nRecv) + i*(HeadersLen+smallSendData)
}

// fillSlot writes the iSER header, the BHS and the data segment into b and
// returns the length.
func (c *tconn) fillSlot(b []byte, h Header, bhs, data []byte) int {
	out, _ := h.AppendBinary(b[:0])
	n := len(out)
	n += copy(b[n:], bhs[:pdu.BHSLen])
	n += copy(b[n:], data)
	return n
}

// Send implements iscsi.TransportConn for control PDUs: from a small send
// slot when the data fits, else from a pool block; queued when neither is
// free or the send queue is full.
func (c *tconn) Send(bhs *[iscsi.BHSLen]byte, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.closedErrLocked()
	}
	if c.params == nil {
		c.log.Debug("iser: login response", "opcode", pdu.BHS(bhs[:]).Opcode().String(), "data", len(data))
	}
	// The core fills the lengths of the BHS; iSER adds no padding.
	if len(c.pendSend) > 0 || c.sq >= c.sqMax || !c.sendControlLocked(bhs[:], data) {
		c.pendSend = append(c.pendSend, pendingSend{ctl: append(append([]byte(nil), bhs[:]...), data...)})
		return nil
	}
	return c.failErrLocked()
}

// sendControlLocked posts one control PDU; false when no slot or block is
// free now.
func (c *tconn) sendControlLocked(bhs, data []byte) bool {
	if len(data) <= smallSendData {
		if len(c.freeSends) == 0 {
			return false
		}
		si := c.freeSends[len(c.freeSends)-1]
		c.freeSends = c.freeSends[:len(c.freeSends)-1]
		s := &c.sends[si]
		n := c.fillSlot(s.buf, Header{}, bhs, data)
		s.sge[0] = c.slabMR.SGE(c.slotOff(si), n)
		s.task, s.wrs = nil, 1
		c.wrBuf[0] = rdma.SendWR{ID: rdma.EncodeWRID(opSend, uint64(si)), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: s.sge[:]}
		if _, err := c.qp.PostSend(c.wrBuf[:1]); err != nil {
			c.failLocked(fmt.Errorf("iser: post send: %w", err))
			return true
		}
		c.sq++
		return true
	}
	// A big control PDU (login or text response, NOP-In with data).
	bi := -1
	for i := range c.bigs {
		if !c.bigs[i].used {
			bi = i
			break
		}
	}
	if bi < 0 {
		return false
	}
	blk, ok := c.d.pool.Get(HeadersLen + len(data))
	if !ok {
		return false
	}
	g := &c.bigs[bi]
	g.used, g.blk = true, blk
	c.blocks++
	n := c.fillSlot(blk.Bytes(), Header{}, bhs, data)
	g.sge[0] = blk.SGE(0, n)
	c.wrBuf[0] = rdma.SendWR{ID: rdma.EncodeWRID(opBig, uint64(bi)), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: g.sge[:]}
	if _, err := c.qp.PostSend(c.wrBuf[:1]); err != nil {
		c.failLocked(fmt.Errorf("iser: post send: %w", err))
		return true
	}
	c.sq++
	return true
}
