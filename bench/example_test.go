package bench_test

import (
	"fmt"
	"time"

	"github.com/goiser/goiser/bench"
)

// ExampleHistogram records 1000 latencies, 1 µs to 1 ms, and prints the
// percentiles a report shows: bucket midpoints, within 0.8 % of the exact
// 500, 990 and 999 µs; count and max are exact.
func ExampleHistogram() {
	var h bench.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	fmt.Println("count", h.Count())
	fmt.Println("median", bench.FormatDuration(h.Median()))
	fmt.Println("p99", bench.FormatDuration(h.Percentile(0.99)))
	fmt.Println("p99.9", bench.FormatDuration(h.Percentile(0.999)))
	fmt.Println("max", h.Max())
	// Output:
	// count 1000
	// median 501 µs
	// p99 989 µs
	// p99.9 997 µs
	// max 1ms
}
