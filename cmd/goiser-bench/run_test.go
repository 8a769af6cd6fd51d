package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goiser/goiser/bench"
	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

const testIQN = "iqn.2026-11.dev.goiser:bench-cmd"

// serve starts our target in process with a 8 MiB memory LUN 0.
func serve(t *testing.T) string {
	t.Helper()
	mem, err := backend.NewMemory(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return serveBackend(t, mem)
}

// serveBackend starts our target in process with be as LUN 0 and returns
// its address.
func serveBackend(t *testing.T, be backend.Backend) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: testIQN, LUNs: luns}}, Logger: log}
	tr, err := tcp.Listen("127.0.0.1:0", tcp.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tr) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, iscsi.ErrServerClosed) {
			t.Errorf("shutdown: %v", err)
			_ = srv.Close()
		}
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
		_ = luns.Close()
	})
	return tr.Addr().String()
}

// TestRunWritesReport measures two "targets" (two sessions to the same
// server in process) briefly and checks the files it writes.
func TestRunWritesReport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := "iscsi://" + serve(t) + "/" + testIQN + "/0"
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-target", "ours=" + url, "-target", "tgt=" + url,
		"-workloads", "4k-randread-qd1,128k-seqwrite-qd2", "-rounds", "2", "-seconds", "0.1", "-warmup", "0.01",
		"-region-mib", "4", "-note", "a <note>", "-commit", "commit test",
		"-out", filepath.Join(dir, "docs", "latency.md"), "-svg", filepath.Join(dir, "docs", "latency.svg"),
		"-cdf-svg", filepath.Join(dir, "docs", "latency-cdf.svg"), "-json", filepath.Join(dir, "docs", "latency.json"),
		"-raw", filepath.Join(dir, "raw.tsv")}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	md, err := os.ReadFile(filepath.Join(dir, "docs", "latency.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 4k-randread-qd1 | ours |", "| 128k-seqwrite-qd2 | tgt |",
		"IOPS / tgt", "![latency", "(latency.svg)", "from commit test", "at the end (1, 5, 15 min)", "- a <note>", "goiser-bench -target ours=iscsi://",
		"| 2 | 128k-seqwrite-qd2 | ours |", "CPUs", "(latency-cdf.svg)", "ABBA order", "IOPS / tgt", " ±"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "docs", "latency.svg"))
	if err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("svg: %v, %.100q", err, svg)
	}
	cdf, err := os.ReadFile(filepath.Join(dir, "docs", "latency-cdf.svg"))
	if err != nil || bytes.Count(cdf, []byte("<polyline")) != 4 {
		t.Errorf("cdf svg: %v, %d curves", err, bytes.Count(cdf, []byte("<polyline")))
	}
	f, err := os.Open(filepath.Join(dir, "docs", "latency.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := bench.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Raw) != 8 || len(rep.Rows) != 4 || len(rep.Latency) != 4 || rep.Rounds != 2 || rep.Order != bench.OrderABBA ||
		rep.Host.CPUs == 0 || len(rep.Host.LoadEnd) != 3 || rep.Commit != "commit test" || len(rep.Args) == 0 || rep.CDFPlot != "latency-cdf.svg" {
		t.Errorf("json results: %d raw, %d rows, %d distributions, %+v", len(rep.Raw), len(rep.Rows), len(rep.Latency), rep)
	}
	for i, d := range rep.Latency {
		if r := rep.Rows[i]; d.Workload != r.Workload || d.Target != r.Target || d.Count != r.IOs || r.Spread.IOPSMax < r.Spread.IOPSMin {
			t.Errorf("distribution %s/%s of %d I/Os, row %s/%s of %d, spread %+v", d.Workload, d.Target, d.Count,
				r.Workload, r.Target, r.IOs, r.Spread)
		}
	}
	// Progress: one plain line per run (stderr is no terminal), in ABBA order.
	var lines []string
	for l := range strings.SplitSeq(stderr.String(), "\n") {
		if strings.HasPrefix(l, "[") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "[1/8] round 1/2  4k-randread-qd1   on ours  ") ||
		!strings.HasPrefix(lines[1], "[2/8] round 1/2  4k-randread-qd1   on tgt   ") ||
		!strings.HasPrefix(lines[4], "[5/8] round 2/2  4k-randread-qd1   on tgt   ") ||
		!strings.Contains(lines[7], " IOPS  median ") || !strings.Contains(lines[7], "ETA 0:00") || strings.Contains(stderr.String(), "\r") {
		t.Errorf("progress lines:\n%s", strings.Join(lines, "\n"))
	}
	raw, err := os.ReadFile(filepath.Join(dir, "raw.tsv"))
	if n := strings.Count(string(raw), "\n"); err != nil || n != 1+2*2*2 {
		t.Errorf("raw.tsv: %v, %d lines:\n%s", err, n, raw)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout not empty with -out: %q", stdout.String())
	}
}

// TestRunQuiet checks that -quiet leaves out the progress lines.
func TestRunQuiet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := "iscsi://" + serve(t) + "/" + testIQN + "/0"
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-target", "ours=" + url, "-workloads", "4k-randread-qd1", "-rounds", "1", "-seconds", "0.05",
		"-warmup", "0", "-region-mib", "1", "-quiet"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "[1/1]") || !strings.Contains(stdout.String(), "| 4k-randread-qd1 | ours |") {
		t.Errorf("-quiet: stderr\n%s\nstdout\n%s", stderr.String(), stdout.String())
	}
}

