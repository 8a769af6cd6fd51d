package soft_test

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/soft"
)

const (
	opRecv uint8 = iota + 1
	opSend
	opWrite
)

// end is one side of a test connection.
type end struct {
	pd  *rdma.ProtectionDomain
	cq  *rdma.CompletionQueue
	buf *rdma.Buffer
	mr  *rdma.MemoryRegion
	qp  *rdma.QueuePair
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newEnd(t *testing.T, dev *rdma.Device, cqEntries int, qpCfg rdma.QueuePairConfig) *end {
	t.Helper()
	e := &end{}
	var err error
	e.pd, err = dev.AllocPD()
	must(t, err)
	t.Cleanup(func() { must(t, e.pd.Close()) })
	e.buf, err = rdma.AllocBuffer(1<<16, rdma.BufferOptions{})
	must(t, err)
	t.Cleanup(func() { must(t, e.buf.Close()) })
	e.mr, err = e.pd.RegisterBuffer(e.buf, rdma.AccessLocalWrite|rdma.AccessRemoteRead|rdma.AccessRemoteWrite)
	must(t, err)
	t.Cleanup(func() { must(t, e.mr.Close()) })
	e.cq, err = dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: cqEntries})
	must(t, err)
	t.Cleanup(func() { must(t, e.cq.Close()) })
	qpCfg.SendCQ, qpCfg.RecvCQ = e.cq, e.cq
	e.qp, err = e.pd.NewQueuePair(qpCfg)
	must(t, err)
	t.Cleanup(func() { must(t, e.qp.Close()) })
	return e
}

// pair connects two queue pairs manually on soft0 of p.
func pair(t *testing.T, p *soft.Provider, cqEntries int, qpCfg rdma.QueuePairConfig, param rdma.ConnParam) (a, b *end) {
	t.Helper()
	dev, err := rdma.Open(p, "soft0")
	must(t, err)
	t.Cleanup(func() { must(t, dev.Close()) })
	a, b = newEnd(t, dev, cqEntries, qpCfg), newEnd(t, dev, cqEntries, qpCfg)
	ea, err := a.qp.Endpoint(1, 0)
	must(t, err)
	eb, err := b.qp.Endpoint(1, 0)
	must(t, err)
	must(t, a.qp.ConnectManual(rdma.ManualPath{}, eb, param))
	must(t, b.qp.ConnectManual(rdma.ManualPath{}, ea, param))
	return a, b
}

var forever = rdma.ConnParam{ResponderResources: 1, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 7}

func pollN(t *testing.T, ctx context.Context, cq *rdma.CompletionQueue, n int) []rdma.Completion {
	t.Helper()
	out := make([]rdma.Completion, 0, n)
	buf := make([]rdma.Completion, n)
	for len(out) < n {
		k, err := cq.WaitPoll(ctx, buf[:n-len(out)])
		if err != nil {
			t.Fatalf("have %d of %d completions: %v", len(out), n, err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

func send(id uint64, sge rdma.SGE) rdma.SendWR {
	return rdma.SendWR{ID: id, Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{sge}}
}

func TestInjectFaultFailsNthWR(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	a, b := pair(t, p, 64, rdma.QueuePairConfig{}, forever)
	p.InjectFault(soft.Fault{QPNum: a.qp.Num(), Nth: 3, Status: rdma.WCRemOpErr})
	var wrs []rdma.SendWR
	for i := range 5 {
		wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{a.mr.SGE(0, 8)}, Remote: b.mr.Addr(), RKey: b.mr.RKey()})
	}
	_, err := a.qp.PostSend(wrs)
	must(t, err)
	got := pollN(t, ctx, a.cq, 5)
	want := []rdma.WCStatus{rdma.WCSuccess, rdma.WCSuccess, rdma.WCRemOpErr, rdma.WCWRFlushErr, rdma.WCWRFlushErr}
	for i, wc := range got {
		if wc.ID != wrs[i].ID || wc.Status != want[i] {
			t.Fatalf("completion %d: id %#x %v, want id %#x %v", i, wc.ID, wc.Status, wrs[i].ID, want[i])
		}
	}
	if s, _ := a.qp.State(); s != rdma.QPError {
		t.Fatalf("state %v after injected failure", s)
	}
	// The fault fired once: a fresh pair is unaffected.
	c, d := pair(t, p, 64, rdma.QueuePairConfig{}, forever)
	_, err = c.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opWrite, 9), Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
		SGL: []rdma.SGE{c.mr.SGE(0, 8)}, Remote: d.mr.Addr(), RKey: d.mr.RKey()}})
	must(t, err)
	if wc := pollN(t, ctx, c.cq, 1)[0]; wc.Status != rdma.WCSuccess {
		t.Fatalf("later WR: %v", wc.Status)
	}
}

