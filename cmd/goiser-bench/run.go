package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goiser/goiser/bench"
	"github.com/goiser/goiser/cgo/verbs"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iser"
	"github.com/goiser/goiser/rdma/driver"
	"github.com/goiser/goiser/scsi"
)

// DefaultWorkloads are the rows of DESIGN.md §6: QD1 and QD32 at 4 KiB,
// 128 KiB sequential, reads and writes.
const DefaultWorkloads = "4k-randread-qd1,4k-randwrite-qd1,4k-randread-qd32,4k-randwrite-qd32,128k-seqread-qd8,128k-seqwrite-qd8"

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// options are the parsed flags.
type options struct {
	targets       []bench.Target
	workloads     []bench.Workload
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	regionBytes   int64
	fill          bool
	baseline      string
	out, svg, raw string
	title         string
	commit        string
	notes         []string
	initiatorName string
	command       string
	fallback      bool
	verify        bool

	// jsonOut and cdfSVG are the -json and -cdf-svg files ("" for none);
	// quiet turns the progress lines off; args are the arguments as given.
	jsonOut, cdfSVG string
	quiet           bool
	args            []string

	// provider opens the RDMA device for iser:// targets; nil means
	// cgo/verbs (tests pass rdma/soft).
	provider driver.Provider
	attr     *attribution // -attribute (attribute.go); nil without

	// maxIO maps a target name to the largest I/O it is measured with
	// (-max-io): larger workloads are not run on it, and the report says so.
	maxIO map[string]int
}

// skip reports whether workload w is not run on target name (-max-io).
func (o *options) skip(name string, w bench.Workload) bool {
	m, ok := o.maxIO[name]
	return ok && w.Size > m
}

