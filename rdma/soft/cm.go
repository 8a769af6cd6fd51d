package soft

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/goiser/goiser/rdma/driver"
)

// Addr is a CM address of the soft fabric ("host:port"); it is a plain
// string, meaningful only inside one Provider.
type Addr string

// Network is "soft".
func (a Addr) Network() string { return "soft" }

// String returns the address itself.
func (a Addr) String() string { return string(a) }

func wildcard(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

// deviceForHost returns the device owning host, or nil.
func (p *Provider) deviceForHost(host string) *device {
	for _, d := range p.devs {
		if d.host != "" && d.host == host {
			return d
		}
	}
	return nil
}

// listener is a CM listener.
type listener struct {
	p    *Provider
	key  string  // "host:port"; immutable
	port string  // immutable
	dev  *device // the device requests arrive on; nil for a wildcard host; immutable
	reqs chan *connReq
	done chan struct{} // closed by Close
	// closed is guarded by p.mu.
	closed bool
}

// Listen listens on addr ("host:port"); port 0 picks a free one. The host
// must be one a device owns (DeviceConfig.Host) or unspecified ("",
// "0.0.0.0", "::"), which listens on every device.
func (p *Provider) Listen(addr string, cfg driver.ListenConfig) (driver.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("soft: listen on %q: %w", addr, driver.NewVerbsError("rdma_bind_addr", syscall.EINVAL))
	}
	backlog := cfg.Backlog
	if backlog <= 0 {
		backlog = 128
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var dev *device
	if !wildcard(host) {
		if dev = p.deviceForHost(host); dev == nil {
			return nil, fmt.Errorf("soft: listen on %q: no device owns %s: %w", addr, host, driver.NewVerbsError("rdma_bind_addr", syscall.EADDRNOTAVAIL))
		}
	}
	if port == "0" {
		port = strconv.Itoa(p.nextPort)
		p.nextPort++
	}
	key := net.JoinHostPort(host, port)
	if p.listeners[key] != nil {
		return nil, fmt.Errorf("soft: listen on %q: %w", key, driver.NewVerbsError("rdma_bind_addr", syscall.EADDRINUSE))
	}
	l := &listener{p: p, key: key, port: port, dev: dev, reqs: make(chan *connReq, backlog), done: make(chan struct{})}
	p.listeners[key] = l
	return l, nil
}

// Addr is the bound "host:port" (the port filled in when 0 was asked).
func (l *listener) Addr() net.Addr { return Addr(l.key) }

// GetRequest takes the next queued connect request.
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

// Close unbinds the address and rejects the requests still queued.
func (l *listener) Close() error {
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	delete(p.listeners, l.key)
	close(l.done)
	for {
		select {
		case r := <-l.reqs:
			r.finishLocked(reqRejected, cmResult{err: &driver.RejectError{Status: RejectConsumer}})
		default:
			return nil
		}
	}
}

// reqState is where a connect request is.
type reqState uint8

const (
	reqPending   reqState = iota // waiting for Accept or Reject
	reqAccepted                  // connected
	reqRejected                  // rejected (by the listener or its Close)
	reqAbandoned                 // the dialer gave up (ctx done)
)

type cmResult struct {
	err     error
	private []byte
}

// connReq is a connect request in flight.
type connReq struct {
	p       *Provider
	dev     *device          // the device it arrives on; immutable
	private []byte           // a copy; immutable
	param   driver.ConnParam // the dialer's; immutable
	local   Addr             // immutable
	remote  Addr             // immutable
	dialer  *dialer          // immutable
	result  chan cmResult    // capacity 1
	// Guarded by p.mu.
	state reqState
	qp    *qp
}

func (r *connReq) finishLocked(s reqState, res cmResult) {
	if r.state != reqPending {
		return
	}
	r.state = s
	r.result <- res
}

// Context is the CM's own context of the device the request arrived on.
func (r *connReq) Context() driver.Context { return r.dev.cm }

// PrivateData returns a copy of the dialer's private data (not padded).
func (r *connReq) PrivateData() []byte { return append([]byte(nil), r.private...) }

// Param is the dialer's connection parameters seen from the accepting
// side, as the IB CM reports them: the dialer's responder resources are
// our initiator depth and its initiator depth our responder resources.
func (r *connReq) Param() driver.ConnParam {
	p := r.param
	p.InitiatorDepth, p.ResponderResources = r.param.ResponderResources, r.param.InitiatorDepth
	return p
}

// LocalAddr is the address the dialer dialed.
func (r *connReq) LocalAddr() net.Addr { return r.local }

// RemoteAddr is the dialer's source address.
func (r *connReq) RemoteAddr() net.Addr { return r.remote }

// CreateQP creates the listener side's queue pair in Init.
func (r *connReq) CreateQP(pdv driver.PD, cfg driver.QPConfig, send, recv driver.CQ) (driver.QP, error) {
	q, err := createCMQP(r.dev, pdv, cfg, send, recv)
	if err != nil {
		return nil, err
	}
	r.p.mu.Lock()
	r.qp = q
	r.p.mu.Unlock()
	return q, nil
}

// createCMQP creates a CM queue pair in Init on device dev.
func createCMQP(dev *device, pdv driver.PD, cfg driver.QPConfig, send, recv driver.CQ) (*qp, error) {
	d, ok := pdv.(*pd)
	if !ok || d.dev != dev {
		return nil, fmt.Errorf("soft: create CM QP on %s: protection domain of another device: %w", dev.name, driver.NewVerbsError("rdma_create_qp", syscall.EINVAL))
	}
	q, err := d.createQP(cfg, send, recv, true)
	if err != nil {
		return nil, err
	}
	p := dev.p
	p.mu.Lock()
	q.state = driver.QPInit
	q.access = driver.AccessLocalWrite
	p.mu.Unlock()
	return q, nil
}

func checkPrivate(op string, private []byte) error {
	if len(private) > MaxPrivateData {
		return fmt.Errorf("soft: %s: %d bytes of private data, at most %d: %w", op, len(private), MaxPrivateData, driver.NewVerbsError(op, syscall.EINVAL))
	}
	return nil
}

// cmAccess is what the CM grants a peer: RDMA WRITE always, RDMA READ
// when the side answers reads (responder resources > 0), as the IB CM does.
func cmAccess(responderResources uint8) driver.Access {
	a := driver.AccessLocalWrite | driver.AccessRemoteWrite
	if responderResources > 0 {
		a |= driver.AccessRemoteRead
	}
	return a
}

// Accept connects the two queue pairs. As in the IB CM, each side's RNR
// retry count is the one the other side asked for (the dialer's
// ConnParam.RNRRetryCount governs the listener's sends, and the accept
// param's governs the dialer's).
func (r *connReq) Accept(ctx context.Context, param driver.ConnParam, private []byte) error {
	if err := checkPrivate("rdma_accept", private); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.state != reqPending {
		return fmt.Errorf("soft: accept: request no longer pending: %w", driver.NewVerbsError("rdma_accept", syscall.ECONNABORTED))
	}
	srv, cli := r.qp, r.dialer.qp
	if srv == nil || srv.closed {
		return fmt.Errorf("soft: accept: no queue pair: %w", driver.NewVerbsError("rdma_accept", syscall.EINVAL))
	}
	if cli == nil || cli.closed || cli.state != driver.QPInit {
		r.finishLocked(reqAbandoned, cmResult{err: driver.NewVerbsError("rdma_connect", syscall.ECONNABORTED)})
		return fmt.Errorf("soft: accept: the dialer's queue pair is gone: %w", driver.NewVerbsError("rdma_accept", syscall.ECONNABORTED))
	}
	if srv.state != driver.QPInit {
		return fmt.Errorf("soft: accept: queue pair in %v: %w", srv.state, driver.ErrInvalidState)
	}
	srv.destQPN, srv.peer, cli.destQPN, cli.peer = cli.num, cli, srv.num, srv
	srv.access, cli.access = cmAccess(param.ResponderResources), cmAccess(r.param.ResponderResources)
	srv.rnrRetry, cli.rnrRetry = min(r.param.RNRRetryCount, 7), min(param.RNRRetryCount, 7)
	srv.state, cli.state = driver.QPRTS, driver.QPRTS
	r.finishLocked(reqAccepted, cmResult{private: append([]byte(nil), private...)})
	p.log.Debug("soft: connection established", "listener_qp", srv.num, "dialer_qp", cli.num)
	return nil
}

// Reject answers the dialer with a *driver.RejectError (status RejectConsumer).
func (r *connReq) Reject(private []byte) error {
	if err := checkPrivate("rdma_reject", private); err != nil {
		return err
	}
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	r.finishLocked(reqRejected, cmResult{err: &driver.RejectError{Status: RejectConsumer, PrivateData: append([]byte(nil), private...)}})
	return nil
}

// dialer is an outgoing connection.
type dialer struct {
	p     *Provider
	dev   *device // the route's device; immutable
	addr  string  // immutable
	host  string  // immutable
	port  string  // immutable
	local Addr    // immutable
	// Guarded by p.mu.
	qp     *qp
	closed bool
}

// Dial routes addr through the device owning cfg.Source's host, else the
// device owning addr's host, else the first device (every device of the
// fabric reaches every other).
func (p *Provider) Dial(ctx context.Context, addr string, cfg driver.DialConfig) (driver.Dialer, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("soft: dial %q: %w", addr, driver.NewVerbsError("rdma_resolve_addr", syscall.EINVAL))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	dev := p.devs[0]
	srcHost := ""
	if cfg.Source != "" {
		srcHost = cfg.Source
		if h, _, err := net.SplitHostPort(cfg.Source); err == nil {
			srcHost = h
		}
		if dev = p.deviceForHost(srcHost); dev == nil {
			return nil, fmt.Errorf("soft: dial %q from %q: %w", addr, cfg.Source, driver.ErrNoDevice)
		}
	} else if d := p.deviceForHost(host); d != nil {
		dev = d
	}
	if srcHost == "" {
		srcHost = dev.host
	}
	local := Addr(net.JoinHostPort(srcHost, strconv.Itoa(p.nextPort)))
	p.nextPort++
	return &dialer{p: p, dev: dev, addr: addr, host: host, port: port, local: local}, nil
}

// Context is the CM's own context of the route's device.
func (d *dialer) Context() driver.Context { return d.dev.cm }

// CreateQP creates the dialer side's queue pair in Init.
func (d *dialer) CreateQP(pdv driver.PD, cfg driver.QPConfig, send, recv driver.CQ) (driver.QP, error) {
	q, err := createCMQP(d.dev, pdv, cfg, send, recv)
	if err != nil {
		return nil, err
	}
	d.p.mu.Lock()
	d.qp = q
	d.p.mu.Unlock()
	return q, nil
}

// Connect queues a request at the listener of the address and waits for
// Accept or Reject; with no listener it is rejected (RejectNoListener).
// When ctx ends first the request is abandoned and a later Accept fails.
func (d *dialer) Connect(ctx context.Context, param driver.ConnParam, private []byte) ([]byte, error) {
	if err := checkPrivate("rdma_connect", private); err != nil {
		return nil, err
	}
	p := d.p
	p.mu.Lock()
	if d.qp == nil || d.qp.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("soft: connect to %s: no queue pair: %w", d.addr, driver.NewVerbsError("rdma_connect", syscall.EINVAL))
	}
	l := p.listeners[net.JoinHostPort(d.host, d.port)]
	if l == nil {
		for _, h := range []string{"", "0.0.0.0", "::"} {
			if c := p.listeners[net.JoinHostPort(h, d.port)]; c != nil {
				l = c
				break
			}
		}
	}
	if l == nil {
		p.mu.Unlock()
		return nil, &driver.RejectError{Status: RejectNoListener}
	}
	dev := l.dev
	if dev == nil {
		if dev = p.deviceForHost(d.host); dev == nil {
			dev = p.devs[0]
		}
	}
	r := &connReq{p: p, dev: dev, private: append([]byte(nil), private...), param: param,
		local: Addr(d.addr), remote: d.local, dialer: d, result: make(chan cmResult, 1)}
	select {
	case l.reqs <- r:
	default:
		p.mu.Unlock()
		return nil, &driver.RejectError{Status: RejectConsumer}
	}
	p.mu.Unlock()

	select {
	case res := <-r.result:
		return res.private, res.err
	case <-ctx.Done():
	}
	p.mu.Lock()
	r.finishLocked(reqAbandoned, cmResult{err: ctx.Err()})
	p.mu.Unlock()
	res := <-r.result   // ours, or the Accept/Reject that won the race
	if res.err == nil { // accepted after all
		return res.private, nil
	}
	return nil, ctx.Err()
}

// Close releases the dialer; a queue pair it created lives on.
func (d *dialer) Close() error {
	d.p.mu.Lock()
	d.closed = true
	d.p.mu.Unlock()
	return nil
}
