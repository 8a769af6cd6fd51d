package rdma_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/soft"
)

// Operations encoded in work-request ids; 0 stays invalid.
const (
	opRecv uint8 = iota + 1
	opSend
)

// The whole walk-through on the soft provider: open, PD, buffer and MR,
// CQ, connect with the CM, post, poll.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := soft.New(soft.Config{})

	// Passive side: listen, and serve one connection in a goroutine.
	l, err := rdma.Listen(p, "127.0.0.1:0", rdma.ListenConfig{})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	defer l.Close()
	done := make(chan string, 1)
	go func() {
		req, err := l.Accept(ctx)
		if err != nil {
			panic(fmt.Sprint(err))
		}
		fmt.Printf("request with private data %q\n", req.PrivateData())
		c := newConn(req.Device())
		defer c.close()
		qp, err := req.CreateQP(c.pd, rdma.QueuePairConfig{SendCQ: c.cq, RecvCQ: c.cq})
		if err != nil {
			panic(fmt.Sprint(err))
		}
		defer qp.Close()
		// Post the receive before accepting: the peer may send at once.
		if _, err := qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 0), SGL: []rdma.SGE{c.mr.SGE(0, 64)}}}); err != nil {
			panic(fmt.Sprint(err))
		}
		if err := req.Accept(ctx, rdma.ConnParam{RNRRetryCount: 7, RetryCount: 7}, []byte("welcome")); err != nil {
			panic(fmt.Sprint(err))
		}
		wcs := make([]rdma.Completion, 4)
		n, err := c.cq.WaitPoll(ctx, wcs)
		if err != nil || n != 1 || wcs[0].Err() != nil {
			panic(fmt.Sprint(n, err, wcs[0].Err()))
		}
		op, slot := rdma.DecodeWRID(wcs[0].ID)
		done <- fmt.Sprintf("op %d slot %d: %q", op, slot, c.mr.Bytes()[:wcs[0].ByteLen])
	}()

	// Active side: dial, create the QP on the dialer's device, connect.
	d, err := rdma.Dial(ctx, p, l.Addr().String(), rdma.DialConfig{})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	c := newConn(d.Device())
	defer c.close()
	qp, err := d.CreateQP(c.pd, rdma.QueuePairConfig{SendCQ: c.cq, RecvCQ: c.cq})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	defer qp.Close()
	reply, err := d.Connect(ctx, rdma.ConnParam{RNRRetryCount: 7, RetryCount: 7}, []byte("hello"))
	if err != nil {
		panic(fmt.Sprint(err))
	}
	fmt.Printf("accepted with private data %q\n", reply)

	msg := copy(c.mr.Bytes(), "ping over soft RDMA")
	if _, err := qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 0), Op: rdma.OpSend,
		Flags: rdma.FlagSignaled, SGL: []rdma.SGE{c.mr.SGE(0, msg)}}}); err != nil {
		panic(fmt.Sprint(err))
	}
	wcs := make([]rdma.Completion, 4)
	// The send buffer is the device's until this completion is polled.
	if n, err := c.cq.WaitPoll(ctx, wcs); err != nil || n != 1 || wcs[0].Err() != nil {
		panic(fmt.Sprint(n, err))
	}
	fmt.Println("send completed:", wcs[0].Opcode)
	fmt.Println("received", <-done)
	// Output:
	// request with private data "hello"
	// accepted with private data "welcome"
	// send completed: SEND
	// received op 1 slot 0: "ping over soft RDMA"
}

// conn holds one side's PD, buffer, MR and CQ.
type conn struct {
	pd  *rdma.ProtectionDomain
	buf *rdma.Buffer
	mr  *rdma.MemoryRegion
	cq  *rdma.CompletionQueue
}

func newConn(dev *rdma.Device) *conn {
	pd, err := dev.AllocPD()
	if err != nil {
		panic(fmt.Sprint(err))
	}
	buf, err := rdma.AllocBuffer(1<<16, rdma.BufferOptions{})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	mr, err := pd.RegisterBuffer(buf, rdma.AccessLocalWrite)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	cq, err := dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 64})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return &conn{pd: pd, buf: buf, mr: mr, cq: cq}
}

// close closes children before parents (the queue pair is closed first
// by its owner).
func (c *conn) close() {
	for _, err := range []error{c.mr.Close(), c.buf.Close(), c.cq.Close(), c.pd.Close()} {
		if err != nil {
			panic(err)
		}
	}
}

// Open a device and describe it, like ibv_devinfo.
func ExampleDevice_Query() {
	dev, err := rdma.Open(soft.New(soft.Config{}), "soft0")
	if err != nil {
		panic(fmt.Sprint(err))
	}
	defer dev.Close()
	desc, err := dev.Query()
	if err != nil {
		panic(fmt.Sprint(err))
	}
	fmt.Println(desc.Info.Name, "ports:", desc.Attr.PhysPortCount)
	for _, port := range desc.Ports {
		fmt.Println("port", port.Number, port.Attr.State, port.Attr.ActiveMTU, port.Attr.LinkLayer, "gid", port.GIDs[0])
	}
	// Output:
	// soft0 ports: 1
	// port 1 ACTIVE 4096 InfiniBand gid fe80::200:5e00:0:1
}

