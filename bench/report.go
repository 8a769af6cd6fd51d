package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Row is one line of a report: one workload on one target, each figure the
// median over the rounds.
type Row struct {
	Workload string
	Target   string
	// Rounds is how many measurements the figures summarize.
	Rounds int
	// IOPS is commands per second; MBps is 10^6 bytes per second.
	IOPS, MBps float64
	// Latency percentiles and the largest latency seen.
	Median, P99, P999, Max time.Duration
}

// RowOf makes a Row of one Result.
func RowOf(target string, r *Result) Row {
	return Row{
		Workload: r.Workload.String(), Target: target, Rounds: 1,
		IOPS: r.IOPS(), MBps: r.MBps(),
		Median: r.Latency.Percentile(0.5), P99: r.Latency.Percentile(0.99),
		P999: r.Latency.Percentile(0.999), Max: r.Latency.Max(),
	}
}

// Summarize makes one Row of several rounds of the same workload on one
// target: every figure is the median of the rounds' figures (the mean of
// the middle two for an even count), except Max, the largest of all.
func Summarize(rounds []Row) Row {
	if len(rounds) == 0 {
		return Row{}
	}
	r := Row{Workload: rounds[0].Workload, Target: rounds[0].Target}
	for _, x := range rounds {
		r.Rounds += x.Rounds
		r.Max = max(r.Max, x.Max)
	}
	r.IOPS = medianOf(rounds, func(x Row) float64 { return x.IOPS })
	r.MBps = medianOf(rounds, func(x Row) float64 { return x.MBps })
	r.Median = time.Duration(medianOf(rounds, func(x Row) float64 { return float64(x.Median) }))
	r.P99 = time.Duration(medianOf(rounds, func(x Row) float64 { return float64(x.P99) }))
	r.P999 = time.Duration(medianOf(rounds, func(x Row) float64 { return float64(x.P999) }))
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

// Report is a benchmark's outcome and how it was made.
type Report struct {
	// Title is the heading.
	Title string
	// Command is the exact command line that made the report.
	Command string
	// Date is when the run started.
	Date time.Time
	// Commit says which code was measured (e.g. "commit 1234abc").
	Commit string
	// Machine describes the host (CPUs, kernel, load).
	Machine string
	// Baseline is the target the ratio columns divide by; empty or
	// absent from Rows means no ratio columns.
	Baseline string
	// Rows are the summarized results, grouped by workload in this order.
	Rows []Row
	// Raw are the per-round results (round numbers from 1), if any.
	Raw []RawRow
	// Notes are extra markdown bullet items (how, with what, caveats).
	Notes []string
	// Plot is the path of the SVG plot relative to the markdown file; empty
	// means none is linked.
	Plot string
}

// RawRow is one round's result.
type RawRow struct {
	Round int
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

// WriteMarkdown writes r as markdown: the heading, how it was made, the
// table (with ratios to the baseline: IOPS higher is better, latency lower
// is better), the plot link, the notes and the raw rounds.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "Made by\n\n```\n%s\n```\n\non %s at %s UTC", r.Command,
		r.Date.UTC().Format("2006-01-02"), r.Date.UTC().Format("15:04"))
	if r.Commit != "" {
		fmt.Fprintf(&b, " from %s", r.Commit)
	}
	b.WriteString(".")
	if r.Machine != "" {
		fmt.Fprintf(&b, " Machine: %s.", r.Machine)
	}
	b.WriteString("\n\n")
	targets := r.Targets()
	hasBase := slices.Contains(targets, r.Baseline) && len(targets) > 1
	b.WriteString("| workload | target | IOPS | MB/s | median | p99 | p99.9 |")
	sep := "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
	if hasBase {
		fmt.Fprintf(&b, " IOPS / %[1]s | median / %[1]s | p99 / %[1]s | p99.9 / %[1]s |", r.Baseline)
		sep += " ---: | ---: | ---: | ---: |"
	}
	b.WriteString("\n" + sep + "\n")
	for _, wl := range r.Workloads() {
		base, ok := r.baseline(wl)
		for _, x := range r.Rows {
			if x.Workload != wl {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %s | %s | %s |", x.Workload, x.Target, x.IOPS, x.MBps,
				FormatDuration(x.Median), FormatDuration(x.P99), FormatDuration(x.P999))
			if hasBase {
				if ok && x.Target != r.Baseline {
					fmt.Fprintf(&b, " %s | %s | %s | %s |", ratio(x.IOPS, base.IOPS),
						ratio(float64(x.Median), float64(base.Median)), ratio(float64(x.P99), float64(base.P99)),
						ratio(float64(x.P999), float64(base.P999)))
				} else {
					b.WriteString(" | | | |")
				}
			}
			b.WriteString("\n")
		}
	}
	if hasBase {
		fmt.Fprintf(&b, "\nRatios divide by %s: above 1 is better for IOPS, below 1 is better for latency.\n", r.Baseline)
	}
	if r.Plot != "" {
		fmt.Fprintf(&b, "\n![latency percentiles and IOPS per workload and target](%s)\n", r.Plot)
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