func TestDropConnection(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	l, err := rdma.Listen(p, "127.0.0.1:0", rdma.ListenConfig{})
	must(t, err)
	defer l.Close()
	srv := make(chan *rdma.QueuePair, 1)
	devB := make(chan *end, 1)
	go func() {
		req, err := l.Accept(ctx)
		if err != nil {
			srv <- nil
			return
		}
		e := &end{}
		e.pd, _ = req.Device().AllocPD()
		e.cq, _ = req.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 16})
		qp, err := req.CreateQP(e.pd, rdma.QueuePairConfig{SendCQ: e.cq, RecvCQ: e.cq})
		if err == nil {
			err = req.Accept(ctx, forever, nil)
		}
		if err != nil {
			srv <- nil
			return
		}
		e.qp = qp
		devB <- e
		srv <- qp
	}()
	d, err := rdma.Dial(ctx, p, l.Addr().String(), rdma.DialConfig{})
	must(t, err)
	pd, err := d.Device().AllocPD()
	must(t, err)
	cq, err := d.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 16})
	must(t, err)
	qp, err := d.CreateQP(pd, rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq})
	must(t, err)
	_, err = qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1)}})
	must(t, err)
	_, err = d.Connect(ctx, forever, nil)
	must(t, err)
	sqp := <-srv
	if sqp == nil {
		t.Fatal("accept failed")
	}
	b := <-devB
	must(t, p.DropConnection(qp.Num()))
	for _, ch := range []<-chan struct{}{qp.Disconnected(), sqp.Disconnected()} {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("Disconnected not closed after a dropped connection")
		}
	}
	for _, q := range []*rdma.QueuePair{qp, sqp} {
		if s, _ := q.State(); s != rdma.QPError {
			t.Fatalf("QP %d in %v after drop", q.Num(), s)
		}
	}
	if wc := pollN(t, ctx, cq, 1)[0]; wc.Status != rdma.WCWRFlushErr {
		t.Fatalf("outstanding receive: %v", wc.Status)
	}
	for _, c := range []interface{ Close() error }{qp, cq, pd, sqp, b.cq, b.pd} {
		must(t, c.Close())
	}
	if err := p.DropConnection(12345); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("drop of an unknown QP: %v", err)
	}
}

func TestCompletionDelayKeepsOrder(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{CompletionDelay: 30 * time.Millisecond})
	a, b := pair(t, p, 64, rdma.QueuePairConfig{}, forever)
	var wrs []rdma.SendWR
	for i := range 8 {
		wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{a.mr.SGE(0, 8)}, Remote: b.mr.Addr(), RKey: b.mr.RKey()})
	}
	_, err := a.qp.PostSend(wrs[:4])
	must(t, err)
	p.SetCompletionDelay(0) // later completions are not delayed, yet stay behind
	_, err = a.qp.PostSend(wrs[4:])
	must(t, err)
	if n, _ := a.cq.Poll(make([]rdma.Completion, 8)); n != 0 {
		t.Fatalf("%d completions visible before the delay (and out of order)", n)
	}
	got := pollN(t, ctx, a.cq, 8)
	for i, wc := range got {
		if wc.ID != wrs[i].ID {
			t.Fatalf("completion %d is %#x, want %#x", i, wc.ID, wrs[i].ID)
		}
	}
}

