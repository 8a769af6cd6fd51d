package iser_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iser"
	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
)

// stallProvider wraps a provider so that the first connect request's
// Accept never completes: an initiator whose CM handshake never ends (no
// RTU), as a lost packet or a hostile peer leaves it.
type stallProvider struct {
	driver.Provider
	once    sync.Once
	entered chan struct{} // closed when the stalled Accept starts waiting
}

func (p *stallProvider) Listen(addr string, cfg driver.ListenConfig) (driver.Listener, error) {
	l, err := p.Provider.Listen(addr, cfg)
	if err != nil {
		return nil, err
	}
	return &stallListener{Listener: l, p: p}, nil
}

type stallListener struct {
	driver.Listener
	p *stallProvider
}

func (l *stallListener) GetRequest(ctx context.Context) (driver.ConnRequest, error) {
	r, err := l.Listener.GetRequest(ctx)
	if err != nil {
		return nil, err
	}
	var stall bool
	l.p.once.Do(func() { stall = true })
	if stall {
		return &stallRequest{ConnRequest: r, entered: l.p.entered}, nil
	}
	return r, nil
}

type stallRequest struct {
	driver.ConnRequest
	entered chan struct{}
}

func (r *stallRequest) Accept(ctx context.Context, _ driver.ConnParam, _ []byte) error {
	close(r.entered)
	<-ctx.Done()
	_ = r.ConnRequest.Reject(nil)
	return ctx.Err()
}

// TestStalledHandshakeBlocksNoOne: while one connect request never
// becomes established, other initiators connect, log in and do I/O; the
// stalled one is abandoned at shutdown without leaking anything (the
// cleanup checks pools, connections and goroutines).
func TestStalledHandshakeBlocksNoOne(t *testing.T) {
	sp := &stallProvider{entered: make(chan struct{})}
	tt := startTarget(t, iser.TargetConfig{Provider: sp, EstablishTimeout: time.Minute})

	ctx, cancel := context.WithCancel(context.Background())
	stalled := make(chan error, 1)
	go func() { stalled <- stallDial(ctx, tt) }()
	select {
	case <-sp.entered:
	case err := <-stalled:
		t.Fatalf("the first connect ended before its accept stalled: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the first connect request never reached Accept")
	}

	c := dialRaw(t, tt.p, tt.addr, false) // fails the test after 10 s if the stall blocks it
	c.login(testIQN)
	data := c.data()[:4096]
	fill(data, 7)
	if r := c.command(write10(8, 8), false, 4096, 0, 0, 0); r.status != 0 {
		t.Fatalf("WRITE(10) while another handshake stalls: status %#x", r.status)
	}
	c.logout()

	cancel()
	select {
	case err := <-stalled:
		if err == nil {
			t.Fatal("the stalled connect succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled dialer did not give up")
	}
}

// stallDial connects to tt and waits, bounded by ctx, for an answer that
// the stalled Accept never gives.
func stallDial(ctx context.Context, tt *testTarget) error {
	d, err := rdma.Dial(ctx, tt.p, tt.addr, rdma.DialConfig{})
	if err != nil {
		return err
	}
	defer d.Close()
	pd, err := d.Device().AllocPD()
	if err != nil {
		return err
	}
	defer pd.Close()
	cq, err := d.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 16})
	if err != nil {
		return err
	}
	defer cq.Close()
	qp, err := d.CreateQP(pd, rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq, MaxSendWR: 4, MaxRecvWR: 4})
	if err != nil {
		return err
	}
	defer qp.Close()
	var priv [iser.CMHeaderLen]byte
	hdr := iser.ConnectPrivateData(false)
	b, _ := hdr.AppendBinary(priv[:0])
	_, err = d.Connect(ctx, rdma.ConnParam{ResponderResources: 4, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 7}, b)
	if err == nil {
		return errors.New("connected")
	}
	return err
}
