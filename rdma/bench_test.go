package rdma_test

import (
	"testing"

	"github.com/goiser/goiser/rdma/rdmatest"
	"github.com/goiser/goiser/rdma/soft"
)

// BenchmarkPostPollBatch posts and polls batches of 1, 16 and 64 work
// requests through package rdma on the soft provider; with -benchmem it
// shows the datapath allocates nothing.
func BenchmarkPostPollBatch(b *testing.B) {
	rdmatest.BenchmarkPostPoll(b, rdmatest.Env{Provider: soft.New(soft.Config{}), Device: "soft0"})
}
