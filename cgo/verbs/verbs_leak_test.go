//go:build linux && cgo

package verbs

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma/driver"
)

// TestCMChannelsEnd checks that every CM event channel goroutine ends once
// its listener, dialers and connections are closed (the channels are
// reference counted), and that closing a listener wakes GetRequest.
func TestCMChannelsEnd(t *testing.T) {
	addr := requireAddr(t)
	before := runtime.NumGoroutine()
	p := Provider()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 3 {
		ln, err := p.Listen(net.JoinHostPort(addr, "0"), driver.ListenConfig{})
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		got := make(chan error, 1)
		go func() {
			req, err := ln.GetRequest(ctx)
			if err == nil {
				err = req.Reject(nil)
			}
			got <- err
		}()
		d, err := p.Dial(ctx, ln.Addr().String(), driver.DialConfig{})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		dev := d.Context()
		pd, err := dev.AllocPD()
		if err != nil {
			t.Fatal(err)
		}
		cq, err := dev.CreateCQ(driver.CQConfig{Entries: 8})
		if err != nil {
			t.Fatal(err)
		}
		qp, err := d.CreateQP(pd, driver.QPConfig{Type: driver.RC, MaxSendWR: 4, MaxRecvWR: 4, MaxSendSGE: 1, MaxRecvSGE: 1}, cq, cq)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Connect(ctx, driver.ConnParam{RetryCount: 7, RNRRetryCount: 7}, nil); err == nil {
			t.Fatal("connect to a rejecting listener succeeded")
		}
		if err := <-got; err != nil {
			t.Fatalf("reject: %v", err)
		}
		closeT(t, "QP", qp) // releases the CM id and the dialer's channel
		closeT(t, "dialer", d)
		closeT(t, "CQ", cq)
		closeT(t, "PD", pd)
		// A dialer closed without a QP releases its id and channel too.
		d2, err := p.Dial(ctx, ln.Addr().String(), driver.DialConfig{})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		closeT(t, "second dialer", d2)
		waiting := make(chan error, 1)
		go func() { _, err := ln.GetRequest(ctx); waiting <- err }()
		time.Sleep(10 * time.Millisecond)
		closeT(t, "listener", ln)
		select {
		case err := <-waiting:
			if err == nil {
				t.Fatal("GetRequest after Close returned a request")
			}
		case <-ctx.Done():
			t.Fatal("Close did not wake GetRequest")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left after closing everything (had %d):\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseWithOutstandingReceives documents what a device does with
// receives still posted when a QP is destroyed: the verbs idiom is to move
// the QP to Error, reap the flushes, then destroy it, and the test does
// exactly that, so buffers are never released while the device owns them.
func TestCloseWithOutstandingReceives(t *testing.T) {
	l := newLoop(t, driver.QPConfig{Type: driver.RC, MaxSendWR: 8, MaxRecvWR: 8, MaxSendSGE: 1, MaxRecvSGE: 1})
	recvs := make([]driver.RecvWR, 4)
	for i := range recvs {
		recvs[i] = driver.RecvWR{ID: uint64(50 + i), SGL: l.sge(64*i, 64)}
	}
	if n, err := l.b.PostRecv(recvs); n != 4 || err != nil {
		t.Fatalf("post recvs: %d %v", n, err)
	}
	if err := l.b.Modify(driver.QPAttr{State: driver.QPError}); err != nil {
		t.Fatalf("modify to ERR: %v", err)
	}
	for i, c := range pollN(t, l.cq, 4) {
		if c.ID != uint64(50+i) || c.Status != driver.WCWRFlushErr {
			t.Fatalf("flush %d: %+v", i, c)
		}
	}
	if _, err := l.b.PostRecv(recvs[:1]); err == nil {
		t.Fatal("post recv after ERR accepted")
	}
	if err := l.b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	l.b = nil
}