// Registering Go-heap memory is refused: the device must never DMA into
// memory the garbage collector manages.
func ExampleProtectionDomain_RegisterMemory() {
	dev, _ := rdma.Open(soft.New(soft.Config{}), "soft0")
	defer dev.Close()
	pd, _ := dev.AllocPD()
	defer pd.Close()
	_, err := pd.RegisterMemory(make([]byte, 4096), rdma.AccessLocalWrite)
	fmt.Println(errors.Is(err, rdma.ErrNotOffHeap))
	// Output: true
}

// A parent refuses to close while it has children.
func ExampleDevice_Close() {
	dev, _ := rdma.Open(soft.New(soft.Config{}), "soft0")
	pd, _ := dev.AllocPD()
	fmt.Println(dev.Close())
	fmt.Println(pd.Close(), dev.Close())
	// Output:
	// rdma: close device soft0: 1 protection domains and completion queues still open: rdma: object still has live children
	// <nil> <nil>
}

// Tear a connection down in the only safe order: Disconnect (or Modify to
// Error), reap every outstanding work request (success or WCWRFlushErr),
// then Close, and only then release the buffers. Close itself completes
// nothing, on rdma/soft as on a device: receives still posted when it runs
// are never reported, so their buffers could never be known to be free.
func ExampleQueuePair_Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := soft.New(soft.Config{})
	l, err := rdma.Listen(p, "127.0.0.1:0", rdma.ListenConfig{})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	defer l.Close()

	const depth = 4 // receives each side keeps posted
	recvs := func(c *conn) []rdma.RecvWR {
		wrs := make([]rdma.RecvWR, depth)
		for i := range wrs {
			wrs[i] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{c.mr.SGE(i*256, 256)}}
		}
		return wrs
	}
	// reap polls until every one of n outstanding work requests is back.
	reap := func(c *conn, n int) (flushed int) {
		wcs := make([]rdma.Completion, 8)
		for n > 0 {
			k, err := c.cq.WaitPoll(ctx, wcs)
			if err != nil {
				panic(fmt.Sprint(err))
			}
			for _, wc := range wcs[:k] {
				if wc.Status == rdma.WCWRFlushErr {
					flushed++
				}
			}
			n -= k
		}
		return flushed
	}

	done := make(chan string, 1)
	go func() { // the listener: its peer disconnects
		req, err := l.Accept(ctx)
		if err != nil {
			panic(fmt.Sprint(err))
		}
		c := newConn(req.Device())
		qp, err := req.CreateQP(c.pd, rdma.QueuePairConfig{SendCQ: c.cq, RecvCQ: c.cq})
		if err != nil {
			panic(fmt.Sprint(err))
		}
		if _, err := qp.PostRecv(recvs(c)); err != nil {
			panic(fmt.Sprint(err))
		}
		if err := req.Accept(ctx, rdma.ConnParam{RNRRetryCount: 7, RetryCount: 7}, nil); err != nil {
			panic(fmt.Sprint(err))
		}
		<-qp.Disconnected() // the peer's disconnect moved qp to Error
		n := reap(c, depth)
		if err := qp.Close(); err != nil {
			panic(err)
		}
		c.close()
		done <- fmt.Sprintf("listener: %d receives flushed after the peer's disconnect", n)
	}()

	d, err := rdma.Dial(ctx, p, l.Addr().String(), rdma.DialConfig{})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	c := newConn(d.Device())
	qp, err := d.CreateQP(c.pd, rdma.QueuePairConfig{SendCQ: c.cq, RecvCQ: c.cq})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	if _, err := qp.PostRecv(recvs(c)); err != nil {
		panic(fmt.Sprint(err))
	}
	if _, err := d.Connect(ctx, rdma.ConnParam{RNRRetryCount: 7, RetryCount: 7}, nil); err != nil {
		panic(fmt.Sprint(err))
	}

	// 1. Disconnect: the queue pair moves to Error, and so does the peer's.
	if err := qp.Disconnect(); err != nil {
		panic(fmt.Sprint(err))
	}
	// 2. Reap: every outstanding work request comes back, flushed.
	fmt.Printf("dialer: %d receives flushed\n", reap(c, depth))
	// 3. Close the queue pair, then its memory, CQ and PD.
	if err := qp.Close(); err != nil {
		panic(fmt.Sprint(err))
	}
	c.close()
	fmt.Println(<-done)
	// Output:
	// dialer: 4 receives flushed
	// listener: 4 receives flushed after the peer's disconnect
}
