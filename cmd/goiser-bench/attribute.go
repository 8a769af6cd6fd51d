package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goiser/goiser/bench"
	"github.com/goiser/goiser/bench/attribute"
)

// attrFlags are the -attribute and -attribute-svg flags before parsing.
type attrFlags struct {
	specs listFlag
	svg   *string
}

// addAttributeFlags defines the attribution flags on fs.
func addAttributeFlags(fs *flag.FlagSet) *attrFlags {
	f := &attrFlags{}
	fs.Var(&f.specs, "attribute", "NAME=PID: during each measured run of target NAME, trace process PID (the target daemon) with eBPF and report where its time goes per I/O (repeatable; needs root)")
	f.svg = fs.String("attribute-svg", "", "SVG stacked-bar chart of the -attribute breakdown (none when empty)")
	return f
}

// parse checks the flags against o's targets; nil means no attribution.
func (f *attrFlags) parse(o *options) (*attribution, error) {
	if len(f.specs) == 0 {
		if *f.svg != "" {
			return nil, fmt.Errorf("-attribute-svg needs -attribute")
		}
		return nil, nil
	}
	a := &attribution{pids: map[string]int{}, svg: *f.svg, out: o.out,
		tracers: map[string]*attribute.Tracer{}, why: map[string]string{}}
	for _, spec := range f.specs {
		name, p, ok := strings.Cut(spec, "=")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("-attribute %q: want NAME=PID", spec)
		}
		if !slices.ContainsFunc(o.targets, func(t bench.Target) bool { return t.Name == name }) {
			return nil, fmt.Errorf("-attribute %q: %q is not a -target", spec, name)
		}
		if _, dup := a.pids[name]; dup {
			return nil, fmt.Errorf("-attribute: target %q given twice", name)
		}
		a.pids[name] = pid
		a.order = append(a.order, name)
	}
	return a, nil
}

// attribution traces the -attribute targets' processes and keeps one
// breakdown per measured run. A nil *attribution does nothing.
type attribution struct {
	pids  map[string]int // target name -> pid; immutable
	order []string       // target names in flag order; immutable
	svg   string         // -attribute-svg
	out   string         // -out, for the chart's relative link

	mu      sync.Mutex // guards the fields below
	tracers map[string]*attribute.Tracer
	why     map[string]string // target name -> why it is not traced
	limits  []string          // parts some tracer could not measure, with why
	windows []attrWindow
}

// attrWindow is one measured run's breakdown.
type attrWindow struct {
	round            int
	workload, target string
	ios              uint64
	b                attribute.Breakdown
}

// start attaches a tracer to each -attribute process. A tracer that cannot
// attach costs one line on stderr and the target's section of the report.
func (a *attribution) start(ctx context.Context, stderr io.Writer, log *slog.Logger) {
	if a == nil {
		return
	}
	for _, name := range a.order {
		tr, err := attribute.Start(ctx, a.pids[name])
		a.mu.Lock()
		if err != nil {
			a.why[name] = err.Error()
			fmt.Fprintf(stderr, "goiser-bench: no time attribution for %s (pid %d), measuring without it: %v\n", name, a.pids[name], err)
		} else {
			a.tracers[name] = tr
			for _, u := range tr.Unmeasured() {
				if !slices.Contains(a.limits, u) {
					a.limits = append(a.limits, u)
				}
			}
			log.Info("attributing", "target", name, "pid", a.pids[name])
		}
		a.mu.Unlock()
	}
}

// stop detaches every tracer.
func (a *attribution) stop() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, tr := range a.tracers {
		_, _ = tr.Stop()
	}
}

// attrSpan is one measured run in progress: the snapshot at the end of
// its warm-up is taken by a timer.
type attrSpan struct {
	target string
	tr     *attribute.Tracer
	timer  *time.Timer
	done   chan struct{} // closed when first is set
	first  attribute.Breakdown
	err    error
}

