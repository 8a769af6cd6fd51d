package rdmatest

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma"
	"golang.org/x/sys/unix"
)

// cases is the suite, in order.
var cases = []testCase{
	{name: "DeviceQuery", run: testDeviceQuery},
	{name: "Lifecycle", run: testLifecycle},
	{name: "GoHeapRefused", run: testGoHeapRefused},
	{name: "ManualModify", run: testManualModify},
	{name: "SendRecvSizes", run: testSendRecvSizes},
	{name: "BatchInOrder", run: testBatchInOrder},
	{name: "BatchPartial", run: testBatchPartial},
	{name: "SharedCQ", run: testSharedCQ},
	{name: "SGL", run: testSGL},
	{name: "Immediate", run: testImmediate},
	{name: "Unsignaled", run: testUnsignaled},
	{name: "WriteRead", run: testWriteRead},
	{name: "CompletionOrder", run: testCompletionOrder},
	{name: "RemoteAccessErrors", run: testRemoteAccessErrors},
	{name: "RecvTooSmall", run: testRecvTooSmall},
	{name: "RNRRetryExceeded", run: testRNRExceeded},
	{name: "RNRRetryForever", run: testRNRForever},
	{name: "PostAfterError", run: testPostAfterError},
	{name: "ClosedQP", run: testClosedQP},
	{name: "CloseDoesNotFlush", run: testCloseDoesNotFlush},
	{name: "ClosedQPReceivesNothing", run: testClosedQPReceivesNothing},
	{name: "ErrorFlushesEveryWR", run: testErrorFlushesEveryWR},
	{name: "CQWait", run: testCQWait},
	{name: "SharedCQWait", run: testSharedCQWait},
	{name: "PollGroup", run: testPollGroup},
	{name: "CMAccept", cm: true, run: testCMAccept},
	{name: "CMReject", cm: true, run: testCMReject},
	{name: "CMNoListener", cm: true, run: testCMNoListener},
	{name: "CMDisconnect", cm: true, run: testCMDisconnect},
	{name: "CMRNRRetry", cm: true, run: testCMRNRRetry},
	{name: "CMTeardown", cm: true, run: testCMTeardown},
	{name: "CMCloseDisconnectsPeer", cm: true, run: testCMCloseDisconnectsPeer},
}

const (
	opRecv uint8 = iota + 1
	opSend
	opWrite
	opRead
)

func testDeviceQuery(t *T) {
	infos, err := rdma.Devices(t.env.Provider)
	t.must(err, "list devices")
	found := false
	for _, d := range infos {
		found = found || d.Name == t.env.Device
	}
	if !found {
		t.Fatalf("device %s not among %+v", t.env.Device, infos)
	}
	dev := t.open()
	if dev.Info().Name != t.env.Device {
		t.Fatalf("Info().Name = %q", dev.Info().Name)
	}
	desc, err := dev.Query()
	t.must(err, "query device")
	a := desc.Attr
	if a.PhysPortCount < 1 || a.MaxQPWR < 1 || a.MaxSGE < 1 || a.MaxCQE < 1 || a.MaxQP < 1 || a.MaxMRSize == 0 {
		t.Fatalf("implausible device attributes %+v", a)
	}
	if len(desc.Ports) != int(a.PhysPortCount) {
		t.Fatalf("%d ports described, device has %d", len(desc.Ports), a.PhysPortCount)
	}
	pa, err := dev.QueryPort(t.env.Port)
	t.must(err, "query port")
	if pa.State != rdma.PortActive {
		t.Fatalf("port %d is %v, want ACTIVE", t.env.Port, pa.State)
	}
	if pa.ActiveMTU < 256 || pa.ActiveMTU > 4096 {
		t.Fatalf("port active MTU %d", pa.ActiveMTU)
	}
	gid, err := dev.QueryGID(t.env.Port, t.env.GIDIndex)
	t.must(err, "query GID")
	if gid == (rdma.GID{}) {
		t.Fatalf("GID %d of port %d is zero", t.env.GIDIndex, t.env.Port)
	}
	if _, err := dev.QueryPort(0xff); err == nil {
		t.Fatal("query of port 255 succeeded")
	}
}

func testLifecycle(t *T) {
	dev, err := rdma.Open(t.env.Provider, t.env.Device)
	t.must(err, "open")
	pd, err := dev.AllocPD()
	t.must(err, "alloc PD")
	buf, err := rdma.AllocBuffer(1<<16, rdma.BufferOptions{})
	t.must(err, "alloc buffer")
	mr, err := pd.RegisterBuffer(buf, rdma.AccessLocalWrite)
	t.must(err, "register")
	cq, err := dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 64})
	t.must(err, "create CQ")
	qp, err := pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq})
	t.must(err, "create QP")
	if s, err := qp.State(); err != nil || s != rdma.QPReset {
		t.Fatalf("new QP state %v, %v; want RESET", s, err)
	}

	// Refuse: parents with live children.
	err = dev.Close()
	t.wantErr(err, rdma.ErrBusy, "close device with a PD and a CQ")
	if !strings.Contains(err.Error(), "2 ") {
		t.Errorf("busy error does not name the count: %v", err)
	}
	t.wantErr(pd.Close(), rdma.ErrBusy, "close PD with an MR and a QP")
	t.wantErr(cq.Close(), rdma.ErrBusy, "close CQ with a QP bound")
	t.wantErr(buf.Close(), rdma.ErrBusy, "close buffer with an MR")

	// Children first; every Close is idempotent.
	for _, c := range []struct {
		c    closer
		what string
	}{{qp, "QP"}, {qp, "QP again"}, {mr, "MR"}, {mr, "MR again"}, {buf, "buffer"}, {buf, "buffer again"},
		{cq, "CQ"}, {cq, "CQ again"}, {pd, "PD"}, {pd, "PD again"}, {dev, "device"}, {dev, "device again"}} {
		t.must(c.c.Close(), "close "+c.what)
	}

	// Use after Close.
	_, err = dev.AllocPD()
	t.wantErr(err, rdma.ErrClosed, "alloc PD on a closed device")
	_, err = dev.NewCompletionQueue(rdma.CompletionQueueConfig{})
	t.wantErr(err, rdma.ErrClosed, "create CQ on a closed device")
	_, err = pd.RegisterMemory(make([]byte, 8), 0) // refused either way
	if err == nil {
		t.Fatal("register on a closed PD succeeded")
	}
	_, err = qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 0), Op: rdma.OpSend}})
	t.wantErr(err, rdma.ErrClosed, "post send on a closed QP")
	_, err = cq.Poll(make([]rdma.Completion, 1))
	t.wantErr(err, rdma.ErrClosed, "poll a closed CQ")
	t.wantErr(cq.Wait(t.ctx), rdma.ErrClosed, "wait on a closed CQ")
}

