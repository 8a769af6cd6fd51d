//go:build linux && cgo

package verbs

/*
#include <stdlib.h>
#include <sys/socket.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/goiser/goiser/rdma/driver"
)

// RDMA CM in this package
//
// Each listener and each dialer has its own rdma_event_channel. Its fd is
// non-blocking and wrapped in an *os.File; one goroutine per channel (run)
// parks in the netpoller until events are pending, takes each event with
// rdma_get_cm_event, copies what Go needs (private data included) and
// acknowledges it at once, and only then routes the copy: a CONNECT_REQUEST
// to its listener's queue, every other event to the cmID it names.
// Acknowledging before routing matters: rdma_destroy_id blocks until every
// event of the id has been acknowledged, and it may be called by a
// goroutine that holds no lock the router needs.
//
// Ids created by connect requests live on the listener's channel, so the
// channel is reference counted: the listener id and every id on it hold a
// reference, and the last release closes the file, which ends run, which
// destroys the channel.
//
// Close ordering:
//   - QP of a CM connection: rdma_destroy_qp, then rdma_destroy_id, then
//     release the channel.
//   - ConnRequest rejected without a QP, Dialer closed without a QP, and
//     an unwanted request: rdma_destroy_id, then release.
//   - Listener: stop routing requests to it, reject and destroy the ones
//     queued, rdma_destroy_id on the listening id, release. Connections it
//     accepted live on.

// cmEvent is a CM event copied out of librdmacm.
type cmEvent struct {
	typ      C.int
	status   int
	id       *C.struct_rdma_cm_id
	listenID *C.struct_rdma_cm_id
	pdata    []byte
	param    driver.ConnParam
	verbs    *C.struct_ibv_context
	local    *net.TCPAddr
	remote   *net.TCPAddr
}

// cmChannel is an rdma_event_channel and the goroutine that reads it.
type cmChannel struct {
	ch *C.struct_rdma_event_channel // immutable; destroyed by run on exit
	ev *C.goiser_cm_event           // C scratch for one event; used by run only
	f  *os.File                     // dup of ch's fd; closing it ends run

	mu   sync.Mutex
	ids  map[*C.struct_rdma_cm_id]*cmID // guarded by mu
	refs int                            // guarded by mu
}

func newCMChannel() (*cmChannel, error) {
	ch, err := C.rdma_create_event_channel()
	if ch == nil {
		if isNoDeviceErrno(err) {
			return nil, fmt.Errorf("verbs: rdma_create_event_channel: %w (%w)", driver.ErrNoDevice, driver.NewVerbsError("rdma_create_event_channel", err))
		}
		return nil, driver.NewVerbsError("rdma_create_event_channel", err)
	}
	if rc, err := C.goiser_cm_nonblock(ch); rc != 0 {
		C.rdma_destroy_event_channel(ch)
		return nil, fmt.Errorf("verbs: event channel non-blocking: %w", err)
	}
	fd, err := syscall.Dup(int(ch.fd))
	if err != nil {
		C.rdma_destroy_event_channel(ch)
		return nil, fmt.Errorf("verbs: dup event channel fd: %w", err)
	}
	c := &cmChannel{
		ch:  ch,
		ev:  (*C.goiser_cm_event)(C.calloc(1, C.size_t(unsafe.Sizeof(C.goiser_cm_event{})))),
		f:   os.NewFile(uintptr(fd), "rdma_event_channel"),
		ids: make(map[*C.struct_rdma_cm_id]*cmID),
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		C.free(unsafe.Pointer(c.ev))
		C.rdma_destroy_event_channel(ch)
		return nil, fmt.Errorf("verbs: event channel fd: %w", err)
	}
	go c.run(rc)
	return c, nil
}

// newID creates an RC id in the RDMA_PS_TCP port space on c and registers it.
func (c *cmChannel) newID() (*cmID, error) {
	var id *C.struct_rdma_cm_id
	if rc, err := C.rdma_create_id(c.ch, &id, nil, C.RDMA_PS_TCP); rc != 0 {
		return nil, rcErr("rdma_create_id", rc, err)
	}
	return c.register(id), nil
}

// register starts routing id's events to a new cmID; it takes a reference.
func (c *cmChannel) register(id *C.struct_rdma_cm_id) *cmID {
	m := &cmID{id: id, ch: c, ev: make(chan cmEvent, 8), disc: make(chan struct{})}
	c.mu.Lock()
	c.ids[id] = m
	c.refs++
	c.mu.Unlock()
	return m
}

// release drops a reference; the last one ends run.
func (c *cmChannel) release() {
	c.mu.Lock()
	c.refs--
	last := c.refs == 0
	c.mu.Unlock()
	if last {
		c.f.Close()
	}
}

// run reads and routes events until the file is closed, then destroys the
// channel (every id on it is gone by then).
func (c *cmChannel) run(rc syscall.RawConn) {
	for {
		err := rc.Read(func(uintptr) bool {
			for {
				switch r := C.goiser_cm_get_event(c.ch, c.ev); r {
				case 0:
					c.route(c.copyEvent())
				case C.EAGAIN:
					return false
				default:
					// EINTR and the like: try again on the next wakeup.
					return false
				}
			}
		})
		if err != nil {
			break
		}
	}
	C.rdma_destroy_event_channel(c.ch)
	C.free(unsafe.Pointer(c.ev))
}

func (c *cmChannel) copyEvent() cmEvent {
	e := c.ev
	ev := cmEvent{
		typ:      e.event,
		status:   int(e.status),
		id:       e.id,
		listenID: e.listen_id,
		param: driver.ConnParam{
			ResponderResources: uint8(e.responder_resources),
			InitiatorDepth:     uint8(e.initiator_depth),
			RetryCount:         uint8(e.retry_count),
			RNRRetryCount:      uint8(e.rnr_retry_count),
		},
		verbs: e.verbs,
	}
	if n := int(e.pdata_len); n > 0 {
		ev.pdata = C.GoBytes(unsafe.Pointer(&e.pdata[0]), C.int(n))
	}
	if e.event == C.RDMA_CM_EVENT_CONNECT_REQUEST {
		ev.local = tcpAddr(&e.local)
		ev.remote = tcpAddr(&e.remote)
	}
	return ev
}

func (c *cmChannel) route(ev cmEvent) {
	if ev.typ == C.RDMA_CM_EVENT_CONNECT_REQUEST {
		c.mu.Lock()
		lid := c.ids[ev.listenID]
		var l *listener
		if lid != nil {
			l = lid.lst
		}
		c.mu.Unlock()
		if l == nil || !l.offer(ev) {
			// Nobody takes it: refuse it and let the id go.
			C.rdma_reject(ev.id, nil, 0)
			C.rdma_destroy_id(ev.id)
		}
		return
	}
	c.mu.Lock()
	m := c.ids[ev.id]
	c.mu.Unlock()
	if m != nil {
		m.deliver(ev)
	}
}

// cmID is an rdma_cm_id and the events routed to it.
type cmID struct {
	id   *C.struct_rdma_cm_id // immutable
	ch   *cmChannel           // immutable
	lst  *listener            // set once before the id listens; immutable after
	ev   chan cmEvent         // events for a waiter (Connect, Accept, resolution)
	disc chan struct{}        // closed on DISCONNECTED (or a device removal)

	discOnce sync.Once
	life     closeState // closed once rdma_destroy_id succeeded

	// inErr is set once the connection is disconnected (by either side):
	// the QP is in Error and posts are refused.
	inErr atomic.Bool

	mu sync.Mutex
	qp *C.goiser_qp // the connection's QP while it exists; guarded by mu
	// local is set when this side called rdma_disconnect; guarded by mu.
	local bool
}

func (m *cmID) attachQP(q *C.goiser_qp) {
	m.mu.Lock()
	m.qp = q
	m.mu.Unlock()
}

func (m *cmID) detachQP() {
	m.mu.Lock()
	m.qp = nil
	m.mu.Unlock()
}

func (m *cmID) deliver(ev cmEvent) {
	switch ev.typ {
	case C.RDMA_CM_EVENT_DISCONNECTED, C.RDMA_CM_EVENT_DEVICE_REMOVAL:
		// The peer went (or the device did). Answer as every librdmacm
		// user does: rdma_disconnect moves our QP to Error, so its
		// outstanding WRs flush, and replies to the peer's request.
		m.mu.Lock()
		if m.qp != nil && !m.local {
			m.local = true
			C.rdma_disconnect(m.id)
		}
		m.mu.Unlock()
		m.inErr.Store(true)
		m.discOnce.Do(func() { close(m.disc) })
	case C.RDMA_CM_EVENT_TIMEWAIT_EXIT:
		m.inErr.Store(true)
		m.discOnce.Do(func() { close(m.disc) })
	}
	select {
	case m.ev <- ev:
	default: // nobody waits for more; the disconnect channel carries what matters
	}
}

// wait returns the next event for the id, bounded by ctx.
func (m *cmID) wait(ctx context.Context) (cmEvent, error) {
	select {
	case ev := <-m.ev:
		return ev, nil
	case <-ctx.Done():
		return cmEvent{}, ctx.Err()
	}
}

func (m *cmID) disconnect() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inErr.Store(true)
	if m.local {
		return nil
	}
	m.local = true
	if rc, err := C.rdma_disconnect(m.id); rc != 0 {
		select {
		case <-m.disc:
			return nil // the peer went first
		default:
		}
		return rcErr("rdma_disconnect", rc, err)
	}
	return nil
}

// destroy stops routing, destroys the id and releases the channel. A
// failed rdma_destroy_id leaves the id alive, routed and holding its
// reference on the channel, so destroy may be retried; once it succeeded,
// destroy does nothing.
func (m *cmID) destroy() error {
	return m.life.close(func() error {
		m.ch.mu.Lock()
		delete(m.ch.ids, m.id)
		m.ch.mu.Unlock()
		if rc, err := C.rdma_destroy_id(m.id); rc != 0 {
			m.ch.mu.Lock()
			m.ch.ids[m.id] = m
			m.ch.mu.Unlock()
			return rcErr("rdma_destroy_id", rc, err)
		}
		m.discOnce.Do(func() { close(m.disc) })
		m.ch.release()
		return nil
	})
}

// eventErr turns an unexpected CM event into an error for op.
func eventErr(op string, ev cmEvent) error {
	switch ev.typ {
	case C.RDMA_CM_EVENT_REJECTED:
		return &driver.RejectError{Status: ev.status, PrivateData: ev.pdata}
	case C.RDMA_CM_EVENT_DISCONNECTED, C.RDMA_CM_EVENT_TIMEWAIT_EXIT:
		return driver.NewVerbsError(op, syscall.ECONNRESET)
	case C.RDMA_CM_EVENT_DEVICE_REMOVAL:
		return driver.NewVerbsError(op, syscall.ENODEV)
	}
	if ev.status < 0 {
		return driver.NewVerbsError(op, syscall.Errno(-ev.status))
	}
	return fmt.Errorf("verbs: %s: unexpected CM event %s (status %d)", op, C.GoString(C.rdma_event_str(uint32(ev.typ))), ev.status)
}

// ---- addresses ----

func tcpAddr(a *C.goiser_addr) *net.TCPAddr {
	switch a.family {
	case C.AF_INET:
		return &net.TCPAddr{IP: net.IPv4(byte(a.ip[0]), byte(a.ip[1]), byte(a.ip[2]), byte(a.ip[3])), Port: int(a.port)}
	case C.AF_INET6:
		ip := make(net.IP, 16)
		for i := range ip {
			ip[i] = byte(a.ip[i])
		}
		return &net.TCPAddr{IP: ip, Port: int(a.port)}
	}
	return &net.TCPAddr{}
}

// cAddr parses "ip:port" (or "ip" when allowNoPort) into a goiser_addr.
func cAddr(s string, allowNoPort bool) (C.goiser_addr, error) {
	var a C.goiser_addr
	host, port := s, "0"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if !allowNoPort {
		return a, fmt.Errorf("verbs: address %q: %w", s, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return a, fmt.Errorf("verbs: address %q: bad port: %w", s, err)
	}
	ip := net.IPv4zero
	if host != "" {
		if ip = net.ParseIP(host); ip == nil {
			return a, fmt.Errorf("verbs: address %q: not an IP address", s)
		}
	}
	a.port = C.uint16_t(pn)
	if ip4 := ip.To4(); ip4 != nil {
		a.family = C.AF_INET
		for i := range 4 {
			a.ip[i] = C.uint8_t(ip4[i])
		}
	} else {
		a.family = C.AF_INET6
		for i := range 16 {
			a.ip[i] = C.uint8_t(ip[i])
		}
	}
	return a, nil
}

func idAddr(id *C.struct_rdma_cm_id, peer bool) *net.TCPAddr {
	var a C.goiser_addr
	p := C.int(0)
	if peer {
		p = 1
	}
	C.goiser_cm_addr(id, p, &a)
	return tcpAddr(&a)
}

// bytesPtr is the C view of b for the duration of one call (nil when empty).
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// ---- listener ----

type listener struct {
	cm   *cmID             // the listening id; immutable
	addr *net.TCPAddr      // immutable
	reqs chan *connRequest // connect requests not yet taken
	done chan struct{}     // closed by Close

	mu     sync.Mutex
	closed bool // guarded by mu; no request is queued once set
}

func (provider) Listen(addr string, cfg driver.ListenConfig) (driver.Listener, error) {
	a, err := cAddr(addr, false)
	if err != nil {
		return nil, err
	}
	ch, err := newCMChannel()
	if err != nil {
		return nil, err
	}
	m, err := ch.newID()
	if err != nil {
		ch.f.Close()
		return nil, err
	}
	backlog := cfg.Backlog
	if backlog <= 0 {
		backlog = 64
	}
	l := &listener{cm: m, reqs: make(chan *connRequest, backlog), done: make(chan struct{})}
	m.lst = l
	if rc, err := C.goiser_cm_bind(m.id, &a); rc != 0 {
		m.destroy()
		return nil, fmt.Errorf("verbs: listen on %s: %w", addr, rcErr("rdma_bind_addr", rc, err))
	}
	if rc, err := C.rdma_listen(m.id, C.int(backlog)); rc != 0 {
		m.destroy()
		return nil, fmt.Errorf("verbs: listen on %s: %w", addr, rcErr("rdma_listen", rc, err))
	}
	l.addr = idAddr(m.id, false)
	return l, nil
}

func (l *listener) Addr() net.Addr { return l.addr }

// offer queues a connect request; false when the listener is closed or its
// queue is full. Runs on the channel's goroutine.
func (l *listener) offer(ev cmEvent) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.reqs) == cap(l.reqs) {
		return false
	}
	m := l.cm.ch.register(ev.id)
	l.reqs <- &connRequest{
		cm:     m,
		dev:    newDevice(ev.verbs, false),
		pdata:  ev.pdata,
		param:  ev.param,
		local:  ev.local,
		remote: ev.remote,
	}
	return true
}

func (l *listener) GetRequest(ctx context.Context) (driver.ConnRequest, error) {
	select {
	case r := <-l.reqs:
		return r, nil
	case <-l.done:
		return nil, driver.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops routing requests to the listener, rejects the queued ones
// and destroys the listening id. When rdma_destroy_id fails the listener
// stays closed to new requests and a retry destroys the id.
func (l *listener) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	l.mu.Unlock()
	for {
		select {
		case r := <-l.reqs:
			r.Reject(nil)
			continue
		default:
		}
		break
	}
	return l.cm.destroy()
}

// ---- connect requests (passive side) ----

type connRequest struct {
	cm     *cmID   // the new connection's id; immutable
	dev    *device // the device it arrived on; immutable, owned by librdmacm
	pdata  []byte
	param  driver.ConnParam
	local  *net.TCPAddr
	remote *net.TCPAddr

	mu   sync.Mutex
	qp   *queuePair // guarded by mu
	done bool       // Accept or Reject was called; guarded by mu
}

func (r *connRequest) Context() driver.Context { return r.dev }
func (r *connRequest) PrivateData() []byte     { return append([]byte(nil), r.pdata...) }
func (r *connRequest) Param() driver.ConnParam { return r.param }
func (r *connRequest) LocalAddr() net.Addr     { return r.local }
func (r *connRequest) RemoteAddr() net.Addr    { return r.remote }

func (r *connRequest) CreateQP(pd driver.PD, cfg driver.QPConfig, send, recv driver.CQ) (driver.QP, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || r.qp != nil {
		return nil, fmt.Errorf("verbs: create QP for a connect request: %w", driver.ErrInvalidState)
	}
	p, ok := pd.(*protDomain)
	if !ok {
		return nil, fmt.Errorf("verbs: create QP: PD of another provider: %w", driver.NewVerbsError("rdma_create_qp", syscall.EINVAL))
	}
	qp, err := createQP(p, r.cm.id, r.cm, cfg, send, recv)
	if err != nil {
		return nil, err
	}
	r.qp = qp
	return qp, nil
}

func (r *connRequest) Accept(ctx context.Context, param driver.ConnParam, private []byte) error {
	r.mu.Lock()
	if r.done || r.qp == nil {
		r.mu.Unlock()
		return fmt.Errorf("verbs: accept without a QP (call CreateQP first): %w", driver.ErrInvalidState)
	}
	r.done = true
	r.mu.Unlock()
	if len(private) > 196 {
		return fmt.Errorf("verbs: accept with %d bytes of private data: %w", len(private), driver.NewVerbsError("rdma_accept", syscall.EINVAL))
	}
	if rc, err := C.goiser_cm_accept(r.cm.id, C.uint8_t(param.ResponderResources), C.uint8_t(param.InitiatorDepth),
		C.uint8_t(param.RNRRetryCount), bytesPtr(private), C.int(len(private))); rc != 0 {
		return rcErr("rdma_accept", rc, err)
	}
	ev, err := r.cm.wait(ctx)
	if err != nil {
		return fmt.Errorf("verbs: accept from %s: %w", r.remote, err)
	}
	if ev.typ != C.RDMA_CM_EVENT_ESTABLISHED {
		return fmt.Errorf("verbs: accept from %s: %w", r.remote, eventErr("rdma_accept", ev))
	}
	return nil
}

func (r *connRequest) Reject(private []byte) error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return fmt.Errorf("verbs: reject: %w", driver.ErrInvalidState)
	}
	r.done = true
	hasQP := r.qp != nil
	r.mu.Unlock()
	var err error
	if rc, e := C.rdma_reject(r.cm.id, bytesPtr(private), C.uint8_t(len(private))); rc != 0 {
		err = rcErr("rdma_reject", rc, e)
	}
	if !hasQP {
		if e := r.cm.destroy(); err == nil {
			err = e
		}
	}
	return err
}

// ---- dialer (active side) ----

type dialer struct {
	cm  *cmID   // immutable
	dev *device // immutable, owned by librdmacm

	mu sync.Mutex
	qp *queuePair // guarded by mu
}

func (provider) Dial(ctx context.Context, addr string, cfg driver.DialConfig) (driver.Dialer, error) {
	dst, err := cAddr(addr, false)
	if err != nil {
		return nil, err
	}
	var src C.goiser_addr
	if cfg.Source != "" {
		if src, err = cAddr(cfg.Source, true); err != nil {
			return nil, err
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ch, err := newCMChannel()
	if err != nil {
		return nil, err
	}
	m, err := ch.newID()
	if err != nil {
		ch.f.Close()
		return nil, err
	}
	fail := func(err error) (driver.Dialer, error) {
		m.destroy()
		return nil, fmt.Errorf("verbs: dial %s: %w", addr, err)
	}
	if rc, err := C.goiser_cm_resolve_addr(m.id, &src, &dst, C.int(timeout/time.Millisecond)); rc != 0 {
		return fail(rcErr("rdma_resolve_addr", rc, err))
	}
	if err := m.expect(ctx, "rdma_resolve_addr", C.RDMA_CM_EVENT_ADDR_RESOLVED); err != nil {
		return fail(err)
	}
	if rc, err := C.rdma_resolve_route(m.id, C.int(timeout/time.Millisecond)); rc != 0 {
		return fail(rcErr("rdma_resolve_route", rc, err))
	}
	if err := m.expect(ctx, "rdma_resolve_route", C.RDMA_CM_EVENT_ROUTE_RESOLVED); err != nil {
		return fail(err)
	}
	verbs := C.goiser_cm_verbs(m.id)
	if verbs == nil {
		return fail(driver.ErrNoDevice)
	}
	return &dialer{cm: m, dev: newDevice(verbs, false)}, nil
}

// expect waits for an event of type want.
func (m *cmID) expect(ctx context.Context, op string, want C.int) error {
	ev, err := m.wait(ctx)
	if err != nil {
		return err
	}
	if ev.typ != want {
		return eventErr(op, ev)
	}
	return nil
}

func (d *dialer) Context() driver.Context { return d.dev }

func (d *dialer) CreateQP(pd driver.PD, cfg driver.QPConfig, send, recv driver.CQ) (driver.QP, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.qp != nil {
		return nil, fmt.Errorf("verbs: dialer already has a QP: %w", driver.ErrInvalidState)
	}
	p, ok := pd.(*protDomain)
	if !ok {
		return nil, fmt.Errorf("verbs: create QP: PD of another provider: %w", driver.NewVerbsError("rdma_create_qp", syscall.EINVAL))
	}
	qp, err := createQP(p, d.cm.id, d.cm, cfg, send, recv)
	if err != nil {
		return nil, err
	}
	d.qp = qp
	return qp, nil
}

func (d *dialer) Connect(ctx context.Context, param driver.ConnParam, private []byte) ([]byte, error) {
	d.mu.Lock()
	hasQP := d.qp != nil
	d.mu.Unlock()
	if !hasQP {
		return nil, fmt.Errorf("verbs: connect without a QP (call CreateQP first): %w", driver.ErrInvalidState)
	}
	if len(private) > 56 {
		return nil, fmt.Errorf("verbs: connect with %d bytes of private data: %w", len(private), driver.NewVerbsError("rdma_connect", syscall.EINVAL))
	}
	if rc, err := C.goiser_cm_connect(d.cm.id, C.uint8_t(param.ResponderResources), C.uint8_t(param.InitiatorDepth),
		C.uint8_t(param.RetryCount), C.uint8_t(param.RNRRetryCount), bytesPtr(private), C.int(len(private))); rc != 0 {
		return nil, rcErr("rdma_connect", rc, err)
	}
	ev, err := d.cm.wait(ctx)
	if err != nil {
		return nil, err
	}
	if ev.typ != C.RDMA_CM_EVENT_ESTABLISHED {
		return nil, eventErr("rdma_connect", ev)
	}
	return ev.pdata, nil
}

func (d *dialer) Close() error {
	d.mu.Lock()
	hasQP := d.qp != nil
	d.mu.Unlock()
	if hasQP {
		return nil
	}
	return d.cm.destroy()
}