func TestCQOverflow(t *testing.T) {
	p := soft.New(soft.Config{})
	a, b := pair(t, p, 4, rdma.QueuePairConfig{}, forever)
	var wrs []rdma.SendWR
	for i := range 6 {
		wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{a.mr.SGE(0, 8)}, Remote: b.mr.Addr(), RKey: b.mr.RKey()})
	}
	_, err := a.qp.PostSend(wrs)
	must(t, err)
	_, err = a.cq.Poll(make([]rdma.Completion, 8))
	if !errors.Is(err, syscall.EOVERFLOW) {
		t.Fatalf("poll of an overrun CQ: %v", err)
	}
}

func TestSendWithInvalidate(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	a, b := pair(t, p, 64, rdma.QueuePairConfig{}, forever)
	victim, err := b.pd.RegisterMemory(b.buf.Slice(32768, 4096), rdma.AccessLocalWrite|rdma.AccessRemoteWrite)
	must(t, err)
	defer victim.Close()
	_, err = b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 64)}}})
	must(t, err)
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSendInv, InvalidateRKey: victim.RKey(),
		Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 8)}}})
	must(t, err)
	pollN(t, ctx, a.cq, 1)
	// b's CQ also carries a's? No: separate CQs per end.
	wc := pollN(t, ctx, b.cq, 1)[0]
	if wc.Flags&rdma.WCWithInv == 0 || wc.InvalidatedRKey != victim.RKey() {
		t.Fatalf("receive of send-with-invalidate: %+v", wc)
	}
	// The invalidated region no longer accepts RDMA.
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opWrite, 1), Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
		SGL: []rdma.SGE{a.mr.SGE(0, 8)}, Remote: victim.Addr(), RKey: victim.RKey()}})
	must(t, err)
	if wc := pollN(t, ctx, a.cq, 1)[0]; wc.Status != rdma.WCRemAccessErr {
		t.Fatalf("write to an invalidated region: %v", wc.Status)
	}
}

func TestRNRRetriesThenSucceeds(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{RNRDelay: 5 * time.Millisecond})
	a, b := pair(t, p, 64, rdma.QueuePairConfig{}, rdma.ConnParam{ResponderResources: 1, RetryCount: 7, RNRRetryCount: 6})
	_, err := a.qp.PostSend([]rdma.SendWR{send(rdma.EncodeWRID(opSend, 1), a.mr.SGE(0, 8))})
	must(t, err)
	time.Sleep(2 * time.Millisecond) // within the retries (6 x 5 ms); correct either way
	_, err = b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 8)}}})
	must(t, err)
	if wc := pollN(t, ctx, a.cq, 1)[0]; wc.Status != rdma.WCSuccess {
		t.Fatalf("send after a late receive: %v", wc.Status)
	}
}

func TestPostLimits(t *testing.T) {
	p := soft.New(soft.Config{})
	a, _ := pair(t, p, 64, rdma.QueuePairConfig{MaxSendWR: 2, MaxRecvWR: 2, MaxSendSGE: 1, MaxRecvSGE: 1, MaxInline: 16}, forever)
	// Too many SGEs.
	n, err := a.qp.PostRecv([]rdma.RecvWR{{ID: 1, SGL: []rdma.SGE{a.mr.SGE(0, 8), a.mr.SGE(8, 8)}}})
	if n != 0 || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("recv with 2 SGEs on a 1-SGE queue: n=%d err=%v", n, err)
	}
	// The receive queue holds two.
	rwr := rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{a.mr.SGE(0, 8)}}
	n, err = a.qp.PostRecv([]rdma.RecvWR{rwr, rwr, rwr})
	if n != 2 || !errors.Is(err, rdma.ErrQueueFull) {
		t.Fatalf("3 receives on a 2-deep queue: n=%d err=%v", n, err)
	}
	// Inline larger than MaxInline.
	w := send(rdma.EncodeWRID(opSend, 1), a.mr.SGE(0, 17))
	w.Flags |= rdma.FlagInline
	if n, err := a.qp.PostSend([]rdma.SendWR{w}); n != 0 || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("17 inline bytes with MaxInline 16: n=%d err=%v", n, err)
	}
	// An opcode that does not exist.
	if n, err := a.qp.PostSend([]rdma.SendWR{{ID: 1, Op: 99}}); n != 0 || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("opcode 99: n=%d err=%v", n, err)
	}
}

