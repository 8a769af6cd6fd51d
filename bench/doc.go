// Package bench is the benchmark harness: it keeps a queue depth of SCSI
// commands in flight on an iSCSI session, records each command's latency
// in a histogram, and writes the results as a markdown table and an SVG
// plot, so that several targets measured by one client in one run can be
// compared side by side (docs/bench/latency.md).
//
// A measurement opens a session with iscsi/initiator (MaxTasks at least the
// queue depth), runs a workload on it and summarizes the rounds:
//
//	s, _ := initiator.Dial(ctx, "127.0.0.1:3260", initiator.Config{
//		InitiatorName: "iqn.2026-11.dev.goiser:bench", TargetName: iqn, MaxTasks: 32,
//	})
//	c, _ := s.ReadCapacity16(ctx, 0)
//	wl, _ := bench.ParseWorkload("4k-randread-qd32")
//	res, err := bench.Run(ctx, s, bench.RunConfig{
//		Workload: wl, BlockSize: int(c.BlockSize), Blocks: c.Blocks,
//		Duration: 5 * time.Second, Warmup: 500 * time.Millisecond,
//	})
//	row := bench.RowOf("goiser", res) // IOPS, MB/s, median, p99, p99.9
//
// Several rounds of the same workload and target become one Row with
// Summarize (medians over the rounds, and in Row.Spread the range of the
// rounds' IOPS, medians and p99s); a Report of rows writes itself with
// WriteMarkdown and WriteSVG, with ratios to a baseline target. With the
// rounds' histograms merged per workload and target (Histogram.Merge,
// DistributionOf) in Report.Latency, WriteCDFSVG draws the latency CDFs,
// a panel per workload and a curve per target (Distribution.CDF gives the
// points). WriteJSON writes the whole Report as a versioned results file
// (JSONVersion; the field names are the JSON tags of Report, Host, Row,
// Spread, RawRow and Distribution, latencies in nanoseconds, histogram
// buckets as [low_ns, high_ns, count]) and ReadJSON reads it back:
//
//	{"version": 1, "title": ..., "command": ..., "date": ..., "commit": ...,
//	 "host": {"cpu_model", "cpus", "kernel", "go_version", "load_start", "load_end"},
//	 "rounds", "duration_ns", "warmup_ns", "order": "abba", "baseline",
//	 "summary": [{"workload", "target", "rounds", "iops", "mbps", "median_ns", "p99_ns",
//	              "p999_ns", "max_ns", "mean_ns", "ios", "errors", "spread": {...}}],
//	 "raw": [{"round", ...the same without spread}],
//	 "latency": [{"workload", "target", "count", "min_ns", "max_ns", "mean_ns",
//	              "buckets": [[low_ns, high_ns, count], ...]}],
//	 "notes": [...]}
//
// Workload names read SIZE-PATTERNOP-qdN: "4k-randwrite-qd1",
// "128k-seqread-qd8". Random workloads pick I/O-size aligned offsets
// uniformly in the region; sequential ones share one cursor among the
// commands in flight and wrap at the region's end. Fill writes the region
// once beforehand, so that reads hit allocated storage on every target.
//
// RunConfig.Verify checks the data as well. A Verifier remembers, per
// block of one LUN's region, which write last put its data there: every
// write it makes carries, in each logical block, a 32-byte header (magic
// "goiserVB", LBA, the Verifier's random generation, the write's sequence
// number) and a body derived from the header, so that a block read back
// names the write it came from and any changed byte is found. Every read
// is compared block by block with the last acknowledged write; the first
// difference ends the run with a *MismatchError (LBA, byte offset, want
// and got headers, and Kind: stale, misplaced, corrupt, foreign, other
// run). In a write workload each goroutine owns the slots whose index
// modulo the queue depth is its own, so writes in flight never overlap;
// reads, which change nothing, visit the region as unverified ones do.
// Verifier.Fill writes the region in the pattern first (a verified read
// of a block never written through the Verifier fails) and
// Verifier.Check reads it all back:
//
//	v, _ := bench.NewVerifier(int(c.BlockSize), c.Blocks)
//	_ = v.Fill(ctx, s, 0, 128<<10, 8)
//	_, err := bench.Run(ctx, s, bench.RunConfig{Workload: wl, BlockSize: int(c.BlockSize),
//		Blocks: c.Blocks, Duration: time.Second, Verify: v})
//	err = v.Check(ctx, s, 0, 128<<10, 8) // and v.Stats() counts the blocks
//
// Histogram is HdrHistogram-shaped: log-linear buckets with nanosecond
// resolution, exact below 256 ns and within 0.8 % above, mergeable, and
// Record allocates nothing. Each of Run's goroutines owns its histogram;
// they are merged when the run ends. Per command, Run allocates nothing
// (go test -bench Step -benchmem ./bench shows 0 allocs/op, both sides of
// the connection counted), with Verify too (BenchmarkStepVerify).
//
// cmd/goiser-bench is the command-line front end and hack/bench-latency.sh
// (make bench-latency) runs it against goiserd and tgt.
package bench
