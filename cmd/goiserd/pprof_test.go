package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestPprofLoopbackOnly: -pprof serves the profiles on a loopback address
// and refuses any other.
func TestPprofLoopbackOnly(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "nonsense"} {
		if err := servePprof(addr, log); err == nil {
			t.Errorf("-pprof %s accepted, want refused", addr)
		}
	}
	o, err := parseFlags([]string{"-pprof", "127.0.0.1:0"}, io.Discard)
	if err != nil || o.pprof != "127.0.0.1:0" {
		t.Fatalf("parseFlags: %+v, %v", o, err)
	}
	if err := servePprof(o.pprof, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(usageText, "-pprof ADDR") {
		t.Error("usage does not document -pprof")
	}
}
