package rdmatest

import (
	"bytes"
	"fmt"
	"time"

	"github.com/goiser/goiser/rdma"
)

// sharedPairs connects n pairs of queue pairs, every one bound to cq for
// both queues, and closes them at cleanup.
func (t *T) sharedPairs(pd *rdma.ProtectionDomain, cq *rdma.CompletionQueue, n int) [][2]*rdma.QueuePair {
	t.Helper()
	path := rdma.ManualPath{Port: t.env.Port, GIDIndex: t.env.GIDIndex}
	param := rdma.ConnParam{ResponderResources: 1, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 7}
	pairs := make([][2]*rdma.QueuePair, n)
	for i := range pairs {
		var eps [2]rdma.QPEndpoint
		for j := range 2 {
			qp, err := pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq, MaxSendWR: 8, MaxRecvWR: 8})
			t.must(err, "create QP")
			t.Cleanup(func() { t.closeOK(qp, "QP") })
			pairs[i][j] = qp
			eps[j], err = qp.Endpoint(t.env.Port, t.env.GIDIndex)
			t.must(err, "endpoint")
		}
		t.must(pairs[i][0].ConnectManual(path, eps[1], param), "connect")
		t.must(pairs[i][1].ConnectManual(path, eps[0], param), "connect")
	}
	return pairs
}

// testSharedCQWait: many queue pairs on one completion queue; after Arm
// (and an empty re-poll) Wait wakes on a completion of any of them, again
// and again, as a poll group relies on.
func testSharedCQWait(t *T) {
	dev := t.open()
	o := pairOpts{}
	o.defaults()
	s := t.resources(dev, "shared", o)
	pairs := t.sharedPairs(s.pd, s.scq, 4)
	dst := make([]rdma.Completion, 4)
	for i, p := range pairs {
		t.must(s.scq.Arm(false), "arm")
		n, err := s.scq.Poll(dst)
		t.must(err, "re-poll after arm")
		if n != 0 {
			t.Fatalf("pair %d: %d completions before anything was posted", i, n)
		}
		woke := make(chan error, 1)
		go func() { woke <- s.scq.Wait(t.ctx) }()
		time.Sleep(5 * time.Millisecond) // let it sleep (correct either way)
		slot := uint64(i)
		_, err = p[1].PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, slot), SGL: []rdma.SGE{s.mr.SGE(4096, 64)}}})
		t.must(err, "post recv")
		_, err = p[0].PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, slot), Op: rdma.OpSend, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{s.mr.SGE(0, 64)}}})
		t.must(err, "post send")
		select {
		case err := <-woke:
			t.must(err, fmt.Sprintf("pair %d: wait on the shared CQ", i))
		case <-t.ctx.Done():
			t.Fatalf("pair %d: Wait on the shared CQ did not wake on a completion", i)
		}
		byQP := map[uint32]rdma.Completion{}
		for _, wc := range t.poll(s.scq, 2) {
			byQP[wc.QPNum] = wc
		}
		t.ok(byQP[p[0].Num()], rdma.EncodeWRID(opSend, slot), rdma.WCSend, "sender")
		t.ok(byQP[p[1].Num()], rdma.EncodeWRID(opRecv, slot), rdma.WCRecv, "receiver")
	}
}

// groupHandler hands completions to the case over a buffered channel.
type groupHandler struct {
	wcs  chan rdma.Completion
	errs chan error
}

func (h *groupHandler) HandleCompletions(wcs []rdma.Completion) {
	for _, wc := range wcs {
		select {
		case h.wcs <- wc:
		default:
			panic("rdmatest: group handler channel full")
		}
	}
}

func (h *groupHandler) HandleError(err error) {
	select {
	case h.errs <- err:
	default:
	}
}