// sizeName writes a byte count as a workload does (4k, 512k, 1m).
func sizeName(n int) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dm", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dk", n>>10)
	}
	return fmt.Sprint(n)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("goiser-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var targets, notes listFlag
	fs.Var(&targets, "target", "NAME=iscsi://HOST:PORT/IQN/LUN or NAME=iser://... to measure (repeat for each target)")
	fallback := fs.Bool("fallback", false, "an iser:// target whose iSER connection fails is measured over TCP on the same portal (and the report says so)")
	fs.Var(&notes, "note", "extra markdown bullet for the report (repeatable)")
	var maxIO listFlag
	fs.Var(&maxIO, "max-io", "NAME=SIZE (e.g. tgt-iser=512k): run no workload with larger I/Os on target NAME, for a target known to fail them; the report lists what was not run (repeatable)")
	workloads := fs.String("workloads", DefaultWorkloads, "comma-separated workloads, SIZE-{rand,seq}{read,write}-qdN")
	rounds := fs.Int("rounds", 5, "rounds; each runs every workload on every target")
	seconds := fs.Float64("seconds", 5, "measured seconds per workload, target and round")
	warmup := fs.Float64("warmup", 0.5, "seconds of unmeasured commands before each measurement")
	region := fs.Int64("region-mib", 1024, "MiB of each LUN to use from LBA 0 (capped at the LUN's size)")
	fill := fs.Bool("fill", true, "write the whole region once before measuring")
	verify := fs.Bool("verify", false, "check the data: writes carry a self-describing pattern per block, every read is compared with the last acknowledged write (or the fill), and the region is read back after the last round; needs -fill")
	baseline := fs.String("baseline", "", "target the ratios divide by (default: tgt when given, else none)")
	out := fs.String("out", "-", "markdown report file (- for standard output)")
	svg := fs.String("svg", "", "SVG plot file (none when empty)")
	raw := fs.String("raw", "", "tab-separated raw results file (none when empty)")
	jsonOut := fs.String("json", "", "JSON results file: metadata, every round, the summary with its spread and the merged latency histograms (none when empty)")
	cdfSVG := fs.String("cdf-svg", "", "SVG file of latency CDFs, one panel per workload, a curve per target (none when empty)")
	quiet := fs.Bool("quiet", false, "no progress lines on standard error")
	title := fs.String("title", "iSCSI/TCP latency and IOPS", "report title")
	commit := fs.String("commit", "", "which code is measured (default: this binary's VCS stamp)")
	iname := fs.String("initiator-name", "iqn.2026-11.dev.goiser:bench", "initiator IQN")
	attr := addAttributeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o := &options{
		rounds: *rounds, duration: time.Duration(*seconds * float64(time.Second)),
		warmup: time.Duration(*warmup * float64(time.Second)), regionBytes: *region << 20, fill: *fill,
		baseline: *baseline, out: *out, svg: *svg, raw: *raw, title: *title, commit: *commit,
		notes: notes, initiatorName: *iname, command: commandLine(args), fallback: *fallback, verify: *verify,
		jsonOut: *jsonOut, cdfSVG: *cdfSVG, quiet: *quiet, args: slices.Clone(args),
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case len(targets) == 0:
		return nil, errors.New("no -target given")
	case o.rounds < 1 || o.duration <= 0 || o.warmup < 0 || o.regionBytes <= 0:
		return nil, errors.New("-rounds, -seconds and -region-mib must be positive, -warmup not negative")
	case o.verify && !o.fill:
		return nil, errors.New("-verify needs -fill: a read of a block never written would have nothing to compare with")
	}
	for _, spec := range targets {
		t, err := bench.ParseTarget(spec)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(o.targets, func(x bench.Target) bool { return x.Name == t.Name }) {
			return nil, fmt.Errorf("target name %q given twice", t.Name)
		}
		if i := slices.IndexFunc(o.targets, func(x bench.Target) bool {
			return x.Addr == t.Addr && x.IQN == t.IQN && x.LUN == t.LUN
		}); o.verify && i >= 0 {
			return nil, fmt.Errorf("-verify: targets %q and %q are the same LUN; each one's writes would break the other's expectations", o.targets[i].Name, t.Name)
		}
		o.targets = append(o.targets, t)
	}
	var err error
	if o.workloads, err = bench.ParseWorkloads(*workloads); err != nil {
		return nil, err
	}
	if o.attr, err = attr.parse(o); err != nil {
		return nil, err
	}
	for _, spec := range maxIO {
		name, size, ok := strings.Cut(spec, "=")
		w, err := bench.ParseWorkload(size + "-randread-qd1")
		if !ok || err != nil {
			return nil, fmt.Errorf("-max-io %q: want NAME=SIZE, e.g. tgt-iser=512k", spec)
		}
		if !slices.ContainsFunc(o.targets, func(t bench.Target) bool { return t.Name == name }) {
			return nil, fmt.Errorf("-max-io %q: %q is not a -target", spec, name)
		}
		if o.maxIO == nil {
			o.maxIO = map[string]int{}
		}
		o.maxIO[name] = w.Size
	}
	names := make([]string, len(o.targets))
	for i, t := range o.targets {
		names[i] = t.Name
	}
	if o.baseline == "" && slices.Contains(names, "tgt") {
		o.baseline = "tgt"
	}
	if o.baseline != "" && !slices.Contains(names, o.baseline) {
		return nil, fmt.Errorf("-baseline %q is not a target", o.baseline)
	}
	if o.commit == "" {
		o.commit = buildStamp()
	}
	return o, nil
}

// commandLine quotes args back into a command a shell would accept, one
// flag per line.
func commandLine(args []string) string {
	parts := []string{"goiser-bench"}
	for i, a := range args {
		if i > 0 && strings.HasPrefix(a, "-") {
			parts = append(parts, "\\\n   ")
		}
		if a == "" || strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=/.:,+@%", r))
		}) {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// buildStamp returns this binary's VCS revision ("commit 1234abc"), or "".
func buildStamp() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(7, len(s.Value))]
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return ""
	}
	if modified == "true" {
		return "commit " + rev + " plus uncommitted changes"
	}
	return "commit " + rev
}

// host describes this machine: CPUs, kernel, Go, and the load average
// now as LoadStart.
func host() bench.Host {
	h := bench.Host{CPUs: runtime.NumCPU(), Kernel: runtime.GOOS, GoVersion: runtime.Version(), LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return h
}

// loadAverage returns the 1, 5 and 15 minute load averages, or nil.
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil
	}
	l := make([]float64, 3)
	for i := range l {
		if l[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return nil
		}
	}
	return l
}