// begin is called just before bench.Run of target with warm-up warmup: the
// window starts when the warm-up ends, as the measurement does. It
// returns nil when target is not traced.
func (a *attribution) begin(target string, warmup time.Duration) *attrSpan {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	tr := a.tracers[target]
	a.mu.Unlock()
	if tr == nil {
		return nil
	}
	s := &attrSpan{target: target, tr: tr, done: make(chan struct{})}
	s.timer = time.AfterFunc(warmup, func() {
		s.first, s.err = tr.Snapshot()
		close(s.done)
	})
	return s
}

// end closes the window of s when bench.Run returned res (nil when it
// failed) in round r.
func (a *attribution) end(s *attrSpan, r int, res *bench.Result) {
	if a == nil || s == nil {
		return
	}
	if s.timer.Stop() { // Run ended within its warm-up: no window
		return
	}
	<-s.done
	last, err := s.tr.Snapshot()
	if res == nil {
		return
	}
	if err == nil {
		err = s.err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.why[s.target] = err.Error()
		return
	}
	a.windows = append(a.windows, attrWindow{round: r, workload: res.Workload.String(), target: s.target, ios: res.IOs, b: last.Sub(s.first)})
}

// rows sums the windows of each workload and target over the rounds and
// divides by their I/Os, in the order they were first measured.
func (a *attribution) rows() []attribute.Row {
	type key struct{ w, t string }
	var keys []key
	sums := map[key]attribute.Breakdown{}
	ios := map[key]uint64{}
	for _, w := range a.windows {
		k := key{w.workload, w.target}
		if _, ok := sums[k]; !ok {
			keys = append(keys, k)
		}
		sums[k] = sums[k].Add(w.b)
		ios[k] += w.ios
	}
	// Group by workload, keeping the first-seen order of both.
	var out []attribute.Row
	for i, k := range keys {
		if slices.ContainsFunc(keys[:i], func(x key) bool { return x.w == k.w }) {
			continue
		}
		for _, k2 := range keys {
			if k2.w == k.w {
				out = append(out, sums[k2].PerIO(k2.w, k2.t, ios[k2], 3))
			}
		}
	}
	return out
}

// markdown returns f followed by the section of the report on where the
// targets' time goes.
func (a *attribution) markdown(f func(io.Writer) error) func(io.Writer) error {
	if a == nil {
		return f
	}
	return func(w io.Writer) error {
		if err := f(w); err != nil {
			return err
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		_, err := io.WriteString(w, a.sectionLocked())
		return err
	}
}

// sectionLocked writes the markdown section.
func (a *attribution) sectionLocked() string {
	var b strings.Builder
	b.WriteString("\n## Where the target's time goes per I/O\n\n")
	rows := a.rows()
	if len(rows) == 0 {
		b.WriteString("Attribution (-attribute) was requested but unavailable, so this report has no breakdown:\n\n")
		for _, name := range a.order {
			fmt.Fprintf(&b, "- %s (pid %d): %s\n", name, a.pids[name], orNone(a.why[name], "no measured run completed"))
		}
		return b.String()
	}
	b.WriteString("Measured on the target's process with eBPF on scheduler, syscall and socket tracepoints (package bench/attribute; " +
		"definitions in docs/bench/README.md), over exactly the measured seconds of each run: sums over all rounds divided " +
		"by the I/Os completed in them, in µs per I/O. User, syscall, run queue and blocked partition the time of all the " +
		"target's threads (they add up to wall × threads, threads being the average number of the target's threads in the windows); on-CPU is user + syscall, the target's CPU cost per I/O. " +
		"Socket wait is the time requests sat in the target's socket receive queues before it read them; it overlaps the " +
		"others. Blocked is mostly threads waiting for the client and grows with idle threads. Wall is the window per I/O " +
		"(1/IOPS); at QD1 it is about the mean latency. Tracing adds a fraction of a µs to every syscall on the machine, the target's " +
		"and the client's, so the latencies above are a little higher than without -attribute.\n\n")
	for _, l := range a.limits {
		fmt.Fprintf(&b, "- Not measured here: %s; its column reads 0.\n", l)
	}
	if len(a.limits) > 0 {
		b.WriteString("\n")
	}
	if a.svg != "" && a.out != "-" {
		if rel, err := filepath.Rel(filepath.Dir(a.out), a.svg); err == nil {
			fmt.Fprintf(&b, "![Where the target's time goes per I/O](%s)\n\n", filepath.ToSlash(rel))
		}
	}
	b.WriteString("| workload | target | user µs | syscall µs | run queue µs | socket wait µs | blocked µs | on-CPU µs | wall µs | syscalls | wakeups | threads | top syscalls: calls, µs on CPU |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		var top []string
		for _, s := range r.Syscalls {
			top = append(top, fmt.Sprintf("%s %.2g× %s µs", s.Name, s.Calls, us(s.OnCPU)))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f | %.1f | %s |\n", r.Workload, r.Target,
			us(r.Part(attribute.PartUser)), us(r.Part(attribute.PartSyscall)), us(r.Part(attribute.PartRunQueue)),
			us(r.Part(attribute.PartSocketWait)), us(r.Part(attribute.PartBlocked)),
			us(r.Part(attribute.PartUser)+r.Part(attribute.PartSyscall)), us(r.WallPerIO),
			r.SyscallsPerIO, r.WakeupsPerIO, r.Threads, strings.Join(top, "; "))
	}
	for _, name := range a.order {
		if why, ok := a.why[name]; ok {
			fmt.Fprintf(&b, "\n%s (pid %d) was not traced: %s\n", name, a.pids[name], why)
		}
	}
	return b.String()
}

// us prints d in µs with one decimal.
func us(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e3) }

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// attrColumns are the TSV columns the breakdown adds to -raw: per I/O, in
// ns, and the window's I/Os and counts per I/O.
var attrColumns = []string{"attr_ios", "user_ns", "syscall_ns", "runq_ns", "socket_wait_ns", "blocked_ns", "wall_ns", "syscalls", "wakeups", "threads"}

