package attribute

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// partColors colors the parts of a chart, by name.
var partColors = map[string]string{
	PartUser: "#4e79a7", PartSyscall: "#e15759", PartRunQueue: "#f28e2b",
	PartSocketWait: "#76b7b2", PartBlocked: "#bab0ac",
}

// WriteSVG draws rows as horizontal stacked bars, one per row, of the
// named parts per I/O (in that order; nil means user, syscall and run
// queue: the parts that add up without overlapping and that do not grow
// with the number of idle threads), under title.
func WriteSVG(w io.Writer, title string, rows []Row, parts []string) error {
	if parts == nil {
		parts = []string{PartUser, PartSyscall, PartRunQueue}
	}
	const (
		labelW, chartW, barH, gap, top, right = 230.0, 560.0, 18.0, 8.0, 56.0, 30.0
	)
	var peak time.Duration
	for _, r := range rows {
		var sum time.Duration
		for _, p := range parts {
			sum += r.Part(p)
		}
		peak = max(peak, sum)
	}
	scale := niceMicros(peak)
	height := top + float64(len(rows))*(barH+gap) + 50
	width := labelW + chartW + right
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%.0f" height="%.0f" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", 10.0, esc(title))
	x := labelW
	for _, p := range parts { // legend
		fmt.Fprintf(&b, `<rect x="%.1f" y="30" width="12" height="12" fill="%s"/><text x="%.1f" y="40">%s</text>`+"\n",
			x, color(p), x+16, esc(p))
		x += 24 + 7*float64(len(p))
	}
	bottom := top + float64(len(rows))*(barH+gap)
	for i := 0; i <= 4; i++ { // grid and axis labels
		gx := labelW + chartW*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd" stroke-width="1"/>`+"\n", gx, top-4, gx, bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", gx, bottom+16, esc(micros(scale*float64(i)/4)))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">µs of the target's threads per I/O</text>`+"\n", labelW+chartW/2, bottom+34)
	for i, r := range rows {
		y := top + float64(i)*(barH+gap)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", labelW-8, y+barH-5, esc(r.Workload+"  "+r.Target))
		x := labelW
		for _, p := range parts {
			d := r.Part(p)
			bw := chartW * float64(d) / 1e3 / scale
			if d <= 0 || bw <= 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s</title></rect>`+"\n",
				x, y, bw, barH, color(p), esc(fmt.Sprintf("%s %s: %s %s µs per I/O", r.Workload, r.Target, p, micros(float64(d)/1e3))))
			x += bw
		}
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// color returns the color of a part.
func color(p string) string {
	if c, ok := partColors[p]; ok {
		return c
	}
	return "#59a14f"
}

// niceMicros returns a round axis end in µs at or above d: 1, 2 or 5 times
// a power of ten.
func niceMicros(d time.Duration) float64 {
	v := float64(d.Microseconds())
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// micros prints a number of µs compactly.
func micros(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(strings.TrimSuffix(s, "0"), ".")
}

// esc escapes text for SVG.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
