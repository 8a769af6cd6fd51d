package rdmatest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
)

// Env says what the suite runs against.
type Env struct {
	// Provider is the provider under test. Required.
	Provider driver.Provider
	// Device is the device to open, e.g. "soft0" or "rxe0". Required.
	Device string
	// Port is the device port to use; 0 means 1.
	Port uint8
	// GIDIndex is the GID table index manual connections send from (on
	// rxe, 1 is the RoCE v2 link-local GID).
	GIDIndex int
	// ListenAddr is the CM address the connection-manager cases listen
	// on: a host that the device owns and port 0 (any free port), e.g.
	// "127.0.0.1:0" for soft or "10.0.2.1:0" for the rxe netdev's
	// address. Dialers dial the listener's Addr. Required unless Caps.NoCM:
	// without it every connection-manager case fails (it does not skip), so
	// a provider that has the CM cannot pass the suite untested.
	ListenAddr string
	// Caps declares what the provider legitimately cannot do.
	Caps Caps
	// Strict fails every case that would otherwise skip (a capability the
	// environment declares missing, a platform limit). Set it where a skip
	// can only mean a misconfigured environment, such as the Soft-RoCE
	// stage of make test-rxe, so that such a run cannot pass by skipping.
	Strict bool
	// Timeout bounds each case; 0 means 20 s. A case that hangs fails.
	Timeout time.Duration
}

// Caps lists the only things a provider may declare it cannot do; each
// skips the cases that need it, loudly.
type Caps struct {
	// NoCM: the device has no RDMA CM route (rxe bound to lo, for
	// example): connection-manager cases skip.
	NoCM bool
}

func (e *Env) defaults() {
	if e.Port == 0 {
		e.Port = 1
	}
	if e.Timeout == 0 {
		e.Timeout = 20 * time.Second
	}
}

// Run runs the conformance suite against env, one subtest per case. Cases
// run one after the other (Soft-RoCE drops completions when many queue
// pairs drive it concurrently).
func Run(t *testing.T, env Env) {
	t.Helper()
	if env.Provider == nil || env.Device == "" {
		t.Fatal("rdmatest: Env.Provider and Env.Device are required")
	}
	env.defaults()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if env.Strict {
				// Runs as the skip unwinds; a failure outranks the skip.
				defer func() {
					if t.Skipped() {
						t.Errorf("rdmatest: %s skipped, and Env.Strict says every case must run here", c.name)
					}
				}()
			}
			if c.cm && env.Caps.NoCM {
				t.Skipf("rdmatest: %s needs the RDMA CM, which this environment declares it lacks (Caps.NoCM)", c.name)
			}
			if c.cm && env.ListenAddr == "" {
				t.Fatalf("rdmatest: %s needs Env.ListenAddr (a host the device owns, port 0); declare Caps.NoCM to skip the CM cases instead", c.name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), env.Timeout)
			defer cancel()
			c.run(&T{TB: t, env: env, ctx: ctx})
		})
	}
}

// T is a case's test handle: the testing.T, the environment and a context
// bounded by Env.Timeout.
type T struct {
	testing.TB
	env Env
	ctx context.Context
}

type testCase struct {
	name string
	cm   bool // needs the CM
	run  func(t *T)
}

