//go:build linux && cgo

package verbs

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goiser/goiser/rdma/driver"
)

// Device tests: they run when ISER_TEST_DEVICE names a device (and, for the
// CM, ISER_TEST_ADDR one of its IP addresses). make test-rxe runs them in
// the Soft-RoCE guest.

const skipMsg = "set ISER_TEST_DEVICE=rxe0 (and ISER_TEST_ADDR=<its IP> for the CM) to run the verbs device tests; see docs/testing.md; make test-rxe runs them in the Soft-RoCE guest"

func requireDevice(tb testing.TB) string {
	tb.Helper()
	name := os.Getenv("ISER_TEST_DEVICE")
	if name == "" {
		tb.Skip(skipMsg)
	}
	return name
}

func requireAddr(tb testing.TB) string {
	tb.Helper()
	requireDevice(tb)
	a := os.Getenv("ISER_TEST_ADDR")
	if a == "" {
		tb.Skip(skipMsg)
	}
	return a
}

// offHeap returns n bytes of mmap'ed memory, unmapped at the end of the test.
func offHeap(tb testing.TB, n int) []byte {
	tb.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatalf("mmap %d bytes: %v", n, err)
	}
	tb.Cleanup(func() { unix.Munmap(b) })
	return b
}

func closeT(tb testing.TB, what string, c interface{ Close() error }) {
	tb.Helper()
	if err := c.Close(); err != nil {
		tb.Errorf("close %s: %v", what, err)
	}
}

