package rdma

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/goiser/goiser/rdma/driver"
)

// MaxPrivateData is the most private data a connect, accept or reject
// carries in the RDMA_PS_TCP port space.
const MaxPrivateData = 56

// Listener receives connection requests, like rdma_listen in the
// RDMA_PS_TCP port space.
type Listener struct {
	l driver.Listener // immutable; never nil
	// devs caches one borrowed Device per device name, so requests on the
	// same device share it (and a PD allocated for one can serve the
	// next). Guarded by mu.
	mu     sync.Mutex
	devs   map[string]*Device
	closed bool // guarded by mu
}

// Listen starts listening for connect requests on addr ("ip:port"; port 0
// picks one, see Addr) through provider p.
func Listen(p driver.Provider, addr string, cfg ListenConfig) (*Listener, error) {
	if p == nil {
		return nil, fmt.Errorf("rdma: listen on %s: nil provider: %w", addr, ErrNoDevice)
	}
	l, err := p.Listen(addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("rdma: listen on %s: %w", addr, err)
	}
	return &Listener{l: l, devs: map[string]*Device{}}, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// Accept waits for the next connect request. Inspect it (Device,
// PrivateData, Param), then either CreateQP, post receives and Accept, or
// Reject. It returns ErrClosed after Close.
func (l *Listener) Accept(ctx context.Context) (*ConnRequest, error) {
	r, err := l.l.GetRequest(ctx)
	if err != nil {
		return nil, fmt.Errorf("rdma: accept on %s: %w", l.l.Addr(), err)
	}
	ctxDev := r.Context()
	name := ctxDev.Info().Name
	l.mu.Lock()
	dev := l.devs[name]
	if dev == nil {
		dev = borrowDevice(ctxDev)
		l.devs[name] = dev
	}
	l.mu.Unlock()
	return &ConnRequest{r: r, dev: dev}, nil
}

// Close stops listening; requests not yet accepted are rejected. Close is
// idempotent.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if err := l.l.Close(); err != nil {
		return fmt.Errorf("rdma: close listener %s: %w", l.l.Addr(), err)
	}
	l.closed = true
	return nil
}

// ConnRequest is a pending connect request. Exactly one of Accept or
// Reject must be called (a second answer is an error). A ConnRequest
// belongs to one goroutine.
type ConnRequest struct {
	r        driver.ConnRequest // immutable; never nil
	dev      *Device            // immutable; never nil
	qp       *QueuePair         // set by CreateQP
	answered bool               // Accept or Reject was called
}

// Device is the device the request arrived on. It belongs to the provider
// (Close does not close the device): allocate the connection's protection
// domain and completion queues on it, or reuse ones made on an earlier
// request's device of the same name.
func (r *ConnRequest) Device() *Device { return r.dev }

// PrivateData is the peer's private data (at most MaxPrivateData bytes,
// possibly padded with zeros by the CM).
func (r *ConnRequest) PrivateData() []byte { return r.r.PrivateData() }

// Param is the peer's connection parameters seen from this side (as the
// IB CM and librdmacm report them): InitiatorDepth is how many RDMA READs
// this side may issue at once (the peer's responder resources),
// ResponderResources how many of the peer's READs it is asked to answer.
func (r *ConnRequest) Param() ConnParam { return r.r.Param() }

// LocalAddr is the address the request arrived at.
func (r *ConnRequest) LocalAddr() net.Addr { return r.r.LocalAddr() }

// RemoteAddr is the peer's address.
func (r *ConnRequest) RemoteAddr() net.Addr { return r.r.RemoteAddr() }

// CreateQP creates the connection's queue pair on pd in state Init, so
// receives can be posted before Accept. Call it at most once.
func (r *ConnRequest) CreateQP(pd *ProtectionDomain, cfg QueuePairConfig) (*QueuePair, error) {
	if r.qp != nil {
		return nil, fmt.Errorf("rdma: create QP for request from %s: already created", r.r.RemoteAddr())
	}
	if pd.dev.info.Name != r.dev.info.Name {
		return nil, fmt.Errorf("rdma: create QP for request on %s: protection domain of device %s: %w", r.dev.info.Name, pd.dev.info.Name, ErrNoDevice)
	}
	qp, err := createCMQP(pd, cfg, r.r.CreateQP)
	if err != nil {
		return nil, fmt.Errorf("rdma: create QP for request from %s: %w", r.r.RemoteAddr(), err)
	}
	r.qp = qp
	return qp, nil
}

func createCMQP(pd *ProtectionDomain, cfg QueuePairConfig, create func(driver.PD, driver.QPConfig, driver.CQ, driver.CQ) (driver.QP, error)) (*QueuePair, error) {
	dcfg, err := cfg.driverConfig()
	if err != nil {
		return nil, err
	}
	qp, err := pd.newQP(cfg, dcfg, QPInit, func(send, recv driver.CQ) (driver.QP, error) {
		return create(pd.pd, dcfg, send, recv)
	})
	if err != nil {
		return nil, err
	}
	qp.cm = true
	return qp, nil
}

