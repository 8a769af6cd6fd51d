package soft

import (
	"fmt"
	"syscall"
	"time"

	"github.com/goiser/goiser/rdma/driver"
)

// ring is a fixed-capacity FIFO of preallocated slots.
type ring[T any] struct {
	buf     []T
	head, n int
}

func (r *ring[T]) full() bool { return r.n == len(r.buf) }

// push returns the tail slot, now part of the queue.
func (r *ring[T]) push() *T {
	s := &r.buf[(r.head+r.n)%len(r.buf)]
	r.n++
	return s
}

func (r *ring[T]) front() *T { return &r.buf[r.head] }

func (r *ring[T]) pop() {
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

// sendSlot is a posted send WR, with the SGL (and inline payload) copied
// into storage preallocated at CreateQP.
type sendSlot struct {
	wr       driver.SendWR // wr.SGL aliases sgl
	sgl      []driver.SGE
	inline   []byte
	isInline bool
	signaled bool
}

type recvSlot struct {
	id  uint64
	sgl []driver.SGE
}

// qp is a queue pair. Every field after cfg is guarded by the engine mutex.
type qp struct {
	p          *Provider       // immutable
	pd         *pd             // immutable
	num        uint32          // immutable
	send, recv *cq             // immutable
	cfg        driver.QPConfig // immutable
	cm         bool            // created through the CM; immutable

	state    driver.QPState
	access   driver.Access // remote rights granted to the peer
	destQPN  uint32
	remote   driver.Endpoint
	peer     *qp // resolved peer, nil until known
	rnrRetry uint8
	rnrTries int  // RNR retries spent on the head WR
	rnrTimer bool // an RNR retry timer is pending
	// sqHeld counts executed unsignaled send WRs whose send-queue slots
	// stay taken until a later completion on the send queue, as on
	// hardware that frees slots when it processes a CQE.
	sqHeld   int
	sq       ring[sendSlot]
	rq       ring[recvSlot]
	disc     chan struct{} // CM only: closed on disconnect
	discDone bool
	closed   bool
}

func (d *pd) createQP(cfg driver.QPConfig, send, recv driver.CQ, cm bool) (*qp, error) {
	p := d.dev.p
	scq, ok1 := send.(*cq)
	rcq, ok2 := recv.(*cq)
	if !ok1 || !ok2 || scq.dev != d.dev || rcq.dev != d.dev {
		return nil, fmt.Errorf("soft: create QP: completion queue of another provider or device: %w", driver.NewVerbsError("soft_create_qp", syscall.EINVAL))
	}
	if cfg.Type != driver.RC {
		return nil, fmt.Errorf("soft: create QP of type %d: %w", cfg.Type, driver.NewVerbsError("soft_create_qp", syscall.EOPNOTSUPP))
	}
	if cfg.MaxSendWR < 1 || cfg.MaxSendWR > MaxQPWR || cfg.MaxRecvWR < 1 || cfg.MaxRecvWR > MaxQPWR ||
		cfg.MaxSendSGE < 0 || cfg.MaxSendSGE > MaxSGE || cfg.MaxRecvSGE < 0 || cfg.MaxRecvSGE > MaxSGE ||
		cfg.MaxInline < 0 || cfg.MaxInline > 1024 {
		return nil, fmt.Errorf("soft: create QP with %+v: %w", cfg, driver.NewVerbsError("soft_create_qp", syscall.EINVAL))
	}
	q := &qp{p: p, pd: d, send: scq, recv: rcq, cfg: cfg, cm: cm}
	q.sq.buf = make([]sendSlot, cfg.MaxSendWR)
	for i := range q.sq.buf {
		q.sq.buf[i].sgl = make([]driver.SGE, 0, cfg.MaxSendSGE)
		q.sq.buf[i].inline = make([]byte, 0, cfg.MaxInline)
	}
	q.rq.buf = make([]recvSlot, cfg.MaxRecvWR)
	for i := range q.rq.buf {
		q.rq.buf[i].sgl = make([]driver.SGE, 0, cfg.MaxRecvSGE)
	}
	if cm {
		q.disc = make(chan struct{})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("soft: create QP: %w", driver.ErrClosed)
	}
	q.num = p.nextQPN
	p.nextQPN++
	p.qps[q.num] = q
	return q, nil
}

// Num is the queue pair number, unique in the fabric and never reused.
func (q *qp) Num() uint32 { return q.num }

// State is the engine's state of the queue pair.
func (q *qp) State() (driver.QPState, error) {
	q.p.mu.Lock()
	defer q.p.mu.Unlock()
	if q.closed {
		return 0, driver.ErrClosed
	}
	return q.state, nil
}

// Modify performs Reset->Init->RTR->RTS (and RTS->RTS), any->Error and
// any->Reset; other transitions fail with ErrInvalidState.
func (q *qp) Modify(attr driver.QPAttr) error {
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if q.closed {
		return driver.ErrClosed
	}
	return q.modifyLocked(attr)
}

func (q *qp) modifyLocked(attr driver.QPAttr) error {
	from, to := q.state, attr.State
	switch {
	case to == driver.QPError:
		q.toErrorLocked()
	case to == driver.QPReset:
		q.sq.head, q.sq.n, q.rq.head, q.rq.n = 0, 0, 0, 0
		q.state, q.peer, q.destQPN, q.rnrTries, q.sqHeld = driver.QPReset, nil, 0, 0, 0
	case from == driver.QPReset && to == driver.QPInit, from == driver.QPInit && to == driver.QPInit:
		if attr.Port != 1 {
			return fmt.Errorf("soft: modify QP %d to INIT: port %d: %w", q.num, attr.Port, driver.NewVerbsError("soft_modify_qp", syscall.EINVAL))
		}
		q.access, q.state = attr.Access, driver.QPInit
	case from == driver.QPInit && to == driver.QPRTR:
		switch attr.PathMTU {
		case 256, 512, 1024, 2048, 4096:
		default:
			return fmt.Errorf("soft: modify QP %d to RTR: path MTU %d: %w", q.num, attr.PathMTU, driver.NewVerbsError("soft_modify_qp", syscall.EINVAL))
		}
		if attr.DestQPN == 0 {
			return fmt.Errorf("soft: modify QP %d to RTR: no destination QP: %w", q.num, driver.NewVerbsError("soft_modify_qp", syscall.EINVAL))
		}
		q.destQPN, q.remote, q.state = attr.DestQPN, attr.Remote, driver.QPRTR
		q.kickPeerLocked()
	case from == driver.QPRTR && to == driver.QPRTS, from == driver.QPRTS && to == driver.QPRTS:
		if attr.RNRRetry > 7 || attr.RetryCount > 7 {
			return fmt.Errorf("soft: modify QP %d to RTS: retry counts %d/%d: %w", q.num, attr.RetryCount, attr.RNRRetry, driver.NewVerbsError("soft_modify_qp", syscall.EINVAL))
		}
		q.rnrRetry, q.state = attr.RNRRetry, driver.QPRTS
		q.progressLocked()
	default:
		return fmt.Errorf("soft: modify QP %d from %v to %v: %w", q.num, from, to, driver.ErrInvalidState)
	}
	return nil
}

// peerLocked resolves the connected peer: the queue pair at destQPN on the
// device the remote endpoint names, which must point back at q once it is
// past Init. nil means there is none (any more).
func (q *qp) peerLocked() *qp {
	if q.peer != nil {
		if q.peer.closed {
			return nil
		}
		return q.peer
	}
	if q.destQPN == 0 {
		return nil
	}
	c := q.p.qps[q.destQPN]
	if c == nil {
		return nil
	}
	if !q.cm {
		d := c.pd.dev
		if q.remote.Global && q.remote.GID != d.gid || !q.remote.Global && q.remote.LID != d.lid {
			return nil
		}
	}
	if c.state >= driver.QPRTR && c.state != driver.QPError {
		if c.destQPN != q.num {
			return nil
		}
		q.peer = c
	}
	return c
}

// kickPeerLocked lets a peer that waits for q (to become ready, or for a
// receive) make progress.
func (q *qp) kickPeerLocked() {
	if c := q.peerLocked(); c != nil && c.sq.n > 0 && c.peerLocked() == q {
		c.progressLocked()
	}
}

var errSendNotReady = fmt.Errorf("soft: post send before RTS: %w", driver.ErrInvalidState)

// PostSend copies the WRs into the send ring (ErrQueueFull when it is
// full, EINVAL for a malformed WR) and executes what it can at once.
func (q *qp) PostSend(wrs []driver.SendWR) (int, error) {
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if q.closed {
		return 0, driver.ErrClosed
	}
	if q.state < driver.QPRTS {
		return 0, errSendNotReady
	}
	for i := range wrs {
		wr := &wrs[i]
		if err := q.validateSendLocked(wr); err != nil {
			q.progressLocked()
			return i, err
		}
		if q.sq.n+q.sqHeld >= len(q.sq.buf) {
			q.progressLocked()
			return i, driver.ErrQueueFull
		}
		s := q.sq.push()
		s.wr = *wr
		s.sgl = append(s.sgl[:0], wr.SGL...)
		s.wr.SGL = s.sgl
		s.signaled = q.cfg.SignalAll || wr.Flags&driver.FlagSignaled != 0
		s.isInline = wr.Flags&driver.FlagInline != 0 && wr.Op != driver.OpRDMARead
		s.inline = s.inline[:0]
		if s.isInline {
			for _, sge := range wr.SGL {
				b, _ := p.localLocked(q.pd, sge, false) // validated
				s.inline = append(s.inline, b...)
			}
		}
	}
	q.progressLocked()
	return len(wrs), nil
}

func (q *qp) validateSendLocked(wr *driver.SendWR) error {
	if wr.Op < driver.OpSend || wr.Op > driver.OpRDMARead {
		return fmt.Errorf("soft: post send: opcode %v: %w", wr.Op, driver.NewVerbsError("soft_post_send", syscall.EINVAL))
	}
	if len(wr.SGL) > q.cfg.MaxSendSGE {
		return fmt.Errorf("soft: post send: %d SGEs, at most %d: %w", len(wr.SGL), q.cfg.MaxSendSGE, driver.NewVerbsError("soft_post_send", syscall.EINVAL))
	}
	if wr.Flags&driver.FlagInline != 0 && wr.Op != driver.OpRDMARead {
		total := 0
		for _, sge := range wr.SGL {
			total += int(sge.Length)
			if _, ok := q.p.localLocked(q.pd, sge, false); !ok {
				return fmt.Errorf("soft: post send: inline SGE outside registered memory (soft needs its lkey): %w", driver.NewVerbsError("soft_post_send", syscall.EINVAL))
			}
		}
		if total > q.cfg.MaxInline {
			return fmt.Errorf("soft: post send: %d inline bytes, at most %d: %w", total, q.cfg.MaxInline, driver.NewVerbsError("soft_post_send", syscall.EINVAL))
		}
	}
	return nil
}

// PostRecv copies the WRs into the receive ring and lets a sender waiting
// for a receive proceed; in Error they flush at once.
func (q *qp) PostRecv(wrs []driver.RecvWR) (int, error) {
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if q.closed {
		return 0, driver.ErrClosed
	}
	if q.state == driver.QPReset {
		return 0, fmt.Errorf("soft: post recv in RESET: %w", driver.ErrInvalidState)
	}
	n := len(wrs)
	var err error
	for i := range wrs {
		if len(wrs[i].SGL) > q.cfg.MaxRecvSGE {
			n, err = i, fmt.Errorf("soft: post recv: %d SGEs, at most %d: %w", len(wrs[i].SGL), q.cfg.MaxRecvSGE, driver.NewVerbsError("soft_post_recv", syscall.EINVAL))
			break
		}
		if q.rq.full() {
			n, err = i, driver.ErrQueueFull
			break
		}
		s := q.rq.push()
		s.id = wrs[i].ID
		s.sgl = append(s.sgl[:0], wrs[i].SGL...)
	}
	if q.state == driver.QPError {
		q.flushLocked()
	} else {
		q.kickPeerLocked()
	}
	return n, err
}

// execResult is the outcome of executing the head send WR.
type execResult uint8

const (
	execDone   execResult = iota // completed successfully; pop it
	execWait                     // cannot progress yet (RNR, peer not ready)
	execFailed                   // completed with an error; q is in Error
)

// progressLocked executes queued send WRs in order until one must wait.
func (q *qp) progressLocked() {
	p := q.p
	for q.sq.n > 0 {
		if q.state == driver.QPError {
			q.flushLocked()
			return
		}
		if q.state != driver.QPRTS {
			return
		}
		s := q.sq.front()
		if st, ok := p.takeFaultLocked(q); ok {
			q.failHeadLocked(st)
			continue
		}
		switch q.executeLocked(s) {
		case execWait:
			return
		case execDone:
			q.rnrTries = 0
			if !s.signaled {
				q.sqHeld++
			} else {
				q.sqHeld = 0
				q.send.push(driver.Completion{ID: s.wr.ID, Status: driver.WCSuccess, Opcode: wcOpcode(s.wr.Op),
					ByteLen: s.byteLen(), QPNum: q.num}, false, p.delay)
			}
			q.sq.pop()
		case execFailed:
		}
	}
}

func wcOpcode(op driver.Opcode) driver.WCOpcode {
	switch op {
	case driver.OpRDMAWrite, driver.OpRDMAWriteImm:
		return driver.WCRDMAWrite
	case driver.OpRDMARead:
		return driver.WCRDMARead
	}
	return driver.WCSend
}

func (s *sendSlot) byteLen() uint32 {
	if s.isInline {
		return uint32(len(s.inline))
	}
	var n uint32
	for _, sge := range s.sgl {
		n += sge.Length
	}
	return n
}

// failHeadLocked completes the head send WR with status and moves q to
// Error (flushing the rest).
func (q *qp) failHeadLocked(status driver.WCStatus) {
	q.sqHeld = 0
	s := q.sq.front()
	q.send.push(driver.Completion{ID: s.wr.ID, Status: status, Opcode: wcOpcode(s.wr.Op), QPNum: q.num}, false, q.p.delay)
	q.sq.pop()
	q.toErrorLocked()
}

// failRecvHeadLocked completes q's head receive WR with status and moves q
// to Error.
func (q *qp) failRecvHeadLocked(status driver.WCStatus) {
	r := q.rq.front()
	q.recv.push(driver.Completion{ID: r.id, Status: status, Opcode: driver.WCRecv, QPNum: q.num}, false, q.p.delay)
	q.rq.pop()
	q.toErrorLocked()
}

// toErrorLocked moves q to Error and flushes every outstanding WR.
func (q *qp) toErrorLocked() {
	q.state = driver.QPError
	q.flushLocked()
}

// flushLocked completes every queued WR with WCWRFlushErr, in order.
func (q *qp) flushLocked() {
	q.sqHeld = 0
	for q.sq.n > 0 {
		s := q.sq.front()
		q.send.push(driver.Completion{ID: s.wr.ID, Status: driver.WCWRFlushErr, Opcode: wcOpcode(s.wr.Op), QPNum: q.num}, false, q.p.delay)
		q.sq.pop()
	}
	for q.rq.n > 0 {
		r := q.rq.front()
		q.recv.push(driver.Completion{ID: r.id, Status: driver.WCWRFlushErr, Opcode: driver.WCRecv, QPNum: q.num}, false, q.p.delay)
		q.rq.pop()
	}
}

// rnrLocked handles a receiver-not-ready condition for the head WR.
func (q *qp) rnrLocked() execResult {
	if q.rnrRetry == 7 {
		return execWait // retried forever: the peer's PostRecv resumes us
	}
	if q.rnrTimer {
		return execWait
	}
	if q.rnrTries >= int(q.rnrRetry) {
		q.failHeadLocked(driver.WCRNRRetryExcErr)
		return execFailed
	}
	q.rnrTries++
	q.rnrTimer = true
	p := q.p
	time.AfterFunc(p.cfg.RNRDelay, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		q.rnrTimer = false
		if !q.closed {
			q.progressLocked()
		}
	})
	return execWait
}

