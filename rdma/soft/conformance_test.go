package soft_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/goiser/goiser/rdma/rdmatest"
	"github.com/goiser/goiser/rdma/soft"
)

func TestConformance(t *testing.T) {
	rdmatest.Run(t, rdmatest.Env{Provider: soft.New(soft.Config{}), Device: "soft0", ListenAddr: "127.0.0.1:0"})
}

// TestConformanceCannotPassBySkipping runs the suite, misconfigured, in a
// child process: without a listen address the CM cases fail (a provider
// that did not declare Caps.NoCM has the CM and must be tested on it), and
// under Env.Strict a declared Caps.NoCM fails them too.
func TestConformanceCannotPassBySkipping(t *testing.T) {
	if mode := os.Getenv("SOFT_RDMATEST_CHILD"); mode != "" {
		env := rdmatest.Env{Provider: soft.New(soft.Config{}), Device: "soft0"}
		if mode == "strict" {
			env.Caps.NoCM, env.Strict = true, true
		}
		rdmatest.Run(t, env)
		return
	}
	if testing.Short() {
		t.Skip("runs the suite twice in child processes")
	}
	for _, mode := range []string{"no-listen-addr", "strict"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestConformanceCannotPassBySkipping$/^CM", "-test.v", "-test.count", "1")
		cmd.Env = append(os.Environ(), "SOFT_RDMATEST_CHILD="+mode)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%s: the suite passed:\n%s", mode, out)
		}
		if !strings.Contains(string(out), "--- FAIL: TestConformanceCannotPassBySkipping/CMAccept") ||
			strings.Contains(string(out), "--- PASS: TestConformanceCannotPassBySkipping/CM") ||
			strings.Contains(string(out), "--- SKIP: TestConformanceCannotPassBySkipping/CM") {
			t.Fatalf("%s: want every CM case failed, none passed or skipped:\n%s", mode, out)
		}
	}
}
