package bench

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func us(f float64) time.Duration { return time.Duration(f * 1e3) }

func sampleReport() *Report {
	raw := []RawRow{
		{1, Row{Workload: "4k-randread-qd1", Target: "goiser", Rounds: 1, IOPS: 25000, MBps: 102.4, Median: us(38.5), P99: us(61), P999: us(140), Max: us(900)}},
		{1, Row{Workload: "4k-randread-qd1", Target: "tgt", Rounds: 1, IOPS: 22000, MBps: 90.1, Median: us(43.1), P99: us(80), P999: us(210), Max: us(1500)}},
		{2, Row{Workload: "4k-randread-qd1", Target: "tgt", Rounds: 1, IOPS: 21000, MBps: 86.0, Median: us(44), P99: us(82), P999: us(200), Max: us(2500)}},
		{2, Row{Workload: "4k-randread-qd1", Target: "goiser", Rounds: 1, IOPS: 26000, MBps: 106.5, Median: us(37.9), P99: us(60), P999: us(150), Max: us(700)}},
		{3, Row{Workload: "4k-randread-qd1", Target: "goiser", Rounds: 1, IOPS: 24000, MBps: 98.3, Median: us(39), P99: us(90), P999: us(160), Max: us(800)}},
		{3, Row{Workload: "4k-randread-qd1", Target: "tgt", Rounds: 1, IOPS: 22500, MBps: 92.2, Median: us(43), P99: us(85), P999: us(190), Max: us(1200)}},
		{1, Row{Workload: "128k-seqwrite-qd8", Target: "goiser", Rounds: 1, IOPS: 9000, MBps: 1179.6, Median: us(850), P99: us(2100), P999: us(6000), Max: us(9000)}},
		{1, Row{Workload: "128k-seqwrite-qd8", Target: "tgt", Rounds: 1, IOPS: 6000, MBps: 786.4, Median: us(1300), P99: us(3000), P999: us(12000), Max: us(15000)}},
	}
	r := &Report{
		Title:    "iSCSI/TCP latency: goiser vs tgt",
		Command:  "goiser-bench -target goiser=iscsi://127.0.0.1:3260/iqn.x:a/0 -target 'tgt=iscsi://127.0.0.1:3261/iqn.x:<b>&/1' -rounds 2",
		Date:     time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC),
		Commit:   "commit 1234abc",
		Machine:  "2 CPUs, Linux 6.1, load average 0.50 <b>&",
		Baseline: "tgt",
		Rounds:   3, Duration: 5 * time.Second, Warmup: 500 * time.Millisecond, Order: OrderABBA,
		Raw:   raw,
		Notes: []string{"Same storage on both sides."},
		Plot:  "latency.svg",
	}
	for _, wl := range []string{"4k-randread-qd1", "128k-seqwrite-qd8"} {
		for _, t := range []string{"goiser", "tgt"} {
			var rounds []Row
			for _, x := range raw {
				if x.Workload == wl && x.Target == t {
					rounds = append(rounds, x.Row)
				}
			}
			r.Rows = append(r.Rows, Summarize(rounds))
		}
	}
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

func TestSummarize(t *testing.T) {
	r := sampleReport()
	g := r.Rows[0] // goiser 4k: three rounds
	if g.Rounds != 3 || g.IOPS != 25000 || g.Median != us(38.5) || g.P999 != us(150) || g.Max != us(900) {
		t.Errorf("Summarize = %+v", g)
	}
	want := Spread{IOPSMin: 24000, IOPSMax: 26000, MedianMin: us(37.9), MedianMax: us(39), P99Min: us(60), P99Max: us(90)}
	if g.Spread != want {
		t.Errorf("Summarize spread = %+v, want %+v", g.Spread, want)
	}
	odd := Summarize([]Row{{IOPS: 3}, {IOPS: 1}, {IOPS: 2}})
	if odd.IOPS != 2 || odd.Rounds != 0 {
		t.Errorf("median of 3, 1, 2 = %v", odd.IOPS)
	}
	if (Summarize(nil) != Row{}) {
		t.Errorf("Summarize(nil) is not zero")
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.md", b.Bytes())
	// The goiser 4k row: 25000 IOPS, rounds 24000 to 26000 (±4.0%), over
	// 22000 IOPS; its p99 beat tgt's in rounds 1 and 2, not in 3 (†).
	for _, want := range []string{
		"| 4k-randread-qd1 | goiser | 25000 ±4.0% | 102 | 38.5 µs ±1.6% | 61.0 µs | 150 µs | 1.14 | 0.89 | 0.74 † | 0.75 |",
		"| 128k-seqwrite-qd8 | goiser | 9000 | 1180 | 850 µs | 2.10 ms | 6.00 ms | 1.50 | 0.65 | 0.70 | 0.50 |",
		"ABBA order", "odd count", "- Machine: 2 CPUs", "† marks",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteSVG(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.svg", b.Bytes())
	// Well-formed XML, labels escaped.
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	texts := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "text" {
			texts++
		}
	}
	if texts < 10 || !strings.Contains(b.String(), "&lt;b&gt;&amp;") {
		t.Errorf("SVG has %d texts; target label escaped: %v", texts, strings.Contains(b.String(), "&lt;b&gt;&amp;"))
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850: "850 ns", us(38.24): "38.2 µs", us(612.4): "612 µs", us(1250): "1.25 ms",
		us(12500): "12.5 ms", 3 * time.Second: "3.00 s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}
