package bench

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"time"
)

// SVG elements, marshaled with encoding/xml (which escapes every label).
type (
	svgDoc struct {
		XMLName xml.Name `xml:"svg"`
		NS      string   `xml:"xmlns,attr"`
		Width   int      `xml:"width,attr"`
		Height  int      `xml:"height,attr"`
		ViewBox string   `xml:"viewBox,attr"`
		Font    string   `xml:"font-family,attr"`
		Size    int      `xml:"font-size,attr"`
		Items   []any
	}
	svgRect struct {
		XMLName xml.Name `xml:"rect"`
		X       float64  `xml:"x,attr"`
		Y       float64  `xml:"y,attr"`
		W       float64  `xml:"width,attr"`
		H       float64  `xml:"height,attr"`
		Fill    string   `xml:"fill,attr"`
		Stroke  string   `xml:"stroke,attr,omitempty"`
		Title   *svgTitle
	}
	svgLine struct {
		XMLName xml.Name `xml:"line"`
		X1      float64  `xml:"x1,attr"`
		Y1      float64  `xml:"y1,attr"`
		X2      float64  `xml:"x2,attr"`
		Y2      float64  `xml:"y2,attr"`
		Stroke  string   `xml:"stroke,attr"`
		Width   float64  `xml:"stroke-width,attr"`
		Dash    string   `xml:"stroke-dasharray,attr,omitempty"`
	}
	svgText struct {
		XMLName xml.Name `xml:"text"`
		X       float64  `xml:"x,attr"`
		Y       float64  `xml:"y,attr"`
		Anchor  string   `xml:"text-anchor,attr,omitempty"`
		Weight  string   `xml:"font-weight,attr,omitempty"`
		Size    int      `xml:"font-size,attr,omitempty"`
		Fill    string   `xml:"fill,attr,omitempty"`
		// Transform is e.g. "rotate(-90 x y)" for a vertical label.
		Transform string `xml:"transform,attr,omitempty"`
		Text      string `xml:",chardata"`
	}
	svgTitle struct {
		XMLName xml.Name `xml:"title"`
		Text    string   `xml:",chardata"`
	}
)

// paletteColor returns the color of the i-th target (first-seen order).
func paletteColor(i int) string {
	palette := [...]string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}
	return palette[i%len(palette)]
}

// Plot geometry.
const (
	plotWidth  = 1000
	labelRight = 190.0 // right edge of the row labels
	latLeft    = 200.0 // latency panel
	latRight   = 640.0
	iopsLeft   = 680.0 // IOPS panel
	iopsRight  = 860.0
	rowH       = 22.0
	groupGap   = 16.0
	topY       = 78.0
)

