package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Row is one line of a report: one workload on one target, each figure the
// median over the rounds. The JSON names are those of the results file
// (WriteJSON); latencies are in nanoseconds.
type Row struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// Rounds is how many measurements the figures summarize.
	Rounds int `json:"rounds"`
	// IOPS is commands per second; MBps is 10^6 bytes per second.
	IOPS float64 `json:"iops"`
	MBps float64 `json:"mbps"`
	// Latency percentiles and the largest latency seen.
	Median time.Duration `json:"median_ns"`
	P99    time.Duration `json:"p99_ns"`
	P999   time.Duration `json:"p999_ns"`
	Max    time.Duration `json:"max_ns"`
	// Mean is the mean latency.
	Mean time.Duration `json:"mean_ns"`
	// IOs is how many commands were measured (over all the rounds).
	IOs uint64 `json:"ios"`
	// Errors is how many commands failed. The first failure ends a run
	// with an error, so a finished report holds 0; the field is there so
	// that a reader need not assume it.
	Errors uint64 `json:"errors"`
	// Spread says how far apart the rounds were; zero for a single round
	// (RowOf).
	Spread Spread `json:"spread,omitzero"`
}

// Spread is the range of the per-round figures behind a summarized Row:
// the smallest and largest IOPS, median and p99 among its rounds.
type Spread struct {
	IOPSMin   float64       `json:"iops_min"`
	IOPSMax   float64       `json:"iops_max"`
	MedianMin time.Duration `json:"median_min_ns"`
	MedianMax time.Duration `json:"median_max_ns"`
	P99Min    time.Duration `json:"p99_min_ns"`
	P99Max    time.Duration `json:"p99_max_ns"`
}

// RowOf makes a Row of one Result.
func RowOf(target string, r *Result) Row {
	return Row{
		Workload: r.Workload.String(), Target: target, Rounds: 1,
		IOPS: r.IOPS(), MBps: r.MBps(),
		Median: r.Latency.Percentile(0.5), P99: r.Latency.Percentile(0.99),
		P999: r.Latency.Percentile(0.999), Max: r.Latency.Max(),
		Mean: r.Latency.Mean(), IOs: r.IOs,
	}
}

// Summarize makes one Row of several rounds of the same workload on one
// target: every figure is the median of the rounds' figures (the mean of
// the middle two for an even count), except Max, the largest of all, and
// IOs and Errors, the sums. Spread holds the range of the rounds' IOPS,
// medians and p99s.
func Summarize(rounds []Row) Row {
	if len(rounds) == 0 {
		return Row{}
	}
	r := Row{Workload: rounds[0].Workload, Target: rounds[0].Target}
	sp := Spread{IOPSMin: math.Inf(1), MedianMin: math.MaxInt64, P99Min: math.MaxInt64}
	for _, x := range rounds {
		r.Rounds += x.Rounds
		r.Max = max(r.Max, x.Max)
		r.IOs += x.IOs
		r.Errors += x.Errors
		sp.IOPSMin, sp.IOPSMax = min(sp.IOPSMin, x.IOPS), max(sp.IOPSMax, x.IOPS)
		sp.MedianMin, sp.MedianMax = min(sp.MedianMin, x.Median), max(sp.MedianMax, x.Median)
		sp.P99Min, sp.P99Max = min(sp.P99Min, x.P99), max(sp.P99Max, x.P99)
	}
	r.Spread = sp
	r.IOPS = medianOf(rounds, func(x Row) float64 { return x.IOPS })
	r.MBps = medianOf(rounds, func(x Row) float64 { return x.MBps })
	r.Median = time.Duration(medianOf(rounds, func(x Row) float64 { return float64(x.Median) }))
	r.P99 = time.Duration(medianOf(rounds, func(x Row) float64 { return float64(x.P99) }))
	r.P999 = time.Duration(medianOf(rounds, func(x Row) float64 { return float64(x.P999) }))
	r.Mean = time.Duration(medianOf(rounds, func(x Row) float64 { return float64(x.Mean) }))
	return r
}

