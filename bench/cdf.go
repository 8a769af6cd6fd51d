package bench

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

type svgPolyline struct {
	XMLName xml.Name `xml:"polyline"`
	Points  string   `xml:"points,attr"`
	Fill    string   `xml:"fill,attr"`
	Stroke  string   `xml:"stroke,attr"`
	Width   float64  `xml:"stroke-width,attr"`
	Join    string   `xml:"stroke-linejoin,attr,omitempty"`
	Title   *svgTitle
}

// CDF plot geometry: a grid of panels, one per workload.
const (
	cdfPanelW   = 430.0
	cdfPanelH   = 310.0
	cdfLeft     = 64.0 // plot area inside a panel
	cdfRight    = 18.0
	cdfTop      = 30.0
	cdfBottom   = 46.0
	cdfHeader   = 100.0
	cdfFooter   = 46.0
	cdfMargin   = 10.0
	cdfMaxNines = 5 // the y axis ends at 99.999 % at most
)

// tailY maps a fraction f of the I/Os to the y axis of the CDF plot:
// -log10(1-f), so that 90 %, 99 %, 99.9 % ... lie one unit apart; a
// fraction of 1 maps to top.
func tailY(f, top float64) float64 {
	if f >= 1 {
		return top
	}
	return min(-math.Log10(1-f), top)
}

// cdfTicks are the y axis labels: fraction, label, whether a main line.
var cdfTicks = []struct {
	f     float64
	label string
	main  bool
}{
	{0, "0%", true}, {0.25, "25%", false}, {0.5, "50%", true}, {0.75, "75%", false}, {0.9, "90%", true},
	{0.99, "99%", true}, {0.999, "99.9%", true}, {0.9999, "99.99%", true}, {0.99999, "99.999%", true},
}

// cdfColumns returns how many panels a row of the grid holds for n.
func cdfColumns(n int) int {
	switch {
	case n <= 3:
		return max(n, 1)
	case n == 4:
		return 2
	}
	return 3
}

// WriteCDFSVG draws r.Latency as one SVG picture of small multiples: a
// panel per workload, a curve per target (colored as in WriteSVG). Each
// curve is the cumulative distribution of the latencies, merged over the
// rounds: x is the latency on a log axis, y the fraction of I/Os that
// took at most that long, on a scale that stretches the tail (the
// distance from 1 on a log scale: 0 %, 50 %, 90 %, 99 %, 99.9 % ...), so
// that the median and the tail both show. A curve further left is faster;
// a curve that bends right near the top has a long tail. The y axis ends
// where the largest run has too few I/Os to say more (at most 99.999 %);
// the last step of every curve reaches the top at its maximum.
func (r *Report) WriteCDFSVG(w io.Writer) error {
	var workloads, targets []string
	for _, x := range r.Rows {
		if !slices.Contains(targets, x.Target) {
			targets = append(targets, x.Target)
		}
	}
	var most uint64
	for _, d := range r.Latency {
		if !slices.Contains(workloads, d.Workload) {
			workloads = append(workloads, d.Workload)
		}
		if !slices.Contains(targets, d.Target) {
			targets = append(targets, d.Target)
		}
		most = max(most, d.Count)
	}
	color := func(t string) string { return paletteColor(slices.Index(targets, t)) }
	top := math.Floor(math.Log10(float64(max(most, 1))))
	top = min(max(top, 2), cdfMaxNines)

	cols := cdfColumns(len(workloads))
	rows := max((len(workloads)+cols-1)/cols, 1)
	width := 2*cdfMargin + float64(cols)*cdfPanelW
	height := cdfHeader + float64(rows)*cdfPanelH + cdfFooter
	doc := svgDoc{
		NS: "http://www.w3.org/2000/svg", Width: int(width), Height: int(height),
		ViewBox: fmt.Sprintf("0 0 %d %d", int(width), int(height)), Font: "Helvetica, Arial, sans-serif", Size: 12,
	}
	add := func(items ...any) { doc.Items = append(doc.Items, items...) }
	add(svgRect{W: width, H: height, Fill: "white"})
	add(svgText{X: width / 2, Y: 26, Anchor: "middle", Weight: "bold", Size: 16, Text: r.Title + ": latency CDF"})
	sub := "Fraction of I/Os that completed within a latency"
	if r.Rounds > 0 {
		sub += fmt.Sprintf(", all %d rounds merged", r.Rounds)
	}
	add(svgText{X: width / 2, Y: 44, Anchor: "middle", Size: 12, Fill: "#333", Text: sub + "; further left is faster."},
		svgText{X: width / 2, Y: 60, Anchor: "middle", Size: 12, Fill: "#333",
			Text: "The y axis stretches the tail: 90 %, 99 %, 99.9 % lie equally far apart."})
	// Legend: a line and a name per target, centered.
	const legendItem = 150.0
	lx := width/2 - float64(len(targets))*legendItem/2
	for i, t := range targets {
		x := lx + float64(i)*legendItem
		add(svgLine{X1: x, Y1: 80, X2: x + 28, Y2: 80, Stroke: color(t), Width: 3},
			svgText{X: x + 34, Y: 84.5, Size: 13, Fill: "#222", Text: t})
	}

	for i, wl := range workloads {
		px := cdfMargin + float64(i%cols)*cdfPanelW
		py := cdfHeader + float64(i/cols)*cdfPanelH
		r.cdfPanel(add, wl, px, py, top, color)
	}

	foot := "Measured " + r.Date.UTC().Format("2006-01-02 15:04 UTC")
	if r.Commit != "" {
		foot += " from " + r.Commit
	}
	add(svgText{X: cdfMargin, Y: height - 24, Size: 10, Fill: "#666",
		Text: foot + "; HDR-style histogram buckets (within 0.8 %); the exact command is in the markdown report."})
	if m := r.machine(); m != "" {
		add(svgText{X: cdfMargin, Y: height - 10, Size: 10, Fill: "#666", Text: "Machine: " + m + "."})
	}
	out, err := xml.MarshalIndent(doc, "", " ")
	if err != nil {
		return fmt.Errorf("marshal cdf svg: %w", err)
	}
	if _, err := fmt.Fprintf(w, "%s%s\n", xml.Header, out); err != nil {
		return fmt.Errorf("write cdf svg: %w", err)
	}
	return nil
}