// decades returns the log10 range of the latency axis: whole decades
// around every median and p99.9.
func (r *Report) decades() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range r.Rows {
		for _, d := range []time.Duration{x.Median, x.P999} {
			if d > 0 {
				v := math.Log10(float64(d))
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return 3, 6 // 1 µs to 1 ms
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// tickLabel prints a round axis value: "20 µs", "1 ms".
func tickLabel(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%g µs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%g ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%g s", d.Seconds())
}

// WriteSVG draws r as an SVG picture with one line per workload and target:
// on the left the latency on a log axis (a box from the median to p99, a
// whisker to p99.9, a bar at the median), on the right the IOPS as a bar
// scaled to the largest of its workload, with the ratio to the baseline.
func (r *Report) WriteSVG(w io.Writer) error {
	targets := r.Targets()
	color := func(t string) string {
		for i, x := range targets {
			if x == t {
				return paletteColor(i)
			}
		}
		return "#777"
	}
	workloads := r.Workloads()
	height := topY + float64(len(r.Rows))*rowH + float64(len(workloads))*groupGap + 92
	doc := svgDoc{
		NS: "http://www.w3.org/2000/svg", Width: plotWidth, Height: int(height),
		ViewBox: fmt.Sprintf("0 0 %d %d", plotWidth, int(height)), Font: "Helvetica, Arial, sans-serif", Size: 12,
	}
	add := func(items ...any) { doc.Items = append(doc.Items, items...) }
	add(svgRect{W: plotWidth, H: height, Fill: "white"})
	add(svgText{X: plotWidth / 2, Y: 24, Anchor: "middle", Weight: "bold", Size: 16, Text: r.Title})
	add(svgText{X: (latLeft + latRight) / 2, Y: 50, Anchor: "middle", Weight: "bold",
		Text: "latency (log scale, lower is better)"})
	add(svgText{X: (iopsLeft + iopsRight) / 2, Y: 50, Anchor: "middle", Weight: "bold",
		Text: "IOPS (higher is better)"})

	lo, hi := r.decades()
	xOf := func(d time.Duration) float64 {
		v := math.Log10(max(float64(d), 1))
		v = min(max(v, lo), hi)
		return latLeft + (v-lo)/(hi-lo)*(latRight-latLeft)
	}
	bottom := height - 76
	for e := lo; e <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			if e == hi && m > 1 {
				break
			}
			d := time.Duration(m * math.Pow(10, e))
			x := xOf(d)
			dash := "2,3"
			if m == 1 {
				dash = ""
			}
			add(svgLine{X1: x, Y1: topY - 12, X2: x, Y2: bottom, Stroke: "#ccc", Width: 1, Dash: dash})
			if m == 1 || hi-lo <= 2 {
				add(svgText{X: x, Y: bottom + 14, Anchor: "middle", Size: 10, Fill: "#444", Text: tickLabel(d)})
			}
		}
	}

	y := topY
	for _, wl := range workloads {
		var best float64
		for _, x := range r.Rows {
			if x.Workload == wl {
				best = max(best, x.IOPS)
			}
		}
		base, hasBase := r.baseline(wl)
		add(svgLine{X1: 10, Y1: y - 10, X2: plotWidth - 10, Y2: y - 10, Stroke: "#888", Width: 0.5})
		first := true
		for _, x := range r.Rows {
			if x.Workload != wl {
				continue
			}
			c, mid := color(x.Target), y+rowH/2
			if first {
				add(svgText{X: 10, Y: mid + 4, Weight: "bold", Text: wl})
				first = false
			}
			add(svgText{X: labelRight, Y: mid + 4, Anchor: "end", Fill: c, Text: x.Target})
			tip := fmt.Sprintf("%s on %s: median %s, p99 %s, p99.9 %s, max %s", wl, x.Target,
				FormatDuration(x.Median), FormatDuration(x.P99), FormatDuration(x.P999), FormatDuration(x.Max))
			add(svgLine{X1: xOf(x.P99), Y1: mid, X2: xOf(x.P999), Y2: mid, Stroke: c, Width: 1.5},
				svgLine{X1: xOf(x.P999), Y1: mid - 5, X2: xOf(x.P999), Y2: mid + 5, Stroke: c, Width: 1.5},
				svgRect{X: xOf(x.Median), Y: mid - 6, W: max(xOf(x.P99)-xOf(x.Median), 1), H: 12, Fill: c + "55",
					Stroke: c, Title: &svgTitle{Text: tip}},
				svgLine{X1: xOf(x.Median), Y1: mid - 8, X2: xOf(x.Median), Y2: mid + 8, Stroke: c, Width: 3})
			add(svgText{X: xOf(x.P999) + 6, Y: mid + 4, Size: 10, Fill: "#333", Text: FormatDuration(x.Median)})
			bw := 0.0
			if best > 0 {
				bw = x.IOPS / best * (iopsRight - iopsLeft)
			}
			label := fmt.Sprintf("%.0f", x.IOPS)
			if hasBase && x.Target != r.Baseline && base.IOPS > 0 {
				label += fmt.Sprintf("  (%.2f× %s)", x.IOPS/base.IOPS, r.Baseline)
			}
			add(svgRect{X: iopsLeft, Y: mid - 7, W: max(bw, 1), H: 14, Fill: c,
				Title: &svgTitle{Text: fmt.Sprintf("%s on %s: %.0f IOPS, %.0f MB/s", wl, x.Target, x.IOPS, x.MBps)}})
			add(svgText{X: iopsLeft + max(bw, 1) + 6, Y: mid + 4, Size: 10, Fill: "#333", Text: label})
			y += rowH
		}
		y += groupGap
	}
	add(svgText{X: 10, Y: height - 42, Size: 11, Fill: "#333",
		Text: "Box: median to p99; whisker: p99 to p99.9; thick bar and number: median. IOPS bars are scaled to the best target of each workload."})
	foot := "Measured " + r.Date.UTC().Format("2006-01-02 15:04 UTC")
	if r.Commit != "" {
		foot += " from " + r.Commit
	}
	add(svgText{X: 10, Y: height - 24, Size: 9, Fill: "#666", Text: foot + "; the exact command is in the markdown report."})
	if m := r.machine(); m != "" {
		add(svgText{X: 10, Y: height - 10, Size: 9, Fill: "#666", Text: "Machine: " + m + "."})
	}
	out, err := xml.MarshalIndent(doc, "", " ")
	if err != nil {
		return fmt.Errorf("marshal svg: %w", err)
	}
	if _, err := fmt.Fprintf(w, "%s%s\n", xml.Header, out); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}