func testGoHeapRefused(t *T) {
	if runtime.GOOS != "linux" {
		t.Skipf("rdma can tell Go-heap memory from a Buffer only on Linux (/proc/self/maps), not on %s", runtime.GOOS)
	}
	dev := t.open()
	pd, err := dev.AllocPD()
	t.must(err, "alloc PD")
	t.Cleanup(func() { t.closeOK(pd, "PD") })

	heap := make([]byte, 1<<16)
	_, err = pd.RegisterMemory(heap, rdma.AccessLocalWrite)
	t.wantErr(err, rdma.ErrNotOffHeap, "register Go-heap memory")
	var stack [512]byte
	_, err = pd.RegisterMemory(stack[:], rdma.AccessLocalWrite)
	t.wantErr(err, rdma.ErrNotOffHeap, "register a Go array")
	priv, err := unix.Mmap(-1, 0, 1<<16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	t.must(err, "mmap private")
	defer unix.Munmap(priv)
	_, err = pd.RegisterMemory(priv, rdma.AccessLocalWrite)
	t.wantErr(err, rdma.ErrNotOffHeap, "register a private mapping")

	buf, err := rdma.AllocBuffer(1<<16, rdma.BufferOptions{})
	t.must(err, "alloc buffer")
	t.Cleanup(func() { t.closeOK(buf, "buffer") })
	mr, err := pd.RegisterMemory(buf.Slice(4096, 8192), rdma.AccessLocalWrite)
	t.must(err, "register part of a buffer")
	if mr.Len() != 8192 || mr.Buffer() != nil || &mr.Bytes()[0] != &buf.Bytes()[4096] {
		t.Fatalf("region of part of a buffer: len %d", mr.Len())
	}
	t.must(mr.Close(), "close MR")
}

func testManualModify(t *T) {
	dev := t.open()
	o := pairOpts{}
	o.defaults()
	a, b := t.resources(dev, "a", o), t.resources(dev, "b", o)
	for _, s := range []*side{a, b} {
		qp, err := s.pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: s.scq, RecvCQ: s.rcq})
		t.must(err, "create QP")
		s.qp = qp
		t.Cleanup(func() { t.closeOK(qp, s.name+" QP") })
	}
	_, err := a.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 0), SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	t.wantErr(err, rdma.ErrInvalidState, "post recv in RESET")
	if err := a.qp.Modify(rdma.QPAttr{State: rdma.QPRTS}); err == nil {
		t.Fatal("RESET -> RTS succeeded")
	}
	ea, err := a.qp.Endpoint(t.env.Port, t.env.GIDIndex)
	t.must(err, "a endpoint")
	eb, err := b.qp.Endpoint(t.env.Port, t.env.GIDIndex)
	t.must(err, "b endpoint")
	if ea.QPN != a.qp.Num() || ea.QPN == eb.QPN {
		t.Fatalf("endpoints %+v %+v", ea, eb)
	}
	pa, err := dev.QueryPort(t.env.Port)
	t.must(err, "query port")
	mtu := min(pa.ActiveMTU, 1024)
	acc := rdma.AccessLocalWrite | rdma.AccessRemoteRead | rdma.AccessRemoteWrite
	global := pa.LinkLayer == rdma.LinkLayerEthernet
	step := func(s *side, remote rdma.QPEndpoint, local rdma.QPEndpoint, attr rdma.QPAttr) {
		t.Helper()
		t.must(s.qp.Modify(attr), s.name+": modify to "+attr.State.String())
		if got, err := s.qp.State(); err != nil || got != attr.State {
			t.Fatalf("%s: state %v, %v after modify to %v", s.name, got, err, attr.State)
		}
	}
	for _, x := range []struct {
		s             *side
		local, remote rdma.QPEndpoint
	}{{a, ea, eb}, {b, eb, ea}} {
		step(x.s, x.remote, x.local, rdma.QPAttr{State: rdma.QPInit, Port: t.env.Port, Access: acc})
	}
	// Receives may be posted from Init on; sends may not.
	_, err = b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 4096)}}})
	t.must(err, "post recv in INIT")
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	t.wantErr(err, rdma.ErrInvalidState, "post send in INIT")
	for _, x := range []struct {
		s             *side
		local, remote rdma.QPEndpoint
	}{{a, ea, eb}, {b, eb, ea}} {
		step(x.s, x.remote, x.local, rdma.QPAttr{State: rdma.QPRTR, PathMTU: mtu, DestQPN: x.remote.QPN, RQPSN: x.remote.PSN,
			MaxDestRdAtomic: 1, MinRNRTimer: 12,
			Remote: rdma.Endpoint{LID: x.remote.LID, GID: x.remote.GID, GIDIndex: t.env.GIDIndex, Global: global, HopLimit: 64}})
	}
	for _, x := range []struct {
		s             *side
		local, remote rdma.QPEndpoint
	}{{a, ea, eb}, {b, eb, ea}} {
		step(x.s, x.remote, x.local, rdma.QPAttr{State: rdma.QPRTS, SQPSN: x.local.PSN, Timeout: 14, RetryCount: 7, RNRRetry: 7, MaxRdAtomic: 1})
	}
	fill(a.mr.Bytes()[:64], 3)
	id := rdma.EncodeWRID(opSend, 2)
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: id, Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	t.must(err, "post send in RTS")
	t.ok(t.poll(a.scq, 1)[0], id, rdma.WCSend, "send")
	wc := t.poll(b.rcq, 1)[0]
	t.ok(wc, rdma.EncodeWRID(opRecv, 1), rdma.WCRecv, "recv")
	if wc.ByteLen != 64 || !bytes.Equal(b.mr.Bytes()[:64], a.mr.Bytes()[:64]) {
		t.Fatalf("received %d bytes, data equal %v", wc.ByteLen, bytes.Equal(b.mr.Bytes()[:64], a.mr.Bytes()[:64]))
	}
	t.must(a.qp.Modify(rdma.QPAttr{State: rdma.QPError}), "modify to ERR")
	t.waitState(a.qp, rdma.QPError, "a")
}

// sendRecv sends size bytes from a's region offset 0 to b's region at
// offset off and checks both completions and the data.
func sendRecv(t *T, a, b *side, size, off int, seed byte, slot uint64) {
	t.Helper()
	rid, sid := rdma.EncodeWRID(opRecv, slot), rdma.EncodeWRID(opSend, slot)
	fill(a.mr.Bytes()[:size], seed)
	clear(b.mr.Bytes()[off : off+size+16])
	var rsgl, ssgl []rdma.SGE
	if size > 0 {
		rsgl, ssgl = []rdma.SGE{b.mr.SGE(off, size+16)}, []rdma.SGE{a.mr.SGE(0, size)}
	}
	n, err := b.qp.PostRecv([]rdma.RecvWR{{ID: rid, SGL: rsgl}})
	t.must(err, "post recv")
	if n != 1 {
		t.Fatalf("post recv accepted %d", n)
	}
	n, err = a.qp.PostSend([]rdma.SendWR{{ID: sid, Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: ssgl}})
	t.must(err, "post send")
	if n != 1 {
		t.Fatalf("post send accepted %d", n)
	}
	t.ok(t.poll(a.scq, 1)[0], sid, rdma.WCSend, "send")
	wc := t.poll(b.rcq, 1)[0]
	t.ok(wc, rid, rdma.WCRecv, "recv")
	if int(wc.ByteLen) != size || wc.QPNum != b.qp.Num() {
		t.Fatalf("recv of %d bytes: byte_len %d qp %d (want qp %d)", size, wc.ByteLen, wc.QPNum, b.qp.Num())
	}
	if !bytes.Equal(b.mr.Bytes()[off:off+size], a.mr.Bytes()[:size]) {
		t.Fatalf("received data of %d bytes differs", size)
	}
	if !bytes.Equal(b.mr.Bytes()[off+size:off+size+16], make([]byte, 16)) {
		t.Fatalf("receive of %d bytes wrote past the message", size)
	}
}

