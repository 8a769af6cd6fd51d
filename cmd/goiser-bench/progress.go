package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/goiser/goiser/bench"
)

// progress reports the measured runs on stderr, one line per run when it
// finishes: its place in the benchmark, workload, target, round, IOPS,
// median and p99, and the elapsed and estimated total time of the whole
// benchmark. On a terminal a live line shows the run in progress and is
// redrawn in place (\r); elsewhere (CI logs, the guest's files) only the
// finished lines are written, plain. Log records written through it
// (Write) clear the live line first. It is safe for concurrent use.
type progress struct {
	mu sync.Mutex // guards everything below and writes to w
	w  io.Writer
	// tty: w is a terminal, draw the live line.
	tty bool
	now func() time.Time
	// start is when the benchmark started; measuring when the first run
	// began (zero before).
	start, measuring time.Time
	// runs is how many runs are planned, done how many have finished;
	// plan is the expected time of one (warm-up and measurement).
	runs, done int
	plan       time.Duration
	// wlWidth, tgWidth align the workload and target columns.
	wlWidth, tgWidth int
	// live: the live line is on the terminal.
	live bool
}

// newProgress returns a progress for runs runs of about plan each,
// started at now(), writing to w, with columns wide enough for the
// workload and target names.
func newProgress(w io.Writer, now func() time.Time, runs int, plan time.Duration, workloads, targets []string) *progress {
	p := &progress{w: w, tty: isTerminal(w), now: now, start: now(), runs: runs, plan: plan}
	for _, s := range workloads {
		p.wlWidth = max(p.wlWidth, len(s))
	}
	for _, s := range targets {
		p.tgWidth = max(p.tgWidth, len(s))
	}
	return p
}

// isTerminal reports whether w is a terminal: a character device other
// than /dev/null, with TERM not "dumb".
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// clock prints d as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int(max(d, 0).Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// timesLocked says how long the benchmark has run and how long it will
// probably take in all: the runs left at the mean time of the finished
// ones (the planned time before any has finished).
func (p *progress) timesLocked() string {
	now := p.now()
	elapsed := now.Sub(p.start)
	per := p.plan
	if p.done > 0 {
		per = now.Sub(p.measuring) / time.Duration(p.done)
	}
	left := time.Duration(p.runs-p.done) * per
	return fmt.Sprintf("elapsed %s of ~%s, ETA %s", clock(elapsed), clock(elapsed+left), clock(left))
}

// headLocked is the start of a run's line: "[ 3/24] round 1/2 WORKLOAD on TARGET".
func (p *progress) headLocked(n, round, rounds int, workload, target string) string {
	nw := len(fmt.Sprint(p.runs))
	rw := len(fmt.Sprint(rounds))
	return fmt.Sprintf("[%*d/%d] round %*d/%d  %-*s on %-*s", nw, n, p.runs, rw, round, rounds,
		p.wlWidth, workload, p.tgWidth, target)
}

// begin says a run starts; only a terminal shows it.
func (p *progress) begin(round, rounds int, workload, target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.measuring.IsZero() {
		p.measuring = p.now()
	}
	if !p.tty {
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s  running...  %s", p.headLocked(p.done+1, round, rounds, workload, target), p.timesLocked())
	p.live = true
}

// end says a run finished with row.
func (p *progress) end(round, rounds int, row bench.Row) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.measuring.IsZero() {
		p.measuring = p.now()
	}
	p.done++
	var b strings.Builder
	if p.live {
		b.WriteString("\r\x1b[K")
		p.live = false
	}
	fmt.Fprintf(&b, "%s  %8.0f IOPS  median %-8s p99 %-8s  %s\n", p.headLocked(p.done, round, rounds, row.Workload, row.Target),
		row.IOPS, bench.FormatDuration(row.Median), bench.FormatDuration(row.P99), p.timesLocked())
	_, _ = io.WriteString(p.w, b.String())
}

// Write writes a log record, clearing the live line first.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		_, _ = io.WriteString(p.w, "\r\x1b[K")
		p.live = false
	}
	return p.w.Write(b)
}
