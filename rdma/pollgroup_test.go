package rdma_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/soft"
)

const (
	opWrite uint8 = iota + 10
	opRead
)

// recorder is a CompletionHandler that hands completions to the test
// goroutine through buffered channels (never blocking the group).
type recorder struct {
	wcs  chan rdma.Completion
	errs chan error
	nerr atomic.Int32
}

func newRecorder() *recorder {
	return &recorder{wcs: make(chan rdma.Completion, 4096), errs: make(chan error, 4)}
}

func (r *recorder) HandleCompletions(wcs []rdma.Completion) {
	for _, wc := range wcs {
		select {
		case r.wcs <- wc:
		default:
			panic("recorder: channel full")
		}
	}
}

func (r *recorder) HandleError(err error) {
	r.nerr.Add(1)
	r.errs <- err
}

// next returns the next n completions or fails at the deadline.
func (r *recorder) next(t testing.TB, ctx context.Context, n int) []rdma.Completion {
	t.Helper()
	out := make([]rdma.Completion, 0, n)
	for len(out) < n {
		select {
		case wc := <-r.wcs:
			out = append(out, wc)
		case <-ctx.Done():
			t.Fatalf("have %d of %d completions: %v", len(out), n, ctx.Err())
		}
	}
	return out
}

// groupEnv is a device with a PD, a registered pool and poll groups.
type groupEnv struct {
	t    testing.TB
	ctx  context.Context
	p    *soft.Provider
	dev  *rdma.Device
	pd   *rdma.ProtectionDomain
	pool *rdma.BufferPool
}

func newGroupEnv(t testing.TB) *groupEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	e := &groupEnv{t: t, ctx: ctx, p: soft.New(soft.Config{})}
	var err error
	e.dev, err = rdma.Open(e.p, "soft0")
	e.must(err)
	e.pd, err = e.dev.AllocPD()
	e.must(err)
	e.pool, err = rdma.NewBufferPool(e.pd, rdma.BufferPoolConfig{Size: 16 << 20, MaxBlock: 1 << 20, NoHugePages: true})
	e.must(err)
	t.Cleanup(func() {
		if s := e.pool.Stats(); s.Outstanding != 0 {
			t.Errorf("pool leak: %+v", s)
		}
		e.must(e.pool.Close())
		e.must(e.pd.Close())
		e.must(e.dev.Close())
	})
	return e
}

func (e *groupEnv) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *groupEnv) group(cfg rdma.PollGroupConfig) *rdma.PollGroup {
	e.t.Helper()
	g, err := rdma.NewPollGroup(e.dev, cfg)
	e.must(err)
	e.t.Cleanup(func() { e.must(g.Close()) })
	return g
}

// gconn is one end of a connection attached to a group.
type gconn struct {
	qp  *rdma.QueuePair
	att *rdma.Attachment
	rec *recorder
}

// pair connects a QP on ga with one on gb and attaches both. Cleanup
// tears them down in order: Error, reap, detach, close.
func (e *groupEnv) pair(ga, gb *rdma.PollGroup, depth int) (a, b *gconn) {
	e.t.Helper()
	mk := func(g *rdma.PollGroup) *gconn {
		qp, err := e.pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: g.CQ(), RecvCQ: g.CQ(), MaxSendWR: depth, MaxRecvWR: depth})
		e.must(err)
		c := &gconn{qp: qp, rec: newRecorder()}
		c.att, err = g.Attach(qp, 0, 0, c.rec)
		if err != nil {
			qp.Close()
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() {
			c.att.Detach()
			e.must(qp.Close())
		})
		return c
	}
	a, b = mk(ga), mk(gb)
	ea, err := a.qp.Endpoint(1, 0)
	e.must(err)
	eb, err := b.qp.Endpoint(1, 0)
	e.must(err)
	param := rdma.ConnParam{ResponderResources: 4, InitiatorDepth: 4, RetryCount: 7, RNRRetryCount: 7}
	e.must(a.qp.ConnectManual(rdma.ManualPath{}, eb, param))
	e.must(b.qp.ConnectManual(rdma.ManualPath{}, ea, param))
	return a, b
}

func (e *groupEnv) get(n int) rdma.Block {
	e.t.Helper()
	blk, ok := e.pool.Get(n)
	if !ok {
		e.t.Fatalf("pool Get(%d) failed: %+v", n, e.pool.Stats())
	}
	return blk
}