func testSendRecvSizes(t *T) {
	a, b := t.manualPair(pairOpts{})
	for i, size := range []int{0, 1, 63, 64, 4096, 4097, 65536, 1 << 20} {
		sendRecv(t, a, b, size, 4096, byte(i+1), uint64(i))
	}
}

func testBatchInOrder(t *T) {
	const n = 64
	a, b := t.manualPair(pairOpts{})
	recvs := make([]rdma.RecvWR, n)
	sends := make([]rdma.SendWR, n)
	for i := range n {
		recvs[i] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{b.mr.SGE(i*256, 256)}}
		a.mr.Bytes()[i*256] = byte(i)
		a.mr.Bytes()[i*256+1] = ^byte(i)
		sends[i] = rdma.SendWR{ID: rdma.EncodeWRID(opSend, uint64(i)), Op: rdma.OpSend, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{a.mr.SGE(i*256, 2+i)}}
	}
	k, err := b.qp.PostRecv(recvs)
	t.must(err, "post recv batch")
	if k != n {
		t.Fatalf("post recv batch accepted %d of %d", k, n)
	}
	k, err = a.qp.PostSend(sends)
	t.must(err, "post send batch")
	if k != n {
		t.Fatalf("post send batch accepted %d of %d", k, n)
	}
	swc, rwc := t.poll(a.scq, n), t.poll(b.rcq, n)
	for i := range n {
		t.ok(swc[i], sends[i].ID, rdma.WCSend, "send in order")
		t.ok(rwc[i], recvs[i].ID, rdma.WCRecv, "recv in order")
		if int(rwc[i].ByteLen) != 2+i {
			t.Fatalf("recv %d: %d bytes, want %d", i, rwc[i].ByteLen, 2+i)
		}
		if got := b.mr.Bytes()[i*256 : i*256+2]; got[0] != byte(i) || got[1] != ^byte(i) {
			t.Fatalf("recv %d holds message %d: matched out of order", i, got[0])
		}
	}
	t.quiet(a.scq, "send CQ after batch")
}

func testSGL(t *T) {
	a, b := t.manualPair(pairOpts{})
	src := a.mr.Bytes()
	fill(src[:16384], 9)
	clear(b.mr.Bytes()[:65536])
	// Gather 100 + 3000 + 5 bytes from scattered places, scatter into
	// 1000 + 4096 bytes elsewhere.
	ssgl := []rdma.SGE{a.mr.SGE(7, 100), a.mr.SGE(5000, 3000), a.mr.SGE(12000, 5)}
	rsgl := []rdma.SGE{b.mr.SGE(1, 1000), b.mr.SGE(30000, 4096)}
	_, err := b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: rsgl}})
	t.must(err, "post recv")
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: ssgl}})
	t.must(err, "post send")
	t.ok(t.poll(a.scq, 1)[0], rdma.EncodeWRID(opSend, 1), rdma.WCSend, "send")
	wc := t.poll(b.rcq, 1)[0]
	t.ok(wc, rdma.EncodeWRID(opRecv, 1), rdma.WCRecv, "recv")
	want := append(append(append([]byte{}, src[7:107]...), src[5000:8000]...), src[12000:12005]...)
	got := append(append([]byte{}, b.mr.Bytes()[1:1001]...), b.mr.Bytes()[30000:30000+len(want)-1000]...)
	if int(wc.ByteLen) != len(want) || !bytes.Equal(got, want) {
		t.Fatalf("scatter/gather: %d bytes, data equal %v", wc.ByteLen, bytes.Equal(got, want))
	}
}

func testImmediate(t *T) {
	a, b := t.manualPair(pairOpts{})
	const imm = 0xdeadbeef
	_, err := b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 256)}},
		{ID: rdma.EncodeWRID(opRecv, 2), SGL: []rdma.SGE{b.mr.SGE(256, 256)}}})
	t.must(err, "post recvs")
	fill(a.mr.Bytes()[:128], 1)
	_, err = a.qp.PostSend([]rdma.SendWR{
		{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSendImm, Imm: imm, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 16)}},
		{ID: rdma.EncodeWRID(opWrite, 2), Op: rdma.OpRDMAWriteImm, Imm: imm + 1, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{a.mr.SGE(0, 128)}, Remote: b.mr.Addr() + 4096, RKey: b.mr.RKey()},
	})
	t.must(err, "post send with imm and write with imm")
	t.poll(a.scq, 2)
	wcs := t.poll(b.rcq, 2)
	if wcs[0].Status != rdma.WCSuccess || wcs[0].Opcode != rdma.WCRecv || wcs[0].Flags&rdma.WCWithImm == 0 || wcs[0].Imm != imm || wcs[0].ByteLen != 16 {
		t.Fatalf("send with imm: %+v", wcs[0])
	}
	if wcs[1].Status != rdma.WCSuccess || wcs[1].Opcode != rdma.WCRecvRDMAWithImm || wcs[1].Flags&rdma.WCWithImm == 0 || wcs[1].Imm != imm+1 || wcs[1].ID != rdma.EncodeWRID(opRecv, 2) {
		t.Fatalf("write with imm: %+v", wcs[1])
	}
	if !bytes.Equal(b.mr.Bytes()[4096:4096+128], a.mr.Bytes()[:128]) {
		t.Fatal("write with imm: data differs")
	}
}

func testUnsignaled(t *T) {
	a, b := t.manualPair(pairOpts{})
	var wrs []rdma.SendWR
	for i := range 5 {
		wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite,
			SGL: []rdma.SGE{a.mr.SGE(i*64, 64)}, Remote: b.mr.Addr() + uint64(i*64), RKey: b.mr.RKey()})
	}
	wrs[4].Flags = rdma.FlagSignaled
	fill(a.mr.Bytes()[:320], 5)
	_, err := a.qp.PostSend(wrs)
	t.must(err, "post writes")
	t.ok(t.poll(a.scq, 1)[0], wrs[4].ID, rdma.WCRDMAWrite, "only the signaled write completes")
	t.quiet(a.scq, "unsignaled writes")
	if !bytes.Equal(b.mr.Bytes()[:320], a.mr.Bytes()[:320]) {
		t.Fatal("unsignaled writes did not land")
	}
}

