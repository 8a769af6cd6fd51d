package rdma_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/soft"
)

func mustT(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestMisuse: caller mistakes get clear errors, not crashes.
func TestMisuse(t *testing.T) {
	p := soft.New(soft.Config{Devices: []soft.DeviceConfig{{Name: "soft0", Host: "127.0.0.1"}, {Name: "soft1"}}})
	dev0, err := rdma.Open(p, "soft0")
	mustT(t, err)
	defer dev0.Close()
	dev1, err := rdma.Open(p, "soft1")
	mustT(t, err)
	defer dev1.Close()
	pd, err := dev0.AllocPD()
	mustT(t, err)
	defer pd.Close()
	cq1, err := dev1.NewCompletionQueue(rdma.CompletionQueueConfig{})
	mustT(t, err)
	defer cq1.Close()

	if _, err := pd.NewQueuePair(rdma.QueuePairConfig{}); err == nil {
		t.Error("queue pair without CQs created")
	}
	if _, err := pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: cq1, RecvCQ: cq1}); err == nil {
		t.Error("queue pair with another device's CQ created")
	}
	if _, err := dev0.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: -1}); err == nil {
		t.Error("CQ with negative entries created")
	}
	if _, err := pd.RegisterBuffer(nil, rdma.AccessLocalWrite); !errors.Is(err, rdma.ErrNotOffHeap) {
		t.Errorf("register nil buffer: %v", err)
	}
	buf, err := rdma.AllocBuffer(4096, rdma.BufferOptions{})
	mustT(t, err)
	mustT(t, buf.Close())
	if _, err := pd.RegisterBuffer(buf, rdma.AccessLocalWrite); !errors.Is(err, rdma.ErrClosed) {
		t.Errorf("register closed buffer: %v", err)
	}
	buf, err = rdma.AllocBuffer(4096, rdma.BufferOptions{})
	mustT(t, err)
	defer buf.Close()
	mr, err := pd.RegisterBuffer(buf, rdma.AccessLocalWrite)
	mustT(t, err)
	defer mr.Close()
	if mr.Buffer() != buf || mr.Len() != 4096 || mr.Access() != rdma.AccessLocalWrite || mr.ProtectionDomain() != pd {
		t.Error("memory region accessors")
	}
	if sge := mr.SGE(100, 28); sge.Addr != mr.Addr()+100 || sge.Length != 28 || sge.LKey != mr.LKey() {
		t.Errorf("SGE %+v", sge)
	}
	if r := mr.Remote(8, 8); r.Addr != mr.Addr()+8 || r.RKey != mr.RKey() || r.Len != 8 {
		t.Errorf("Remote %+v", r)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("SGE beyond the region did not panic")
			}
		}()
		mr.SGE(4000, 100)
	}()
	if _, err := rdma.Open(nil, "x"); !errors.Is(err, rdma.ErrNoDevice) {
		t.Errorf("open with nil provider: %v", err)
	}
	if _, err := rdma.Listen(p, "not an address", rdma.ListenConfig{}); err == nil {
		t.Error("listen on garbage succeeded")
	}
	if _, err := (&rdma.CompletionQueue{}).WaitPoll(context.Background(), nil); err == nil {
		t.Error("WaitPoll into an empty slice succeeded")
	}
}

// TestCMDeviceShared: requests on one device share one Device, which stays
// usable even after its (no-op) Close; private data over 56 bytes and
// Accept before CreateQP are refused.
func TestCMDeviceShared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := soft.New(soft.Config{})
	l, err := rdma.Listen(p, "127.0.0.1:0", rdma.ListenConfig{})
	mustT(t, err)
	defer l.Close()
	reqs := make(chan *rdma.ConnRequest, 2)
	go func() {
		for range 2 {
			r, err := l.Accept(ctx)
			if err != nil {
				close(reqs)
				return
			}
			reqs <- r
		}
	}()
	dial := func() *rdma.Dialer {
		d, err := rdma.Dial(ctx, p, l.Addr().String(), rdma.DialConfig{})
		mustT(t, err)
		return d
	}
	type conn struct {
		pd *rdma.ProtectionDomain
		cq *rdma.CompletionQueue
		qp *rdma.QueuePair
	}
	connect := func(d *rdma.Dialer) (chan error, conn) {
		var c conn
		c.pd, err = d.Device().AllocPD()
		mustT(t, err)
		c.cq, err = d.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 8})
		mustT(t, err)
		c.qp, err = d.CreateQP(c.pd, rdma.QueuePairConfig{SendCQ: c.cq, RecvCQ: c.cq})
		mustT(t, err)
		if _, err := d.CreateQP(c.pd, rdma.QueuePairConfig{SendCQ: c.cq, RecvCQ: c.cq}); err == nil {
			t.Error("second CreateQP on a dialer succeeded")
		}
		if _, err := d.Connect(ctx, rdma.ConnParam{}, make([]byte, rdma.MaxPrivateData+1)); err == nil {
			t.Error("57 bytes of private data accepted")
		}
		errc := make(chan error, 1)
		go func() { _, err := d.Connect(ctx, rdma.ConnParam{RNRRetryCount: 7}, nil); errc <- err }()
		return errc, c
	}
	e1, c1 := connect(dial())
	r1 := <-reqs
	if err := r1.Accept(ctx, rdma.ConnParam{}, nil); err == nil {
		t.Error("Accept before CreateQP succeeded")
	}
	spd, err := r1.Device().AllocPD()
	mustT(t, err)
	scq, err := r1.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 8})
	mustT(t, err)
	sqp1, err := r1.CreateQP(spd, rdma.QueuePairConfig{SendCQ: scq, RecvCQ: scq})
	mustT(t, err)
	mustT(t, r1.Accept(ctx, rdma.ConnParam{RNRRetryCount: 7}, nil))
	mustT(t, <-e1)
	if err := r1.Reject(nil); err == nil {
		t.Error("Reject after Accept succeeded")
	}
	if err := r1.Accept(ctx, rdma.ConnParam{}, nil); err == nil {
		t.Error("second Accept succeeded")
	}
	if err := r1.Device().Close(); !errors.Is(err, rdma.ErrBusy) {
		t.Errorf("close of a CM device with children: %v", err)
	}

	e2, c2 := connect(dial())
	r2 := <-reqs
	if r2.Device() != r1.Device() {
		t.Error("two requests on one device got different Devices")
	}
	// The PD of the first request serves the second.
	sqp2, err := r2.CreateQP(spd, rdma.QueuePairConfig{SendCQ: scq, RecvCQ: scq})
	mustT(t, err)
	mustT(t, r2.Accept(ctx, rdma.ConnParam{RNRRetryCount: 7}, nil))
	mustT(t, <-e2)
	for _, c := range []interface{ Close() error }{sqp1, sqp2, scq, spd, c1.qp, c1.cq, c1.pd, c2.qp, c2.cq, c2.pd} {
		mustT(t, c.Close())
	}
	mustT(t, r1.Device().Close())
	pd, err := r1.Device().AllocPD()
	if err != nil {
		t.Fatalf("CM device unusable after its no-op Close: %v", err)
	}
	mustT(t, pd.Close())
	mustT(t, l.Close())
	mustT(t, l.Close())
	if _, err := l.Accept(ctx); !errors.Is(err, rdma.ErrClosed) {
		t.Errorf("accept on a closed listener: %v", err)
	}
}
