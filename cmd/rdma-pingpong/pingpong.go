package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
)

// mode is what one iteration does.
type mode uint8

const (
	modeSend  mode = 1 // SEND into a posted RECV, answered the same way (ib_send_lat)
	modeWrite mode = 2 // RDMA WRITE, the peer polls the last word and writes back (ib_write_lat)
	modeTCP   mode = 3 // the same exchange over TCP on the same path (tcp.go)
)

func (m mode) String() string {
	switch m {
	case modeSend:
		return "send"
	case modeWrite:
		return "write"
	case modeTCP:
		return "tcp"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// plan is one run: a mode, a message size and how many round trips. The
// client sends it in the CM private data of its connect request, so the
// server needs no flags; one connection per plan.
type plan struct {
	Mode   mode
	Size   int // bytes, a multiple of 4, at least 8
	Iters  int // timed round trips
	Warmup int // untimed round trips before them
}

// Private data layouts (big-endian):
//
//	connect: "GPP1" mode(1) pad(3) size(4) iters(4) warmup(4) addr(8) rkey(4)  = 32 bytes
//	accept:  "GPP1" addr(8) rkey(4)                                          = 16 bytes
//
// addr and rkey describe the sender's receive region for RDMA WRITE.
var magic = [4]byte{'G', 'P', 'P', '1'}

func (p plan) marshal(addr uint64, rkey uint32) []byte {
	b := make([]byte, 32)
	copy(b, magic[:])
	b[4] = byte(p.Mode)
	binary.BigEndian.PutUint32(b[8:], uint32(p.Size))
	binary.BigEndian.PutUint32(b[12:], uint32(p.Iters))
	binary.BigEndian.PutUint32(b[16:], uint32(p.Warmup))
	binary.BigEndian.PutUint64(b[20:], addr)
	binary.BigEndian.PutUint32(b[28:], rkey)
	return b
}

func unmarshalPlan(b []byte) (p plan, addr uint64, rkey uint32, err error) {
	if len(b) < 32 || [4]byte(b[:4]) != magic {
		return p, 0, 0, fmt.Errorf("not a rdma-pingpong connect request (%d bytes of private data)", len(b))
	}
	p = plan{
		Mode:   mode(b[4]),
		Size:   int(binary.BigEndian.Uint32(b[8:])),
		Iters:  int(binary.BigEndian.Uint32(b[12:])),
		Warmup: int(binary.BigEndian.Uint32(b[16:])),
	}
	return p, binary.BigEndian.Uint64(b[20:]), binary.BigEndian.Uint32(b[28:]), p.validate()
}

func (p plan) validate() error {
	switch {
	case p.Mode != modeSend && p.Mode != modeWrite && p.Mode != modeTCP:
		return fmt.Errorf("unknown mode %d", p.Mode)
	case p.Size < 8 || p.Size%4 != 0 || p.Size > maxSize:
		return fmt.Errorf("size %d: want a multiple of 4 between 8 and %d", p.Size, maxSize)
	case p.Iters < 1 || p.Warmup < 0 || p.Iters > maxIters || p.Warmup > maxIters:
		return fmt.Errorf("iterations %d (warm-up %d): want 1..%d", p.Iters, p.Warmup, maxIters)
	}
	return nil
}

func marshalAccept(addr uint64, rkey uint32) []byte {
	b := make([]byte, 16)
	copy(b, magic[:])
	binary.BigEndian.PutUint64(b[4:], addr)
	binary.BigEndian.PutUint32(b[12:], rkey)
	return b
}

func unmarshalAccept(b []byte) (addr uint64, rkey uint32, err error) {
	if len(b) < 16 || [4]byte(b[:4]) != magic {
		return 0, 0, fmt.Errorf("peer is not a rdma-pingpong server (%d bytes of private data)", len(b))
	}
	return binary.BigEndian.Uint64(b[4:]), binary.BigEndian.Uint32(b[12:]), nil
}

const (
	maxSize   = 16 << 20
	maxIters  = 10_000_000
	recvDepth = 16 // receives kept posted
	sendDepth = 16 // send queue depth
)

// Work-request operations (rdma.EncodeWRID).
const (
	opRecv  = 1
	opSend  = 2
	opWrite = 3
)

// endpoint is one side of a connection: one buffer of 2*Size bytes (the
// transmit half first, then the receive half) registered once, one CQ for
// both queues, and the work requests of the loop, built once. Nothing in
// the loop allocates.
type endpoint struct {
	plan plan
	pd   *rdma.ProtectionDomain
	cq   *rdma.CompletionQueue
	qp   *rdma.QueuePair
	buf  *rdma.Buffer
	mr   *rdma.MemoryRegion

	rx      []byte // receive half of buf
	rxLast  *uint32
	txLast  *uint32
	remote  uint64 // the peer's receive half (RDMA WRITE target)
	rkey    uint32
	send    [1]rdma.SendWR
	recv    [1]rdma.RecvWR
	wc      [32]rdma.Completion
	pending int  // signaled sends not yet completed (every send is signaled)
	posted  int  // receives posted and not yet completed
	up      bool // the CM connection was established

	deadline time.Time // the loop gives up after it
}

func newEndpoint(dev *rdma.Device, p plan) (*endpoint, error) {
	e := &endpoint{plan: p}
	var err error
	if e.pd, err = dev.AllocPD(); err != nil {
		return nil, err
	}
	if e.buf, err = rdma.AllocBuffer(2*p.Size, rdma.BufferOptions{}); err != nil {
		e.close()
		return nil, err
	}
	if e.mr, err = e.pd.RegisterBuffer(e.buf, rdma.AccessLocalWrite|rdma.AccessRemoteWrite); err != nil {
		e.close()
		return nil, err
	}
	if e.cq, err = dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 2 * (recvDepth + sendDepth)}); err != nil {
		e.close()
		return nil, err
	}
	mem := e.buf.Bytes()
	e.rx = mem[p.Size : 2*p.Size]
	// Both words are 4-byte aligned: the buffer is page aligned and Size a
	// multiple of 4.
	e.txLast = (*uint32)(unsafe.Pointer(&mem[p.Size-4]))
	e.rxLast = (*uint32)(unsafe.Pointer(&mem[2*p.Size-4]))
	e.recv[0] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, 0), SGL: []rdma.SGE{e.mr.SGE(p.Size, p.Size)}}
	return e, nil
}