func wantOK(t testing.TB, wc rdma.Completion, qp *rdma.QueuePair, id uint64, op rdma.WCOpcode) {
	t.Helper()
	if wc.Err() != nil || wc.ID != id || wc.Opcode != op || wc.QPNum != qp.Num() {
		t.Fatalf("completion id %#x op %v qp %d err %v; want id %#x op %v qp %d", wc.ID, wc.Opcode, wc.QPNum, wc.Err(), id, op, qp.Num())
	}
}

// TestPollGroupManyQPs: eight connections share two groups (one per side,
// as a target and an initiator would); each moves a SEND, an RDMA WRITE and
// an RDMA READ between pool blocks, and each handler sees exactly its own
// queue pair's completions.
func TestPollGroupManyQPs(t *testing.T) {
	e := newGroupEnv(t)
	ga := e.group(rdma.PollGroupConfig{CQEntries: 1024})
	gb := e.group(rdma.PollGroupConfig{CQEntries: 1024})
	const conns, size = 8, 64 << 10
	as, bs := make([]*gconn, conns), make([]*gconn, conns)
	for i := range conns {
		as[i], bs[i] = e.pair(ga, gb, 16)
	}
	type bufs struct{ src, dst, back, msg, recv rdma.Block }
	bb := make([]bufs, conns)
	for i := range conns {
		x := bufs{src: e.get(size), dst: e.get(size), back: e.get(size), msg: e.get(100), recv: e.get(4096)}
		for k := range x.src.Bytes() {
			x.src.Bytes()[k] = byte(i + k*3)
		}
		copy(x.msg.Bytes(), fmt.Sprintf("command %d", i))
		bb[i] = x
		_, err := bs[i].qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{x.recv.SGE(0, x.recv.Len())}}})
		e.must(err)
	}
	for i := range conns {
		x := bb[i]
		dst := x.dst.Remote(0, size)
		back := x.src.Remote(0, size) // READ what was written back into back
		_, err := as[i].qp.PostSend([]rdma.SendWR{
			{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite, SGL: []rdma.SGE{x.src.SGE(0, size)},
				Remote: dst.Addr, RKey: dst.RKey},
			{ID: rdma.EncodeWRID(opSend, uint64(i)), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{x.msg.SGE(0, x.msg.Len())}},
		})
		e.must(err)
		_, err = bs[i].qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opRead, uint64(i)), Op: rdma.OpRDMARead, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{x.back.SGE(0, size)}, Remote: back.Addr, RKey: back.RKey}})
		e.must(err)
	}
	for i := range conns {
		x := bb[i]
		wantOK(t, as[i].rec.next(t, e.ctx, 1)[0], as[i].qp, rdma.EncodeWRID(opSend, uint64(i)), rdma.WCSend)
		got := bs[i].rec.next(t, e.ctx, 2)
		if got[0].Opcode != rdma.WCRecv {
			got[0], got[1] = got[1], got[0]
		}
		wantOK(t, got[0], bs[i].qp, rdma.EncodeWRID(opRecv, uint64(i)), rdma.WCRecv)
		wantOK(t, got[1], bs[i].qp, rdma.EncodeWRID(opRead, uint64(i)), rdma.WCRDMARead)
		if msg := bytes.TrimRight(x.recv.Bytes()[:got[0].ByteLen], "\x00"); string(msg) != fmt.Sprintf("command %d", i) {
			t.Fatalf("conn %d received %q", i, msg)
		}
		if !bytes.Equal(x.dst.Bytes(), x.src.Bytes()) || !bytes.Equal(x.back.Bytes(), x.src.Bytes()) {
			t.Fatalf("conn %d: RDMA WRITE or READ moved the wrong bytes", i)
		}
		for _, blk := range []rdma.Block{x.src, x.dst, x.back, x.msg, x.recv} {
			e.pool.Put(blk)
		}
	}
	for _, g := range []*rdma.PollGroup{ga, gb} {
		s := g.Stats()
		if s.Unknown != 0 || s.Attached != conns || s.Reserved != conns*32 || s.Errors != 0 {
			t.Fatalf("stats %+v", s)
		}
	}
	if s := ga.Stats(); s.Completions != conns {
		t.Fatalf("initiator group dispatched %d completions, want %d", s.Completions, conns)
	}
}

