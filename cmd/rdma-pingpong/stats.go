package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// result summarises one plan: one-way latency (half the round trip, as
// perftest reports it) and throughput.
type result struct {
	Plan                        plan
	Min, Median, Avg, P99, P999 time.Duration // one-way
	MBps                        float64       // payload bytes both ways per second of round trips, in 10^6 B/s
	MsgRate                     float64       // round trips per second
}

// summarize sorts rtts in place and computes the result.
func summarize(pl plan, rtts []time.Duration) result {
	slices.Sort(rtts)
	var sum time.Duration
	for _, d := range rtts {
		sum += d
	}
	n := len(rtts)
	r := result{Plan: pl}
	if n == 0 {
		return r
	}
	half := func(d time.Duration) time.Duration { return d / 2 }
	r.Min = half(rtts[0])
	r.Median = half(rtts[n/2])
	r.Avg = half(sum / time.Duration(n))
	r.P99 = half(rtts[quantile(n, 0.99)])
	r.P999 = half(rtts[quantile(n, 0.999)])
	if sum > 0 {
		r.MsgRate = float64(n) / sum.Seconds()
		r.MBps = 2 * float64(pl.Size) * r.MsgRate / 1e6
	}
	return r
}

// quantile is the index of the q-quantile of n sorted samples (nearest rank).
func quantile(n int, q float64) int {
	i := int(float64(n)*q+0.999999) - 1
	return min(max(i, 0), n-1)
}

const header = "%-6s %9s %8s %10s %10s %10s %10s %10s %10s\n"

func printHeader(w io.Writer) {
	fmt.Fprintf(w, header, "mode", "bytes", "iters", "min[us]", "median[us]", "avg[us]", "p99[us]", "p99.9[us]", "MB/s")
}

func printResult(w io.Writer, r result) {
	us := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e3) }
	fmt.Fprintf(w, header, r.Plan.Mode, fmt.Sprint(r.Plan.Size), fmt.Sprint(r.Plan.Iters),
		us(r.Min), us(r.Median), us(r.Avg), us(r.P99), us(r.P999), fmt.Sprintf("%.2f", r.MBps))
}