func (e *endpoint) qpConfig() rdma.QueuePairConfig {
	return rdma.QueuePairConfig{SendCQ: e.cq, RecvCQ: e.cq, MaxSendWR: sendDepth, MaxRecvWR: recvDepth}
}

// prepare builds the send work request once the peer's region is known.
func (e *endpoint) prepare(remote uint64, rkey uint32) {
	e.remote, e.rkey = remote, rkey
	sge := []rdma.SGE{e.mr.SGE(0, e.plan.Size)}
	if e.plan.Mode == modeSend {
		e.send[0] = rdma.SendWR{ID: rdma.EncodeWRID(opSend, 0), Op: driver.OpSend, Flags: driver.FlagSignaled, SGL: sge}
	} else {
		e.send[0] = rdma.SendWR{ID: rdma.EncodeWRID(opWrite, 0), Op: driver.OpRDMAWrite, Flags: driver.FlagSignaled,
			SGL: sge, Remote: remote, RKey: rkey}
	}
}

func (e *endpoint) postRecvs(n int) error {
	for range n {
		if _, err := e.qp.PostRecv(e.recv[:]); err != nil {
			return err
		}
		e.posted++
	}
	return nil
}

func (e *endpoint) postSend() error {
	if _, err := e.qp.PostSend(e.send[:]); err != nil {
		return err
	}
	e.pending++
	return nil
}

var errTimeout = errors.New("rdma-pingpong: timed out")

// poll takes what the CQ has; it returns how many receives completed, and
// the error of the first failed completion. Every completion is counted
// (failed and flushed ones too), so teardown knows what is still posted.
func (e *endpoint) poll() (int, error) {
	n, err := e.cq.Poll(e.wc[:])
	if err != nil {
		return 0, err
	}
	recvs := 0
	var failed error
	for i := range n {
		c := &e.wc[i]
		if op, _ := rdma.DecodeWRID(c.ID); op == opRecv {
			recvs++
			e.posted--
		} else {
			e.pending--
		}
		if c.Status != rdma.WCSuccess && failed == nil {
			failed = c.Err()
		}
	}
	return recvs, failed
}

