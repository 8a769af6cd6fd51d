package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleHist records n latencies around med, log-normally spread, with
// a few slow outliers, from a fixed seed.
func sampleHist(seed uint64, n int, med time.Duration, sigma float64) *Histogram {
	rng := rand.New(rand.NewPCG(seed, 1))
	h := new(Histogram)
	for i := range n {
		v := float64(med) * math.Exp(rng.NormFloat64()*sigma)
		if i%997 == 0 {
			v *= 20
		}
		h.Record(time.Duration(v))
	}
	return h
}

// sampleWithLatency is sampleReport with latency distributions.
func sampleWithLatency() *Report {
	r := sampleReport()
	r.Host = Host{CPUModel: "AMD EPYC <x>", CPUs: 2, Kernel: "Linux 6.1", GoVersion: "go1.26.0",
		LoadStart: []float64{0.5, 0.4, 0.3}, LoadEnd: []float64{1, 0.5, 0.25}}
	r.Machine = "" // described by Host
	r.CDFPlot = "latency-cdf.svg"
	r.Latency = []Distribution{
		DistributionOf("4k-randread-qd1", "goiser", sampleHist(1, 20000, us(38), 0.25)),
		DistributionOf("4k-randread-qd1", "tgt", sampleHist(2, 18000, us(43), 0.35)),
		DistributionOf("128k-seqwrite-qd8", "goiser", sampleHist(3, 9000, us(850), 0.4)),
		DistributionOf("128k-seqwrite-qd8", "tgt", sampleHist(4, 6000, us(1300), 0.5)),
	}
	return r
}

func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	if h.Buckets() != nil {
		t.Errorf("empty histogram has buckets")
	}
	for _, v := range []int64{5, 5, 300, 301, 1 << 40} {
		h.RecordValue(v)
	}
	got := h.Buckets()
	var n uint64
	for i, b := range got {
		n += b.Count
		if b.Count == 0 || b.High < b.Low || i > 0 && b.Low <= got[i-1].High {
			t.Errorf("bucket %d = %+v after %+v", i, b, got[max(i-1, 0)])
		}
	}
	if n != h.Count() || got[0] != (Bucket{5, 5, 2}) || got[len(got)-1].High < 1<<40 {
		t.Errorf("Buckets = %+v", got)
	}
}