func testWriteRead(t *T) {
	a, b := t.manualPair(pairOpts{})
	for i, size := range []int{1, 4096, 1 << 20} {
		fill(a.mr.Bytes()[:size], byte(i+7))
		clear(b.mr.Bytes()[:size+64])
		wid := rdma.EncodeWRID(opWrite, uint64(i))
		_, err := a.qp.PostSend([]rdma.SendWR{{ID: wid, Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{a.mr.SGE(0, size)}, Remote: b.mr.Addr() + 64, RKey: b.mr.RKey()}})
		t.must(err, "post write")
		t.ok(t.poll(a.scq, 1)[0], wid, rdma.WCRDMAWrite, "write")
		if !bytes.Equal(b.mr.Bytes()[64:64+size], a.mr.Bytes()[:size]) {
			t.Fatalf("write of %d bytes: remote data differs", size)
		}
		// Read it back into another place.
		dst := a.mr.Bytes()[1<<20+4096:]
		clear(dst[:size])
		rid := rdma.EncodeWRID(opRead, uint64(i))
		_, err = a.qp.PostSend([]rdma.SendWR{{ID: rid, Op: rdma.OpRDMARead, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{a.mr.SGE(1<<20+4096, size)}, Remote: b.mr.Addr() + 64, RKey: b.mr.RKey()}})
		t.must(err, "post read")
		t.ok(t.poll(a.scq, 1)[0], rid, rdma.WCRDMARead, "read")
		if !bytes.Equal(dst[:size], a.mr.Bytes()[:size]) {
			t.Fatalf("read of %d bytes: data differs", size)
		}
	}
	t.quiet(b.rcq, "responder's receive queue (RDMA consumes no receive)")
}

func testCompletionOrder(t *T) {
	a, b := t.manualPair(pairOpts{})
	var wrs []rdma.SendWR
	var recvs []rdma.RecvWR
	for i := range 24 {
		id := uint64(i)
		switch i % 3 {
		case 0:
			wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(opWrite, id), Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
				SGL: []rdma.SGE{a.mr.SGE(i*4096, 4096)}, Remote: b.mr.Addr() + uint64(i*4096), RKey: b.mr.RKey()})
		case 1:
			wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(opSend, id), Op: rdma.OpSend, Flags: rdma.FlagSignaled,
				SGL: []rdma.SGE{a.mr.SGE(i*4096, 100)}})
			recvs = append(recvs, rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, id), SGL: []rdma.SGE{b.mr.SGE(1<<20+i*4096, 4096)}})
		case 2:
			wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(opRead, id), Op: rdma.OpRDMARead, Flags: rdma.FlagSignaled,
				SGL: []rdma.SGE{a.mr.SGE(1<<20+i*4096, 4096)}, Remote: b.mr.Addr(), RKey: b.mr.RKey()})
		}
	}
	_, err := b.qp.PostRecv(recvs)
	t.must(err, "post recvs")
	_, err = a.qp.PostSend(wrs)
	t.must(err, "post mixed batch")
	got := t.poll(a.scq, len(wrs))
	for i, wc := range got {
		if wc.ID != wrs[i].ID || wc.Status != rdma.WCSuccess {
			t.Fatalf("completion %d: %s; want id %#x first", i, describe(got[i:i+1]), wrs[i].ID)
		}
	}
	rwc := t.poll(b.rcq, len(recvs))
	for i, wc := range rwc {
		t.ok(wc, recvs[i].ID, rdma.WCRecv, "receive in order")
	}
}

// testRemoteAccessErrors checks each kind of remote access violation: the
// requester gets WCRemAccessErr, both queue pairs move to Error, and every
// other outstanding work request of both is flushed exactly once.
func testRemoteAccessErrors(t *T) {
	type variant struct {
		name   string
		op     rdma.Opcode
		remote func(b *side, restricted *rdma.MemoryRegion) (uint64, uint32)
	}
	for _, v := range []variant{
		{"WriteWrongRKey", rdma.OpRDMAWrite, func(b *side, _ *rdma.MemoryRegion) (uint64, uint32) { return b.mr.Addr(), b.mr.RKey() ^ 0x5a5a00 }},
		{"WriteOutOfBounds", rdma.OpRDMAWrite, func(b *side, _ *rdma.MemoryRegion) (uint64, uint32) {
			return b.mr.Addr() + uint64(b.mr.Len()) - 100, b.mr.RKey()
		}},
		{"WriteNoAccess", rdma.OpRDMAWrite, func(_ *side, r *rdma.MemoryRegion) (uint64, uint32) { return r.Addr(), r.RKey() }},
		{"ReadWrongRKey", rdma.OpRDMARead, func(b *side, _ *rdma.MemoryRegion) (uint64, uint32) { return b.mr.Addr(), b.mr.RKey() ^ 0x5a5a00 }},
		{"ReadOutOfBounds", rdma.OpRDMARead, func(b *side, _ *rdma.MemoryRegion) (uint64, uint32) { return b.mr.Addr() - 4096, b.mr.RKey() }},
		{"ReadNoAccess", rdma.OpRDMARead, func(_ *side, r *rdma.MemoryRegion) (uint64, uint32) { return r.Addr(), r.RKey() }},
	} {
		t.TB.(*testing.T).Run(v.name, func(tt *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), t.env.Timeout)
			defer cancel()
			t := &T{TB: tt, env: t.env, ctx: ctx}
			a, b := t.manualPair(pairOpts{})
			// A region of b's buffer with local access only.
			restricted, err := b.pd.RegisterMemory(b.buf.Slice(1<<20, 1<<16), rdma.AccessLocalWrite)
			t.must(err, "register restricted region")
			t.Cleanup(func() { t.closeOK(restricted, "restricted MR") })
			const nRecv = 3
			var recvs []rdma.RecvWR
			for i := range nRecv {
				recvs = append(recvs, rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{b.mr.SGE(i*256, 256)}})
			}
			_, err = b.qp.PostRecv(recvs)
			t.must(err, "b: post recvs")
			addr, rkey := v.remote(b, restricted)
			bad := rdma.EncodeWRID(opWrite, 100)
			wrs := []rdma.SendWR{{ID: bad, Op: v.op, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 4096)}, Remote: addr, RKey: rkey}}
			for i := range 4 { // valid work requests behind it, signaled or not
				wr := rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite,
					SGL: []rdma.SGE{a.mr.SGE(0, 64)}, Remote: b.mr.Addr(), RKey: b.mr.RKey()}
				if i%2 == 0 {
					wr.Flags = rdma.FlagSignaled
				}
				wrs = append(wrs, wr)
			}
			n, err := a.qp.PostSend(wrs)
			t.must(err, "a: post")
			if n != len(wrs) {
				t.Fatalf("accepted %d of %d", n, len(wrs))
			}
			got := t.poll(a.scq, len(wrs))
			if got[0].ID != bad || got[0].Status != rdma.WCRemAccessErr {
				t.Fatalf("first completion %s; want id %#x remote access error", describe(got[:1]), bad)
			}
			if got[0].Err() == nil {
				t.Fatal("Completion.Err of a failed completion is nil")
			}
			seen := map[uint64]int{}
			for i, wc := range got[1:] {
				seen[wc.ID]++
				if wc.ID != wrs[i+1].ID || wc.Status != rdma.WCWRFlushErr {
					t.Fatalf("after the error: %s; want every later WR flushed in order", describe(got[1:]))
				}
			}
			for id, k := range seen {
				if k != 1 {
					t.Fatalf("WR %#x reported %d times", id, k)
				}
			}
			t.quiet(a.scq, "a: send CQ after flush")
			t.waitState(a.qp, rdma.QPError, "requester")
			t.waitState(b.qp, rdma.QPError, "responder")
			rwc := t.poll(b.rcq, nRecv)
			for i, wc := range rwc {
				if wc.ID != recvs[i].ID || wc.Status != rdma.WCWRFlushErr {
					t.Fatalf("responder receives: %s; want all flushed in order", describe(rwc))
				}
			}
			t.quiet(b.rcq, "b: recv CQ after flush")
		})
	}
}