// spin yields the processor every 64 empty polls. A NIC completes work on
// its own, but the soft provider (and the peer, in -soft mode) are
// goroutines: a loop that never yields can starve them until the runtime
// preempts it, milliseconds later on a machine with few cores.
func (e *endpoint) spin(spins int) {
	if spins&63 == 63 {
		runtime.Gosched()
	}
}

// waitRecv busy-polls until one receive completed (reaping sends on the way).
func (e *endpoint) waitRecv() error {
	for spins := 0; ; spins++ {
		r, err := e.poll()
		if err != nil {
			return err
		}
		if r > 1 {
			return fmt.Errorf("rdma-pingpong: %d receives completed at once", r)
		}
		if r == 1 {
			return nil
		}
		e.spin(spins)
		if spins&4095 == 4095 && time.Now().After(e.deadline) {
			return errTimeout
		}
	}
}

// reap busy-polls until at most max signaled sends are outstanding.
func (e *endpoint) reap(max int) error {
	for spins := 0; e.pending > max; spins++ {
		r, err := e.poll()
		if err != nil {
			return err
		}
		if r != 0 {
			return fmt.Errorf("rdma-pingpong: unexpected receive in write mode")
		}
		e.spin(spins)
		if spins&4095 == 4095 && time.Now().After(e.deadline) {
			return errTimeout
		}
	}
	return nil
}

// waitWord spins until the last word of the receive half holds seq (the
// peer's RDMA WRITE has landed), like perftest's write_lat.
func (e *endpoint) waitWord(seq uint32) error {
	for spins := 0; atomic.LoadUint32(e.rxLast) != seq; spins++ {
		if spins&4095 == 4095 && time.Now().After(e.deadline) {
			return errTimeout
		}
	}
	return nil
}

// pingOnce is one timed round trip of the client. It allocates nothing.
func (e *endpoint) pingOnce(seq uint32) (time.Duration, error) {
	if err := e.reap(sendDepth - 2); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if e.plan.Mode == modeSend {
		if err := e.postSend(); err != nil {
			return 0, err
		}
		if err := e.waitRecv(); err != nil {
			return 0, err
		}
		rtt := time.Since(t0)
		return rtt, e.postRecvs(1)
	}
	atomic.StoreUint32(e.txLast, seq)
	if err := e.postSend(); err != nil {
		return 0, err
	}
	if err := e.waitWord(seq); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// pongOnce answers one round trip on the server. It allocates nothing.
func (e *endpoint) pongOnce(seq uint32) error {
	if err := e.reap(sendDepth - 2); err != nil {
		return err
	}
	if e.plan.Mode == modeSend {
		if err := e.waitRecv(); err != nil {
			return err
		}
		if err := e.postRecvs(1); err != nil {
			return err
		}
		return e.postSend()
	}
	if err := e.waitWord(seq); err != nil {
		return err
	}
	atomic.StoreUint32(e.txLast, seq)
	return e.postSend()
}

// close tears the queue pair down (teardown: to Error, reap every work
// request) and then releases everything, children first.
func (e *endpoint) close() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if e.qp != nil {
		add(e.teardown())
		add(e.qp.Close())
	}
	if e.mr != nil {
		add(e.mr.Close())
	}
	if e.cq != nil {
		add(e.cq.Close())
	}
	if e.pd != nil {
		add(e.pd.Close())
	}
	if e.buf != nil {
		add(e.buf.Close())
	}
	return errors.Join(errs...)
}

// teardown moves the queue pair to Error (Disconnect once connected, so
// the peer learns of it; Modify before) and reaps every work request still
// posted, success or flush, so that close releases no buffer the device
// still owns: closing a queue pair does not flush it. It waits at most 2 s
// for the flushes, whatever is left of the connection's context.
func (e *endpoint) teardown() error {
	if e.qp == nil {
		return nil
	}
	var err error
	if e.up {
		err = e.qp.Disconnect()
	} else {
		err = e.qp.Modify(rdma.QPAttr{State: rdma.QPError})
	}
	e.deadline = time.Now().Add(2 * time.Second)
	for spins := 0; e.pending > 0 || e.posted > 0; spins++ {
		var wce *rdma.WCError // flushed (or failed) completions are expected here
		if _, perr := e.poll(); perr != nil && !errors.As(perr, &wce) {
			return errors.Join(err, perr) // the CQ itself failed
		}
		e.spin(spins)
		if spins&4095 == 4095 && time.Now().After(e.deadline) {
			return errors.Join(err, fmt.Errorf("rdma-pingpong: teardown: %d sends and %d receives not reaped: %w", e.pending, e.posted, errTimeout))
		}
	}
	return err
}

