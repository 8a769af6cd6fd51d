// Package attribute splits the time of a target process (goiserd, tgtd)
// into parts a storage engineer can reason about, while a benchmark runs
// against it, with eBPF programs on kernel tracepoints: no kprobes, no
// BTF or CO-RE, and nothing sent to user space per event.
//
// Walk-through:
//
//	tr, err := attribute.Start(ctx, pid) // load, attach; says why when it cannot
//	if err != nil { ... }                // not root, no tracefs, tracepoint missing
//	a, _ := tr.Snapshot()                // totals since Start
//	... the measured window: n I/Os complete ...
//	b, _ := tr.Snapshot()
//	row := b.Sub(a).PerIO("4k-randread-qd1", "goiser", n, 5)
//	_, _ = tr.Stop()
//
// # What is measured
//
// Every thread of the process is, at any moment, in one of four states,
// and its time goes to the part of that state (per thread, summed over
// threads, so the four add up to about Wall × Threads):
//
//   - user: on a CPU and not inside a syscall. It includes the process's
//     own work and interrupts taken while it runs.
//   - syscall: on a CPU inside a syscall, from raw_syscalls:sys_enter to
//     raw_syscalls:sys_exit, less the time switched out in between. It
//     includes work the kernel does on the thread's behalf inside the
//     call: on loopback, a send also runs the receiver's TCP input path in
//     the sender's softirq.
//   - run queue: runnable but not running: from sched:sched_waking of a
//     sleeping thread, or from being switched out while still runnable
//     (preempted, prev_state R), to sched:sched_switch onto a CPU.
//   - blocked: switched out in a sleeping state (S, D, I) until woken: in
//     epoll_wait, futex, nanosleep, on a lock, on I/O. For a target under a
//     benchmark this is mostly its threads waiting for the client; idle
//     threads (a pool of workers, Go's idle Ms) add their whole window, so
//     blocked per I/O grows with the thread count and says little alone.
//
// A fifth part is measured on sockets, not threads, and overlaps the
// others:
//
//   - socket wait: for each read by the process that returns data
//     (sock:sock_recv_length with ret > 0), the time since the first data
//     arrived in that socket's receive queue after its previous read
//     (sock:sk_data_ready). It is how long requests sit in the kernel
//     before the target picks them up: the target's blocked-to-running
//     path (wakeup, run queue, event loop) seen from the data's side.
//
// Per I/O means the totals over the measured window divided by the I/Os
// completed in it. At queue depth 1 a request's latency is spent once on
// the client, once on the wire and once on the target; user + syscall per
// I/O is the target's CPU cost, which iSER removes most of the syscall
// share of (no socket reads and writes per I/O).
//
// # How
//
// bpf/tracer.c keeps a hash map keyed by thread id with each thread's
// state, the time it entered it and its sums; every event closes the
// interval since the last one into the sum of the state it was in. A
// snapshot adds each thread's open interval up to now, so windows need no
// event at their edges. Socket statistics and per-syscall on-CPU time are
// per-CPU arrays. Threads that sleep when Start runs are seeded as blocked
// from /proc/PID/task/*/stat; the others are Unknown until their next
// state change (at most a scheduling slice). A socket becomes known at its
// first read after Start: queue waits are timed from its second.
//
// The tracepoint context structs are laid out by hand from the format
// files of Linux 6.18; Start checks every field they use against the
// running kernel's format files and refuses, naming the field, when one
// moved. The objects are generated with bpf2go (go generate; see gen.go)
// and committed, so building needs no clang and works with CGO_ENABLED=0.
//
// # Cost and limits
//
// Each syscall of the target runs two small programs (a hash lookup and a
// few additions each, a few hundred ns on this kind of machine); every
// context switch and wakeup on the machine runs one or two hash lookups,
// and every sk_data_ready one. The benchmark's own client pays the
// system-wide share.
//
// It does not see time in hard or soft interrupts as its own part (it is
// in whatever the interrupted thread was doing), the client's side, or
// the kernel's work on behalf of the process in other contexts (e.g. the
// TCP receive path run in the sender's softirq, or ksoftirqd). A thread's
// record read while an event updates it can be off by one interval.
package attribute