// gatherLocked resolves q's local SGL (or inline payload) of s into
// p.srcSegs and returns the total length.
func (q *qp) gatherLocked(s *sendSlot) (uint64, bool) {
	p := q.p
	p.srcSegs = p.srcSegs[:0]
	if s.isInline {
		p.srcSegs = append(p.srcSegs, s.inline)
		return uint64(len(s.inline)), true
	}
	var total uint64
	for _, sge := range s.sgl {
		b, ok := p.localLocked(q.pd, sge, false)
		if !ok {
			return 0, false
		}
		p.srcSegs = append(p.srcSegs, b)
		total += uint64(sge.Length)
	}
	return total, true
}

// executeLocked performs the head send WR s against the peer.
func (q *qp) executeLocked(s *sendSlot) execResult {
	p := q.p
	peer := q.peerLocked()
	if peer == nil || peer.state == driver.QPError || peer.closed {
		// No responder: the requester's retries run out.
		q.failHeadLocked(driver.WCRetryExcErr)
		return execFailed
	}
	if peer.state < driver.QPRTR {
		return execWait // the peer's move to RTR resumes us
	}
	wr := &s.wr
	switch wr.Op {
	case driver.OpSend, driver.OpSendImm, driver.OpSendInv:
		total, ok := q.gatherLocked(s)
		if !ok {
			q.failHeadLocked(driver.WCLocProtErr)
			return execFailed
		}
		if peer.rq.n == 0 {
			return q.rnrLocked()
		}
		r := peer.rq.front()
		var capacity uint64
		p.dstSegs = p.dstSegs[:0]
		for _, sge := range r.sgl {
			b, ok := p.localLocked(peer.pd, sge, true)
			if !ok {
				peer.failRecvHeadLocked(driver.WCLocProtErr)
				q.failHeadLocked(driver.WCRemOpErr)
				return execFailed
			}
			p.dstSegs = append(p.dstSegs, b)
			capacity += uint64(sge.Length)
		}
		if total > capacity {
			peer.failRecvHeadLocked(driver.WCLocLenErr)
			q.failHeadLocked(driver.WCRemInvReqErr)
			return execFailed
		}
		wc := driver.Completion{ID: r.id, Status: driver.WCSuccess, Opcode: driver.WCRecv, ByteLen: uint32(total), QPNum: peer.num}
		switch wr.Op {
		case driver.OpSendImm:
			wc.Flags, wc.Imm = driver.WCWithImm, wr.Imm
		case driver.OpSendInv:
			m := p.mrs[wr.InvalidateRKey]
			if m == nil || m.pd != peer.pd {
				peer.failRecvHeadLocked(driver.WCLocProtErr)
				q.failHeadLocked(driver.WCRemInvReqErr)
				return execFailed
			}
			m.valid = false
			wc.Flags, wc.InvalidatedRKey = driver.WCWithInv, wr.InvalidateRKey
		}
		copySegs(p.dstSegs, p.srcSegs)
		peer.rq.pop()
		peer.recv.push(wc, wr.Flags&driver.FlagSolicited != 0, p.delay)
		return execDone

	case driver.OpRDMAWrite, driver.OpRDMAWriteImm:
		total, ok := q.gatherLocked(s)
		if !ok {
			q.failHeadLocked(driver.WCLocProtErr)
			return execFailed
		}
		if wr.Op == driver.OpRDMAWriteImm && peer.rq.n == 0 {
			return q.rnrLocked()
		}
		if total > 0 {
			dst, ok := p.remoteLocked(peer.pd, wr.RKey, wr.Remote, total, driver.AccessRemoteWrite)
			if !ok || peer.access&driver.AccessRemoteWrite == 0 {
				q.failHeadLocked(driver.WCRemAccessErr)
				peer.toErrorLocked()
				return execFailed
			}
			p.dstSegs = append(p.dstSegs[:0], dst)
			copySegs(p.dstSegs, p.srcSegs)
		}
		if wr.Op == driver.OpRDMAWriteImm {
			r := peer.rq.front()
			wc := driver.Completion{ID: r.id, Status: driver.WCSuccess, Opcode: driver.WCRecvRDMAWithImm,
				Flags: driver.WCWithImm, Imm: wr.Imm, ByteLen: uint32(total), QPNum: peer.num}
			peer.rq.pop()
			peer.recv.push(wc, wr.Flags&driver.FlagSolicited != 0, p.delay)
		}
		return execDone

	case driver.OpRDMARead:
		var total uint64
		p.dstSegs = p.dstSegs[:0]
		for _, sge := range s.sgl {
			b, ok := p.localLocked(q.pd, sge, true)
			if !ok {
				q.failHeadLocked(driver.WCLocProtErr)
				return execFailed
			}
			p.dstSegs = append(p.dstSegs, b)
			total += uint64(sge.Length)
		}
		if total > 0 {
			src, ok := p.remoteLocked(peer.pd, wr.RKey, wr.Remote, total, driver.AccessRemoteRead)
			if !ok || peer.access&driver.AccessRemoteRead == 0 {
				q.failHeadLocked(driver.WCRemAccessErr)
				peer.toErrorLocked()
				return execFailed
			}
			p.srcSegs = append(p.srcSegs[:0], src)
			copySegs(p.dstSegs, p.srcSegs)
		}
		return execDone
	}
	q.failHeadLocked(driver.WCLocQPOpErr)
	return execFailed
}