func TestPollGroupAdmission(t *testing.T) {
	e := newGroupEnv(t)
	g := e.group(rdma.PollGroupConfig{CQEntries: 64})
	other, err := e.dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 64})
	e.must(err)
	defer other.Close()
	mk := func(send, recv *rdma.CompletionQueue) *rdma.QueuePair {
		qp, err := e.pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: send, RecvCQ: recv, MaxSendWR: 32, MaxRecvWR: 32})
		e.must(err)
		return qp
	}
	q1, q2, q3 := mk(g.CQ(), g.CQ()), mk(g.CQ(), g.CQ()), mk(g.CQ(), other)
	defer q1.Close()
	defer q2.Close()
	defer q3.Close()
	if _, err := g.Attach(q3, 1, 1, newRecorder()); err == nil || errors.Is(err, rdma.ErrCQFull) {
		t.Fatalf("attach of a QP with another recv CQ: %v", err)
	}
	a1, err := g.Attach(q1, 32, 16, newRecorder())
	e.must(err)
	if _, err := g.Attach(q1, 1, 1, newRecorder()); err == nil {
		t.Fatal("second attach of the same QP succeeded")
	}
	if a1.Entries() != 48 || g.Room() != 16 {
		t.Fatalf("reserved %d, room %d", a1.Entries(), g.Room())
	}
	if _, err := g.Attach(q2, 0, 0, newRecorder()); !errors.Is(err, rdma.ErrCQFull) {
		t.Fatalf("attach beyond the CQ: %v, want ErrCQFull", err)
	}
	if err := g.Close(); !errors.Is(err, rdma.ErrBusy) {
		t.Fatalf("Close with an attachment: %v, want ErrBusy", err)
	}
	a1.Detach()
	a1.Detach()
	a2, err := g.Attach(q2, 0, 0, newRecorder()) // the QP's capacity: 64
	e.must(err)
	if a2.Entries() != 64 || g.Room() != 0 {
		t.Fatalf("attach with depth 0 reserved %d, room %d", a2.Entries(), g.Room())
	}
	a2.Detach()
	if err := g.Close(); !errors.Is(err, rdma.ErrBusy) {
		t.Fatalf("Close with QPs bound to the CQ: %v, want ErrBusy", err)
	}
}

// TestPollGroupIdleWaits: once traffic stops the group sleeps: its poll
// count stops growing and it waited at least once; a completion wakes it.
func TestPollGroupIdleWaits(t *testing.T) {
	e := newGroupEnv(t)
	g := e.group(rdma.PollGroupConfig{Poller: rdma.PollerConfig{BusyPolls: 16}})
	a, b := e.pair(g, g, 8)
	msg, recv := e.get(64), e.get(64)
	defer e.pool.Put(msg)
	defer e.pool.Put(recv)
	round := func(slot uint64) {
		_, err := b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, slot), SGL: []rdma.SGE{recv.SGE(0, 64)}}})
		e.must(err)
		_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, slot), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{msg.SGE(0, 64)}}})
		e.must(err)
		a.rec.next(t, e.ctx, 1)
		b.rec.next(t, e.ctx, 1)
	}
	round(1)
	s1 := waitIdle(t, e.ctx, g)
	if s1.Waits == 0 || s1.Arms == 0 {
		t.Fatalf("idle group never waited: %+v", s1)
	}
	time.Sleep(30 * time.Millisecond) // an observation window, not an assertion on time
	if s := g.Stats(); s.Polls != s1.Polls {
		t.Fatalf("idle group kept polling: %d polls, then %d", s1.Polls, s.Polls)
	}
	round(2) // a completion wakes it
	s2 := waitIdle(t, e.ctx, g)
	if s2.Waits <= s1.Waits || s2.Completions != s1.Completions+2 {
		t.Fatalf("after a wake-up: %+v, before: %+v", s2, s1)
	}
}

// waitIdle returns the stats once two snapshots some time apart agree,
// i.e. the group sleeps. A group that spins never gets there and the test
// fails at its deadline.
func waitIdle(t testing.TB, ctx context.Context, g *rdma.PollGroup) rdma.PollGroupStats {
	t.Helper()
	prev := g.Stats()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("poll group never went idle: %+v", g.Stats())
		case <-time.After(10 * time.Millisecond):
		}
		s := g.Stats()
		if s == prev {
			return s
		}
		prev = s
	}
}

// TestPollGroupPost: Post runs on the group goroutine, wakes a sleeping
// group, and a full queue refuses rather than blocks.
func TestPollGroupPost(t *testing.T) {
	e := newGroupEnv(t)
	g := e.group(rdma.PollGroupConfig{PostQueue: 2})
	waitIdle(t, e.ctx, g)
	ran := make(chan struct{})
	e.must(g.Post(func() { close(ran) }))
	select {
	case <-ran:
	case <-e.ctx.Done():
		t.Fatal("Post did not wake the sleeping group")
	}
	release := make(chan struct{})
	blocked := make(chan struct{})
	e.must(g.Post(func() { close(blocked); <-release })) // a test-only blocking function
	<-blocked
	e.must(g.Post(func() {}))
	e.must(g.Post(func() {}))
	if err := g.Post(func() {}); !errors.Is(err, rdma.ErrQueueFull) {
		t.Fatalf("Post to a full queue: %v, want ErrQueueFull", err)
	}
	close(release)
	for g.Stats().Posts < 4 {
		select {
		case <-e.ctx.Done():
			t.Fatalf("posts never ran: %+v", g.Stats())
		case <-time.After(time.Millisecond):
		}
	}
}

