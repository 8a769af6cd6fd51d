package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// JSONVersion is the version of the results file WriteJSON writes and
// ReadJSON reads: its "version" field. It goes up when a field changes
// meaning or goes away; new fields may appear without a new version.
const JSONVersion = 1

// Host describes the machine a report was made on.
type Host struct {
	// CPUModel is the CPU's model name ("AMD EPYC 7B13"); CPUs the
	// number of logical CPUs the measuring process could use.
	CPUModel string `json:"cpu_model"`
	CPUs     int    `json:"cpus"`
	// Kernel is the operating system and release ("Linux 6.1.0-13").
	Kernel string `json:"kernel"`
	// GoVersion is the Go release the client was built with.
	GoVersion string `json:"go_version,omitempty"`
	// LoadStart and LoadEnd are the 1, 5 and 15 minute load averages
	// when the run started and ended; nil when unknown.
	LoadStart []float64 `json:"load_start"`
	LoadEnd   []float64 `json:"load_end"`
}

// String describes h in one line: "2 CPUs (AMD EPYC), Linux 6.1, load
// average 0.50 0.40 0.30 at the start and ... at the end (1, 5, 15 min)".
func (h Host) String() string {
	if h.CPUs == 0 && h.Kernel == "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d CPUs", h.CPUs)
	if h.CPUModel != "" {
		fmt.Fprintf(&b, " (%s)", h.CPUModel)
	}
	if h.Kernel != "" {
		fmt.Fprintf(&b, ", %s", h.Kernel)
	}
	if h.GoVersion != "" {
		fmt.Fprintf(&b, ", client built with %s", h.GoVersion)
	}
	load := func(l []float64) string {
		if len(l) == 0 {
			return "unknown"
		}
		s := make([]string, len(l))
		for i, v := range l {
			s[i] = fmt.Sprintf("%.2f", v)
		}
		return strings.Join(s, " ")
	}
	fmt.Fprintf(&b, ", load average %s at the start and %s at the end (1, 5, 15 min)", load(h.LoadStart), load(h.LoadEnd))
	return b.String()
}

// Distribution is the latency histogram of one workload on one target,
// merged over the rounds, as its non-empty buckets: enough to redraw the
// CDF or recompute a percentile (within a bucket's width, 0.8 %).
type Distribution struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// Count, Min, Max and Mean are exact.
	Count uint64        `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Max   time.Duration `json:"max_ns"`
	Mean  time.Duration `json:"mean_ns"`
	// Buckets are the non-empty buckets in increasing order.
	Buckets []Bucket `json:"buckets"`
}

// DistributionOf returns h's distribution for workload and target.
func DistributionOf(workload, target string, h *Histogram) Distribution {
	return Distribution{
		Workload: workload, Target: target,
		Count: h.Count(), Min: h.Min(), Max: h.Max(), Mean: h.Mean(), Buckets: h.Buckets(),
	}
}

// CDFPoint says that a fraction Fraction of the values lie at or below
// Latency.
type CDFPoint struct {
	Latency  time.Duration
	Fraction float64
}

// CDF returns the cumulative distribution: a first point at Min with the
// fraction below the first bucket (0), then one per bucket at its upper
// bound (the last one at Max) with the fraction at or below it. Latencies
// and fractions never decrease and the last fraction is exactly 1. An
// empty distribution has no points.
func (d Distribution) CDF() []CDFPoint {
	var total uint64
	for _, b := range d.Buckets {
		total += b.Count
	}
	if total == 0 {
		return nil
	}
	pts := make([]CDFPoint, 0, len(d.Buckets)+1)
	pts = append(pts, CDFPoint{Latency: min(d.Min, time.Duration(d.Buckets[0].High))})
	var seen uint64
	for _, b := range d.Buckets {
		seen += b.Count
		at := time.Duration(b.High)
		if seen == total {
			at = max(min(at, d.Max), pts[len(pts)-1].Latency)
		}
		pts = append(pts, CDFPoint{Latency: max(at, pts[len(pts)-1].Latency), Fraction: float64(seen) / float64(total)})
	}
	pts[len(pts)-1].Fraction = 1
	return pts
}

// versioned is the results file: the report's fields after a version.
type versioned struct {
	Version int `json:"version"`
	*Report
}

// WriteJSON writes r as the results file, version JSONVersion: one JSON
// object with the report's fields (see the tags of Report, Row, RawRow,
// Spread, Host and Distribution), one line per field, per raw round, per
// summary row, per distribution and per note, so that it reads and diffs
// line by line. Every field is always present (empty lists as []), except those
// marked omitempty or omitzero.
func (r *Report) WriteJSON(w io.Writer) error {
	c := *r
	if c.Rows == nil {
		c.Rows = []Row{}
	}
	if c.Raw == nil {
		c.Raw = []RawRow{}
	}
	if c.Latency == nil {
		c.Latency = []Distribution{}
	}
	if c.Notes == nil {
		c.Notes = []string{}
	}
	p, err := json.Marshal(versioned{Version: JSONVersion, Report: &c})
	if err != nil {
		return fmt.Errorf("marshal json results: %w", err)
	}
	if _, err := w.Write(breakJSON(p, 2)); err != nil {
		return fmt.Errorf("write json results: %w", err)
	}
	return nil
}

// breakJSON lays out compact JSON with a line per member down to depth
// levels of nesting (1: the top object's fields; 2: also the elements of
// the arrays and objects they hold), keeping anything deeper, and arrays
// of numbers, on one line.
func breakJSON(p []byte, depth int) []byte {
	var b bytes.Buffer
	var broken []bool // per open bracket: are its members on lines of their own
	inString, escaped := false, false
	newline := func() {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("  ", len(broken)))
	}
	open := func() bool { return len(broken) > 0 && broken[len(broken)-1] }
	for i, c := range p {
		if inString {
			b.WriteByte(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			b.WriteByte(c)
		case '{', '[':
			b.WriteByte(c)
			var next byte
			if i+1 < len(p) {
				next = p[i+1]
			}
			brk := len(broken) < depth && next != '}' && next != ']' && (c == '{' || next == '{' || next == '[' || next == '"')
			broken = append(broken, brk)
			if brk {
				newline()
			}
		case '}', ']':
			brk := open()
			broken = broken[:len(broken)-1]
			if brk {
				newline()
			}
			b.WriteByte(c)
		case ',':
			b.WriteByte(c)
			if open() {
				newline()
			}
		case ':':
			b.WriteByte(c)
			if open() {
				b.WriteByte(' ')
			}
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// ReadJSON reads a results file written by WriteJSON. It refuses a
// version other than JSONVersion.
func ReadJSON(rd io.Reader) (*Report, error) {
	v := versioned{Report: new(Report)}
	d := json.NewDecoder(rd)
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("read json results: %w", err)
	}
	if v.Version != JSONVersion {
		return nil, fmt.Errorf("read json results: version %d, want %d", v.Version, JSONVersion)
	}
	return v.Report, nil
}
