//go:build linux && cgo

package verbs

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma/driver"
)

// These tests need no RDMA device; they run on every make test.

func TestRCErrConventions(t *testing.T) {
	cases := []struct {
		name string
		rc   int
		err  error
		want syscall.Errno
	}{
		{"errno as result (libibverbs)", int(syscall.EINVAL), nil, syscall.EINVAL},
		{"-1 and errno (librdmacm)", -1, syscall.ENOMEM, syscall.ENOMEM},
		{"negated errno", -int(syscall.EAGAIN), nil, syscall.EAGAIN},
		{"-1 without errno", -1, nil, syscall.EIO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := rcErr("ibv_modify_qp", cInt(c.rc), c.err)
			if !errors.Is(err, c.want) {
				t.Fatalf("rcErr = %v, want errors.Is %v", err, c.want)
			}
			var ve *driver.VerbsError
			if !errors.As(err, &ve) || ve.Op != "ibv_modify_qp" {
				t.Fatalf("rcErr = %#v, want a *driver.VerbsError for ibv_modify_qp", err)
			}
		})
	}
	if err := rcErr("ibv_modify_qp", 0, syscall.EPERM); err != nil {
		t.Fatalf("rc 0 gave %v, want nil (a stale errno must not count)", err)
	}
	if err := rcErr("ibv_post_send", cInt(int(syscall.EOPNOTSUPP)), nil); !errors.Is(err, driver.ErrNotSupported) {
		t.Fatalf("EOPNOTSUPP gave %v, want ErrNotSupported", err)
	}
}

func TestPostErrMapping(t *testing.T) {
	if err := postErr("ibv_post_send", cInt(int(syscall.ENOMEM))); !errors.Is(err, driver.ErrQueueFull) || !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("ENOMEM gave %v, want ErrQueueFull wrapping ENOMEM", err)
	}
	if err := postErr("ibv_post_recv", cInt(int(syscall.EINVAL))); !errors.Is(err, driver.ErrInvalidState) || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("EINVAL gave %v, want ErrInvalidState wrapping EINVAL", err)
	}
}

func TestMTUConversions(t *testing.T) {
	for e, b := range map[int]driver.MTU{1: 256, 2: 512, 3: 1024, 4: 2048, 5: 4096} {
		if got := mtuBytes(e); got != b {
			t.Errorf("mtuBytes(%d) = %d, want %d", e, got, b)
		}
		if got := mtuEnum(b); got != e {
			t.Errorf("mtuEnum(%d) = %d, want %d", b, got, e)
		}
	}
	if mtuEnum(1500) != 0 || mtuBytes(0) != 0 || mtuBytes(6) != 0 {
		t.Error("invalid MTUs must convert to 0")
	}
}