// must fails the test when err is not nil.
func (t *T) must(err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails unless errors.Is(err, target).
func (t *T) wantErr(err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}

// side is one end of a connection with its own resources.
type side struct {
	dev  *rdma.Device
	pd   *rdma.ProtectionDomain
	scq  *rdma.CompletionQueue
	rcq  *rdma.CompletionQueue
	qp   *rdma.QueuePair
	buf  *rdma.Buffer
	mr   *rdma.MemoryRegion
	name string
}

// pairOpts tunes a connected pair.
type pairOpts struct {
	bufSize  int         // per side; 0 means 2 MiB + 64 KiB
	access   rdma.Access // MR access; 0 means local write, remote read and write
	param    rdma.ConnParam
	qpCfg    rdma.QueuePairConfig // capacities (CQs are filled in)
	cqSize   int                  // 0 means 1024
	noRemote bool                 // grant no remote rights on the queue pairs (manual only)
}

func (o *pairOpts) defaults() {
	if o.bufSize == 0 {
		o.bufSize = 2<<20 + 64<<10
	}
	if o.access == 0 {
		o.access = rdma.AccessLocalWrite | rdma.AccessRemoteRead | rdma.AccessRemoteWrite
	}
	if o.param == (rdma.ConnParam{}) {
		o.param = rdma.ConnParam{ResponderResources: 1, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 7}
	}
	if o.cqSize == 0 {
		o.cqSize = 1024
	}
	if o.qpCfg.MaxSendWR == 0 {
		o.qpCfg.MaxSendWR = 256
	}
	if o.qpCfg.MaxRecvWR == 0 {
		o.qpCfg.MaxRecvWR = 256
	}
	if o.qpCfg.MaxSendSGE == 0 {
		o.qpCfg.MaxSendSGE = 4
	}
	if o.qpCfg.MaxRecvSGE == 0 {
		o.qpCfg.MaxRecvSGE = 4
	}
}

// resources allocates a side's PD, CQs, buffer and MR on dev and registers
// their cleanup (children first, each Close checked).
func (t *T) resources(dev *rdma.Device, name string, o pairOpts) *side {
	t.Helper()
	s := &side{dev: dev, name: name}
	var err error
	s.pd, err = dev.AllocPD()
	t.must(err, name+": alloc PD")
	t.Cleanup(func() { t.closeOK(s.pd, name+" PD") })
	s.buf, err = rdma.AllocBuffer(o.bufSize, rdma.BufferOptions{})
	t.must(err, name+": alloc buffer")
	t.Cleanup(func() { t.closeOK(s.buf, name+" buffer") })
	s.mr, err = s.pd.RegisterBuffer(s.buf, o.access)
	t.must(err, name+": register buffer")
	t.Cleanup(func() { t.closeOK(s.mr, name+" MR") })
	s.scq, err = dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: o.cqSize})
	t.must(err, name+": create send CQ")
	t.Cleanup(func() { t.closeOK(s.scq, name+" send CQ") })
	s.rcq, err = dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: o.cqSize})
	t.must(err, name+": create recv CQ")
	t.Cleanup(func() { t.closeOK(s.rcq, name+" recv CQ") })
	return s
}

type closer interface{ Close() error }

func (t *T) closeOK(c closer, what string) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close %s: %v", what, err)
	}
}

// open opens the environment's device and closes it at cleanup.
func (t *T) open() *rdma.Device {
	t.Helper()
	dev, err := rdma.Open(t.env.Provider, t.env.Device)
	t.must(err, "open "+t.env.Device)
	t.Cleanup(func() { t.closeOK(dev, "device") })
	return dev
}

// manualPair connects two queue pairs on the device by hand (Reset ->
// Init -> RTR -> RTS with exchanged endpoints).
func (t *T) manualPair(o pairOpts) (a, b *side) {
	t.Helper()
	o.defaults()
	dev := t.open()
	a, b = t.resources(dev, "a", o), t.resources(dev, "b", o)
	for _, s := range []*side{a, b} {
		cfg := o.qpCfg
		cfg.SendCQ, cfg.RecvCQ = s.scq, s.rcq
		qp, err := s.pd.NewQueuePair(cfg)
		t.must(err, s.name+": create QP")
		s.qp = qp
		t.Cleanup(func() { t.closeOK(qp, s.name+" QP") })
	}
	ea, err := a.qp.Endpoint(t.env.Port, t.env.GIDIndex)
	t.must(err, "a: endpoint")
	eb, err := b.qp.Endpoint(t.env.Port, t.env.GIDIndex)
	t.must(err, "b: endpoint")
	path := rdma.ManualPath{Port: t.env.Port, GIDIndex: t.env.GIDIndex}
	if o.noRemote {
		path.Access = rdma.AccessLocalWrite
	}
	t.must(a.qp.ConnectManual(path, eb, o.param), "a: connect manually")
	t.must(b.qp.ConnectManual(path, ea, o.param), "b: connect manually")
	return a, b
}

// cmPair connects a dialer (a) to a listener (b) through the CM, each side
// on the device the CM picked, exchanging private data.
func (t *T) cmPair(o pairOpts, aPriv, bPriv []byte) (a, b *side, gotA, gotB []byte) {
	t.Helper()
	o.defaults()
	p := t.env.Provider
	l, err := rdma.Listen(p, t.env.ListenAddr, rdma.ListenConfig{})
	t.must(err, "listen on "+t.env.ListenAddr)
	t.Cleanup(func() { t.closeOK(l, "listener") })

	type accepted struct {
		s    *side
		priv []byte
		err  error
	}
	ch := make(chan accepted, 1)
	go func() {
		req, err := l.Accept(t.ctx)
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		s := &side{name: "b", dev: req.Device()}
		ch <- accepted{s: s, priv: req.PrivateData(), err: t.acceptOn(req, s, o, bPriv)}
	}()

	d, err := rdma.Dial(t.ctx, p, l.Addr().String(), rdma.DialConfig{})
	t.must(err, "dial "+l.Addr().String())
	a = t.resources(d.Device(), "a", o)
	cfg := o.qpCfg
	cfg.SendCQ, cfg.RecvCQ = a.scq, a.rcq
	a.qp, err = d.CreateQP(a.pd, cfg)
	t.must(err, "a: create CM QP")
	t.Cleanup(func() { t.closeOK(a.qp, "a QP") })
	gotB, err = d.Connect(t.ctx, o.param, aPriv)
	t.must(err, "connect")
	var acc accepted
	select {
	case acc = <-ch:
	case <-t.ctx.Done():
		t.Fatal("accept did not finish")
	}
	t.cleanupSide(acc.s)
	t.must(acc.err, "accept")
	return a, acc.s, acc.priv, gotB
}