// TestPollGroupDetachDropsLateCompletions: completions of a detached queue
// pair are counted as Unknown, not delivered, and do not crash the group.
func TestPollGroupDetachDropsLateCompletions(t *testing.T) {
	e := newGroupEnv(t)
	g := e.group(rdma.PollGroupConfig{})
	a, b := e.pair(g, g, 8)
	msg, recv := e.get(64), e.get(64)
	defer e.pool.Put(msg)
	defer e.pool.Put(recv)
	b.att.Detach()
	_, err := b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{recv.SGE(0, 64)}}})
	e.must(err)
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{msg.SGE(0, 64)}}})
	e.must(err)
	a.rec.next(t, e.ctx, 1)
	for g.Stats().Unknown != 1 {
		select {
		case <-e.ctx.Done():
			t.Fatalf("unknown completion not counted: %+v", g.Stats())
		case <-time.After(time.Millisecond):
		}
	}
	if len(b.rec.wcs) != 0 {
		t.Fatal("a detached handler got a completion")
	}
}

// TestPollGroupTeardown: the teardown order with a group: move to Error,
// the handler reaps every flush, then Detach and Close.
func TestPollGroupTeardown(t *testing.T) {
	e := newGroupEnv(t)
	g := e.group(rdma.PollGroupConfig{})
	_, b := e.pair(g, g, 8)
	recv := e.get(8 * 512)
	wrs := make([]rdma.RecvWR, 8)
	for i := range wrs {
		wrs[i] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{recv.SGE(i*512, 512)}}
	}
	_, err := b.qp.PostRecv(wrs)
	e.must(err)
	e.must(b.qp.Modify(rdma.QPAttr{State: rdma.QPError}))
	for i, wc := range b.rec.next(t, e.ctx, 8) {
		if wc.Status != rdma.WCWRFlushErr || wc.ID != wrs[i].ID {
			t.Fatalf("flush %d: %+v", i, wc)
		}
	}
	b.att.Detach()
	e.pool.Put(recv) // every WR covering it is reaped
}

// TestPollGroupCQError: a completion queue that fails (here: overrun by a
// queue pair that posted more than it reserved) is reported to every
// handler once; the group keeps serving Post and closes cleanly.
func TestPollGroupCQError(t *testing.T) {
	e := newGroupEnv(t)
	big := e.group(rdma.PollGroupConfig{})
	small := e.group(rdma.PollGroupConfig{CQEntries: 4})
	qp, err := e.pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: small.CQ(), RecvCQ: small.CQ(), MaxSendWR: 16, MaxRecvWR: 1})
	e.must(err)
	defer qp.Close()
	rec := newRecorder()
	att, err := small.Attach(qp, 1, 1, rec) // reserves 2, will use 8
	e.must(err)
	defer att.Detach()
	peer, err := e.pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: big.CQ(), RecvCQ: big.CQ(), MaxSendWR: 1, MaxRecvWR: 16})
	e.must(err)
	defer peer.Close()
	patt, err := big.Attach(peer, 0, 0, newRecorder())
	e.must(err)
	defer patt.Detach()
	ep, _ := qp.Endpoint(1, 0)
	epp, _ := peer.Endpoint(1, 0)
	param := rdma.ConnParam{RetryCount: 7, RNRRetryCount: 7}
	e.must(qp.ConnectManual(rdma.ManualPath{}, epp, param))
	e.must(peer.ConnectManual(rdma.ManualPath{}, ep, param))
	buf := e.get(4096)
	defer e.pool.Put(buf)
	recvs := make([]rdma.RecvWR, 8)
	sends := make([]rdma.SendWR, 8)
	for i := range recvs {
		recvs[i] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{buf.SGE(i*64, 64)}}
		sends[i] = rdma.SendWR{ID: rdma.EncodeWRID(opSend, uint64(i)), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{buf.SGE(2048+i*64, 64)}}
	}
	_, err = peer.PostRecv(recvs)
	e.must(err)
	// Hold the small group's goroutine so the eight completions land at
	// once in its four-entry queue.
	release, held := make(chan struct{}), make(chan struct{})
	e.must(small.Post(func() { close(held); <-release }))
	<-held
	_, err = qp.PostSend(sends)
	e.must(err)
	close(release)
	select {
	case err := <-rec.errs:
		if !strings.Contains(err.Error(), "completion queue failed") {
			t.Fatalf("HandleError(%v)", err)
		}
	case <-e.ctx.Done():
		t.Fatal("the CQ error was not reported to the handler")
	}
	if small.Err() == nil || small.Stats().Errors != 1 || rec.nerr.Load() != 1 {
		t.Fatalf("after the CQ error: Err %v, stats %+v, %d reports", small.Err(), small.Stats(), rec.nerr.Load())
	}
	if _, err := small.Attach(peer, 1, 1, newRecorder()); err == nil {
		t.Fatal("attach to a failed group succeeded")
	}
	ran := make(chan struct{})
	e.must(small.Post(func() { close(ran) }))
	select {
	case <-ran:
	case <-e.ctx.Done():
		t.Fatal("a failed group stopped serving Post")
	}
}