func TestAddressParsing(t *testing.T) {
	a, err := cAddr("192.0.2.7:3260", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := tcpAddr(&a).String(); got != "192.0.2.7:3260" {
		t.Fatalf("round trip = %s", got)
	}
	a, err = cAddr("[2001:db8::1]:4420", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := tcpAddr(&a).String(); got != "[2001:db8::1]:4420" {
		t.Fatalf("round trip = %s", got)
	}
	if a, err = cAddr("10.1.2.3", true); err != nil || tcpAddr(&a).String() != "10.1.2.3:0" {
		t.Fatalf("source without port: %v %v", tcpAddr(&a), err)
	}
	for _, bad := range []string{"10.1.2.3", "host.example:1", "1.2.3.4:99999", ""} {
		if _, err := cAddr(bad, false); err == nil {
			t.Errorf("cAddr(%q) accepted", bad)
		}
	}
}

// hasRDMA reports whether this host has RDMA devices at all.
func hasRDMA() bool {
	_, err := os.Stat("/sys/class/infiniband")
	return err == nil
}

func TestNoDeviceIsClean(t *testing.T) {
	if hasRDMA() {
		t.Skip("this host has RDMA devices; the device tests cover it")
	}
	p := Provider()
	if p.Name() != "verbs" {
		t.Fatalf("Name = %q", p.Name())
	}
	devs, err := p.Devices()
	if err != nil && !errors.Is(err, driver.ErrNoDevice) {
		t.Fatalf("Devices on a host without RDMA: %v, want an empty list or ErrNoDevice", err)
	}
	if len(devs) != 0 {
		t.Fatalf("Devices = %v on a host without RDMA", devs)
	}
	if _, err := p.Open("rxe0"); !errors.Is(err, driver.ErrNoDevice) {
		t.Fatalf("Open(rxe0) = %v, want ErrNoDevice", err)
	}
	if _, err := p.Listen("127.0.0.1:0", driver.ListenConfig{}); err == nil {
		t.Fatal("Listen succeeded on a host without RDMA CM")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.Dial(ctx, "127.0.0.1:1", driver.DialConfig{Timeout: time.Second}); err == nil {
		t.Fatal("Dial succeeded on a host without RDMA CM")
	}
	if _, err := DeviceForAddr("127.0.0.1"); !errors.Is(err, driver.ErrNoDevice) {
		t.Fatalf("DeviceForAddr(127.0.0.1) = %v, want ErrNoDevice", err)
	}
	if _, err := DeviceForAddr("not-an-ip"); err == nil {
		t.Fatal("DeviceForAddr accepted a host name")
	}
	if _, err := DeviceForNetdev("no-such-netdev0"); !errors.Is(err, driver.ErrNoDevice) {
		t.Fatalf("DeviceForNetdev = %v, want ErrNoDevice", err)
	}
}

func TestCgoCall(t *testing.T) {
	if nop(41) != 42 {
		t.Fatal("goiser_nop is not x+1")
	}
}

// BenchmarkCgoCall measures one Go -> C -> Go crossing with a trivial C
// function: the fixed cost every batch pays once.
func BenchmarkCgoCall(b *testing.B) {
	b.ReportAllocs()
	x := 0
	for b.Loop() {
		x = nop(x)
	}
	if x == 0 {
		b.Fatal("no calls")
	}
}

// BenchmarkPostSendNoDevice measures what the provider itself adds per
// work request, without a device: filling the C arrays from []SendWR in Go
// and one cgo call that builds the ibv_send_wr chain (everything PostSend
// does except ibv_post_send). ns/WR is that cost at batch sizes 1, 16, 64.
func BenchmarkPostSendNoDevice(b *testing.B) {
	for _, batch := range []int{1, 16, 64} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			qp := newDryQP(64, 1)
			if qp == nil {
				b.Fatal("allocate C arrays")
			}
			defer qp.freeDry()
			wrs := make([]driver.SendWR, batch)
			sgl := make([]driver.SGE, batch)
			for i := range wrs {
				sgl[i] = driver.SGE{Addr: uint64(4096 + 64*i), Length: 64, LKey: 7}
				wrs[i] = driver.SendWR{ID: uint64(i), Op: driver.OpRDMAWrite, Flags: driver.FlagSignaled,
					SGL: sgl[i : i+1], Remote: uint64(1 << 20), RKey: 9}
			}
			b.ReportAllocs()
			for b.Loop() {
				if n, err := qp.postSend(wrs, true); n != batch || err != nil {
					b.Fatalf("post: %d %v", n, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/WR")
		})
	}
}

func TestPostSendFillsChain(t *testing.T) {
	qp := newDryQP(4, 2)
	if qp == nil {
		t.Fatal("allocate C arrays")
	}
	defer qp.freeDry()
	wrs := []driver.SendWR{
		{ID: 1, Op: driver.OpSendImm, Flags: driver.FlagSignaled | driver.FlagSolicited, Imm: 0x01020304,
			SGL: []driver.SGE{{Addr: 10, Length: 20, LKey: 30}, {Addr: 40, Length: 50, LKey: 60}}},
		{ID: 2, Op: driver.OpRDMARead, SGL: []driver.SGE{{Addr: 70, Length: 80, LKey: 90}}, Remote: 0xabc, RKey: 0xdef},
		{ID: 3, Op: driver.OpSend},
		{ID: 4, Op: driver.OpSend},
		{ID: 5, Op: driver.OpSend}, // a second chunk: more than MaxSendWR
	}
	if n, err := qp.postSend(wrs, true); n != 5 || err != nil {
		t.Fatalf("postSend = %d, %v", n, err)
	}
	// The last chunk held only WR 5; check the first chunk's remaining
	// SGE arrays from WR 1 and 2, which chunk two did not overwrite.
	if g := qp.ssge[1]; g.addr != 40 || g.length != 50 || g.lkey != 60 {
		t.Fatalf("second SGE of WR 1 = %+v", g)
	}
	if g := qp.ssge[2]; g.addr != 70 || g.lkey != 90 {
		t.Fatalf("SGE of WR 2 = %+v", g)
	}
	if qp.swr[0].id != 5 || qp.swr[0].num_sge != 0 {
		t.Fatalf("chunk two did not start at slot 0: %+v", qp.swr[0])
	}
	// Too many SGEs on the first WR: nothing accepted, EINVAL.
	bad := []driver.SendWR{{ID: 9, Op: driver.OpSend, SGL: make([]driver.SGE, 3)}}
	if n, err := qp.postSend(bad, true); n != 0 || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("3 SGEs on a 2-SGE QP: %d, %v", n, err)
	}
}

// TestCloseStateRetriesFailedDestroy: every C object of the provider (QP,
// CQ, CM id) counts as closed only once its destroy call succeeded. A QP
// whose ibv_destroy_qp failed must stay open, so that a retry destroys it
// and package rdma keeps its PD and CQs from closing meanwhile; a Close
// after success must not destroy anything again.
func TestCloseStateRetriesFailedDestroy(t *testing.T) {
	var c closeState
	calls := 0
	destroy := func() error {
		calls++
		if calls == 1 {
			return driver.NewVerbsError("ibv_destroy_qp", syscall.EBUSY)
		}
		return nil
	}
	if err := c.close(destroy); !errors.Is(err, syscall.EBUSY) || c.isClosed() {
		t.Fatalf("failed destroy: err %v, closed %v; want EBUSY and still open", err, c.isClosed())
	}
	if err := c.close(destroy); err != nil || !c.isClosed() || calls != 2 {
		t.Fatalf("retry: err %v, closed %v, %d destroy calls; want nil, closed, 2", err, c.isClosed(), calls)
	}
	if err := c.close(destroy); err != nil || calls != 2 {
		t.Fatalf("close after success: err %v, %d destroy calls; want nil and no new call", err, calls)
	}

	// Concurrent closes destroy once.
	var d closeState
	var n atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.close(func() error { n.Add(1); return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Fatalf("%d destroy calls from 8 concurrent closes, want 1", n.Load())
	}
}