// TestRunMaxIO: a workload over a target's -max-io is not run on it, the
// others are, and the report says what was left out.
func TestRunMaxIO(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := "iscsi://" + serve(t) + "/" + testIQN + "/0"
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-target", "small=" + url, "-target", "big=" + url, "-max-io", "small=64k",
		"-workloads", "4k-randread-qd1,128k-seqread-qd1", "-rounds", "1", "-seconds", "0.05",
		"-warmup", "0", "-region-mib", "1"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	md := stdout.String()
	for _, want := range []string{"| 4k-randread-qd1 | small |", "| 4k-randread-qd1 | big |", "| 128k-seqread-qd1 | big |",
		"Not run on small, which takes I/Os of at most 64k (-max-io): 128k-seqread-qd1."} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| 128k-seqread-qd1 | small |") || !strings.Contains(stderr.String(), "[3/3]") {
		t.Errorf("128k ran on small, or progress counted it:\n%s\n%s", md, stderr.String())
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-target", "x"},
		{"-target", "a=iscsi://h:1/iqn/0", "-target", "a=iscsi://h:2/iqn/0"},
		{"-target", "a=iscsi://h:1/iqn/0", "-workloads", "4k-read"},
		{"-target", "a=iscsi://h:1/iqn/0", "-rounds", "0"},
		{"-target", "a=iscsi://h:1/iqn/0", "-baseline", "b"},
		{"-target", "a=iscsi://h:1/iqn/0", "extra"},
		{"-target", "a=iscsi://h:1/iqn/0", "-verify", "-fill=false"},
		{"-target", "a=iscsi://h:1/iqn/0", "-target", "b=iscsi://h:1/iqn/0", "-verify"},
		{"-target", "a=iscsi://h:1/iqn/0", "-max-io", "b=512k"},
		{"-target", "a=iscsi://h:1/iqn/0", "-max-io", "a=lots"},
		{"-target", "a=iscsi://h:1/iqn/0", "-max-io", "a"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
	o, err := parseFlags([]string{"-target", "tgt=iscsi://h:1/iqn/1", "-target", "g=iscsi://h:2/iqn/0"}, io.Discard)
	if err != nil || o.baseline != "tgt" || len(o.workloads) != 6 {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine([]string{"-target", "a=iscsi://h:1/iqn.x:y/0", "-note", "it's here", ""})
	want := "goiser-bench -target a=iscsi://h:1/iqn.x:y/0 \\\n    -note 'it'\\''s here' ''"
	if got != want {
		t.Errorf("commandLine = %s, want %s", got, want)
	}
}