var connParam = rdma.ConnParam{ResponderResources: 1, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 7}

// runClient connects to addr for one plan and returns the round-trip times
// of the timed iterations (rtts must have room for p.Iters).
func runClient(ctx context.Context, p driver.Provider, addr string, pl plan, rtts []time.Duration) (err error) {
	d, err := rdma.Dial(ctx, p, addr, rdma.DialConfig{})
	if err != nil {
		return err
	}
	defer d.Close()
	e, err := newEndpoint(d.Device(), pl)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := e.close(); err == nil {
			err = cerr
		}
	}()
	if e.qp, err = d.CreateQP(e.pd, e.qpConfig()); err != nil {
		return err
	}
	if pl.Mode == modeSend {
		if err := e.postRecvs(recvDepth); err != nil {
			return err
		}
	}
	peer, err := d.Connect(ctx, connParam, pl.marshal(e.mr.Addr()+uint64(pl.Size), e.mr.RKey()))
	if err != nil {
		return err
	}
	raddr, rkey, err := unmarshalAccept(peer)
	if err != nil {
		return err
	}
	e.up = true // from here close disconnects
	e.prepare(raddr, rkey)
	e.deadline = deadlineOf(ctx)
	total := pl.Warmup + pl.Iters
	for i := range total {
		rtt, err := e.pingOnce(uint32(i + 1))
		if err != nil {
			return fmt.Errorf("%s %d bytes, round trip %d: %w", pl.Mode, pl.Size, i, err)
		}
		if i >= pl.Warmup {
			rtts[i-pl.Warmup] = rtt
		}
	}
	return nil
}

func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(24 * time.Hour)
}

// serve accepts connections on l one at a time and answers each plan
// until ctx is done or the listener is closed; count > 0 stops after that
// many connections. Errors of one connection are logged to logf and do
// not stop the server.
func serve(ctx context.Context, l *rdma.Listener, count int, timeout time.Duration, logf func(string, ...any)) error {
	for n := 0; count <= 0 || n < count; n++ {
		req, err := l.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, rdma.ErrClosed) {
				return nil
			}
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		if err := serveOne(cctx, req); err != nil {
			logf("rdma-pingpong: connection from %s: %v", req.RemoteAddr(), err)
		}
		cancel()
	}
	return nil
}

func serveOne(ctx context.Context, req *rdma.ConnRequest) (err error) {
	pl, raddr, rkey, err := unmarshalPlan(req.PrivateData())
	if err != nil {
		req.Reject(nil)
		return err
	}
	e, err := newEndpoint(req.Device(), pl)
	if err != nil {
		req.Reject(nil)
		return err
	}
	defer func() {
		if cerr := e.close(); err == nil {
			err = cerr
		}
	}()
	if e.qp, err = req.CreateQP(e.pd, e.qpConfig()); err != nil {
		req.Reject(nil)
		return err
	}
	if pl.Mode == modeSend {
		if err := e.postRecvs(recvDepth); err != nil {
			req.Reject(nil)
			return err
		}
	}
	e.prepare(raddr, rkey)
	if err := req.Accept(ctx, connParam, marshalAccept(e.mr.Addr()+uint64(pl.Size), e.mr.RKey())); err != nil {
		return err
	}
	e.up = true // from here close disconnects
	e.deadline = deadlineOf(ctx)
	total := pl.Warmup + pl.Iters
	for i := range total {
		if err := e.pongOnce(uint32(i + 1)); err != nil {
			return fmt.Errorf("%s %d bytes, round trip %d: %w", pl.Mode, pl.Size, i, err)
		}
	}
	// The client disconnects when it has its last answer; close (deferred)
	// then reaps what is still posted.
	select {
	case <-e.qp.Disconnected():
	case <-ctx.Done():
	}
	return nil
}
