// Command goiser-bench measures latency percentiles and IOPS of iSCSI
// targets with one Go initiator, interleaving the targets in every round,
// and writes a markdown table and an SVG plot.
//
//	goiser-bench -target goiser=iscsi://127.0.0.1:3260/iqn.2026-11.dev.goiser:conformance/0 \
//	    -target tgt=iscsi://127.0.0.1:3261/iqn.2026-11.dev.goiser:tgt/1 \
//	    -workloads 4k-randread-qd1,4k-randwrite-qd1,4k-randread-qd32,4k-randwrite-qd32,128k-seqread-qd8,128k-seqwrite-qd8 \
//	    -rounds 5 -seconds 5 -out docs/bench/latency.md -svg docs/bench/latency.svg
//
// It opens one session per target (MaxTasks = the largest queue depth),
// writes each LUN's region once (-fill), then for every round runs every
// workload on every target back to back, alternating the target order from
// one round to the next so that neither side always goes first. Each
// figure of the table is the median over the rounds; ratios divide by the
// -baseline target (tgt by default when there is one). The report records
// the exact command line, the machine (CPUs, kernel, load average), the
// date and the commit measured (-commit, or this binary's VCS stamp).
//
// hack/bench-latency.sh (make bench-latency) starts goiserd and tgt on the
// same kind of storage and runs this command against both. The measuring
// itself lives in package bench.
package main
