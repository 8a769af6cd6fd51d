package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// within fails unless got is within rel (relative) of want.
func within(t *testing.T, what string, got, want time.Duration, rel float64) {
	t.Helper()
	if math.Abs(float64(got-want)) > rel*float64(want)+1 {
		t.Errorf("%s = %v, want %v within %.1f%%", what, got, want, rel*100)
	}
}

func TestBucketsCoverEveryValue(t *testing.T) {
	// Every value lies in its bucket's range; bucket ranges are contiguous.
	var prevHi int64 = -1
	for i := range numBuckets {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d = [%d, %d] after one ending at %d", i, lo, hi, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d], but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 1<<subBits && float64(hi-lo+1)/float64(lo) > 1.0/(1<<(subBits-1)) {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/128 of its values", i, lo, hi)
		}
		prevHi = hi
	}
	if prevHi != math.MaxInt64 {
		t.Fatalf("last bucket ends at %d, want MaxInt64", prevHi)
	}
}

func TestHistogramEmpty(t *testing.T) {
	var h Histogram
	if h.Count() != 0 || h.Percentile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 || h.Min() != 0 {
		t.Fatalf("empty histogram: count %d p50 %v mean %v min %v max %v", h.Count(), h.Percentile(0.5), h.Mean(), h.Min(), h.Max())
	}
}

func TestHistogramExactSmallValues(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 100; v++ {
		h.RecordValue(v)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.01, 1}, {0.5, 50}, {0.99, 99}, {0.999, 100}, {1, 100}} {
		if got := h.Percentile(c.q); got != c.want {
			t.Errorf("Percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if h.Mean() != 51 { // 50.5 rounds to 51
		t.Errorf("Mean = %v, want 51ns", h.Mean())
	}
	h.RecordValue(-5)
	if h.Min() != 0 || h.Count() != 101 {
		t.Errorf("after a negative value: min %v count %d, want 0 and 101", h.Min(), h.Count())
	}
}

// TestHistogramKnownDistributions compares the percentiles with the exact
// ones of the sorted samples.
func TestHistogramKnownDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform 10µs-1ms": func() int64 { return 10_000 + rng.Int64N(990_000) },
		"exponential 50µs": func() int64 { return int64(rng.ExpFloat64() * 50_000) },
		"lognormal":        func() int64 { return int64(math.Exp(10 + 1.5*rng.NormFloat64())) },
		"bimodal 40µs/4ms": func() int64 {
			if rng.IntN(100) < 2 {
				return 4_000_000 + rng.Int64N(100_000)
			}
			return 40_000 + rng.Int64N(2_000)
		},
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			samples := make([]int64, 200_000)
			var sum float64
			for i := range samples {
				samples[i] = gen()
				h.RecordValue(samples[i])
				sum += float64(samples[i])
			}
			slices.Sort(samples)
			exact := func(q float64) time.Duration {
				rank := int(math.Ceil(q * float64(len(samples))))
				return time.Duration(samples[max(rank, 1)-1])
			}
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				within(t, "percentile", h.Percentile(q), exact(q), 1.0/128)
			}
			if h.Max() != time.Duration(samples[len(samples)-1]) || h.Min() != time.Duration(samples[0]) {
				t.Errorf("min/max = %v/%v, want %v/%v", h.Min(), h.Max(), samples[0], samples[len(samples)-1])
			}
			within(t, "mean", h.Mean(), time.Duration(sum/float64(len(samples))), 1e-9)
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var all, a, b, empty Histogram
	for i := range 50_000 {
		v := rng.Int64N(5_000_000)
		all.RecordValue(v)
		if i%3 == 0 {
			a.RecordValue(v)
		} else {
			b.RecordValue(v)
		}
	}
	a.Merge(&b)
	a.Merge(&empty)
	if a != all {
		t.Fatalf("merged: count %d p50 %v p99 %v min %v max %v; want count %d p50 %v p99 %v min %v max %v",
			a.Count(), a.Median(), a.Percentile(0.99), a.Min(), a.Max(),
			all.Count(), all.Median(), all.Percentile(0.99), all.Min(), all.Max())
	}
	empty.Merge(&all) // into an empty one: min must come from all
	if empty != all {
		t.Fatalf("merge into empty: min %v max %v count %d, want %v %v %d", empty.Min(), empty.Max(), empty.Count(), all.Min(), all.Max(), all.Count())
	}
	all.Reset()
	if all.Count() != 0 || all.Max() != 0 {
		t.Fatalf("Reset left count %d max %v", all.Count(), all.Max())
	}
}

func TestHistogramRecordAllocatesNothing(t *testing.T) {
	h := new(Histogram)
	d := 37 * time.Microsecond
	if n := testing.AllocsPerRun(1000, func() { h.Record(d); d += 13 }); n != 0 {
		t.Fatalf("Record: %v allocs per call, want 0", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := new(Histogram)
	b.ReportAllocs()
	d := time.Duration(0)
	for b.Loop() {
		h.Record(d)
		d = (d + 7919) & (1<<24 - 1)
	}
}