func TestInlineCopiesAtPost(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	a, b := pair(t, p, 64, rdma.QueuePairConfig{MaxInline: 64}, forever)
	copy(a.mr.Bytes(), "inline!!")
	w := send(rdma.EncodeWRID(opSend, 1), a.mr.SGE(0, 8))
	w.Flags |= rdma.FlagInline
	_, err := a.qp.PostSend([]rdma.SendWR{w}) // no receive yet: it waits (RNR retry 7)
	must(t, err)
	copy(a.mr.Bytes(), "changed!") // allowed: inline data was copied
	_, err = b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 8)}}})
	must(t, err)
	pollN(t, ctx, b.cq, 1)
	if string(b.mr.Bytes()[:8]) != "inline!!" {
		t.Fatalf("received %q", b.mr.Bytes()[:8])
	}
}

func TestCMLimitsAndListenerClose(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{Devices: []soft.DeviceConfig{{Name: "softA", Host: "10.0.0.1"}, {Name: "softB", Host: "10.0.0.2"}}})
	if _, err := rdma.Listen(p, "10.9.9.9:1", rdma.ListenConfig{}); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("listen on a host no device owns: %v", err)
	}
	l, err := rdma.Listen(p, "10.0.0.2:4420", rdma.ListenConfig{})
	must(t, err)
	if _, err := rdma.Listen(p, "10.0.0.2:4420", rdma.ListenConfig{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second listen on the same address: %v", err)
	}
	d, err := rdma.Dial(ctx, p, "10.0.0.2:4420", rdma.DialConfig{Source: "10.0.0.1"})
	must(t, err)
	if d.Device().Name() != "softA" {
		t.Fatalf("dial from 10.0.0.1 routed through %s", d.Device().Name())
	}
	pd, err := d.Device().AllocPD()
	must(t, err)
	cq, err := d.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 8})
	must(t, err)
	qp, err := d.CreateQP(pd, rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq})
	must(t, err)
	if _, err := d.Connect(ctx, forever, make([]byte, 57)); err == nil {
		t.Fatal("57 bytes of private data accepted")
	}
	// A request left pending is rejected when the listener closes.
	errc := make(chan error, 1)
	go func() {
		_, err := d.Connect(ctx, forever, []byte("hi"))
		errc <- err
	}()
	// Whether the listener closes before the request is queued (nobody
	// listens) or after (pending requests are rejected), the connect is
	// rejected and never hangs.
	var rej *rdma.RejectError
	must(t, l.Close())
	select {
	case err := <-errc:
		if !errors.As(err, &rej) {
			t.Fatalf("pending connect after listener close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("pending connect hung after the listener closed")
	}
	for _, c := range []interface{ Close() error }{qp, cq, pd} {
		must(t, c.Close())
	}
}

// TestConcurrentTraffic drives several connections from many goroutines
// at once; run with -race.
func TestConcurrentTraffic(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	const pairs, msgs = 4, 200
	var wg sync.WaitGroup
	for range pairs {
		a, b := pair(t, p, 512, rdma.QueuePairConfig{MaxSendWR: 256, MaxRecvWR: 256}, forever)
		wg.Add(2)
		go func() { // receiver: keeps receives posted and checks order
			defer wg.Done()
			wcs := make([]rdma.Completion, 16)
			next := 0
			for i := range 16 {
				if _, err := b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{b.mr.SGE(i*64, 64)}}}); err != nil {
					t.Error(err)
					return
				}
			}
			for next < msgs {
				n, err := b.cq.WaitPoll(ctx, wcs)
				if err != nil {
					t.Error(err)
					return
				}
				for _, wc := range wcs[:n] {
					_, slot := rdma.DecodeWRID(wc.ID)
					if wc.Status != rdma.WCSuccess || b.mr.Bytes()[slot*64] != byte(next) {
						t.Errorf("message %d: %v, holds %d", next, wc.Status, b.mr.Bytes()[slot*64])
						return
					}
					next++
					if _, err := b.qp.PostRecv([]rdma.RecvWR{{ID: wc.ID, SGL: []rdma.SGE{b.mr.SGE(int(slot)*64, 64)}}}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
		go func() { // sender
			defer wg.Done()
			wcs := make([]rdma.Completion, 16)
			for i := range msgs {
				slot := i % 32
				a.mr.Bytes()[4096+slot*64] = byte(i)
				if _, err := a.qp.PostSend([]rdma.SendWR{send(rdma.EncodeWRID(opSend, uint64(slot)), a.mr.SGE(4096+slot*64, 64))}); err != nil {
					t.Error(err)
					return
				}
				if _, err := a.cq.WaitPoll(ctx, wcs[:1]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDevices(t *testing.T) {
	p := soft.New(soft.Config{Devices: []soft.DeviceConfig{{Name: "x"}, {Name: "y"}}})
	infos, err := rdma.Devices(p)
	must(t, err)
	if len(infos) != 2 || infos[0].Name != "x" || infos[1].Name != "y" || infos[0].NodeGUID == infos[1].NodeGUID {
		t.Fatalf("devices %+v", infos)
	}
	if _, err := rdma.Open(p, "nope"); !errors.Is(err, rdma.ErrNoDevice) {
		t.Fatalf("open of an unknown device: %v", err)
	}
	if p.Name() != "soft" {
		t.Fatal(p.Name())
	}
}

func TestLocalProtection(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	a, b := pair(t, p, 64, rdma.QueuePairConfig{}, forever)
	// A send from memory with a wrong lkey fails locally; the peer is fine.
	bad := a.mr.SGE(0, 8)
	bad.LKey ^= 0xff0000
	_, err := a.qp.PostSend([]rdma.SendWR{send(rdma.EncodeWRID(opSend, 1), bad)})
	must(t, err)
	if wc := pollN(t, ctx, a.cq, 1)[0]; wc.Status != rdma.WCLocProtErr {
		t.Fatalf("send with a wrong lkey: %v", wc.Status)
	}
	if s, _ := b.qp.State(); s != rdma.QPRTS {
		t.Fatalf("peer in %v after the sender's local error", s)
	}
	// A receive into read-only memory fails at the receiver.
	c, d := pair(t, p, 64, rdma.QueuePairConfig{}, forever)
	ro, err := d.pd.RegisterMemory(d.buf.Slice(0, 4096), 0)
	must(t, err)
	defer ro.Close()
	_, err = d.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{ro.SGE(0, 64)}}})
	must(t, err)
	_, err = c.qp.PostSend([]rdma.SendWR{send(rdma.EncodeWRID(opSend, 1), c.mr.SGE(0, 8))})
	must(t, err)
	if wc := pollN(t, ctx, d.cq, 1)[0]; wc.Status != rdma.WCLocProtErr {
		t.Fatalf("receive into read-only memory: %v", wc.Status)
	}
	if wc := pollN(t, ctx, c.cq, 1)[0]; wc.Status == rdma.WCSuccess {
		t.Fatal("send into a failing receive succeeded")
	}
}

func TestConnectAbandoned(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	l, err := rdma.Listen(p, "127.0.0.1:0", rdma.ListenConfig{})
	must(t, err)
	defer l.Close()
	d, err := rdma.Dial(ctx, p, l.Addr().String(), rdma.DialConfig{})
	must(t, err)
	pd, err := d.Device().AllocPD()
	must(t, err)
	defer pd.Close()
	cq, err := d.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 8})
	must(t, err)
	defer cq.Close()
	qp, err := d.CreateQP(pd, rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq})
	must(t, err)
	defer qp.Close()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := d.Connect(short, forever, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connect nobody accepts: %v", err)
	}
	req, err := l.Accept(ctx)
	must(t, err)
	if req.Param() != forever || req.LocalAddr().String() != l.Addr().String() || req.RemoteAddr().Network() != "soft" {
		t.Fatalf("request %+v from %v to %v", req.Param(), req.RemoteAddr(), req.LocalAddr())
	}
	spd, err := req.Device().AllocPD()
	must(t, err)
	defer spd.Close()
	scq, err := req.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 8})
	must(t, err)
	defer scq.Close()
	sqp, err := req.CreateQP(spd, rdma.QueuePairConfig{SendCQ: scq, RecvCQ: scq})
	must(t, err)
	defer sqp.Close()
	if err := req.Accept(ctx, forever, nil); !errors.Is(err, syscall.ECONNABORTED) {
		t.Fatalf("accept of an abandoned request: %v", err)
	}
}