// Disconnect ends a CM connection on both sides; no-op for manual ones.
func (q *qp) Disconnect() error {
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if q.closed {
		return driver.ErrClosed
	}
	if !q.cm {
		return nil
	}
	q.disconnectBothLocked()
	return nil
}

// disconnectBothLocked ends a CM connection on both sides.
func (q *qp) disconnectBothLocked() {
	peer := q.peer
	q.toErrorLocked()
	q.disconnectedLocked()
	if peer != nil && !peer.closed {
		peer.toErrorLocked()
		peer.disconnectedLocked()
	}
}

// disconnectedLocked closes q's Disconnected channel once.
func (q *qp) disconnectedLocked() {
	if q.disc != nil && !q.discDone {
		q.discDone = true
		close(q.disc)
	}
}

// Disconnected is the CM channel, nil for a manual queue pair.
func (q *qp) Disconnected() <-chan struct{} {
	if q.disc == nil {
		return nil
	}
	return q.disc
}

// Close destroys the queue pair as a device does: it completes nothing.
// Work requests still posted are dropped without a completion (as on rxe),
// and completions of the queue pair still in its completion queues are
// removed (as mlx5 does), so a teardown that closes before reaping loses
// them here as it would on a device. Nothing of the queue pair is touched
// afterwards: its rings are emptied, a peer's work requests find no
// responder, and a pending receiver-not-ready retry does nothing.
//
// A CM queue pair's peer learns of it as from a disconnect request (the
// CM sends one as the id goes): it moves to Error, flushing its work
// requests, and its Disconnected channel closes.
func (q *qp) Close() error {
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if q.closed {
		return nil
	}
	if q.cm {
		if peer := q.peer; peer != nil && !peer.closed && peer.peer == q {
			peer.toErrorLocked()
			peer.disconnectedLocked()
		}
		q.disconnectedLocked()
	}
	q.closed = true
	q.state = driver.QPReset
	q.sq.head, q.sq.n, q.rq.head, q.rq.n, q.sqHeld = 0, 0, 0, 0, 0
	q.peer = nil
	q.send.purge(q.num)
	if q.recv != q.send {
		q.recv.purge(q.num)
	}
	delete(p.qps, q.num)
	return nil
}