func TestCDF(t *testing.T) {
	for _, h := range []*Histogram{sampleHist(7, 5000, us(100), 0.6), sampleHist(8, 1, us(3), 0)} {
		d := DistributionOf("w", "t", h)
		pts := d.CDF()
		if len(pts) < 2 {
			t.Fatalf("CDF has %d points", len(pts))
		}
		for i := 1; i < len(pts); i++ {
			if pts[i].Latency < pts[i-1].Latency || pts[i].Fraction < pts[i-1].Fraction {
				t.Fatalf("CDF decreases at %d: %+v after %+v", i, pts[i], pts[i-1])
			}
		}
		if first, last := pts[0], pts[len(pts)-1]; first.Fraction != 0 || last.Fraction != 1 ||
			first.Latency != d.Min || last.Latency != d.Max {
			t.Errorf("CDF runs from %+v to %+v; min %v, max %v", first, last, d.Min, d.Max)
		}
		// The CDF agrees with Percentile: at the median's bucket end, at
		// least half the values.
		i, _ := slices.BinarySearchFunc(pts, h.Median(), func(p CDFPoint, d time.Duration) int {
			return int(p.Latency - d)
		})
		if i = max(i, 1); i < len(pts) && pts[i].Fraction < 0.5 {
			t.Errorf("CDF at the median %v = %v", h.Median(), pts[i].Fraction)
		}
	}
	if pts := (Distribution{}).CDF(); pts != nil {
		t.Errorf("empty CDF = %v", pts)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sampleWithLatency()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("ReadJSON: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip differs:\ngot  %+v\nwant %+v", got, r)
	}
	// The schema: field names a reader relies on.
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "title", "command", "date", "commit", "machine", "host", "rounds",
		"duration_ns", "warmup_ns", "order", "baseline", "summary", "raw", "latency", "notes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("results lack %q", k)
		}
	}
	if m["version"] != float64(JSONVersion) || m["order"] != "abba" {
		t.Errorf("version %v, order %v", m["version"], m["order"])
	}
	keys := func(v any, want ...string) {
		t.Helper()
		o, _ := v.(map[string]any)
		for _, k := range want {
			if _, ok := o[k]; !ok {
				t.Errorf("%v lacks %q", o, k)
			}
		}
	}
	keys(m["host"], "cpu_model", "cpus", "kernel", "go_version", "load_start", "load_end")
	keys(m["raw"].([]any)[0], "round", "workload", "target", "iops", "mbps", "median_ns", "p99_ns", "p999_ns",
		"max_ns", "mean_ns", "ios", "errors")
	keys(m["summary"].([]any)[0], "rounds", "iops", "median_ns", "spread")
	keys(m["summary"].([]any)[0].(map[string]any)["spread"], "iops_min", "iops_max", "median_min_ns", "median_max_ns",
		"p99_min_ns", "p99_max_ns")
	keys(m["latency"].([]any)[0], "workload", "target", "count", "min_ns", "max_ns", "mean_ns", "buckets")
	if _, ok := m["raw"].([]any)[0].(map[string]any)["spread"]; ok {
		t.Errorf("a raw round has a spread")
	}
	bk := m["latency"].([]any)[0].(map[string]any)["buckets"].([]any)[0].([]any)
	if len(bk) != 3 {
		t.Errorf("bucket = %v, want [low_ns, high_ns, count]", bk)
	}
	// One line per raw round, summary row and distribution.
	if n := strings.Count(b.String(), "\n"); n > 60 {
		t.Errorf("results file has %d lines", n)
	}
	// Another version is refused; so is garbage.
	bad := strings.Replace(b.String(), `"version": 1`, `"version": 2`, 1)
	if _, err := ReadJSON(strings.NewReader(bad)); err == nil {
		t.Errorf("version 2 accepted")
	}
	if _, err := ReadJSON(strings.NewReader(`{"version": 1, "latency": [{"buckets": [[3, 2, 1]]}]}`)); err == nil {
		t.Errorf("a bucket with high < low accepted")
	}
	// An empty report still has every list.
	b.Reset()
	if err := (&Report{Title: "x"}).WriteJSON(&b); err != nil || !strings.Contains(b.String(), `"summary": []`) {
		t.Errorf("empty report: %v\n%s", err, b.String())
	}
}

func TestWriteCDFSVG(t *testing.T) {
	var b bytes.Buffer
	if err := sampleWithLatency().WriteCDFSVG(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report-cdf.svg", b.Bytes())
	if dir := os.Getenv("BENCH_SVG_DIR"); dir != "" { // for a look: rsvg-convert
		_ = os.WriteFile(dir+"/report-cdf.svg", b.Bytes(), 0o644)
	}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	lines, panels := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "text" {
			if tok, _ := d.Token(); tok != nil {
				if cd, ok := tok.(xml.CharData); ok && (string(cd) == "4k-randread-qd1" || string(cd) == "128k-seqwrite-qd8") {
					panels++
				}
			}
		}
	}
	if lines != 4 || panels != 2 {
		t.Errorf("CDF SVG has %d curves, %d panel titles; want 4 and 2", lines, panels)
	}
	for _, want := range []string{"99.9%", "50%", "latency (log scale)", "AMD EPYC &lt;x&gt;"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("CDF SVG lacks %q", want)
		}
	}
}

// TestHostDescribesMachine checks that a report with only Host set names
// the machine in the markdown and both plots.
func TestHostDescribesMachine(t *testing.T) {
	r := sampleWithLatency()
	for name, f := range map[string]func(io.Writer) error{"markdown": r.WriteMarkdown, "svg": r.WriteSVG, "cdf": r.WriteCDFSVG} {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "2 CPUs (AMD EPYC") || !strings.Contains(b.String(), "0.50 0.40 0.30 at the start") {
			t.Errorf("%s does not describe the host", name)
		}
	}
}
