//go:build linux && cgo

package verbs

import (
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/goiser/goiser/rdma/rdmatest"
)

// conformanceEnv is the rdmatest environment from ISER_TEST_DEVICE,
// ISER_TEST_ADDR (optional: without it the CM cases skip),
// ISER_TEST_GID_INDEX (default 1, the RoCE v2 GID on rxe) and
// ISER_TEST_STRICT (non-empty: every case must run, a skip fails; the
// Soft-RoCE stage of make test-rxe sets it).
func conformanceEnv(tb testing.TB) rdmatest.Env {
	env := rdmatest.Env{Provider: Provider(), Device: requireDevice(tb), GIDIndex: 1,
		Strict: os.Getenv("ISER_TEST_STRICT") != ""}
	if s := os.Getenv("ISER_TEST_GID_INDEX"); s != "" {
		i, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("ISER_TEST_GID_INDEX=%q: %v", s, err)
		}
		env.GIDIndex = i
	}
	if a := os.Getenv("ISER_TEST_ADDR"); a != "" {
		env.ListenAddr = net.JoinHostPort(a, "0")
	} else {
		env.Caps.NoCM = true
	}
	return env
}

// TestConformance runs the provider conformance suite on a real device.
func TestConformance(t *testing.T) {
	rdmatest.Run(t, conformanceEnv(t))
}

// BenchmarkPostPoll is rdmatest's post+poll benchmark through package rdma
// on a real device (batches of 1, 16 and 64; reports ns/WR).
func BenchmarkPostPoll(b *testing.B) {
	rdmatest.BenchmarkPostPoll(b, conformanceEnv(b))
}