// testPollGroup: one poll group serves several connections (both ends of
// each on the group): RDMA WRITE from a pool block chained with a SEND,
// each handler sees exactly its queue pair's completions, the teardown
// (Error, reap the flushes, Detach, Close) leaves the pool whole, and the
// idle group sleeps.
func testPollGroup(t *T) {
	dev := t.open()
	pd, err := dev.AllocPD()
	t.must(err, "alloc PD")
	t.Cleanup(func() { t.closeOK(pd, "PD") })
	pool, err := rdma.NewBufferPool(pd, rdma.BufferPoolConfig{Size: 4 << 20, MaxBlock: 1 << 20})
	t.must(err, "new buffer pool")
	t.Cleanup(func() { t.closeOK(pool, "buffer pool") })
	g, err := rdma.NewPollGroup(dev, rdma.PollGroupConfig{CQEntries: 256})
	t.must(err, "new poll group")
	t.Cleanup(func() { t.closeOK(g, "poll group") })
	pairs := t.sharedPairs(pd, g.CQ(), 3) // closed before the group (cleanups run last-in first-out)
	const size = 128 << 10
	type end struct {
		h   *groupHandler
		att *rdma.Attachment
		blk rdma.Block
	}
	ends := make([][2]*end, len(pairs))
	for i, p := range pairs {
		for j, qp := range p {
			e := &end{h: &groupHandler{wcs: make(chan rdma.Completion, 64), errs: make(chan error, 1)}}
			e.att, err = g.Attach(qp, 0, 0, e.h)
			t.must(err, "attach")
			blk, ok := pool.Get(size)
			if !ok {
				t.Fatalf("pool Get(%d): %+v", size, pool.Stats())
			}
			e.blk = blk
			ends[i][j] = e
		}
	}
	next := func(e *end, what string) rdma.Completion {
		select {
		case wc := <-e.h.wcs:
			return wc
		case err := <-e.h.errs:
			t.Fatalf("%s: %v", what, err)
		case <-t.ctx.Done():
			t.Fatalf("%s: no completion", what)
		}
		return rdma.Completion{}
	}
	for i, p := range pairs {
		a, b := ends[i][0], ends[i][1]
		fill(a.blk.Bytes(), byte(i+1))
		clear(b.blk.Bytes())
		slot := uint64(i)
		_, err := p[1].PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, slot), SGL: []rdma.SGE{b.blk.SGE(0, 64)}}})
		t.must(err, "post recv")
		r := b.blk.Remote(4096, size-4096)
		_, err = p[0].PostSend([]rdma.SendWR{
			{ID: rdma.EncodeWRID(opWrite, slot), Op: rdma.OpRDMAWrite, SGL: []rdma.SGE{a.blk.SGE(4096, size-4096)}, Remote: r.Addr, RKey: r.RKey},
			{ID: rdma.EncodeWRID(opSend, slot), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.blk.SGE(0, 64)}},
		})
		t.must(err, "post write+send")
	}
	for i, p := range pairs {
		a, b := ends[i][0], ends[i][1]
		wa, wb := next(a, "sender"), next(b, "receiver")
		if wa.QPNum != p[0].Num() || wb.QPNum != p[1].Num() {
			t.Fatalf("pair %d: completions of QPs %d and %d, want %d and %d", i, wa.QPNum, wb.QPNum, p[0].Num(), p[1].Num())
		}
		t.ok(wa, rdma.EncodeWRID(opSend, uint64(i)), rdma.WCSend, "send")
		t.ok(wb, rdma.EncodeWRID(opRecv, uint64(i)), rdma.WCRecv, "recv")
		ab, bb := a.blk.Bytes(), b.blk.Bytes()
		if !bytes.Equal(ab[:64], bb[:64]) || !bytes.Equal(ab[4096:], bb[4096:]) {
			t.Fatalf("pair %d: the receiver's block differs from the sender's after RDMA WRITE + SEND", i)
		}
	}
	// Teardown: post receives, move to Error, reap the flushes, detach.
	for i, p := range pairs {
		for j, qp := range p {
			e := ends[i][j]
			_, err := qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 100), SGL: []rdma.SGE{e.blk.SGE(0, 64)}}})
			t.must(err, "post recv")
			t.must(qp.Modify(rdma.QPAttr{State: rdma.QPError}), "modify to Error")
			if wc := next(e, "flush"); wc.Status != rdma.WCWRFlushErr || wc.QPNum != qp.Num() {
				t.Fatalf("flush: %s on QP %d, want a flushed receive on QP %d", describe([]rdma.Completion{wc}), wc.QPNum, qp.Num())
			}
			e.att.Detach()
			pool.Put(e.blk)
		}
	}
	if s := pool.Stats(); s.Outstanding != 0 || s.LargestFree != pool.MaxBlock() {
		t.Fatalf("pool not whole after the teardown: %+v", s)
	}
	// Idle: the poll count stops growing once the group sleeps.
	prev := g.Stats()
	for {
		select {
		case <-t.ctx.Done():
			t.Fatalf("poll group never went idle: %+v", g.Stats())
		case <-time.After(10 * time.Millisecond):
		}
		s := g.Stats()
		if s == prev {
			break
		}
		prev = s
	}
	if prev.Waits == 0 || prev.Unknown != 0 || prev.Errors != 0 || prev.Attached != 0 {
		t.Fatalf("poll group stats after the teardown: %+v", prev)
	}
}
