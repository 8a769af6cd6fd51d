package tcp

import (
	"io"
	"net"
	"testing"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
)

// newBatchConn returns a Conn in the full feature phase over a loopback
// TCP connection whose other end is drained; the returned channel reports
// the bytes read once the connection closes.
func newBatchConn(t *testing.T) (*Conn, <-chan int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, b)
		got <- n
	}()
	c := NewConn(a, Config{})
	t.Cleanup(func() { _ = c.Close() })
	p := iscsi.Params{InitiatorMaxRecvDSL: 262144, TargetMaxRecvDSL: 8192, MaxBurstLength: 262144,
		FirstBurstLength: 65536, MaxOutstandingR2T: 1}
	if err := c.SetParams(p, nil); err != nil {
		t.Fatal(err)
	}
	return c, got
}

// readTask returns a read task with a pooled 4 KiB buffer.
func readTask(c *Conn, itt uint32) *iscsi.Task {
	x := c.pool.get(4096, nil)
	x.itt = itt
	return &iscsi.Task{ITT: itt, EDTL: 4096, Data: x, Buf: x.buf}
}

// TestHoldBatchesResponses: responses put under Hold go out in one
// vectored write at Flush, and the buffers of tasks released meanwhile
// stay out of the pool until then (the reader could hand them to a new
// command while the batch still references them).
func TestHoldBatchesResponses(t *testing.T) {
	c, got := newBatchConn(t)
	c.Hold()
	var xs []*xfer
	for i := range 3 {
		task := readTask(c, uint32(i))
		x := task.Data.(*xfer)
		xs = append(xs, x)
		if err := c.PutData(task, &iscsi.Response{DataLen: 4096, StatSN: uint32(i)}); err != nil {
			t.Fatal(err)
		}
		c.Release(task)
	}
	if c.writes != 0 {
		t.Fatalf("%d writes under Hold, want 0", c.writes)
	}
	for i, x := range xs {
		if !x.held || !x.releaseHeld || x.buf == nil {
			t.Fatalf("task %d: buffer recycled before Flush (held %v, releaseHeld %v)", i, x.held, x.releaseHeld)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if c.writes != 1 {
		t.Fatalf("%d writes for 3 held responses, want 1", c.writes)
	}
	for i, x := range xs {
		if x.held || x.releaseHeld || x.buf != nil {
			t.Fatalf("task %d: buffer not recycled by Flush", i)
		}
	}
	// Without Hold every response is written at once.
	for i := range 2 {
		task := readTask(c, uint32(10+i))
		if err := c.PutData(task, &iscsi.Response{DataLen: 4096}); err != nil {
			t.Fatal(err)
		}
		c.Release(task)
	}
	if c.writes != 3 {
		t.Fatalf("%d writes, want 3", c.writes)
	}
	_ = c.Close()
	if n, want := <-got, int64(5*(pdu.BHSLen+4096)); n != want {
		t.Fatalf("peer read %d bytes, want %d", n, want)
	}
}

// TestHoldSenseFlushes: a response with sense data is written at once
// even under Hold (its data segment is a buffer the next response reuses),
// together with what was held before it.
func TestHoldSenseFlushes(t *testing.T) {
	c, _ := newBatchConn(t)
	c.Hold()
	task := readTask(c, 1)
	if err := c.PutData(task, &iscsi.Response{DataLen: 4096}); err != nil {
		t.Fatal(err)
	}
	c.Release(task)
	fail := &iscsi.Task{ITT: 2}
	if err := c.PutData(fail, &iscsi.Response{Status: 0x02, Sense: make([]byte, 18)}); err != nil {
		t.Fatal(err)
	}
	if c.writes != 1 {
		t.Fatalf("%d writes, want 1 (the held response and the sense response together)", c.writes)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if c.writes != 1 {
		t.Fatalf("Flush with nothing queued wrote: %d writes", c.writes)
	}
}

// TestHoldZeroAllocs: a held burst allocates nothing once warm.
func TestHoldZeroAllocs(t *testing.T) {
	c, _ := newBatchConn(t)
	tasks := make([]iscsi.Task, 4)
	// The test keeps its own xfers (Release still hands them to the
	// pool, which is never drawn from here): sync.Pool drops items at
	// random under the race detector, and the pool is not what is tested.
	xs := make([]*xfer, len(tasks))
	for i := range xs {
		xs[i] = &xfer{mem: make([]byte, 4096)}
	}
	rsp := iscsi.Response{DataLen: 4096}
	burst := func() {
		c.Hold()
		for i := range tasks {
			x := xs[i]
			x.buf = x.mem[:4096]
			tasks[i] = iscsi.Task{ITT: uint32(i), EDTL: 4096, Data: x, Buf: x.buf}
			if err := c.PutData(&tasks[i], &rsp); err != nil {
				t.Fatal(err)
			}
			c.Release(&tasks[i])
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		burst()
	}
	if n := testing.AllocsPerRun(100, burst); n != 0 {
		t.Fatalf("%.2f allocations per burst, want 0", n)
	}
}