// roundOrder returns the order in which round r (from 1) measures n
// targets, as indexes: ABBA (bench.OrderABBA), forward in odd rounds and
// reversed in even ones.
func roundOrder(r, n int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = i
	}
	if r%2 == 0 {
		slices.Reverse(o)
	}
	return o
}

// conn is one target's open session.
type conn struct {
	t         bench.Target
	s         *initiator.Session
	blockSize int
	blocks    uint64
	v         *bench.Verifier // with -verify
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return measure(ctx, o, stdout, stderr)
}

// measure runs what o says and writes the report.
func measure(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	if o.provider == nil {
		o.provider = verbs.Provider()
	}
	var err error
	started := time.Now()
	machine := host()
	var prog *progress
	logw := stderr
	if !o.quiet {
		var wls, tgs []string
		for _, w := range o.workloads {
			wls = append(wls, w.String())
		}
		for _, t := range o.targets {
			tgs = append(tgs, t.Name)
		}
		runs := 0
		for _, w := range o.workloads {
			for _, t := range o.targets {
				if !o.skip(t.Name, w) {
					runs += o.rounds
				}
			}
		}
		prog = newProgress(stderr, time.Now, runs, o.warmup+o.duration, wls, tgs)
		logw = prog
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	qd := 1
	for _, w := range o.workloads {
		qd = max(qd, w.QueueDepth)
	}
	var conns []*conn
	defer func() {
		for _, c := range conns {
			_ = c.s.Close()
		}
	}()
	for _, t := range o.targets {
		icfg := initiator.Config{
			InitiatorName: o.initiatorName, TargetName: t.IQN, MaxTasks: qd,
			Logger: log.With("target", t.Name),
		}
		var s *initiator.Session
		transport := iser.TransportTCP
		if t.ISER {
			s, transport, err = iser.DialSession(ctx, t.Addr, iser.SessionConfig{Initiator: icfg, Fallback: o.fallback,
				ISER: iser.InitiatorConfig{Provider: o.provider, Logger: log.With("target", t.Name), MaxTasks: qd}})
			if err == nil && transport != iser.TransportISER {
				o.notes = append(o.notes, fmt.Sprintf("%s: no iSER connection to %s; measured over iSCSI/TCP instead (-fallback)", t.Name, t.Addr))
			}
		} else {
			s, err = initiator.Dial(ctx, t.Addr, icfg)
		}
		if err != nil {
			return fmt.Errorf("dial %s at %s: %w", t.Name, t.Addr, err)
		}
		log.Info("logged in", "target", t.Name, "transport", transport)
		c := &conn{t: t, s: s}
		conns = append(conns, c)
		capa, err := readyCapacity(ctx, s, t.LUN)
		if err != nil {
			return fmt.Errorf("read capacity of %s LUN %d: %w", t.Name, t.LUN, err)
		}
		c.blockSize = int(capa.BlockSize)
		c.blocks = min(capa.Blocks, uint64(o.regionBytes)/uint64(capa.BlockSize))
		log.Info("connected", "target", t.Name, "addr", t.Addr, "iqn", t.IQN, "lun", t.LUN,
			"block_size", c.blockSize, "region_blocks", c.blocks)
		if o.verify {
			if c.v, err = bench.NewVerifier(c.blockSize, c.blocks); err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
		}
		if o.fill {
			t0 := time.Now()
			if c.v != nil {
				err = c.v.Fill(ctx, s, t.LUN, 128<<10, 8)
			} else {
				err = bench.Fill(ctx, s, t.LUN, c.blockSize, c.blocks, 128<<10, 8)
			}
			if err != nil {
				return fmt.Errorf("fill %s: %w", t.Name, err)
			}
			if c.v != nil {
				log.Info("filled", "target", t.Name, "bytes", c.blocks*uint64(c.blockSize), "took", time.Since(t0).Round(time.Millisecond),
					"verify_generation", fmt.Sprintf("%#x", c.v.Generation()))
			} else {
				log.Info("filled", "target", t.Name, "bytes", c.blocks*uint64(c.blockSize), "took", time.Since(t0).Round(time.Millisecond))
			}
		}
	}

	o.attr.start(ctx, stderr, log)
	defer o.attr.stop()
	var raw []bench.RawRow
	hists := map[[2]string]*bench.Histogram{} // by workload and target, merged over the rounds
	for r := 1; r <= o.rounds; r++ {
		for _, w := range o.workloads {
			for _, i := range roundOrder(r, len(conns)) {
				c := conns[i]
				if o.skip(c.t.Name, w) {
					continue
				}
				if prog != nil {
					prog.begin(r, o.rounds, w.String(), c.t.Name)
				}
				span := o.attr.begin(c.t.Name, o.warmup)
				res, err := bench.Run(ctx, c.s, bench.RunConfig{
					Workload: w, LUN: c.t.LUN, BlockSize: c.blockSize, Blocks: c.blocks,
					Duration: o.duration, Warmup: o.warmup, Verify: c.v,
				})
				o.attr.end(span, r, res)
				if err != nil {
					return fmt.Errorf("round %d on %s: %w", r, c.t.Name, err)
				}
				row := bench.RowOf(c.t.Name, res)
				raw = append(raw, bench.RawRow{Round: r, Row: row})
				key := [2]string{row.Workload, row.Target}
				if hists[key] == nil {
					hists[key] = new(bench.Histogram)
				}
				hists[key].Merge(&res.Latency)
				if prog != nil {
					prog.end(r, o.rounds, row)
				}
			}
		}
	}

	if o.verify {
		for _, c := range conns {
			t0 := time.Now()
			if err := c.v.Check(ctx, c.s, c.t.LUN, 128<<10, 8); err != nil {
				return fmt.Errorf("read back %s: %w", c.t.Name, err)
			}
			st := c.v.Stats()
			log.Info("verified", "target", c.t.Name, "blocks_checked", st.Checked, "blocks_written", st.Written,
				"mismatches", 0, "took", time.Since(t0).Round(time.Millisecond))
		}
	}

	machine.LoadEnd = loadAverage()
	rep := &bench.Report{
		Title: o.title, Command: o.command, Args: o.args, Date: started, Commit: o.commit, Host: machine,
		Rounds: o.rounds, Duration: o.duration, Warmup: o.warmup, Order: bench.OrderABBA,
		Baseline: o.baseline, Raw: raw,
	}
	for _, w := range o.workloads {
		for _, c := range conns {
			var rounds []bench.Row
			for _, x := range raw {
				if x.Workload == w.String() && x.Target == c.t.Name {
					rounds = append(rounds, x.Row)
				}
			}
			if len(rounds) == 0 {
				continue // not run (-max-io)
			}
			rep.Rows = append(rep.Rows, bench.Summarize(rounds))
			if h := hists[[2]string{w.String(), c.t.Name}]; h != nil {
				rep.Latency = append(rep.Latency, bench.DistributionOf(w.String(), c.t.Name, h))
			}
		}
	}
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("Client: goiser-bench (package bench over iscsi/initiator), one session per target, MaxTasks %d. "+
			"Within a round every workload runs on every target back to back; each figure of the table is the median over the rounds.", qd),
		"Latency is per command, from just before it is sent to the return of its status, in an HDR-style histogram "+
			"(within 0.8 %). Random workloads use I/O-size aligned offsets over the region; sequential ones share one cursor.")
	for _, c := range conns {
		var skipped []string
		for _, w := range o.workloads {
			if o.skip(c.t.Name, w) {
				skipped = append(skipped, w.String())
			}
		}
		if len(skipped) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("Not run on %s, which takes I/Os of at most %s (-max-io): %s.",
				c.t.Name, sizeName(o.maxIO[c.t.Name]), strings.Join(skipped, ", ")))
		}
	}
	if o.fill {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Each target's region (the first %d MiB of the LUN) was written once with 128 KiB writes before measuring.", o.regionBytes>>20))
	}
	if o.verify {
		rep.Notes = append(rep.Notes, verifyNote(conns))
	}
	rep.Notes = append(rep.Notes, o.notes...)
	if o.out != "-" {
		rel := func(path string) string {
			if path == "" || path == "-" {
				return ""
			}
			if r, err := filepath.Rel(filepath.Dir(o.out), path); err == nil {
				return filepath.ToSlash(r)
			}
			return ""
		}
		rep.Plot, rep.CDFPlot = rel(o.svg), rel(o.cdfSVG)
	}
	if err := writeFile(o.out, stdout, o.attr.markdown(rep.WriteMarkdown)); err != nil {
		return err
	}
	if o.svg != "" {
		if err := writeFile(o.svg, stdout, rep.WriteSVG); err != nil {
			return err
		}
	}
	if o.cdfSVG != "" {
		if err := writeFile(o.cdfSVG, stdout, rep.WriteCDFSVG); err != nil {
			return err
		}
	}
	if o.jsonOut != "" {
		if err := writeFile(o.jsonOut, stdout, rep.WriteJSON); err != nil {
			return err
		}
	}
	if o.raw != "" {
		if err := writeFile(o.raw, stdout, func(w io.Writer) error { return o.attr.writeRaw(w, raw) }); err != nil {
			return err
		}
	}
	if err := o.attr.writeSVG(stdout); err != nil {
		return err
	}
	return nil
}