func testRecvTooSmall(t *T) {
	a, b := t.manualPair(pairOpts{})
	_, err := b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 100)}},
		{ID: rdma.EncodeWRID(opRecv, 2), SGL: []rdma.SGE{b.mr.SGE(4096, 4096)}}})
	t.must(err, "post recvs")
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 1000)}}})
	t.must(err, "post send")
	rwc := t.poll(b.rcq, 2)
	// Verbs specifies a local length error. Linux 6.1 rxe reports a local
	// QP operation error instead (its copy treats the overflow as a bad
	// WQE); both fail the receive and move the QP to error, which is what
	// a consumer relies on.
	if rwc[0].ID != rdma.EncodeWRID(opRecv, 1) || (rwc[0].Status != rdma.WCLocLenErr && rwc[0].Status != rdma.WCLocQPOpErr) {
		t.Fatalf("too-small receive: %s; want local length error (or rxe's local QP operation error)", describe(rwc[:1]))
	}
	if rwc[1].Status != rdma.WCWRFlushErr {
		t.Fatalf("next receive: %s; want flushed", describe(rwc[1:]))
	}
	swc := t.poll(a.scq, 1)
	if swc[0].Status == rdma.WCSuccess {
		t.Fatalf("send into a too-small receive succeeded")
	}
	t.waitState(b.qp, rdma.QPError, "receiver")
}

func testRNRExceeded(t *T) {
	a, _ := t.manualPair(pairOpts{param: rdma.ConnParam{ResponderResources: 1, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 1}})
	id := rdma.EncodeWRID(opSend, 1)
	_, err := a.qp.PostSend([]rdma.SendWR{{ID: id, Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 64)}},
		{ID: rdma.EncodeWRID(opSend, 2), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	t.must(err, "post send with no receive posted")
	wc := t.poll(a.scq, 2)
	if wc[0].ID != id || wc[0].Status != rdma.WCRNRRetryExcErr || wc[1].Status != rdma.WCWRFlushErr {
		t.Fatalf("got %s; want RNR retry exceeded, then a flush", describe(wc))
	}
	t.waitState(a.qp, rdma.QPError, "sender")
}

func testRNRForever(t *T) {
	a, b := t.manualPair(pairOpts{}) // RNRRetryCount 7
	id := rdma.EncodeWRID(opSend, 1)
	fill(a.mr.Bytes()[:64], 2)
	_, err := a.qp.PostSend([]rdma.SendWR{{ID: id, Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	t.must(err, "post send before the receive")
	time.Sleep(20 * time.Millisecond) // let it hit receiver-not-ready
	_, err = b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 64)}}})
	t.must(err, "post the late receive")
	t.ok(t.poll(a.scq, 1)[0], id, rdma.WCSend, "send retried until the receive came")
	t.ok(t.poll(b.rcq, 1)[0], rdma.EncodeWRID(opRecv, 1), rdma.WCRecv, "late receive")
	if !bytes.Equal(b.mr.Bytes()[:64], a.mr.Bytes()[:64]) {
		t.Fatal("data differs")
	}
}

// testPostAfterError: work requests posted to a queue pair in Error are
// either refused with ErrInvalidState or accepted and flushed, each
// reported exactly once.
func testPostAfterError(t *T) {
	a, _ := t.manualPair(pairOpts{})
	t.must(a.qp.Modify(rdma.QPAttr{State: rdma.QPError}), "modify to ERR")
	t.waitState(a.qp, rdma.QPError, "a")
	sid, rid := rdma.EncodeWRID(opSend, 9), rdma.EncodeWRID(opRecv, 9)
	n, err := a.qp.PostSend([]rdma.SendWR{{ID: sid, Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	switch {
	case err == nil && n == 1:
		wc := t.poll(a.scq, 1)
		if wc[0].ID != sid || wc[0].Status != rdma.WCWRFlushErr {
			t.Fatalf("send posted in ERR: %s; want flushed", describe(wc))
		}
	case errors.Is(err, rdma.ErrInvalidState) && n == 0:
	default:
		t.Fatalf("post send in ERR: n=%d err=%v; want flushed or ErrInvalidState", n, err)
	}
	n, err = a.qp.PostRecv([]rdma.RecvWR{{ID: rid, SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	switch {
	case err == nil && n == 1:
		wc := t.poll(a.rcq, 1)
		if wc[0].ID != rid || wc[0].Status != rdma.WCWRFlushErr {
			t.Fatalf("recv posted in ERR: %s; want flushed", describe(wc))
		}
	case errors.Is(err, rdma.ErrInvalidState) && n == 0:
	default:
		t.Fatalf("post recv in ERR: n=%d err=%v; want flushed or ErrInvalidState", n, err)
	}
	t.quiet(a.scq, "send CQ")
	t.quiet(a.rcq, "recv CQ")
}

func testClosedQP(t *T) {
	dev := t.open()
	o := pairOpts{}
	o.defaults()
	s := t.resources(dev, "a", o)
	qp, err := s.pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: s.scq, RecvCQ: s.rcq})
	t.must(err, "create QP")
	t.must(qp.Close(), "close QP")
	t.must(qp.Close(), "close QP again")
	_, err = qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend}})
	t.wantErr(err, rdma.ErrClosed, "post send on a closed QP")
	_, err = qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1)}})
	t.wantErr(err, rdma.ErrClosed, "post recv on a closed QP")
	t.wantErr(qp.Modify(rdma.QPAttr{State: rdma.QPError}), rdma.ErrClosed, "modify a closed QP")
	_, err = qp.State()
	t.wantErr(err, rdma.ErrClosed, "query a closed QP")
}

func testCQWait(t *T) {
	a, b := t.manualPair(pairOpts{})
	// Wait ends on ctx.
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Millisecond)
	_, err := b.rcq.WaitPoll(ctx, make([]rdma.Completion, 1))
	cancel()
	t.wantErr(err, context.DeadlineExceeded, "wait-poll of an empty CQ")

	// Wait wakes on a completion.
	type res struct {
		n   int
		err error
		wc  rdma.Completion
	}
	ch := make(chan res, 1)
	_, err = b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 64)}}})
	t.must(err, "post recv")
	go func() {
		dst := make([]rdma.Completion, 4)
		n, err := b.rcq.WaitPoll(t.ctx, dst)
		ch <- res{n, err, dst[0]}
	}()
	time.Sleep(10 * time.Millisecond) // let it sleep (correct either way)
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	t.must(err, "post send")
	select {
	case r := <-ch:
		t.must(r.err, "wait-poll")
		t.ok(r.wc, rdma.EncodeWRID(opRecv, 1), rdma.WCRecv, "woken by")
	case <-t.ctx.Done():
		t.Fatal("WaitPoll did not wake on a completion")
	}

	// A plain Wait on an armed, empty CQ wakes when the CQ is closed.
	cq, err := a.dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 16})
	t.must(err, "create CQ")
	t.must(cq.Arm(false), "arm")
	werr := make(chan error, 1)
	go func() { werr <- cq.Wait(t.ctx) }()
	time.Sleep(10 * time.Millisecond)
	t.must(cq.Close(), "close CQ")
	select {
	case err := <-werr:
		t.wantErr(err, rdma.ErrClosed, "wait on a CQ being closed")
	case <-t.ctx.Done():
		t.Fatal("Wait did not return when its CQ closed")
	}
}

