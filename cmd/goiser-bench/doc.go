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