// writeRaw writes the raw rounds like writeRaw, with the breakdown of each
// traced run in attrColumns (empty for runs not traced).
func (a *attribution) writeRaw(w io.Writer, raw []bench.RawRow) error {
	if a == nil {
		return writeRaw(w, raw)
	}
	var buf bytes.Buffer
	if err := writeRaw(&buf, raw); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, line := range lines {
		if line == "" {
			continue
		}
		line = strings.TrimSuffix(line, "\n")
		var cols []string
		if i == 0 {
			cols = attrColumns
		} else {
			cols = make([]string, len(attrColumns))
			f := strings.SplitN(line, "\t", 4)
			if len(f) >= 3 {
				round, _ := strconv.Atoi(f[0])
				if j := slices.IndexFunc(a.windows, func(x attrWindow) bool {
					return x.round == round && x.workload == f[1] && x.target == f[2]
				}); j >= 0 {
					x := a.windows[j]
					r := x.b.PerIO(x.workload, x.target, x.ios, 0)
					ns := func(name string) string { return strconv.FormatInt(r.Part(name).Nanoseconds(), 10) }
					cols = []string{strconv.FormatUint(x.ios, 10), ns(attribute.PartUser), ns(attribute.PartSyscall),
						ns(attribute.PartRunQueue), ns(attribute.PartSocketWait), ns(attribute.PartBlocked),
						strconv.FormatInt(r.WallPerIO.Nanoseconds(), 10), fmt.Sprintf("%.2f", r.SyscallsPerIO),
						fmt.Sprintf("%.2f", r.WakeupsPerIO), fmt.Sprintf("%.1f", r.Threads)}
				}
			}
		}
		b.WriteString(line + "\t" + strings.Join(cols, "\t") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSVG writes the -attribute-svg chart, when asked for and there is
// something to draw (else it leaves the file alone).
func (a *attribution) writeSVG(stdout io.Writer) error {
	if a == nil || a.svg == "" {
		return nil
	}
	a.mu.Lock()
	rows := a.rows()
	a.mu.Unlock()
	if len(rows) == 0 { // the report says why
		return nil
	}
	return writeFile(a.svg, stdout, func(w io.Writer) error {
		return attribute.WriteSVG(w, "Where the target's time goes per I/O: on-CPU and run queue", rows, nil)
	})
}