// TestUnsignaledHoldSlots: unsignaled work requests keep their send-queue
// slots until a later completion, so a queue pair must signal
// periodically.
func TestUnsignaledHoldSlots(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	a, b := pair(t, p, 64, rdma.QueuePairConfig{MaxSendWR: 4}, forever)
	w := func(i int, flags rdma.SendFlags) rdma.SendWR {
		return rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite, Flags: flags,
			SGL: []rdma.SGE{a.mr.SGE(0, 8)}, Remote: b.mr.Addr(), RKey: b.mr.RKey()}
	}
	// Three unsignaled and one signaled fit; the signaled completion frees
	// all four slots.
	for round := range 3 {
		n, err := a.qp.PostSend([]rdma.SendWR{w(0, 0), w(1, 0), w(2, 0), w(3, rdma.FlagSignaled)})
		if n != 4 || err != nil {
			t.Fatalf("round %d: %d, %v", round, n, err)
		}
		if wc := pollN(t, ctx, a.cq, 1)[0]; wc.ID != rdma.EncodeWRID(opWrite, 3) || wc.Status != rdma.WCSuccess {
			t.Fatalf("round %d: %+v", round, wc)
		}
	}
	// Four unsignaled fill the queue: nothing more fits.
	n, err := a.qp.PostSend([]rdma.SendWR{w(0, 0), w(1, 0), w(2, 0), w(3, 0), w(4, rdma.FlagSignaled)})
	if n != 4 || !errors.Is(err, rdma.ErrQueueFull) {
		t.Fatalf("fifth WR after four unsignaled: n=%d err=%v", n, err)
	}
	must(t, a.qp.Modify(rdma.QPAttr{State: rdma.QPError}))
	n, err = a.qp.PostSend([]rdma.SendWR{w(5, rdma.FlagSignaled)})
	if n != 1 || err != nil {
		t.Fatalf("post after the error freed the slots: n=%d err=%v", n, err)
	}
	if wc := pollN(t, ctx, a.cq, 1)[0]; wc.Status != rdma.WCWRFlushErr {
		t.Fatalf("%+v", wc)
	}
}