// Accept accepts the request with private data (at most MaxPrivateData
// bytes) and waits, bounded by ctx, until the connection is established;
// the queue pair is then in RTS. On error the queue pair is unusable: close
// it.
//
// As in the IB CM, param.RNRRetryCount is how often the peer retries its
// sends when this side has no receive posted (the peer's Connect param
// sets this side's), and ResponderResources > 0 is what lets the peer RDMA
// READ from this side.
func (r *ConnRequest) Accept(ctx context.Context, param ConnParam, private []byte) error {
	if r.answered {
		return fmt.Errorf("rdma: accept request from %s: already answered", r.r.RemoteAddr())
	}
	if r.qp == nil {
		return fmt.Errorf("rdma: accept request from %s: CreateQP first", r.r.RemoteAddr())
	}
	if len(private) > MaxPrivateData {
		return fmt.Errorf("rdma: accept request from %s: %d bytes of private data, at most %d", r.r.RemoteAddr(), len(private), MaxPrivateData)
	}
	r.answered = true
	if err := r.r.Accept(ctx, param, private); err != nil {
		return fmt.Errorf("rdma: accept request from %s: %w", r.r.RemoteAddr(), err)
	}
	r.qp.state.Store(uint32(QPRTS))
	return nil
}

// Reject rejects the request with private data. A queue pair made by
// CreateQP must then be closed by the caller.
func (r *ConnRequest) Reject(private []byte) error {
	if len(private) > MaxPrivateData {
		return fmt.Errorf("rdma: reject request from %s: %d bytes of private data, at most %d", r.r.RemoteAddr(), len(private), MaxPrivateData)
	}
	if r.answered {
		return fmt.Errorf("rdma: reject request from %s: already answered", r.r.RemoteAddr())
	}
	r.answered = true
	if err := r.r.Reject(private); err != nil {
		return fmt.Errorf("rdma: reject request from %s: %w", r.r.RemoteAddr(), err)
	}
	return nil
}

// Dialer is a resolved outgoing connection: Dial, then CreateQP on the
// Dialer's Device, post receives, and Connect (once; dial again to retry).
// A Dialer belongs to one goroutine.
type Dialer struct {
	d      driver.Dialer // immutable; never nil
	dev    *Device       // immutable; never nil
	addr   string        // immutable
	qp     *QueuePair    // set by CreateQP
	tried  bool          // Connect was called
	closed bool          // set by Close
}

// Dial resolves addr ("ip:port") and its route through provider p, bounded
// by ctx, and picks the device that reaches it.
func Dial(ctx context.Context, p driver.Provider, addr string, cfg DialConfig) (*Dialer, error) {
	if p == nil {
		return nil, fmt.Errorf("rdma: dial %s: nil provider: %w", addr, ErrNoDevice)
	}
	d, err := p.Dial(ctx, addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("rdma: dial %s: %w", addr, err)
	}
	return &Dialer{d: d, dev: borrowDevice(d.Context()), addr: addr}, nil
}

// Device is the device the route goes through; it belongs to the provider.
// Allocate the connection's protection domain and completion queues on it
// (or reuse ones of a device with the same name).
func (d *Dialer) Device() *Device { return d.dev }

// CreateQP creates the connection's queue pair on pd in state Init, so
// receives can be posted before Connect. Call it at most once.
func (d *Dialer) CreateQP(pd *ProtectionDomain, cfg QueuePairConfig) (*QueuePair, error) {
	if d.qp != nil {
		return nil, fmt.Errorf("rdma: create QP to %s: already created", d.addr)
	}
	if pd.dev.info.Name != d.dev.info.Name {
		return nil, fmt.Errorf("rdma: create QP to %s via %s: protection domain of device %s: %w", d.addr, d.dev.info.Name, pd.dev.info.Name, ErrNoDevice)
	}
	qp, err := createCMQP(pd, cfg, d.d.CreateQP)
	if err != nil {
		return nil, fmt.Errorf("rdma: create QP to %s: %w", d.addr, err)
	}
	d.qp = qp
	return qp, nil
}

// Connect sends the connect request with private data (at most
// MaxPrivateData bytes) and waits, bounded by ctx, for the peer to accept;
// it returns the peer's private data and leaves the queue pair in RTS. A
// rejection is a *RejectError. On error the queue pair is unusable: close
// it. param.RNRRetryCount governs the peer's sends, as in Accept.
func (d *Dialer) Connect(ctx context.Context, param ConnParam, private []byte) ([]byte, error) {
	if d.qp == nil {
		return nil, fmt.Errorf("rdma: connect to %s: CreateQP first", d.addr)
	}
	if d.tried {
		return nil, fmt.Errorf("rdma: connect to %s: already tried; dial again", d.addr)
	}
	if len(private) > MaxPrivateData {
		return nil, fmt.Errorf("rdma: connect to %s: %d bytes of private data, at most %d", d.addr, len(private), MaxPrivateData)
	}
	d.tried = true
	peer, err := d.d.Connect(ctx, param, private)
	if err != nil {
		return nil, fmt.Errorf("rdma: connect to %s: %w", d.addr, err)
	}
	d.qp.state.Store(uint32(QPRTS))
	return peer, nil
}

// Close releases the resolved route when no queue pair was created; once
// CreateQP succeeded, closing the queue pair releases it and Close is a
// no-op. Close is idempotent.
func (d *Dialer) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.d.Close(); err != nil {
		return fmt.Errorf("rdma: close dialer to %s: %w", d.addr, err)
	}
	return nil
}
