package rdma_test

import (
	"context"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/soft"
)

// TestDatapathAllocatesNothing guards the zero-allocation datapath in
// plain `go test` runs: post a SEND and a RECV, poll both completions.
func TestDatapathAllocatesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := soft.New(soft.Config{})
	dev, err := rdma.Open(p, "soft0")
	mustT(t, err)
	defer dev.Close()
	pd, err := dev.AllocPD()
	mustT(t, err)
	defer pd.Close()
	buf, err := rdma.AllocBuffer(1<<16, rdma.BufferOptions{})
	mustT(t, err)
	defer buf.Close()
	mr, err := pd.RegisterBuffer(buf, rdma.AccessLocalWrite)
	mustT(t, err)
	defer mr.Close()
	cq, err := dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 64})
	mustT(t, err)
	defer cq.Close()
	var qps [2]*rdma.QueuePair
	var eps [2]rdma.QPEndpoint
	for i := range qps {
		qps[i], err = pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq})
		mustT(t, err)
		defer qps[i].Close()
		eps[i], err = qps[i].Endpoint(1, 0)
		mustT(t, err)
	}
	param := rdma.ConnParam{RetryCount: 7, RNRRetryCount: 7}
	mustT(t, qps[0].ConnectManual(rdma.ManualPath{}, eps[1], param))
	mustT(t, qps[1].ConnectManual(rdma.ManualPath{}, eps[0], param))

	recv := []rdma.RecvWR{{ID: rdma.EncodeWRID(opRecv, 1), SGL: []rdma.SGE{mr.SGE(4096, 64)}}}
	send := []rdma.SendWR{{ID: rdma.EncodeWRID(opSend, 1), Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{mr.SGE(0, 64)}}}
	wcs := make([]rdma.Completion, 4)
	round := func() {
		if _, err := qps[1].PostRecv(recv); err != nil {
			t.Fatal(err)
		}
		if _, err := qps[0].PostSend(send); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < 2; {
			n, err := cq.WaitPoll(ctx, wcs)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	round()
	if allocs := testing.AllocsPerRun(200, round); allocs != 0 {
		t.Fatalf("post+poll allocates %.1f times per round", allocs)
	}
}