func medianOf(rows []Row, f func(Row) float64) float64 {
	v := make([]float64, len(rows))
	for i, r := range rows {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Report is a benchmark's outcome and how it was made. Its JSON form is
// the results file (WriteJSON, ReadJSON); the JSON names are in the tags,
// durations are in nanoseconds.
type Report struct {
	// Title is the heading.
	Title string `json:"title"`
	// Command is the exact command line that made the report.
	Command string `json:"command"`
	// Args are the command's arguments as it got them (without the
	// program name), when known.
	Args []string `json:"args,omitempty"`
	// Date is when the run started.
	Date time.Time `json:"date"`
	// Commit says which code was measured (e.g. "commit 1234abc").
	Commit string `json:"commit"`
	// Machine describes the host (CPUs, kernel, load) in words; empty
	// means Host.String().
	Machine string `json:"machine"`
	// Host is the same, field by field.
	Host Host `json:"host"`
	// Rounds, Duration and Warmup say how long each target ran each
	// workload: Rounds times Duration, each after Warmup. Order says in
	// which order the targets took turns (OrderABBA); empty means unknown.
	Rounds   int           `json:"rounds,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Warmup   time.Duration `json:"warmup_ns,omitempty"`
	Order    string        `json:"order,omitempty"`
	// Baseline is the target the ratio columns divide by; empty or
	// absent from Rows means no ratio columns.
	Baseline string `json:"baseline,omitempty"`
	// Rows are the summarized results, grouped by workload in this order.
	Rows []Row `json:"summary"`
	// Raw are the per-round results (round numbers from 1), if any.
	Raw []RawRow `json:"raw"`
	// Latency holds the latency distribution of each workload on each
	// target, merged over the rounds, for the CDF plot (WriteCDFSVG).
	Latency []Distribution `json:"latency"`
	// Notes are extra markdown bullet items (how, with what, caveats).
	Notes []string `json:"notes"`
	// Plot is the path of the SVG plot relative to the markdown file; empty
	// means none is linked.
	Plot string `json:"plot,omitempty"`
	// CDFPlot is the path of the CDF plot (WriteCDFSVG) relative to the
	// markdown file; empty means none is linked.
	CDFPlot string `json:"cdf_plot,omitempty"`
}

// OrderABBA names the order goiser-bench measures targets in: forward in
// odd rounds, reversed in even ones (A B, B A, A B, ... for two targets;
// A B C, C B A, ... for three), so over each pair of rounds every target
// holds every position once and a drift in time (warming caches, a
// neighbour's load) weighs on all of them alike.
const OrderABBA = "abba"

// RawRow is one round's result.
type RawRow struct {
	Round int `json:"round"`
	Row
}

// Workloads returns the workload names of r.Rows in first-seen order.
func (r *Report) Workloads() []string {
	var ws []string
	for _, x := range r.Rows {
		if !slices.Contains(ws, x.Workload) {
			ws = append(ws, x.Workload)
		}
	}
	return ws
}

// Targets returns the target names of r.Rows in first-seen order.
func (r *Report) Targets() []string {
	var ts []string
	for _, x := range r.Rows {
		if !slices.Contains(ts, x.Target) {
			ts = append(ts, x.Target)
		}
	}
	return ts
}

// baseline returns the baseline row of workload w, if there is one.
func (r *Report) baseline(w string) (Row, bool) {
	if r.Baseline == "" {
		return Row{}, false
	}
	for _, x := range r.Rows {
		if x.Workload == w && x.Target == r.Baseline {
			return x, true
		}
	}
	return Row{}, false
}

// FormatDuration prints a latency with three significant digits or so:
// "850 ns", "38.2 µs", "612 µs", "1.25 ms", "12.5 ms".
func FormatDuration(d time.Duration) string {
	us := float64(d) / 1e3
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < 100*time.Microsecond:
		return fmt.Sprintf("%.1f µs", us)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", us)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", us/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", us/1e3)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func ratio(a, b float64) string {
	if b <= 0 || a <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// FormatSpread prints how far the rounds lie from their median med, the
// largest distance of lo or hi from it relative to med: " ±2.1%", " ±12%".
// It returns "" when med is not positive or lo and hi are both 0 (a
// single round).
func FormatSpread(med, lo, hi float64) string {
	if med <= 0 || lo == 0 && hi == 0 {
		return ""
	}
	p := max(hi-med, med-lo, 0) / med * 100
	if p < 9.95 {
		return fmt.Sprintf(" ±%.1f%%", p)
	}
	return fmt.Sprintf(" ±%.0f%%", p)
}

// split reports whether the rounds disagree on which of target and the
// baseline is better for workload wl by figure f: in some round target's
// figure divided by the baseline's is above 1 and in another below.
func (r *Report) split(wl, target string, f func(Row) float64) bool {
	base := map[int]float64{}
	for _, x := range r.Raw {
		if x.Workload == wl && x.Target == r.Baseline {
			base[x.Round] = f(x.Row)
		}
	}
	above, below := false, false
	for _, x := range r.Raw {
		b, ok := base[x.Round]
		if x.Workload != wl || x.Target != target || !ok || b <= 0 {
			continue
		}
		q := f(x.Row) / b
		above, below = above || q > 1, below || q < 1
	}
	return above && below
}

// machine returns the host's description for the report.
func (r *Report) machine() string {
	if r.Machine != "" {
		return r.Machine
	}
	return r.Host.String()
}

// WriteMarkdown writes r as markdown: the heading, how it was made, the
// table (IOPS and median with their spread over the rounds, and ratios to
// the baseline: IOPS higher is better, latency lower is better, a dagger
// where the rounds disagree on the ratio's side of 1), the plot links,
// the notes and the raw rounds.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "Made by\n\n```\n%s\n```\n\non %s at %s UTC", r.Command,
		r.Date.UTC().Format("2006-01-02"), r.Date.UTC().Format("15:04"))
	if r.Commit != "" {
		fmt.Fprintf(&b, " from %s", r.Commit)
	}
	b.WriteString(".\n\n")
	if m := r.machine(); m != "" {
		fmt.Fprintf(&b, "- Machine: %s.\n", m)
	}
	if r.Rounds > 0 {
		fmt.Fprintf(&b, "- Rounds: %d, each running every workload on every target for %g s after %g s of warm-up",
			r.Rounds, r.Duration.Seconds(), r.Warmup.Seconds())
		if r.Order == OrderABBA {
			b.WriteString("; the targets take turns in ABBA order (as given in odd rounds, reversed in even ones)")
			if r.Rounds%2 == 1 && r.Rounds > 1 {
				b.WriteString(", so with an odd count the first target went first once more than the last")
			}
		}
		b.WriteString(".\n")
	}
	b.WriteString("\n")
	targets := r.Targets()
	hasBase := slices.Contains(targets, r.Baseline) && len(targets) > 1
	b.WriteString("| workload | target | IOPS | MB/s | median | p99 | p99.9 |")
	sep := "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
	if hasBase {
		fmt.Fprintf(&b, " IOPS / %[1]s | median / %[1]s | p99 / %[1]s | p99.9 / %[1]s |", r.Baseline)
		sep += " ---: | ---: | ---: | ---: |"
	}
	b.WriteString("\n" + sep + "\n")
	anySplit, anySpread := false, false
	for _, wl := range r.Workloads() {
		base, ok := r.baseline(wl)
		for _, x := range r.Rows {
			if x.Workload != wl {
				continue
			}
			var iopsSpread, medSpread string
			if sp := x.Spread; x.Rounds > 1 {
				iopsSpread = FormatSpread(x.IOPS, sp.IOPSMin, sp.IOPSMax)
				medSpread = FormatSpread(float64(x.Median), float64(sp.MedianMin), float64(sp.MedianMax))
			}
			anySpread = anySpread || iopsSpread != ""
			fmt.Fprintf(&b, "| %s | %s | %.0f%s | %.0f | %s%s | %s | %s |", x.Workload, x.Target, x.IOPS, iopsSpread, x.MBps,
				FormatDuration(x.Median), medSpread, FormatDuration(x.P99), FormatDuration(x.P999))
			if hasBase {
				if ok && x.Target != r.Baseline {
					cell := func(a, bb float64, f func(Row) float64) string {
						s := ratio(a, bb)
						if s != "-" && r.split(wl, x.Target, f) {
							anySplit = true
							s += " †"
						}
						return s
					}
					fmt.Fprintf(&b, " %s | %s | %s | %s |",
						cell(x.IOPS, base.IOPS, func(x Row) float64 { return x.IOPS }),
						cell(float64(x.Median), float64(base.Median), func(x Row) float64 { return float64(x.Median) }),
						cell(float64(x.P99), float64(base.P99), func(x Row) float64 { return float64(x.P99) }),
						cell(float64(x.P999), float64(base.P999), func(x Row) float64 { return float64(x.P999) }))
				} else {
					b.WriteString(" | | | |")
				}
			}
			b.WriteString("\n")
		}
	}
	if anySpread {
		b.WriteString("\nEach figure is the median over the rounds; after IOPS and the median, ± is the largest distance " +
			"of one round's figure from that median (the raw rounds are below).\n")
	}
	if hasBase {
		fmt.Fprintf(&b, "\nRatios divide by %s: above 1 is better for IOPS, below 1 is better for latency.", r.Baseline)
		if anySplit {
			b.WriteString(" † marks a ratio the rounds disagree on: in some round it was above 1 and in another below " +
				"(each round's figure divided by the same round's baseline), so it is within the noise.")
		}
		b.WriteString("\n")
	}
	if r.Plot != "" {
		fmt.Fprintf(&b, "\n![latency percentiles and IOPS per workload and target](%s)\n", r.Plot)
	}
	if r.CDFPlot != "" {
		fmt.Fprintf(&b, "\n![latency distribution (CDF) per workload, one curve per target](%s)\n", r.CDFPlot)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.Raw) > 0 {
		b.WriteString("\nRaw rounds:\n\n| round | workload | target | IOPS | median | p99 | p99.9 | max |\n")
		b.WriteString("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, x := range r.Raw {
			fmt.Fprintf(&b, "| %d | %s | %s | %.0f | %s | %s | %s | %s |\n", x.Round, x.Workload, x.Target, x.IOPS,
				FormatDuration(x.Median), FormatDuration(x.P99), FormatDuration(x.P999), FormatDuration(x.Max))
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown report: %w", err)
	}
	return nil
}
