package tcp

import (
	"context"
	"fmt"
	"net"

	"github.com/goiser/goiser/iscsi"
)

// Transport accepts iSCSI connections on a net.Listener; it implements
// iscsi.Transport.
type Transport struct {
	l    net.Listener // immutable
	cfg  Config       // immutable
	pool *xferPool    // shared by all connections; safe for concurrent use
}

// Listen listens on a TCP address ("127.0.0.1:3260", ":3260").
func Listen(addr string, cfg Config) (*Transport, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("iscsi/tcp: listen on %s: %w", addr, err)
	}
	return New(l, cfg), nil
}

// New serves iSCSI on an existing listener.
func New(l net.Listener, cfg Config) *Transport {
	cfg = cfg.withDefaults()
	return &Transport{l: l, cfg: cfg, pool: newXferPool(cfg.MaxTaskData)}
}

// Accept waits for the next connection. ctx is not consulted while
// waiting: Close unblocks Accept.
func (t *Transport) Accept(ctx context.Context) (iscsi.TransportConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nc, err := t.l.Accept()
	if err != nil {
		return nil, fmt.Errorf("iscsi/tcp: accept on %s: %w", t.l.Addr(), err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAlive(true)
	}
	return newConn(nc, t.cfg, t.pool), nil
}

// Addr returns the listening address.
func (t *Transport) Addr() net.Addr { return t.l.Addr() }

// Close stops listening.
func (t *Transport) Close() error { return t.l.Close() }

// ListenAndServe listens on addr and serves srv on it until srv.Shutdown or
// Close; it returns iscsi.ErrServerClosed then.
func ListenAndServe(srv *iscsi.Server, addr string, cfg Config) error {
	t, err := Listen(addr, cfg)
	if err != nil {
		return err
	}
	return srv.Serve(t)
}
