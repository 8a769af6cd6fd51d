package iser

import (
	"errors"
	"fmt"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/rdma"
)

// HandleCompletions implements rdma.CompletionHandler: the poll group
// hands over the completions of this connection's queue pair. It runs on
// the poll group's goroutine and never blocks: receives go to Recv as
// events, send and READ completions free slots and move tasks on.
func (c *tconn) HandleCompletions(wcs []rdma.Completion) {
	c.mu.Lock()
	for i := range wcs {
		c.completeLocked(&wcs[i])
	}
	if !c.closed {
		c.kickLocked()
	}
	free := c.closed && c.sq == 0 && c.rq == 0 && !c.reaped
	if free {
		c.reaped = true
	}
	c.mu.Unlock()
	c.d.kick()
	if free {
		go c.finish()
	}
}

// HandleError implements rdma.CompletionHandler: the poll group's
// completion queue failed, and with it this connection.
func (c *tconn) HandleError(err error) {
	c.fail(fmt.Errorf("iser: completion queue: %w", err))
}

// completeLocked handles one completion.
func (c *tconn) completeLocked(wc *rdma.Completion) {
	op, slot := rdma.DecodeWRID(wc.ID)
	ok := wc.Status == rdma.WCSuccess
	if !ok && wc.Status != rdma.WCWRFlushErr {
		c.failLocked(fmt.Errorf("iser: %s work request failed: %w", opName(op), wc.Err()))
	}
	switch op {
	case opRecv:
		c.rq--
		if ok && !c.closed {
			c.pushLocked(event{kind: evRecv, slot: int(slot), n: int(wc.ByteLen)})
		}
	case opSend:
		s := &c.sends[slot]
		c.sq -= s.wrs
		s.wrs = 0
		if t := s.task; t != nil {
			s.task = nil
			c.unuseLocked(t)
		}
		c.freeSends = append(c.freeSends, int(slot))
	case opWrite:
		// An unsignaled WRITE completes only in error (or flush): its
		// SEND follows and frees the slot.
		s := &c.sends[slot]
		c.sq--
		s.wrs--
	case opBig:
		c.sq--
		g := &c.bigs[slot]
		c.d.pool.Put(g.blk)
		c.blocks--
		*g = bigSend{}
	case opRead:
		c.sq--
		c.reads--
		t := &c.tasks[slot]
		t.reading = false
		if ok {
			t.readDone = true
		}
		c.unuseLocked(t)
		if t.state == tActive && t.waiting {
			switch {
			case !ok && !c.closed:
				t.waiting, t.failed = false, true
				c.pushLocked(event{kind: evDataDone, task: t, itt: t.itt, err: fmt.Errorf("%w: RDMA READ of ITT %#x: %v", ErrProtocol, t.itt, wc.Err())})
			case c.dataCompleteLocked(t):
				t.waiting = false
				c.pushLocked(event{kind: evDataDone, task: t, itt: t.itt})
			}
		}
	}
}

// opName names a WR kind for logs.
func opName(op uint8) string {
	switch op {
	case opRecv:
		return "receive"
	case opSend, opBig:
		return "SEND"
	case opWrite:
		return "RDMA WRITE"
	case opRead:
		return "RDMA READ"
	}
	return "unknown"
}

// pushLocked hands an event to Recv. The channel holds every event the
// posted work requests and tasks can produce, so it never fills.
func (c *tconn) pushLocked(ev event) {
	select {
	case c.events <- ev:
	default:
		c.failLocked(fmt.Errorf("iser: event queue overflow (%d events)", cap(c.events)))
	}
}

// kickLocked posts what waits for send-queue room or a free slot.
func (c *tconn) kickLocked() {
	if err := c.kickReadsLocked(); err != nil {
		c.failLocked(err)
		return
	}
	for len(c.pendSend) > 0 && !c.closed {
		p := &c.pendSend[0]
		switch {
		case p.ctl != nil:
			if c.sq >= c.sqMax || !c.sendControlLocked(p.ctl[:iscsi.BHSLen], p.ctl[iscsi.BHSLen:]) {
				return
			}
		default:
			if c.sq+2 > c.sqMax || len(c.freeSends) == 0 {
				return
			}
			if err := c.postResponseLocked(p.task, p.rsp[:iscsi.BHSLen], p.rsp[iscsi.BHSLen:], p.dlen); err != nil {
				c.failLocked(err)
				return
			}
		}
		c.pendSend[0] = pendingSend{}
		c.pendSend = c.pendSend[1:]
	}
}

// unuseLocked ends one use of t's buffer by a work request, and frees the
// task once the core released it and nothing uses it.
func (c *tconn) unuseLocked(t *ttask) {
	t.inflight--
	if t.inflight == 0 && t.state == tReleased {
		c.freeTaskLocked(t)
	}
}

// Release implements iscsi.TransportConn: the buffer goes back to the
// pool once no WRITE, READ or SEND still uses it.
func (c *tconn) Release(it *iscsi.Task) {
	t, _ := it.Data.(*ttask)
	if t == nil {
		return
	}
	it.Data, it.Buf = nil, nil
	c.mu.Lock()
	if c.byITT[t.itt] == t {
		delete(c.byITT, t.itt)
	}
	switch {
	case t.state == tNeedBuf:
		// Still waiting for a buffer: leave the queue, give back the
		// receive slots it held.
		for i, w := range c.waitBuf {
			if w == t {
				c.waitBuf = append(c.waitBuf[:i], c.waitBuf[i+1:]...)
				break
			}
		}
		for i := range t.nheld {
			if err := c.repostLocked(t.held[i].slot); err != nil {
				c.failLocked(err)
			}
		}
		t.nheld = 0
		c.freeTaskLocked(t)
	case t.inflight > 0 && !c.reaped:
		// A WRITE, READ or SEND still uses the buffer: free it when
		// its completion is reaped (or when the connection drains).
		t.state = tReleased
	default:
		c.freeTaskLocked(t)
	}
	c.mu.Unlock()
	c.d.kick()
	c.maybeDrained()
}