func testCMAccept(t *T) {
	aPriv := []byte("iser-hello-from-the-initiator")
	bPriv := make([]byte, rdma.MaxPrivateData)
	fill(bPriv, 4)
	a, b, gotA, gotB := t.cmPair(pairOpts{}, aPriv, bPriv)
	if !bytes.HasPrefix(gotA, aPriv) || !bytes.Equal(gotA[len(aPriv):], make([]byte, len(gotA)-len(aPriv))) {
		t.Fatalf("listener got private data %q, want %q (zero padded)", gotA, aPriv)
	}
	if !bytes.HasPrefix(gotB, bPriv) {
		t.Fatalf("dialer got private data %x, want %x", gotB, bPriv)
	}
	if s, err := a.qp.State(); err != nil || s != rdma.QPRTS {
		t.Fatalf("dialer QP state %v, %v; want RTS", s, err)
	}
	sendRecv(t, a, b, 4096, 0, 1, 1)
	sendRecv(t, b, a, 100, 0, 2, 2)
	// RDMA READ and WRITE over the CM connection (responder resources 1).
	fill(b.mr.Bytes()[:8192], 6)
	_, err := a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opRead, 1), Op: rdma.OpRDMARead, Flags: rdma.FlagSignaled,
		SGL: []rdma.SGE{a.mr.SGE(65536, 8192)}, Remote: b.mr.Addr(), RKey: b.mr.RKey()}})
	t.must(err, "post read")
	t.ok(t.poll(a.scq, 1)[0], rdma.EncodeWRID(opRead, 1), rdma.WCRDMARead, "read")
	if !bytes.Equal(a.mr.Bytes()[65536:65536+8192], b.mr.Bytes()[:8192]) {
		t.Fatal("read over CM: data differs")
	}
}

func testCMReject(t *T) {
	p := t.env.Provider
	l, err := rdma.Listen(p, t.env.ListenAddr, rdma.ListenConfig{})
	t.must(err, "listen")
	t.Cleanup(func() { t.closeOK(l, "listener") })
	go func() {
		req, err := l.Accept(t.ctx)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(req.PrivateData(), []byte("may I")) {
			_ = req.Reject([]byte("wrong private data"))
			return
		}
		_ = req.Reject([]byte("no, go away"))
	}()
	d, err := rdma.Dial(t.ctx, p, l.Addr().String(), rdma.DialConfig{})
	t.must(err, "dial")
	o := pairOpts{}
	o.defaults()
	a := t.resources(d.Device(), "a", o)
	qp, err := d.CreateQP(a.pd, rdma.QueuePairConfig{SendCQ: a.scq, RecvCQ: a.rcq})
	t.must(err, "create QP")
	t.Cleanup(func() { t.closeOK(qp, "QP") })
	_, err = d.Connect(t.ctx, rdma.ConnParam{RetryCount: 7, RNRRetryCount: 7}, []byte("may I"))
	var rej *rdma.RejectError
	if !errors.As(err, &rej) {
		t.Fatalf("connect to a rejecting listener: %v; want a *RejectError", err)
	}
	if !bytes.HasPrefix(rej.PrivateData, []byte("no, go away")) {
		t.Fatalf("reject private data %q", rej.PrivateData)
	}
}

func testCMNoListener(t *T) {
	p := t.env.Provider
	l, err := rdma.Listen(p, t.env.ListenAddr, rdma.ListenConfig{})
	t.must(err, "listen")
	addr := l.Addr().String()
	t.must(l.Close(), "close listener") // now nobody listens there
	d, err := rdma.Dial(t.ctx, p, addr, rdma.DialConfig{})
	if err != nil {
		return // refusing at resolution is fine too
	}
	o := pairOpts{}
	o.defaults()
	a := t.resources(d.Device(), "a", o)
	qp, err := d.CreateQP(a.pd, rdma.QueuePairConfig{SendCQ: a.scq, RecvCQ: a.rcq})
	t.must(err, "create QP")
	t.Cleanup(func() { t.closeOK(qp, "QP") })
	if _, err := d.Connect(t.ctx, rdma.ConnParam{RetryCount: 7, RNRRetryCount: 7}, nil); err == nil {
		t.Fatal("connect to an address nobody listens on succeeded")
	} else if t.ctx.Err() != nil {
		t.Fatalf("connect to a closed listener hung until the case timed out: %v", err)
	}
}

func testCMDisconnect(t *T) {
	a, b, _, _ := t.cmPair(pairOpts{}, nil, nil)
	var recvs []rdma.RecvWR
	for i := range 4 {
		recvs = append(recvs, rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{b.mr.SGE(i*64, 64)}})
	}
	_, err := b.qp.PostRecv(recvs)
	t.must(err, "b: post recvs")
	select {
	case <-b.qp.Disconnected():
		t.Fatal("Disconnected closed before any disconnect")
	default:
	}
	t.must(a.qp.Disconnect(), "a: disconnect")
	select {
	case <-b.qp.Disconnected():
	case <-t.ctx.Done():
		t.Fatal("peer never observed the disconnect")
	}
	t.waitState(b.qp, rdma.QPError, "b after disconnect")
	wcs := t.poll(b.rcq, len(recvs))
	for i, wc := range wcs {
		if wc.ID != recvs[i].ID || wc.Status != rdma.WCWRFlushErr {
			t.Fatalf("b's receives after disconnect: %s; want all flushed", describe(wcs))
		}
	}
	t.quiet(b.rcq, "b: recv CQ after flush")
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 8)}}})
	if err == nil {
		if wc := t.poll(a.scq, 1)[0]; wc.Status != rdma.WCWRFlushErr {
			t.Fatalf("send after disconnect: %v", wc.Status)
		}
	} else if !errors.Is(err, rdma.ErrInvalidState) {
		t.Fatalf("send after disconnect: %v", err)
	}
}

// testBatchPartial: a batch is accepted up to the first work request that
// cannot be, and the count says how far; the accepted ones complete (or
// flush) exactly once.
func testBatchPartial(t *T) {
	a, b := t.manualPair(pairOpts{qpCfg: rdma.QueuePairConfig{MaxRecvWR: 8}})
	desc, err := a.dev.Query()
	t.must(err, "query device")
	tooMany := make([]rdma.SGE, desc.Attr.MaxSGE+1)
	for i := range tooMany {
		tooMany[i] = a.mr.SGE(i, 1)
	}
	wrs := make([]rdma.SendWR, 4)
	for i := range wrs {
		wrs[i] = rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
			SGL: []rdma.SGE{a.mr.SGE(0, 64)}, Remote: b.mr.Addr(), RKey: b.mr.RKey()}
	}
	wrs[2].SGL = tooMany
	n, err := a.qp.PostSend(wrs)
	if n != 2 || err == nil {
		t.Fatalf("batch with %d SGEs in its third WR: accepted %d, err %v; want 2 and an error", len(tooMany), n, err)
	}
	got := t.poll(a.scq, 2)
	t.ok(got[0], wrs[0].ID, rdma.WCRDMAWrite, "first accepted")
	t.ok(got[1], wrs[1].ID, rdma.WCRDMAWrite, "second accepted")
	t.quiet(a.scq, "send CQ after a partial batch")

	recvs := make([]rdma.RecvWR, 1000)
	for i := range recvs {
		recvs[i] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{b.mr.SGE(0, 64)}}
	}
	n, err = b.qp.PostRecv(recvs)
	if n < 8 || n >= len(recvs) || err == nil {
		t.Fatalf("1000 receives on an 8-deep queue: accepted %d, err %v", n, err)
	}
	t.must(b.qp.Modify(rdma.QPAttr{State: rdma.QPError}), "modify to ERR")
	flushed := t.poll(b.rcq, n)
	for i, wc := range flushed {
		if wc.ID != recvs[i].ID || wc.Status != rdma.WCWRFlushErr {
			t.Fatalf("flushed receive %d: %s; want id %#x flushed", i, describe(flushed[i:i+1]), recvs[i].ID)
		}
	}
	t.quiet(b.rcq, "recv CQ after the flush")
}