// TestPollGroupGoroutineEnds: Close ends the group's goroutine.
func TestPollGroupGoroutineEnds(t *testing.T) {
	e := newGroupEnv(t)
	var gs []*rdma.PollGroup
	for range 4 {
		g, err := rdma.NewPollGroup(e.dev, rdma.PollGroupConfig{CQEntries: 64})
		e.must(err)
		t.Cleanup(func() { g.Close() }) // when the test fails early
		gs = append(gs, g)
	}
	// eventually waits (bounded by the test's deadline) for the count of
	// poll group goroutines to satisfy ok: goroutines start and end
	// asynchronously.
	eventually := func(what string, ok func(n int) bool) {
		t.Helper()
		for n := groupGoroutines(); !ok(n); n = groupGoroutines() {
			select {
			case <-e.ctx.Done():
				buf := make([]byte, 1<<20)
				t.Fatalf("%d poll group goroutines: %s:\n%s", n, what, buf[:runtime.Stack(buf, true)])
			case <-time.After(time.Millisecond):
			}
		}
	}
	eventually("want 4 running", func(n int) bool { return n == 4 })
	for _, g := range gs {
		e.must(g.Close())
		e.must(g.Close())
	}
	eventually("they outlive Close", func(n int) bool { return n == 0 })
	if err := gs[0].Post(func() {}); !errors.Is(err, rdma.ErrClosed) {
		t.Fatalf("Post after Close: %v", err)
	}
}

func groupGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "rdma.(*PollGroup).run(")
}

// TestPollGroupDispatchAllocatesNothing: a round trip through a busy
// group (post, poll, dispatch to handlers, hand back over channels)
// allocates nothing.
func TestPollGroupDispatchAllocatesNothing(t *testing.T) {
	e := newGroupEnv(t)
	g := e.group(rdma.PollGroupConfig{Poller: rdma.PollerConfig{BusyPolls: 1 << 30}})
	a, b := e.pair(g, g, 8)
	msg, recv := e.get(64), e.get(64)
	defer e.pool.Put(msg)
	defer e.pool.Put(recv)
	round := pingRound(t, a, b, msg, recv)
	round()
	if allocs := testing.AllocsPerRun(200, round); allocs != 0 {
		t.Fatalf("a poll-dispatch round allocates %.1f times", allocs)
	}
}

func pingRound(t testing.TB, a, b *gconn, msg, recv rdma.Block) func() {
	rw := []rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{recv.SGE(0, 64)}}}
	sw := []rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{msg.SGE(0, 64)}}}
	return func() {
		if _, err := b.qp.PostRecv(rw); err != nil {
			t.Fatal(err)
		}
		if _, err := a.qp.PostSend(sw); err != nil {
			t.Fatal(err)
		}
		<-a.rec.wcs
		<-b.rec.wcs
	}
}

// BenchmarkPollGroupRoundTrip: SEND/RECV through one busy poll group,
// completions dispatched to two handlers; 0 allocs/op with -benchmem.
func BenchmarkPollGroupRoundTrip(b *testing.B) {
	e := newGroupEnv(b)
	g := e.group(rdma.PollGroupConfig{Poller: rdma.PollerConfig{BusyPolls: 1 << 30}})
	x, y := e.pair(g, g, 8)
	msg, recv := e.get(64), e.get(64)
	defer e.pool.Put(msg)
	defer e.pool.Put(recv)
	round := pingRound(b, x, y, msg, recv)
	b.ReportAllocs()
	for b.Loop() {
		round()
	}
}