// verifyNote says how the data was checked and how much, per target.
func verifyNote(conns []*conn) string {
	var b strings.Builder
	b.WriteString("Data verification (-verify) was on: every write carried a self-describing pattern in each logical block " +
		"(its LBA, this run's generation, the write's sequence number, and data derived from them); every read, and a read-back " +
		"of the whole region after the last round, compared each block byte for byte with what the last acknowledged write to it " +
		"(or the fill) sent. Writes in flight never overlap: in a write workload each of the queue depth's commands owns the " +
		"I/O slots of the region whose index modulo the queue depth is its own; read workloads visit the region as without " +
		"-verify. Making and checking the pattern happens outside the measured latencies " +
		"but takes CPU time, so IOPS compare only with other -verify runs. Verified, with 0 mismatches:")
	for i, c := range conns {
		st := c.v.Stats()
		bs := uint64(st.BlockSize)
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s: %d blocks of %d bytes (%s) read and compared, %d blocks (%s) written", c.t.Name,
			st.Checked, bs, mib(st.Checked*bs), st.Written, mib(st.Written*bs))
	}
	b.WriteString(".")
	return b.String()
}

// mib prints n bytes in MiB.
func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// readyCapacity clears the unit attentions a fresh I_T nexus gets (tgt
// reports a power-on reset to the first command) and returns the LUN's
// capacity.
func readyCapacity(ctx context.Context, s *initiator.Session, lun uint64) (initiator.Capacity, error) {
	for range 5 {
		err := s.TestUnitReady(ctx, lun)
		var se *initiator.SCSIError
		if err == nil || !errors.As(err, &se) || se.Key != scsi.SenseUnitAttention {
			break
		}
	}
	return s.ReadCapacity16(ctx, lun)
}

// writeRaw writes the raw rounds as tab-separated values, latencies in ns.
func writeRaw(w io.Writer, raw []bench.RawRow) error {
	var b strings.Builder
	b.WriteString("round\tworkload\ttarget\tiops\tmbps\tmedian_ns\tp99_ns\tp999_ns\tmax_ns\n")
	for _, x := range raw {
		fmt.Fprintf(&b, "%d\t%s\t%s\t%.0f\t%.1f\t%d\t%d\t%d\t%d\n", x.Round, x.Workload, x.Target, x.IOPS, x.MBps,
			x.Median.Nanoseconds(), x.P99.Nanoseconds(), x.P999.Nanoseconds(), x.Max.Nanoseconds())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFile writes through f to path ("-" is stdout), via a temporary file
// renamed into place so that a failed run leaves the old file alone.
func writeFile(path string, stdout io.Writer, f func(io.Writer) error) error {
	if path == "-" {
		return f(stdout)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := f(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