// testSharedCQ: two queue pairs on one completion queue; QPNum tells their
// completions apart.
func testSharedCQ(t *T) {
	dev := t.open()
	o := pairOpts{}
	o.defaults()
	s := t.resources(dev, "shared", o)
	qps := make([]*rdma.QueuePair, 2)
	eps := make([]rdma.QPEndpoint, 2)
	for i := range qps {
		qp, err := s.pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: s.scq, RecvCQ: s.scq})
		t.must(err, "create QP")
		t.Cleanup(func() { t.closeOK(qp, "QP") })
		qps[i] = qp
		eps[i], err = qp.Endpoint(t.env.Port, t.env.GIDIndex)
		t.must(err, "endpoint")
	}
	path := rdma.ManualPath{Port: t.env.Port, GIDIndex: t.env.GIDIndex}
	t.must(qps[0].ConnectManual(path, eps[1], o.param), "connect 0")
	t.must(qps[1].ConnectManual(path, eps[0], o.param), "connect 1")
	_, err := qps[1].PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{s.mr.SGE(4096, 64)}}})
	t.must(err, "post recv")
	_, err = qps[0].PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled,
		SGL: []rdma.SGE{s.mr.SGE(0, 64)}}})
	t.must(err, "post send")
	byQP := map[uint32]rdma.Completion{}
	for _, wc := range t.poll(s.scq, 2) {
		byQP[wc.QPNum] = wc
	}
	t.ok(byQP[qps[0].Num()], rdma.EncodeWRID(opSend, 1), rdma.WCSend, "sender's completion")
	t.ok(byQP[qps[1].Num()], rdma.EncodeWRID(opRecv, 1), rdma.WCRecv, "receiver's completion")
}

// testCMRNRRetry: as in the IB CM, the RNR retry count a side gives in its
// accept (or connect) governs the peer's sends. The listener accepts with
// 0, so the dialer's SEND into no receive fails at once even though the
// dialer asked for 7.
func testCMRNRRetry(t *T) {
	p := t.env.Provider
	l, err := rdma.Listen(p, t.env.ListenAddr, rdma.ListenConfig{})
	t.must(err, "listen")
	t.Cleanup(func() { t.closeOK(l, "listener") })
	o := pairOpts{}
	o.defaults()
	type accepted struct {
		s   *side
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		req, err := l.Accept(t.ctx)
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		s := &side{name: "b", dev: req.Device()}
		oo := o
		oo.param.RNRRetryCount = 0
		ch <- accepted{s: s, err: t.acceptOn(req, s, oo, nil)}
	}()
	d, err := rdma.Dial(t.ctx, p, l.Addr().String(), rdma.DialConfig{})
	t.must(err, "dial")
	a := t.resources(d.Device(), "a", o)
	a.qp, err = d.CreateQP(a.pd, rdma.QueuePairConfig{SendCQ: a.scq, RecvCQ: a.rcq})
	t.must(err, "create QP")
	t.Cleanup(func() { t.closeOK(a.qp, "a QP") })
	_, err = d.Connect(t.ctx, o.param, nil) // asks for 7: governs b's sends
	t.must(err, "connect")
	var acc accepted
	select {
	case acc = <-ch:
	case <-t.ctx.Done():
		t.Fatal("accept did not finish")
	}
	t.cleanupSide(acc.s)
	t.must(acc.err, "accept")
	b := acc.s

	// b's sends retry forever (the dialer's 7): a late receive still works.
	_, err = b.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{b.mr.SGE(0, 8)}}})
	t.must(err, "b: post send")
	time.Sleep(20 * time.Millisecond)
	_, err = a.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	t.must(err, "a: post the late receive")
	t.ok(t.poll(b.scq, 1)[0], rdma.EncodeWRID(opSend, 1), rdma.WCSend, "b's send, retried")
	t.ok(t.poll(a.rcq, 1)[0], rdma.EncodeWRID(opRecv, 1), rdma.WCRecv, "a's late receive")

	// a's sends may not retry (the listener's 0).
	id := rdma.EncodeWRID(opSend, 2)
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: id, Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 8)}}})
	t.must(err, "a: post send into no receive")
	if wc := t.poll(a.scq, 1)[0]; wc.ID != id || wc.Status != rdma.WCRNRRetryExcErr {
		t.Fatalf("a's send with the peer's RNR retry count 0: %s; want RNR retry exceeded", describe([]rdma.Completion{wc}))
	}
}

// Teardown. Closing a queue pair does not flush it: rxe reports nothing
// for the work requests a destroyed queue pair still held, and mlx5 even
// removes the queue pair's completions from its completion queues. The
// only safe order is: Disconnect (or Modify to Error), reap every work
// request (success or WCWRFlushErr), then Close. A provider that flushed
// on Close would let a teardown that closes first pass every test and
// leak on a device, so these cases pin the device behaviour down.

// testCloseDoesNotFlush: work requests still posted when a queue pair is
// closed (receives, and a SEND waiting for the peer's receive) are never
// reported.
func testCloseDoesNotFlush(t *T) {
	a, b := t.manualPair(pairOpts{}) // RNR retry 7: a SEND into no receive waits
	var recvs []rdma.RecvWR
	for i := range 4 {
		recvs = append(recvs, rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{a.mr.SGE(i*256, 256)}})
	}
	n, err := a.qp.PostRecv(recvs)
	t.must(err, "a: post recvs")
	if n != len(recvs) {
		t.Fatalf("a: post recvs accepted %d of %d", n, len(recvs))
	}
	// b has no receive posted: the SEND waits (receiver not ready, retried
	// forever), so it is outstanding when a closes.
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled,
		SGL: []rdma.SGE{a.mr.SGE(4096, 64)}}})
	t.must(err, "a: post a send that waits for a receive")
	t.must(a.qp.Close(), "a: close with work requests outstanding")
	t.quiet(a.rcq, "a: recv CQ after Close (Close must not flush)")
	t.quiet(a.scq, "a: send CQ after Close (Close must not flush)")
	_, err = b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 9), SGL: []rdma.SGE{b.mr.SGE(0, 256)}}})
	t.must(err, "b: post recv")
	t.must(b.qp.Close(), "b: close with a receive outstanding")
	t.quiet(b.rcq, "b: recv CQ after Close (Close must not flush)")
}