// acceptOn allocates the listener side's resources on the request's
// device and accepts. It runs on the accepting goroutine; the test
// goroutine registers the cleanups (cleanupSide) afterwards.
func (t *T) acceptOn(req *rdma.ConnRequest, s *side, o pairOpts, priv []byte) error {
	var err error
	if s.pd, err = s.dev.AllocPD(); err != nil {
		return err
	}
	if s.buf, err = rdma.AllocBuffer(o.bufSize, rdma.BufferOptions{}); err != nil {
		return err
	}
	if s.mr, err = s.pd.RegisterBuffer(s.buf, o.access); err != nil {
		return err
	}
	if s.scq, err = s.dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: o.cqSize}); err != nil {
		return err
	}
	if s.rcq, err = s.dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: o.cqSize}); err != nil {
		return err
	}
	cfg := o.qpCfg
	cfg.SendCQ, cfg.RecvCQ = s.scq, s.rcq
	if s.qp, err = req.CreateQP(s.pd, cfg); err != nil {
		_ = req.Reject(nil)
		return err
	}
	return req.Accept(t.ctx, o.param, priv)
}

// cleanupSide closes whatever of s exists at the end of the test,
// children first.
func (t *T) cleanupSide(s *side) {
	t.Helper()
	if s == nil {
		return
	}
	add := func(c closer, ok bool, what string) {
		if ok {
			t.Cleanup(func() { t.closeOK(c, s.name+" "+what) })
		}
	}
	add(s.pd, s.pd != nil, "PD")
	add(s.buf, s.buf != nil, "buffer")
	add(s.mr, s.mr != nil, "MR")
	add(s.scq, s.scq != nil, "send CQ")
	add(s.rcq, s.rcq != nil, "recv CQ")
	add(s.qp, s.qp != nil, "QP")
}

// poll collects exactly n completions from cq, failing when the case's
// context ends first.
func (t *T) poll(cq *rdma.CompletionQueue, n int) []rdma.Completion {
	t.Helper()
	out := make([]rdma.Completion, 0, n)
	buf := make([]rdma.Completion, 16)
	for len(out) < n {
		k, err := cq.WaitPoll(t.ctx, buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatalf("poll: have %d of %d completions: %v", len(out), n, err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

// quiet checks that cq yields nothing more for a short while (bounded; no
// timing is asserted).
func (t *T) quiet(cq *rdma.CompletionQueue, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, 50*time.Millisecond)
	defer cancel()
	buf := make([]rdma.Completion, 4)
	n, err := cq.WaitPoll(ctx, buf)
	if n > 0 {
		t.Fatalf("%s: unexpected extra completion %+v", what, buf[0])
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitState waits (bounded) until qp reports want.
func (t *T) waitState(qp *rdma.QueuePair, want rdma.QPState, what string) {
	t.Helper()
	var got rdma.QPState
	for {
		var err error
		got, err = qp.State()
		t.must(err, what+": query state")
		if got == want {
			return
		}
		select {
		case <-t.ctx.Done():
			t.Fatalf("%s: queue pair in %v, want %v", what, got, want)
		case <-time.After(time.Millisecond):
		}
	}
}

// ok fails unless wc succeeded with the given id and opcode.
func (t *T) ok(wc rdma.Completion, id uint64, op rdma.WCOpcode, what string) {
	t.Helper()
	if wc.Status != rdma.WCSuccess || wc.ID != id || wc.Opcode != op {
		t.Fatalf("%s: completion id %#x status %v opcode %v, want id %#x success %v", what, wc.ID, wc.Status, wc.Opcode, id, op)
	}
}

func fill(b []byte, seed byte) {
	for i := range b {
		b[i] = seed + byte(i*7)
	}
}

func describe(wcs []rdma.Completion) string {
	s := ""
	for _, wc := range wcs {
		s += fmt.Sprintf("[id %#x %v %v] ", wc.ID, wc.Status, wc.Opcode)
	}
	return s
}
