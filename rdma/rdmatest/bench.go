package rdmatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma"
)

// BenchmarkPostPoll measures posting a batch of signaled 64-byte RDMA
// WRITEs with one PostSend and polling their completions, for batches of
// 1, 16 and 64, through package rdma over env's provider (manual
// connection on env.Device). Besides ns/op it reports ns/WR. With
// -benchmem the datapath must show 0 allocs/op.
func BenchmarkPostPoll(b *testing.B, env Env) {
	if env.Provider == nil || env.Device == "" {
		b.Fatal("rdmatest: Env.Provider and Env.Device are required")
	}
	env.defaults()
	for _, batch := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			t := &T{TB: b, env: env, ctx: ctx}
			a, peer := t.manualPair(pairOpts{qpCfg: rdma.QueuePairConfig{MaxSendWR: 128}})
			wrs := make([]rdma.SendWR, batch)
			sgls := make([]rdma.SGE, batch)
			for i := range wrs {
				sgls[i] = a.mr.SGE(i*64, 64)
				wrs[i] = rdma.SendWR{ID: rdma.EncodeWRID(opWrite, uint64(i)), Op: rdma.OpRDMAWrite, Flags: rdma.FlagSignaled,
					SGL: sgls[i : i+1], Remote: peer.mr.Addr() + uint64(i*64), RKey: peer.mr.RKey()}
			}
			wcs := make([]rdma.Completion, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if n, err := a.qp.PostSend(wrs); err != nil || n != batch {
					b.Fatalf("post: %d, %v", n, err)
				}
				for got := 0; got < batch; {
					n, err := a.scq.Poll(wcs[got:])
					if err != nil {
						b.Fatalf("poll: %v", err)
					}
					for _, wc := range wcs[got : got+n] {
						if wc.Status != rdma.WCSuccess {
							b.Fatalf("completion %#x: %v", wc.ID, wc.Status)
						}
					}
					got += n
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/WR")
		})
	}
}