// TestCloseDropsCompletions: as on mlx5, closing a queue pair removes its
// completions still in the completion queue (ready or delayed) and
// leaves the other queue pairs' completions alone; a teardown that polls
// after Close finds nothing of the closed queue pair.
func TestCloseDropsCompletions(t *testing.T) {
	ctx := ctxT(t)
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		p := soft.New(soft.Config{CompletionDelay: delay})
		dev, err := rdma.Open(p, "soft0")
		must(t, err)
		t.Cleanup(func() { must(t, dev.Close()) })
		// a and b share one CQ; c is a's peer on a CQ of its own.
		ab := newEnd(t, dev, 64, rdma.QueuePairConfig{})
		bqp, err := ab.pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: ab.cq, RecvCQ: ab.cq})
		must(t, err)
		t.Cleanup(func() { must(t, bqp.Close()) })
		c := newEnd(t, dev, 64, rdma.QueuePairConfig{})
		ea, err := ab.qp.Endpoint(1, 0)
		must(t, err)
		ec, err := c.qp.Endpoint(1, 0)
		must(t, err)
		must(t, ab.qp.ConnectManual(rdma.ManualPath{}, ec, forever))
		must(t, c.qp.ConnectManual(rdma.ManualPath{}, ea, forever))
		must(t, bqp.Modify(rdma.QPAttr{State: rdma.QPInit, Port: 1}))
		_, err = ab.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{ab.mr.SGE(0, 64)}}})
		must(t, err)
		_, err = bqp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 2), SGL: []rdma.SGE{ab.mr.SGE(64, 64)}}})
		must(t, err)
		_, err = c.qp.PostSend([]rdma.SendWR{send(rdma.EncodeWRID(opSend, 1), c.mr.SGE(0, 8))})
		must(t, err)
		pollN(t, ctx, c.cq, 1)
		must(t, bqp.Modify(rdma.QPAttr{State: rdma.QPError})) // b's flush joins a's receive in the CQ
		must(t, ab.qp.Close())                                // a's receive completion goes with it
		got := pollN(t, ctx, ab.cq, 1)[0]
		if got.QPNum != bqp.Num() || got.Status != rdma.WCWRFlushErr {
			t.Fatalf("delay %v: %+v; want only b's flush", delay, got)
		}
		if n, err := ab.cq.Poll(make([]rdma.Completion, 4)); n != 0 || err != nil {
			t.Fatalf("delay %v: %d more completions (%v) after the closed queue pair's were removed", delay, n, err)
		}
	}
}

