package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: values below 1<<subBits ns get a
// bucket each, and every power-of-two range above that is split into
// 1<<(subBits-1) equal buckets, so a bucket is at most 1/128 of the values
// it holds wide (under 0.8 % relative error, about 0.4 % at the midpoint
// that Percentile reports).
const subBits = 8

// numBuckets covers every non-negative int64: the highest bit of a value is
// at most 62, so the largest shift is 62-subBits+1.
const numBuckets = (62-subBits+2)<<(subBits-1) + 1<<(subBits-1)

// Histogram records latencies in nanoseconds in log-linear buckets (the
// layout of HdrHistogram with one significant binary digit group of
// subBits): exact below 256 ns, within 0.8 % above. Count, sum, min and
// max are exact.
//
// The zero value is an empty histogram ready for use. It is a plain value
// of about 58 KiB with no pointers: Record allocates nothing. A Histogram
// is not safe for concurrent use: give each goroutine its own and Merge
// them afterwards.
type Histogram struct {
	count    uint64
	sum      float64 // ns; float so that hours of samples cannot overflow
	min, max int64   // ns; valid when count > 0
	buckets  [numBuckets]uint64
}

// bucketOf returns the bucket index of v >= 0.
func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // >= 1
	return shift<<(subBits-1) + int(v>>shift)
}

// bucketRange returns the lowest and highest value that fall in bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 1<<subBits {
		return int64(i), int64(i)
	}
	shift := i>>(subBits-1) - 1
	sub := int64(i - shift<<(subBits-1))
	lo = sub << shift
	return lo, lo + 1<<shift - 1
}

// Record adds one latency; negative durations count as 0.
func (h *Histogram) Record(d time.Duration) { h.RecordValue(int64(d)) }

// RecordValue adds one value in nanoseconds; negative values count as 0.
func (h *Histogram) RecordValue(ns int64) {
	if ns < 0 {
		ns = 0
	}
	if h.count == 0 || ns < h.min {
		h.min = ns
	}
	if ns > h.max {
		h.max = ns
	}
	h.count++
	h.sum += float64(ns)
	h.buckets[bucketOf(ns)]++
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.count == 0 {
		return
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
	for i, c := range o.buckets {
		h.buckets[i] += c
	}
}

// Reset empties the histogram.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.count }

// Min returns the smallest recorded value (0 when empty).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest recorded value (0 when empty).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact arithmetic mean (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.count)))
}

// Percentile returns the value below or at which a fraction q (0 to 1) of
// the recorded values lie: the value of rank ceil(q*count), reported as
// the middle of its bucket and clamped to the recorded min and max.
// Percentile(0.5) is the median, Percentile(1) the max. It returns 0 when
// the histogram is empty.
func (h *Histogram) Percentile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.count)))
	rank = min(max(rank, 1), h.count)
	var seen uint64
	for i, c := range h.buckets {
		seen += c
		if seen < rank {
			continue
		}
		lo, hi := bucketRange(i)
		v := lo + (hi-lo)/2
		return time.Duration(min(max(v, h.min), h.max))
	}
	return time.Duration(h.max) // not reached: the buckets sum to count
}

// Median returns Percentile(0.5).
func (h *Histogram) Median() time.Duration { return h.Percentile(0.5) }

// Bucket is one bucket of a Histogram: Count values lie in [Low, High]
// nanoseconds. In JSON it is the array [low_ns, high_ns, count].
type Bucket struct {
	Low, High int64
	Count     uint64
}

// MarshalJSON writes b as [low_ns, high_ns, count].
func (b Bucket) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "[%d,%d,%d]", b.Low, b.High, b.Count), nil
}

// UnmarshalJSON reads [low_ns, high_ns, count].
func (b *Bucket) UnmarshalJSON(p []byte) error {
	var v [3]int64
	if err := json.Unmarshal(p, &v); err != nil {
		return fmt.Errorf("histogram bucket: %w", err)
	}
	if v[0] < 0 || v[1] < v[0] || v[2] < 0 {
		return fmt.Errorf("histogram bucket %s: want [low_ns, high_ns, count] with 0 <= low <= high, count >= 0", p)
	}
	*b = Bucket{Low: v[0], High: v[1], Count: uint64(v[2])}
	return nil
}

// Buckets returns the non-empty buckets in increasing order; their counts
// sum to Count. The first Low is at most Min and the last High at least
// Max.
func (h *Histogram) Buckets() []Bucket {
	var bs []Bucket
	if h.count == 0 {
		return nil
	}
	for i, c := range h.buckets[bucketOf(h.min) : bucketOf(h.max)+1] {
		if c > 0 {
			lo, hi := bucketRange(bucketOf(h.min) + i)
			bs = append(bs, Bucket{Low: lo, High: hi, Count: c})
		}
	}
	return bs
}
