// Command goiser-bench measures latency percentiles and IOPS of iSCSI
// targets with one Go initiator, interleaving the targets in every round,
// and writes a markdown table, SVG plots and machine-readable results.
//
//	goiser-bench -target goiser=iscsi://127.0.0.1:3260/iqn.2026-11.dev.goiser:conformance/0 \
//	    -target tgt=iscsi://127.0.0.1:3261/iqn.2026-11.dev.goiser:tgt/1 \
//	    -workloads 4k-randread-qd1,4k-randwrite-qd1,4k-randread-qd32,4k-randwrite-qd32,128k-seqread-qd8,128k-seqwrite-qd8 \
//	    -rounds 5 -seconds 5 -out docs/bench/latency.md -svg docs/bench/latency.svg \
//	    -cdf-svg docs/bench/latency-cdf.svg -json docs/bench/latency.json
//
// It opens one session per target (MaxTasks = the largest queue depth),
// writes each LUN's region once (-fill), then for every round runs every
// workload on every target back to back, in ABBA order: the targets as
// given in odd rounds, reversed in even ones (A B, B A, A B, ...; with
// three, A B C, C B A, ...), so that over each pair of rounds every target
// holds every place once and no side always goes first or last. Use an
// even -rounds for a balanced order; the report says so otherwise.
//
// Outputs:
//
//   - -out (markdown, default standard output): the exact command line,
//     date, commit measured (-commit, or this binary's VCS stamp), the
//     machine (CPU model and count, kernel, Go version, load averages at
//     the start and the end), rounds and order; then the table. Each
//     figure is the median over the rounds; IOPS and the median carry
//     "±x%", the largest distance of one round's figure from that median.
//     Ratios divide by the -baseline target (tgt by default when there is
//     one); a ratio marked † is one the rounds disagree on (above 1 in
//     some round, below in another, each round against the same round's
//     baseline). Then the notes and every raw round.
//   - -svg: per workload and target the latency median, p99 and p99.9 on
//     a log axis and the IOPS as bars (bench.Report.WriteSVG).
//   - -cdf-svg: one picture with a panel per workload and a latency CDF
//     curve per target, all rounds merged: x the latency on a log axis,
//     y the fraction of I/Os at or below it on a scale that stretches the
//     tail (50 %, 90 %, 99 %, 99.9 % ...) (bench.Report.WriteCDFSVG).
//   - -json: everything above, machine-readable (bench.Report.WriteJSON,
//     "version": 1): metadata, per round and per workload and target the
//     raw figures (IOPS, MB/s, median, p99, p99.9, max, mean, I/O count,
//     errors), the summary rows with their spread (min and max of the
//     per-round IOPS, medians and p99s), and the merged latency histogram
//     buckets per workload and target, from which the CDF can be redrawn.
//     bench.ReadJSON reads it back.
//   - -raw: the raw rounds as tab-separated values.
//
// While it runs it writes a progress line per measured run to standard
// error: "[ 3/24] round 1/2  4k-randread-qd1 on tgt   8540 IOPS  median
// 103 µs  p99 327 µs  elapsed 0:15 of ~1:30, ETA 1:15", the total
// estimated from the runs so far. On a terminal a live line shows the run
// in progress and is redrawn in place; elsewhere (a log file, CI) only
// the finished lines are written. -quiet leaves them out.
//
// -max-io NAME=SIZE (repeatable) leaves workloads with larger I/Os out on
// target NAME, for a target known to fail them (tgt 1.0.85's iSER drops
// commands over 512 KiB); its rows are absent and a note of the report
// lists them.
//
// With -verify (which needs -fill, the default) it also checks every byte
// it moves, to show that targets return what they were sent. Each target
// gets a bench.Verifier: the fill writes the region in a self-describing
// pattern (per logical block a header with the LBA, a random generation
// for this invocation and the write's sequence number, and data derived
// from them); every write then carries a new sequence number and every
// read is compared, block by block, with what the last acknowledged write
// to that block, or the fill, sent; after the last round the whole region
// is read back and compared. In a write workload each of the QD commands
// in flight owns the I/O slots of the region whose index modulo QD is its
// own, so no two writes in flight overlap (the region must hold at least
// QD writes); a read workload, e.g. 4k-randread-qd32, reads as without
// -verify, 32 commands at uniformly random aligned offsets, and checks
// every block of each. The first difference ends the command with exit
// status 1 and an error naming the target, the workload, the LBA, the
// byte of the block and the LUN, the expected and found headers and what
// the block looks like (stale, misplaced, corrupt, foreign, other run);
// the report says verification was on and how many blocks were compared
// and written per target, with 0 mismatches. Making and checking the
// pattern is not part of the measured latencies, but it costs CPU time:
// compare IOPS only between -verify runs. Each target must be a LUN of its
// own. To verify a target at 4 KiB to 1 MiB and QD1 and QD32:
//
//	goiser-bench -verify -rounds 1 -seconds 2 -warmup 0 -region-mib 64 \
//	    -workloads 4k-randwrite-qd1,4k-randread-qd1,4k-randwrite-qd32,4k-randread-qd32,128k-randwrite-qd1,128k-randread-qd1,128k-randwrite-qd32,128k-randread-qd32,1m-randwrite-qd1,1m-randread-qd1,1m-randwrite-qd32,1m-randread-qd32 \
//	    -target lio=iser://10.0.0.1:3260/iqn.2003-01.org.linux-iscsi.x:disk/0 -out verify.md
//
// With -attribute NAME=PID (repeatable; NAME a -target, PID its daemon's
// process) it traces that process with eBPF (package bench/attribute; needs
// root or CAP_BPF and CAP_PERFMON, and tracefs, which it mounts when it
// may) over exactly the measured seconds of each run of NAME, from the end
// of the warm-up to the run's last completion, and splits the process's
// time into user, syscall, run queue and blocked per thread, plus socket
// receive-queue wait, divided by the I/Os completed in those windows. The
// report gets a section "Where the target's time goes per I/O" with a
// table per workload and target (µs per I/O per part, syscalls and wakeups
// per I/O, the syscalls taking most CPU), -raw gets the parts per round as
// extra columns (ns per I/O), and -attribute-svg FILE draws user, syscall
// and run queue as stacked bars. When the tracer cannot attach, one line
// on stderr says why, the benchmark goes on, and the report says
// attribution was unavailable and why. Tracing adds a fraction of a
// microsecond to every syscall on the machine. Definitions, cost and
// limits: docs/bench/README.md.
//
//	sudo goiser-bench -target goiser=iscsi://127.0.0.1:3260/iqn.2026-11.dev.goiser:conformance/0 \
//	    -attribute goiser=$(pidof goiserd) -attribute-svg breakdown.svg -out report.md
//
// hack/bench-latency.sh (make bench-latency) starts goiserd and tgt on the
// same kind of storage and runs this command against both. The measuring
// itself lives in package bench.
package main