// freeTaskLocked returns t's block and budget and t itself.
func (c *tconn) freeTaskLocked(t *ttask) {
	if t.buf != nil {
		c.d.pool.Put(t.blk)
		c.budget.Release(t.charged)
		c.blocks--
	}
	t.reset()
	c.freeTasks = append(c.freeTasks, t.idx)
}

// Close implements iscsi.TransportConn: it moves the queue pair to the
// error state (RDMA CM disconnect), so every posted work request comes
// back flushed; once all are reaped the connection's resources are freed
// and Drained is closed.
func (c *tconn) Close() error {
	c.fail(errConnClosed)
	return nil
}

// fail ends the connection with err (the first error wins).
func (c *tconn) fail(err error) {
	c.mu.Lock()
	c.failLocked(err)
	free := c.closed && c.sq == 0 && c.rq == 0 && !c.reaped
	if free {
		c.reaped = true
	}
	c.mu.Unlock()
	if free {
		go c.finish()
	}
}

// failLocked marks the connection failed, tells Recv, and disconnects the
// queue pair so its work requests flush.
func (c *tconn) failLocked(err error) {
	if c.closed {
		return
	}
	c.closed = true
	c.failErr = err
	switch {
	case err == errConnClosed:
	case errors.Is(err, ErrDisconnected):
		c.log.Debug("iser: initiator disconnected")
	default:
		c.log.Warn("iser: connection failed", "err", err)
	}
	// Recv may be waiting: a failure event ends it (the channel has room
	// for it: receives are no longer pushed).
	select {
	case c.events <- event{kind: evFail, err: err}:
	default:
	}
	if err := c.qp.Disconnect(); err != nil {
		// Not connected (yet), or already closed: move to Error.
		if err2 := c.qp.Modify(rdma.QPAttr{State: rdma.QPError}); err2 != nil {
			c.log.Debug("iser: move QP to error", "disconnect", err, "modify", err2)
		}
	}
	c.pendSend = nil
	c.pendRead = nil
	c.waitBuf = nil
}

// closedErrLocked is the error of an operation on a closed connection.
func (c *tconn) closedErrLocked() error {
	if c.failErr != nil && c.failErr != errConnClosed {
		return c.failErr
	}
	return errConnClosed
}

// failErrLocked returns the connection's error if it failed.
func (c *tconn) failErrLocked() error {
	if c.closed {
		return c.closedErrLocked()
	}
	return nil
}

// finish runs once every work request is reaped: it detaches from the
// poll group, destroys the queue pair and frees the slots; Drained closes
// when the core has released every task buffer too.
func (c *tconn) finish() {
	c.att.Detach()
	c.log.Debug("iser: connection reaped; destroying the QP")
	if err := c.qp.Close(); err != nil {
		c.log.Error("iser: close QP", "err", err)
	}
	c.log.Debug("iser: QP destroyed")
	c.mu.Lock()
	// Tasks waiting for buffers hold receive slots only; in-flight
	// work is reaped. What the core has not released yet, it will.
	for i := range c.tasks {
		if t := &c.tasks[i]; t.state == tReleased {
			t.inflight = 0
			c.freeTaskLocked(t)
		}
	}
	for i := range c.bigs {
		if c.bigs[i].used {
			c.d.pool.Put(c.bigs[i].blk)
			c.blocks--
			c.bigs[i] = bigSend{}
		}
	}
	c.freed = true
	c.mu.Unlock()
	c.freeSlab()
	c.d.removeWaiter(c)
	c.d.kick()
	c.maybeDrained()
}

// maybeDrained closes Drained once the connection is freed and holds no
// pool block.
func (c *tconn) maybeDrained() {
	c.mu.Lock()
	done := c.freed && c.blocks == 0
	if done {
		c.freed = false // close once
	}
	c.mu.Unlock()
	if done {
		close(c.drained)
		c.t.connGone()
	}
}

// addWaiter queues c for pool blocks.
func (d *devState) addWaiter(c *tconn) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	for _, w := range d.waiters {
		if w == c {
			return
		}
	}
	d.waiters = append(d.waiters, c)
}

// removeWaiter drops c from the queue.
func (d *devState) removeWaiter(c *tconn) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	for i, w := range d.waiters {
		if w == c {
			d.waiters = append(d.waiters[:i], d.waiters[i+1:]...)
			return
		}
	}
}

// kick lets waiting connections retry their buffers after blocks came
// back, in FIFO order; a connection still short stays queued. It must be
// called without any connection's mu held.
func (d *devState) kick() {
	d.wmu.Lock()
	if len(d.waiters) == 0 {
		d.wmu.Unlock()
		return
	}
	ws := d.waiters
	d.waiters = nil
	d.wmu.Unlock()
	for i, c := range ws {
		if c.retryBuffers() {
			// Still short: it and those behind it wait for the next
			// free block.
			d.wmu.Lock()
			d.waiters = append(ws[i:], d.waiters...)
			d.wmu.Unlock()
			return
		}
	}
}