// cdfPanel draws workload wl's panel with its top left corner at (px, py).
func (r *Report) cdfPanel(add func(...any), wl string, px, py, top float64, color func(string) string) {
	var ds []Distribution
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, d := range r.Latency {
		if d.Workload == wl && d.Count > 0 {
			ds = append(ds, d)
			lo = min(lo, math.Log10(max(float64(d.Min), 1)))
			hi = max(hi, math.Log10(max(float64(d.Max), 1)))
		}
	}
	if len(ds) == 0 {
		lo, hi = 3, 6
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	x0, x1 := px+cdfLeft, px+cdfPanelW-cdfRight
	y0, y1 := py+cdfPanelH-cdfBottom, py+cdfTop // bottom and top of the plot area
	xOf := func(d time.Duration) float64 {
		v := min(max(math.Log10(max(float64(d), 1)), lo), hi)
		return x0 + (v-lo)/(hi-lo)*(x1-x0)
	}
	yOf := func(f float64) float64 { return y0 - tailY(f, top)/top*(y0-y1) }

	add(svgText{X: (x0 + x1) / 2, Y: py + 18, Anchor: "middle", Weight: "bold", Size: 14, Text: wl})
	add(svgRect{X: x0, Y: y1, W: x1 - x0, H: y0 - y1, Fill: "#fafafa", Stroke: "#bbb"})
	// y grid: the nines, and the quartiles dashed.
	for _, t := range cdfTicks {
		if tailY(t.f, math.Inf(1)) > top+1e-9 {
			break
		}
		y := yOf(t.f)
		dash := ""
		if !t.main {
			dash = "2,3"
		}
		add(svgLine{X1: x0, Y1: y, X2: x1, Y2: y, Stroke: "#ddd", Width: 1, Dash: dash})
		if t.main || t.f == 0.75 {
			add(svgText{X: x0 - 5, Y: y + 4, Anchor: "end", Size: 11, Fill: "#444", Text: t.label})
		}
	}
	// x grid: 1, 2, 5 per decade, labels on the decades (and on 2 and 5
	// when the axis spans at most two decades).
	for e := lo; e <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			if e == hi && m > 1 {
				break
			}
			d := time.Duration(math.Round(m * math.Pow(10, e)))
			x := xOf(d)
			dash := "2,3"
			if m == 1 {
				dash = ""
			}
			add(svgLine{X1: x, Y1: y1, X2: x, Y2: y0, Stroke: "#ddd", Width: 1, Dash: dash})
			if m == 1 || hi-lo <= 2 {
				add(svgText{X: x, Y: y0 + 15, Anchor: "middle", Size: 11, Fill: "#444", Text: tickLabel(d)})
			}
		}
	}
	add(svgText{X: (x0 + x1) / 2, Y: y0 + 32, Anchor: "middle", Size: 11, Fill: "#333",
		Text: "latency (log scale)"})
	ym := (y0 + y1) / 2
	add(svgText{X: px + 14, Y: ym, Anchor: "middle", Size: 11, Fill: "#333",
		Transform: fmt.Sprintf("rotate(-90 %.1f %.1f)", px+14, ym), Text: "I/Os at or below"})
	for _, d := range ds {
		pts := d.CDF()
		var b strings.Builder
		for i, p := range pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", xOf(p.Latency), yOf(p.Fraction))
		}
		tip := fmt.Sprintf("%s on %s: %d I/Os, min %s, mean %s, max %s", wl, d.Target, d.Count,
			FormatDuration(d.Min), FormatDuration(d.Mean), FormatDuration(d.Max))
		add(svgPolyline{Points: b.String(), Fill: "none", Stroke: color(d.Target), Width: 2, Join: "round",
			Title: &svgTitle{Text: tip}})
	}
}