// pollN polls cq until it has n completions or 10 s have passed.
func pollN(tb testing.TB, cq driver.CQ, n int) []driver.Completion {
	tb.Helper()
	out := make([]driver.Completion, 0, n)
	buf := make([]driver.Completion, 16)
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n {
		k, err := cq.Poll(buf)
		if err != nil {
			tb.Fatalf("poll: %v", err)
		}
		out = append(out, buf[:k]...)
		if k == 0 {
			if time.Now().After(deadline) {
				tb.Fatalf("polled %d of %d completions in 10 s: %+v", len(out), n, out)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	return out
}

// loop is two RC QPs of one device connected to each other by hand
// (Reset -> Init -> RTR -> RTS with the GRH, as RoCE needs).
type loop struct {
	dev    driver.Context
	pd     driver.PD
	cq     driver.CQ
	a, b   driver.QP
	mem    []byte
	mr     driver.MR
	closed bool
}

func gidIndex(tb testing.TB, dev driver.Context) (int, driver.GID) {
	tb.Helper()
	if s := os.Getenv("ISER_TEST_GID_INDEX"); s != "" {
		i, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("ISER_TEST_GID_INDEX=%q: %v", s, err)
		}
		g, err := dev.QueryGID(1, i)
		if err != nil {
			tb.Fatalf("query GID %d: %v", i, err)
		}
		return i, g
	}
	pa, err := dev.QueryPort(1)
	if err != nil {
		tb.Fatalf("query port: %v", err)
	}
	for i := 0; i < pa.GIDTableLen; i++ {
		g, err := dev.QueryGID(1, i)
		if err == nil && g != (driver.GID{}) {
			return i, g
		}
	}
	tb.Fatal("no GID on port 1")
	return 0, driver.GID{}
}

func newLoop(tb testing.TB, cfg driver.QPConfig) *loop {
	tb.Helper()
	p := Provider()
	dev, err := p.Open(requireDevice(tb))
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	l := &loop{dev: dev}
	tb.Cleanup(l.close)
	pa, err := dev.QueryPort(1)
	if err != nil {
		tb.Fatalf("query port: %v", err)
	}
	idx, gid := gidIndex(tb, dev)
	if l.pd, err = dev.AllocPD(); err != nil {
		tb.Fatalf("alloc PD: %v", err)
	}
	if l.cq, err = dev.CreateCQ(driver.CQConfig{Entries: 2*cfg.MaxSendWR + 2*cfg.MaxRecvWR}); err != nil {
		tb.Fatalf("create CQ: %v", err)
	}
	if l.a, err = l.pd.CreateQP(cfg, l.cq, l.cq); err != nil {
		tb.Fatalf("create QP: %v", err)
	}
	if l.b, err = l.pd.CreateQP(cfg, l.cq, l.cq); err != nil {
		tb.Fatalf("create QP: %v", err)
	}
	l.mem = offHeap(tb, 1<<20)
	if l.mr, err = l.pd.RegMR(l.mem, driver.AccessLocalWrite|driver.AccessRemoteWrite|driver.AccessRemoteRead); err != nil {
		tb.Fatalf("reg MR: %v", err)
	}
	for _, q := range [][2]driver.QP{{l.a, l.b}, {l.b, l.a}} {
		steps := []driver.QPAttr{
			{State: driver.QPInit, Port: 1, Access: driver.AccessRemoteWrite | driver.AccessRemoteRead},
			{State: driver.QPRTR, Port: 1, PathMTU: pa.ActiveMTU, DestQPN: q[1].Num(), RQPSN: 0, MaxDestRdAtomic: 1,
				MinRNRTimer: 12, Remote: driver.Endpoint{LID: pa.LID, GID: gid, GIDIndex: idx, Global: true, HopLimit: 64}},
			{State: driver.QPRTS, SQPSN: 0, Timeout: 14, RetryCount: 7, RNRRetry: 7, MaxRdAtomic: 1},
		}
		for _, s := range steps {
			if err := q[0].Modify(s); err != nil {
				tb.Fatalf("modify QP %d to %s: %v", q[0].Num(), s.State, err)
			}
		}
		if st, err := q[0].State(); err != nil || st != driver.QPRTS {
			tb.Fatalf("QP state %s, %v; want RTS", st, err)
		}
	}
	return l
}

func (l *loop) close() {
	if l.closed {
		return
	}
	l.closed = true
	for _, c := range []interface{ Close() error }{l.a, l.b, l.mr, l.cq, l.pd, l.dev} {
		if c != nil {
			c.Close()
		}
	}
}

func (l *loop) sge(off, n int) []driver.SGE {
	return []driver.SGE{{Addr: l.mr.Addr() + uint64(off), Length: uint32(n), LKey: l.mr.LKey()}}
}

func TestDeviceInfo(t *testing.T) {
	name := requireDevice(t)
	p := Provider()
	devs, err := p.Devices()
	if err != nil {
		t.Fatalf("devices: %v", err)
	}
	found := false
	for _, d := range devs {
		t.Logf("device %s guid %#x netdevs %v", d.Name, d.NodeGUID, d.NetDevs)
		found = found || d.Name == name
	}
	if !found {
		t.Fatalf("%s not in Devices() = %v", name, devs)
	}
	dev, err := p.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer closeT(t, "device", dev)
	if dev.Info().Name != name {
		t.Fatalf("Info().Name = %q", dev.Info().Name)
	}
	a, err := dev.Query()
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if a.PhysPortCount < 1 || a.MaxQPWR <= 0 || a.MaxCQE <= 0 {
		t.Fatalf("implausible attributes %+v", a)
	}
	pa, err := dev.QueryPort(1)
	if err != nil {
		t.Fatalf("query port: %v", err)
	}
	if pa.State != driver.PortActive || pa.ActiveMTU == 0 {
		t.Fatalf("port 1: %+v, want ACTIVE with an MTU", pa)
	}
	if _, err := dev.QueryPort(200); err == nil {
		t.Fatal("query port 200 succeeded")
	}
	if addr := os.Getenv("ISER_TEST_ADDR"); addr != "" {
		got, err := DeviceForAddr(addr)
		if err != nil || got != name {
			t.Fatalf("DeviceForAddr(%s) = %q, %v; want %s", addr, got, err, name)
		}
	}
}

func TestLoopbackSendWriteRead(t *testing.T) {
	l := newLoop(t, driver.QPConfig{Type: driver.RC, MaxSendWR: 64, MaxRecvWR: 64, MaxSendSGE: 2, MaxRecvSGE: 2, MaxInline: 64})
	copy(l.mem[0:], "hello over rxe")
	if n, err := l.b.PostRecv([]driver.RecvWR{{ID: 100, SGL: l.sge(4096, 256)}}); n != 1 || err != nil {
		t.Fatalf("post recv = %d, %v", n, err)
	}
	if n, err := l.a.PostSend([]driver.SendWR{{ID: 1, Op: driver.OpSendImm, Flags: driver.FlagSignaled, SGL: l.sge(0, 14), Imm: 0xdeadbeef}}); n != 1 || err != nil {
		t.Fatalf("post send = %d, %v", n, err)
	}
	got := map[uint64]driver.Completion{}
	for _, c := range pollN(t, l.cq, 2) {
		if err := c.Err(); err != nil {
			t.Fatalf("completion: %v", err)
		}
		got[c.ID] = c
	}
	r := got[100]
	if r.Opcode != driver.WCRecv || r.ByteLen != 14 || r.Flags&driver.WCWithImm == 0 || r.Imm != 0xdeadbeef || r.QPNum != l.b.Num() {
		t.Fatalf("receive completion %+v", r)
	}
	if got[1].Opcode != driver.WCSend {
		t.Fatalf("send completion %+v", got[1])
	}
	if !bytes.Equal(l.mem[4096:4096+14], []byte("hello over rxe")) {
		t.Fatalf("received %q", l.mem[4096:4096+14])
	}

	// RDMA WRITE a batch, then READ it back.
	for i := range 4096 {
		l.mem[8192+i] = byte(i * 7)
	}
	wrs := make([]driver.SendWR, 8)
	for i := range wrs {
		wrs[i] = driver.SendWR{ID: uint64(10 + i), Op: driver.OpRDMAWrite, SGL: l.sge(8192+512*i, 512),
			Remote: l.mr.Addr() + uint64(65536+512*i), RKey: l.mr.RKey()}
	}
	wrs[7].Flags = driver.FlagSignaled
	if n, err := l.a.PostSend(wrs); n != 8 || err != nil {
		t.Fatalf("post 8 writes = %d, %v", n, err)
	}
	if c := pollN(t, l.cq, 1)[0]; c.ID != 17 || c.Err() != nil || c.Opcode != driver.WCRDMAWrite {
		t.Fatalf("write completion %+v", c)
	}
	if !bytes.Equal(l.mem[65536:65536+4096], l.mem[8192:8192+4096]) {
		t.Fatal("RDMA WRITE did not place the data")
	}
	if n, err := l.b.PostSend([]driver.SendWR{{ID: 20, Op: driver.OpRDMARead, Flags: driver.FlagSignaled,
		SGL: l.sge(131072, 4096), Remote: l.mr.Addr() + 65536, RKey: l.mr.RKey()}}); n != 1 || err != nil {
		t.Fatalf("post read = %d, %v", n, err)
	}
	if c := pollN(t, l.cq, 1)[0]; c.ID != 20 || c.Err() != nil || c.Opcode != driver.WCRDMARead {
		t.Fatalf("read completion %+v", c)
	}
	if !bytes.Equal(l.mem[131072:131072+4096], l.mem[8192:8192+4096]) {
		t.Fatal("RDMA READ did not bring the data back")
	}

	// A remote access outside the region fails and moves the QP to error.
	if n, err := l.a.PostSend([]driver.SendWR{{ID: 30, Op: driver.OpRDMAWrite, Flags: driver.FlagSignaled,
		SGL: l.sge(0, 64), Remote: l.mr.Addr() + uint64(len(l.mem)), RKey: l.mr.RKey()}}); n != 1 || err != nil {
		t.Fatalf("post bad write = %d, %v", n, err)
	}
	if c := pollN(t, l.cq, 1)[0]; c.ID != 30 || c.Status != driver.WCRemAccessErr {
		t.Fatalf("out-of-bounds write completion %+v, want remote access error", c)
	}
	if st, _ := l.a.State(); st != driver.QPError {
		t.Fatalf("QP state after a remote access error = %s, want ERR", st)
	}
}

func TestPostErrors(t *testing.T) {
	l := newLoop(t, driver.QPConfig{Type: driver.RC, MaxSendWR: 4, MaxRecvWR: 4, MaxSendSGE: 1, MaxRecvSGE: 1})
	// Too many SGEs: refused before the device sees it.
	n, err := l.a.PostSend([]driver.SendWR{{ID: 1, Op: driver.OpSend, SGL: append(l.sge(0, 8), l.sge(8, 8)...)}})
	if n != 0 || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("2 SGEs on a 1-SGE QP: %d, %v", n, err)
	}
	// More WRs than the queue holds: the device accepts some, then ErrQueueFull.
	wrs := make([]driver.SendWR, 64)
	for i := range wrs {
		wrs[i] = driver.SendWR{ID: uint64(i), Op: driver.OpRDMAWrite, SGL: l.sge(0, 8), Remote: l.mr.Addr() + 4096, RKey: l.mr.RKey()}
	}
	wrs[63].Flags = driver.FlagSignaled
	n, err = l.a.PostSend(wrs)
	if n >= 64 || !errors.Is(err, driver.ErrQueueFull) {
		t.Logf("posting 64 WRs on a 4-WR queue: %d accepted, %v (the device may size queues up)", n, err)
	}
	if n > 0 && n < 64 {
		// Drain what was accepted: post one signaled WR to cover them.
		for {
			k, err := l.a.PostSend([]driver.SendWR{{ID: 999, Op: driver.OpRDMAWrite, Flags: driver.FlagSignaled, SGL: l.sge(0, 8), Remote: l.mr.Addr() + 4096, RKey: l.mr.RKey()}})
			if k == 1 {
				break
			}
			if !errors.Is(err, driver.ErrQueueFull) {
				t.Fatalf("post after full: %v", err)
			}
			pollN(t, l.cq, 0)
			time.Sleep(time.Millisecond)
		}
	}
	// Reap before closing (Close does not flush): the last signaled WR
	// covers the unsignaled ones before it (wrs[63], or the WR 999 above).
	if n > 0 {
		pollN(t, l.cq, 1)
	}
	l.close()
	if _, err := l.a.PostSend(wrs[:1]); !errors.Is(err, driver.ErrClosed) {
		t.Fatalf("post on a closed QP: %v, want ErrClosed", err)
	}
}

func TestCQWait(t *testing.T) {
	l := newLoop(t, driver.QPConfig{Type: driver.RC, MaxSendWR: 8, MaxRecvWR: 8, MaxSendSGE: 1, MaxRecvSGE: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.cq.Arm(false); err != nil {
		t.Fatalf("arm: %v", err)
	}
	// Nothing is pending: Wait ends with the context.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	if err := l.cq.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with nothing pending: %v, want DeadlineExceeded", err)
	}
	cancelShort()
	waited := make(chan error, 1)
	go func() { waited <- l.cq.Wait(ctx) }()
	if n, err := l.a.PostSend([]driver.SendWR{{ID: 5, Op: driver.OpRDMAWrite, Flags: driver.FlagSignaled, SGL: l.sge(0, 64), Remote: l.mr.Addr() + 4096, RKey: l.mr.RKey()}}); n != 1 || err != nil {
		t.Fatalf("post: %d %v", n, err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if c := pollN(t, l.cq, 1)[0]; c.ID != 5 || c.Err() != nil {
		t.Fatalf("completion %+v", c)
	}
	// Close wakes a waiter with ErrClosed.
	if err := l.cq.Arm(false); err != nil {
		t.Fatalf("arm: %v", err)
	}
	go func() { waited <- l.cq.Wait(ctx) }()
	time.Sleep(20 * time.Millisecond)
	l.a.Close()
	l.b.Close()
	l.a, l.b = nil, nil
	if err := l.cq.Close(); err != nil {
		t.Fatalf("close CQ: %v", err)
	}
	select {
	case err := <-waited:
		if !errors.Is(err, driver.ErrClosed) {
			t.Fatalf("wait across Close: %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not wake the waiter")
	}
}

func TestCMConnect(t *testing.T) {
	addr := requireAddr(t)
	p := Provider()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := p.Listen(net.JoinHostPort(addr, "0"), driver.ListenConfig{})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer closeT(t, "listener", ln)
	port := ln.Addr().(*net.TCPAddr).Port
	if port == 0 {
		t.Fatalf("listener address %v has no port", ln.Addr())
	}
	qcfg := driver.QPConfig{Type: driver.RC, MaxSendWR: 8, MaxRecvWR: 8, MaxSendSGE: 1, MaxRecvSGE: 1}
	type side struct {
		pd  driver.PD
		cq  driver.CQ
		qp  driver.QP
		mr  driver.MR
		mem []byte
	}
	setup := func(dev driver.Context) *side {
		s := &side{mem: offHeap(t, 4096)}
		var err error
		if s.pd, err = dev.AllocPD(); err != nil {
			t.Fatal(err)
		}
		if s.cq, err = dev.CreateCQ(driver.CQConfig{Entries: 32}); err != nil {
			t.Fatal(err)
		}
		if s.mr, err = s.pd.RegMR(s.mem, driver.AccessLocalWrite); err != nil {
			t.Fatal(err)
		}
		return s
	}
	teardown := func(s *side) {
		for _, c := range []interface{ Close() error }{s.qp, s.mr, s.cq, s.pd} {
			if c != nil {
				c.Close()
			}
		}
	}
	srvErr := make(chan error, 1)
	srv := make(chan *side, 1)
	go func() {
		req, err := ln.GetRequest(ctx)
		if err != nil {
			srvErr <- err
			return
		}
		if string(req.PrivateData()[:5]) != "hello" {
			req.Reject([]byte("bad"))
			srvErr <- errors.New("wrong private data " + string(req.PrivateData()))
			return
		}
		s := setup(req.Context())
		srv <- s
		if s.qp, err = req.CreateQP(s.pd, qcfg, s.cq, s.cq); err != nil {
			srvErr <- err
			return
		}
		if _, err := s.qp.PostRecv([]driver.RecvWR{{ID: 1, SGL: []driver.SGE{{Addr: s.mr.Addr(), Length: 4096, LKey: s.mr.LKey()}}}}); err != nil {
			srvErr <- err
			return
		}
		srvErr <- req.Accept(ctx, driver.ConnParam{ResponderResources: 1, InitiatorDepth: 1, RNRRetryCount: 7}, []byte("welcome"))
	}()
	d, err := p.Dial(ctx, net.JoinHostPort(addr, strconv.Itoa(port)), driver.DialConfig{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	cli := setup(d.Context())
	defer teardown(cli)
	if cli.qp, err = d.CreateQP(cli.pd, qcfg, cli.cq, cli.cq); err != nil {
		t.Fatalf("create QP: %v", err)
	}
	pd, err := d.Connect(ctx, driver.ConnParam{ResponderResources: 1, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 7}, []byte("hello"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if !bytes.HasPrefix(pd, []byte("welcome")) {
		t.Fatalf("accept private data %q", pd)
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	s := <-srv
	defer teardown(s)
	copy(cli.mem, "ping")
	if _, err := cli.qp.PostSend([]driver.SendWR{{ID: 2, Op: driver.OpSend, Flags: driver.FlagSignaled, SGL: []driver.SGE{{Addr: cli.mr.Addr(), Length: 4, LKey: cli.mr.LKey()}}}}); err != nil {
		t.Fatal(err)
	}
	if c := pollN(t, s.cq, 1)[0]; c.Err() != nil || c.ByteLen != 4 || string(s.mem[:4]) != "ping" {
		t.Fatalf("server receive %+v %q", c, s.mem[:4])
	}
	pollN(t, cli.cq, 1)
	// Disconnect from the client; the server sees it.
	if err := cli.qp.Disconnect(); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	select {
	case <-s.qp.Disconnected():
	case <-ctx.Done():
		t.Fatal("server did not see the disconnect")
	}
}

func TestCMReject(t *testing.T) {
	addr := requireAddr(t)
	p := Provider()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := p.Listen(net.JoinHostPort(addr, "0"), driver.ListenConfig{})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer closeT(t, "listener", ln)
	go func() {
		if req, err := ln.GetRequest(ctx); err == nil {
			req.Reject([]byte("go away"))
		}
	}()
	d, err := p.Dial(ctx, ln.Addr().String(), driver.DialConfig{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	dev := d.Context()
	pd, _ := dev.AllocPD()
	cq, _ := dev.CreateCQ(driver.CQConfig{Entries: 8})
	qp, err := d.CreateQP(pd, driver.QPConfig{Type: driver.RC, MaxSendWR: 4, MaxRecvWR: 4, MaxSendSGE: 1, MaxRecvSGE: 1}, cq, cq)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Connect(ctx, driver.ConnParam{RetryCount: 7, RNRRetryCount: 7}, []byte("hi"))
	var rej *driver.RejectError
	if !errors.As(err, &rej) || !bytes.HasPrefix(rej.PrivateData, []byte("go away")) {
		t.Fatalf("connect to a rejecting listener: %v, want a RejectError with its private data", err)
	}
	closeT(t, "QP", qp)
	closeT(t, "CQ", cq)
	closeT(t, "PD", pd)
	// Nothing listens here any more: Dial or Connect fails, never hangs.
	ln.Close()
	if d2, err := p.Dial(ctx, ln.Addr().String(), driver.DialConfig{}); err == nil {
		d2.Close()
	}
}

// BenchmarkPostPollBatch posts a batch of 32 signaled 64-byte RDMA WRITEs
// on a loopback QP pair and polls their completions: one cgo call to post
// and about one per poll. ns/WR is the cost per work request.
func BenchmarkPostPollBatch(b *testing.B) {
	const batch = 32
	l := newLoop(b, driver.QPConfig{Type: driver.RC, MaxSendWR: batch, MaxRecvWR: 1, MaxSendSGE: 1, MaxRecvSGE: 1})
	wrs := make([]driver.SendWR, batch)
	sgl := make([]driver.SGE, batch)
	for i := range wrs {
		sgl[i] = driver.SGE{Addr: l.mr.Addr() + uint64(64*i), Length: 64, LKey: l.mr.LKey()}
		wrs[i] = driver.SendWR{ID: uint64(i), Op: driver.OpRDMAWrite, Flags: driver.FlagSignaled, SGL: sgl[i : i+1],
			Remote: l.mr.Addr() + 65536 + uint64(64*i), RKey: l.mr.RKey()}
	}
	wc := make([]driver.Completion, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n, err := l.a.PostSend(wrs); n != batch || err != nil {
			b.Fatalf("post: %d %v", n, err)
		}
		for got := 0; got < batch; {
			n, err := l.cq.Poll(wc[got:])
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range wc[got : got+n] {
				if c.Status != driver.WCSuccess {
					b.Fatalf("completion %+v", c)
				}
			}
			got += n
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/WR")
}

// TestFailedDestroyKeepsObjectOpen: the kernel refuses to destroy a CQ or
// a PD that QPs and MRs still use (EBUSY). Package rdma refuses those
// closes before the provider sees them, but the provider must be right on
// its own: the refused object stays open and usable (the CQ's Wait gets a
// fresh fd), and a retry once its users are gone destroys it.
func TestFailedDestroyKeepsObjectOpen(t *testing.T) {
	l := newLoop(t, driver.QPConfig{Type: driver.RC, MaxSendWR: 8, MaxRecvWR: 8, MaxSendSGE: 1, MaxRecvSGE: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.cq.Close(); err == nil {
		t.Fatal("destroyed a CQ that two QPs use")
	} else {
		t.Logf("close of a CQ in use: %v", err)
	}
	if err := l.pd.Close(); err == nil {
		t.Fatal("deallocated a PD that two QPs and an MR use")
	} else {
		t.Logf("close of a PD in use: %v", err)
	}
	// Both still work: the CQ completes and wakes a waiter, the PD registers.
	if err := l.cq.Arm(false); err != nil {
		t.Fatalf("arm after a failed close: %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- l.cq.Wait(ctx) }()
	if n, err := l.a.PostSend([]driver.SendWR{{ID: 7, Op: driver.OpRDMAWrite, Flags: driver.FlagSignaled, SGL: l.sge(0, 64), Remote: l.mr.Addr() + 4096, RKey: l.mr.RKey()}}); n != 1 || err != nil {
		t.Fatalf("post after a failed CQ close: %d %v", n, err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("wait after a failed CQ close: %v", err)
	}
	if c := pollN(t, l.cq, 1)[0]; c.ID != 7 || c.Err() != nil {
		t.Fatalf("completion after a failed CQ close: %+v", c)
	}
	mr, err := l.pd.RegMR(l.mem[:4096], driver.AccessLocalWrite)
	if err != nil {
		t.Fatalf("register on a PD whose close failed: %v", err)
	}
	// Children first; the retries succeed, and a second Close is a no-op.
	for _, c := range []struct {
		what string
		c    interface{ Close() error }
	}{{"MR", mr}, {"QP a", l.a}, {"QP b", l.b}, {"MR", l.mr}, {"CQ (retry)", l.cq}, {"CQ again", l.cq}, {"PD (retry)", l.pd}, {"PD again", l.pd}} {
		if err := c.c.Close(); err != nil {
			t.Fatalf("close %s: %v", c.what, err)
		}
	}
	l.a, l.b, l.mr, l.cq, l.pd = nil, nil, nil, nil, nil
}