// TestConnParamPerspective: a connection request reports the dialer's
// parameters from the accepting side, as the IB CM does (librdmacm on rxe
// and mlx5): the dialer's responder resources are the acceptor's initiator
// depth. iSER targets size their RDMA READ depth from it.
func TestConnParamPerspective(t *testing.T) {
	ctx := ctxT(t)
	p := soft.New(soft.Config{})
	l, err := rdma.Listen(p, "127.0.0.1:3260", rdma.ListenConfig{})
	must(t, err)
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		d, err := rdma.Dial(ctx, p, "127.0.0.1:3260", rdma.DialConfig{})
		if err != nil {
			errc <- err
			return
		}
		defer d.Close()
		pd, err := d.Device().AllocPD()
		if err != nil {
			errc <- err
			return
		}
		defer pd.Close()
		cq, err := d.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 8})
		if err != nil {
			errc <- err
			return
		}
		defer cq.Close()
		qp, err := d.CreateQP(pd, rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq})
		if err != nil {
			errc <- err
			return
		}
		defer qp.Close()
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err = d.Connect(short, rdma.ConnParam{ResponderResources: 4, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 6}, nil)
		errc <- err
	}()
	req, err := l.Accept(ctx)
	must(t, err)
	got := req.Param()
	_ = req.Reject(nil)
	<-errc
	if got.InitiatorDepth != 4 || got.ResponderResources != 1 || got.RetryCount != 7 || got.RNRRetryCount != 6 {
		t.Fatalf("request parameters %+v; want InitiatorDepth 4 (the dialer's responder resources), ResponderResources 1", got)
	}
}
