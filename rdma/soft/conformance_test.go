package soft_test

import (
	"testing"

	"github.com/goiser/goiser/rdma/rdmatest"
	"github.com/goiser/goiser/rdma/soft"
)

func TestConformance(t *testing.T) {
	rdmatest.Run(t, rdmatest.Env{Provider: soft.New(soft.Config{}), Device: "soft0", ListenAddr: "127.0.0.1:0"})
}