// testClosedQPReceivesNothing: receives left posted on a closed queue
// pair are not reported, and a SEND aimed at it fails at the sender
// without landing in their buffers.
func testClosedQPReceivesNothing(t *T) {
	a, b := t.manualPair(pairOpts{param: rdma.ConnParam{ResponderResources: 1, InitiatorDepth: 1, RetryCount: 1, RNRRetryCount: 1}})
	clear(b.mr.Bytes()[:1024])
	_, err := b.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{b.mr.SGE(0, 512)}},
		{ID: rdma.EncodeWRID(opRecv, 2), SGL: []rdma.SGE{b.mr.SGE(512, 512)}}})
	t.must(err, "b: post recvs")
	t.must(b.qp.Close(), "b: close with receives outstanding")
	t.quiet(b.rcq, "b: recv CQ after Close (Close must not flush)")
	fill(a.mr.Bytes()[:64], 8)
	id := rdma.EncodeWRID(opSend, 1)
	_, err = a.qp.PostSend([]rdma.SendWR{{ID: id, Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(0, 64)}}})
	t.must(err, "a: post send to a closed queue pair")
	if wc := t.poll(a.scq, 1)[0]; wc.ID != id || wc.Status == rdma.WCSuccess {
		t.Fatalf("send to a closed queue pair: %s; want it failed", describe([]rdma.Completion{wc}))
	}
	if !bytes.Equal(b.mr.Bytes()[:1024], make([]byte, 1024)) {
		t.Fatal("a SEND landed in a receive buffer of a closed queue pair")
	}
	t.quiet(b.rcq, "b: recv CQ after the send")
}

// testErrorFlushesEveryWR: moving a queue pair to Error completes every
// outstanding work request, receives included, with WCWRFlushErr, in
// order and exactly once (unsignaled sends too); Close after the reap
// reports nothing more.
func testErrorFlushesEveryWR(t *T) {
	a, _ := t.manualPair(pairOpts{}) // RNR retry 7: sends wait for the peer's receive
	var recvs []rdma.RecvWR
	for i := range 4 {
		recvs = append(recvs, rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{a.mr.SGE(i*256, 256)}})
	}
	_, err := a.qp.PostRecv(recvs)
	t.must(err, "a: post recvs")
	// The peer has no receive: the first SEND waits, and the rest queue
	// behind it.
	sends := []rdma.SendWR{
		{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(4096, 64)}},
		{ID: rdma.EncodeWRID(opSend, 2), Op: rdma.OpSend, SGL: []rdma.SGE{a.mr.SGE(4096, 64)}},
		{ID: rdma.EncodeWRID(opSend, 3), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{a.mr.SGE(4096, 64)}},
	}
	n, err := a.qp.PostSend(sends)
	t.must(err, "a: post sends")
	if n != len(sends) {
		t.Fatalf("a: post sends accepted %d of %d", n, len(sends))
	}
	t.must(a.qp.Modify(rdma.QPAttr{State: rdma.QPError}), "a: modify to ERR")
	rwc := t.poll(a.rcq, len(recvs))
	for i, wc := range rwc {
		if wc.ID != recvs[i].ID || wc.Status != rdma.WCWRFlushErr {
			t.Fatalf("receives after ERR: %s; want every one flushed, in order", describe(rwc))
		}
	}
	swc := t.poll(a.scq, len(sends))
	for i, wc := range swc {
		if wc.ID != sends[i].ID || wc.Status != rdma.WCWRFlushErr {
			t.Fatalf("sends after ERR: %s; want every one (unsignaled too) flushed, in order", describe(swc))
		}
	}
	t.quiet(a.rcq, "a: recv CQ after the flush")
	t.quiet(a.scq, "a: send CQ after the flush")
	t.must(a.qp.Close(), "a: close after the reap")
	t.quiet(a.rcq, "a: recv CQ after Close")
	t.quiet(a.scq, "a: send CQ after Close")
}

// testCMTeardown is the teardown a connection owner runs: Disconnect,
// reap every work request of both sides (each flushed exactly once),
// then Close both queue pairs.
func testCMTeardown(t *T) {
	a, b, _, _ := t.cmPair(pairOpts{}, nil, nil)
	post := func(s *side) []rdma.RecvWR {
		var recvs []rdma.RecvWR
		for i := range 4 {
			recvs = append(recvs, rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{s.mr.SGE(i*256, 256)}})
		}
		_, err := s.qp.PostRecv(recvs)
		t.must(err, s.name+": post recvs")
		return recvs
	}
	reap := func(s *side, recvs []rdma.RecvWR) {
		wcs := t.poll(s.rcq, len(recvs))
		for i, wc := range wcs {
			if wc.ID != recvs[i].ID || wc.Status != rdma.WCWRFlushErr {
				t.Fatalf("%s: receives after the disconnect: %s; want every one flushed, in order", s.name, describe(wcs))
			}
		}
		t.quiet(s.rcq, s.name+": recv CQ after the flush")
	}
	ra, rb := post(a), post(b)
	t.must(a.qp.Disconnect(), "a: disconnect")
	reap(a, ra)
	select {
	case <-b.qp.Disconnected():
	case <-t.ctx.Done():
		t.Fatal("b never observed the disconnect")
	}
	t.waitState(b.qp, rdma.QPError, "b after the peer's disconnect")
	reap(b, rb)
	t.must(a.qp.Close(), "a: close after the reap")
	t.must(b.qp.Close(), "b: close after the reap")
	t.quiet(a.rcq, "a: recv CQ after Close")
	t.quiet(b.rcq, "b: recv CQ after Close")
}

// testCMCloseDisconnectsPeer: closing a connected queue pair without
// Disconnect reports none of its own work requests, but the peer learns
// of it (the CM sends a disconnect request as the id goes), moves to
// Error and flushes its receives.
func testCMCloseDisconnectsPeer(t *T) {
	a, b, _, _ := t.cmPair(pairOpts{}, nil, nil)
	for _, s := range []*side{a, b} {
		_, err := s.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{s.mr.SGE(0, 256)}},
			{ID: rdma.EncodeWRID(opRecv, 2), SGL: []rdma.SGE{s.mr.SGE(256, 256)}}})
		t.must(err, s.name+": post recvs")
	}
	t.must(a.qp.Close(), "a: close without disconnecting")
	select {
	case <-b.qp.Disconnected():
	case <-t.ctx.Done():
		t.Fatal("b never observed that the peer's queue pair went")
	}
	t.waitState(b.qp, rdma.QPError, "b after the peer closed")
	wcs := t.poll(b.rcq, 2)
	if wcs[0].ID != rdma.EncodeWRID(opRecv, 1) || wcs[1].ID != rdma.EncodeWRID(opRecv, 2) ||
		wcs[0].Status != rdma.WCWRFlushErr || wcs[1].Status != rdma.WCWRFlushErr {
		t.Fatalf("b's receives after the peer closed: %s; want both flushed", describe(wcs))
	}
	t.quiet(b.rcq, "b: recv CQ after the flush")
	t.quiet(a.rcq, "a: recv CQ after Close (Close must not flush)")
}
