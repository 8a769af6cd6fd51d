package rdma_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/soft"
)

// printer is a CompletionHandler: it runs on the poll group's goroutine,
// so it only hands the completions on.
type printer struct {
	name string
	out  chan string
}

func (p *printer) HandleCompletions(wcs []rdma.Completion) {
	for _, wc := range wcs {
		op, slot := rdma.DecodeWRID(wc.ID)
		s := fmt.Sprintf("%s: %v op %d slot %d", p.name, wc.Opcode, op, slot)
		if wc.Opcode == rdma.WCRecv {
			s += fmt.Sprintf(", %d bytes", wc.ByteLen)
		}
		p.out <- s
	}
}

func (p *printer) HandleError(err error) { p.out <- p.name + ": " + err.Error() }

// One poll group serves the completions of two queue pairs that share its
// completion queue; the data comes from a registered buffer pool.
func ExamplePollGroup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dev, _ := rdma.Open(soft.New(soft.Config{}), "soft0")
	defer dev.Close()
	pd, _ := dev.AllocPD()
	defer pd.Close()
	pool, err := rdma.NewBufferPool(pd, rdma.BufferPoolConfig{Size: 1 << 20, MaxBlock: 64 << 10})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	defer pool.Close()
	g, err := rdma.NewPollGroup(dev, rdma.PollGroupConfig{CQEntries: 256})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	defer g.Close() // after the queue pairs are detached and closed

	out := make(chan string, 8)
	var qps [2]*rdma.QueuePair
	var atts [2]*rdma.Attachment
	for i, name := range []string{"initiator", "target"} {
		qps[i], _ = pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: g.CQ(), RecvCQ: g.CQ(), MaxSendWR: 16, MaxRecvWR: 16})
		defer qps[i].Close()
		// Reserves 16+16 CQ entries; fails with ErrCQFull when the group is full.
		atts[i], err = g.Attach(qps[i], 0, 0, &printer{name: name, out: out})
		if err != nil {
			panic(fmt.Sprint(err))
		}
		defer atts[i].Detach() // once every work request was reaped
	}
	e0, _ := qps[0].Endpoint(1, 0)
	e1, _ := qps[1].Endpoint(1, 0)
	param := rdma.ConnParam{RetryCount: 7, RNRRetryCount: 7}
	_ = qps[0].ConnectManual(rdma.ManualPath{}, e1, param)
	_ = qps[1].ConnectManual(rdma.ManualPath{}, e0, param)

	cmd, _ := pool.Get(48)
	rx, _ := pool.Get(4096)
	defer pool.Put(cmd) // after their completions were seen
	defer pool.Put(rx)
	copy(cmd.Bytes(), "SCSI Command")
	_, _ = qps[1].PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 7), SGL: []rdma.SGE{rx.SGE(0, rx.Len())}}})
	_, _ = qps[0].PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 3), Op: rdma.OpSend, Flags: rdma.FlagSignaled,
		SGL: []rdma.SGE{cmd.SGE(0, cmd.Len())}}})
	var got []string
	for range 2 {
		select {
		case s := <-out:
			got = append(got, s)
		case <-ctx.Done():
			panic("no completion")
		}
	}
	slices.Sort(got) // the two handlers' calls may come in either order
	fmt.Println(strings.Join(got, "\n"))
	fmt.Printf("%q\n", rx.Bytes()[:12])
	// Output:
	// initiator: SEND op 2 slot 3
	// target: RECV op 1 slot 7, 48 bytes
	// "SCSI Command"
}

// A registered buffer pool hands out contiguous blocks without registering
// memory per I/O; Get never blocks, and Notify says when to retry.
func ExampleBufferPool() {
	dev, _ := rdma.Open(soft.New(soft.Config{}), "soft0")
	defer dev.Close()
	pd, _ := dev.AllocPD()
	defer pd.Close()
	pool, err := rdma.NewBufferPool(pd, rdma.BufferPoolConfig{Size: 16 << 20}) // blocks of 4 KiB to 8 MiB
	if err != nil {
		panic(fmt.Sprint(err))
	}
	defer pool.Close()

	a, _ := pool.Get(8 << 20)
	b, _ := pool.Get(5 << 20) // an 8 MiB block: the pool is now full
	fmt.Println(a.Len(), a.Size(), b.Len(), b.Size())
	if _, ok := pool.Get(512); !ok {
		fmt.Println("full: queue the request, wait for Notify")
	}
	pool.Put(a)
	<-pool.Notify()
	c, ok := pool.Get(512)
	fmt.Println(ok, c.Size(), c.SGE(0, 512).Length == 512)
	pool.Put(b)
	pool.Put(c)
	s := pool.Stats()
	fmt.Println(s.Outstanding, s.InUse, s.LargestFree)
	// Output:
	// 8388608 8388608 5242880 8388608
	// full: queue the request, wait for Notify
	// true 4096 true
	// 0 0 8388608
}

// A slab is a receive ring: fixed slots whose data lands 512-byte aligned
// after the 76-byte iSER and iSCSI headers.
func ExampleSlab() {
	dev, _ := rdma.Open(soft.New(soft.Config{}), "soft0")
	defer dev.Close()
	pd, _ := dev.AllocPD()
	defer pd.Close()
	ring, err := rdma.NewSlab(pd, rdma.SlabConfig{Count: 32, Header: 76, DataSize: 8192})
	if err != nil {
		panic(fmt.Sprint(err))
	}
	defer ring.Close()
	recvs := make([]rdma.RecvWR, ring.Count())
	for i := range recvs {
		recvs[i] = rdma.RecvWR{ID: rdma.EncodeWRID(opRecv, uint64(i)), SGL: []rdma.SGE{ring.SGE(i)}}
	}
	fmt.Println(len(recvs), ring.SlotSize(), recvs[1].SGL[0].Addr%512 == 512-76, len(ring.Data(1)))
	// Output: 32 8268 true 8192
}
