package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goiser/goiser/bench"
)

func TestRoundOrderIsABBA(t *testing.T) {
	for _, c := range []struct {
		n    int
		want [][]int // rounds 1 to 4
	}{
		{2, [][]int{{0, 1}, {1, 0}, {0, 1}, {1, 0}}},
		{3, [][]int{{0, 1, 2}, {2, 1, 0}, {0, 1, 2}, {2, 1, 0}}},
		{1, [][]int{{0}, {0}, {0}, {0}}},
	} {
		var pos = make([]int, c.n) // summed position of each target
		for r := 1; r <= 4; r++ {
			got := roundOrder(r, c.n)
			if !slices.Equal(got, c.want[r-1]) {
				t.Errorf("roundOrder(%d, %d) = %v, want %v", r, c.n, got, c.want[r-1])
			}
			for p, i := range got {
				pos[i] += p
			}
		}
		// Over a pair of rounds every target holds the same mean place.
		for i := range pos {
			if pos[i] != pos[0] {
				t.Errorf("%d targets: summed positions %v are not equal", c.n, pos)
			}
		}
	}
}

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestProgressLines(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	var b bytes.Buffer
	p := newProgress(&b, clk.now, 4, 5*time.Second, []string{"4k-randread-qd1", "128k-seqwrite-qd8"}, []string{"goiser", "tgt"})
	if p.tty {
		t.Fatal("a buffer is taken for a terminal")
	}
	clk.step = 10 * time.Second // the fill took 10 s
	p.begin(1, 2, "4k-randread-qd1", "goiser")
	clk.step = 6 * time.Second // each run 6 s
	p.end(1, 2, bench.Row{Workload: "4k-randread-qd1", Target: "goiser", IOPS: 8540.4, Median: 103 * time.Microsecond, P99: 327 * time.Microsecond})
	p.begin(1, 2, "4k-randread-qd1", "tgt")
	p.end(1, 2, bench.Row{Workload: "4k-randread-qd1", Target: "tgt", IOPS: 6075, Median: 1520 * time.Microsecond, P99: 4770 * time.Microsecond})
	_, _ = p.Write([]byte("level=INFO msg=x\n"))
	want := "" +
		"[1/4] round 1/2  4k-randread-qd1   on goiser      8540 IOPS  median 103 µs   p99 327 µs    elapsed 0:16 of ~0:34, ETA 0:18\n" +
		"[2/4] round 1/2  4k-randread-qd1   on tgt         6075 IOPS  median 1.52 ms  p99 4.77 ms   elapsed 0:22 of ~0:34, ETA 0:12\n" +
		"level=INFO msg=x\n"
	if got := b.String(); got != want {
		t.Errorf("progress wrote\n%s\nwant\n%s", got, want)
	}

	// On a terminal: a live line while a run goes, redrawn by the
	// finished line; a log record clears it first.
	b.Reset()
	p = newProgress(&b, clk.now, 2, time.Second, []string{"w"}, []string{"a"})
	p.tty = true
	p.begin(1, 1, "w", "a")
	_, _ = p.Write([]byte("log\n"))
	p.begin(1, 1, "w", "a")
	p.end(1, 1, bench.Row{Workload: "w", Target: "a", IOPS: 1, Median: time.Millisecond, P99: time.Millisecond})
	got := b.String()
	if !strings.HasPrefix(got, "\r\x1b[K[1/2] round 1/1  w on a  running...  elapsed ") ||
		!strings.Contains(got, "\r\x1b[Klog\n\r\x1b[K[1/2]") || !strings.HasSuffix(got, "\n") ||
		strings.Count(got, "\n") != 2 || !strings.Contains(got, "\r\x1b[K[1/2] round 1/1  w on a         1 IOPS") {
		t.Errorf("terminal progress: %q", got)
	}
}

func TestClock(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0:00", 59499 * time.Millisecond: "0:59", 61 * time.Second: "1:01",
		3723 * time.Second: "1:02:03", -time.Second: "0:00"} {
		if got := clock(d); got != want {
			t.Errorf("clock(%v) = %q, want %q", d, got, want)
		}
	}
}
