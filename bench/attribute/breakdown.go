package attribute

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"time"
)

// Breakdown is where a process's threads spent a window of time. A
// Snapshot's window runs from Start; Sub gives the window between two
// snapshots. User, Syscall, RunQueue and Blocked partition the time of the
// threads whose state was known: their sum is about Wall × Threads (less
// while some thread's state is Unknown). SocketWait is measured on
// sockets, not threads, and overlaps the four.
type Breakdown struct {
	// Wall is the length of the window.
	Wall time.Duration
	// User is on-CPU time outside syscalls (including interrupts taken
	// meanwhile).
	User time.Duration
	// Syscall is on-CPU time inside syscalls, from sys_enter to sys_exit
	// less the time switched out in between.
	Syscall time.Duration
	// RunQueue is the time threads were runnable but not running: from a
	// wakeup (sched_waking) or a preemption to being switched in.
	RunQueue time.Duration
	// Blocked is the time threads slept (switched out in a sleeping
	// state) until woken: waiting in epoll_wait, futex, nanosleep, for
	// a lock or for I/O. For a target under a benchmark that is mostly
	// waiting for the client.
	Blocked time.Duration
	// SocketWait sums, over the target's reads that returned data, the
	// time from the first data arriving in that socket's receive queue
	// after the previous read (sock:sk_data_ready) to the read
	// (sock:sock_recv_length).
	SocketWait time.Duration
	// Threads is the number of the process's threads known and alive at
	// the end of the window; Unknown of them had not changed state yet,
	// so their time is not counted.
	Threads, Unknown int
	// Syscalls, Wakeups and Preemptions count sys_enter events, blocked
	// to runnable transitions and switches out while runnable.
	Syscalls, Wakeups, Preemptions uint64
	// SocketReads counts socket reads that returned data, BytesRead
	// their bytes; SocketWaits counts those that ended a timed queue
	// wait, EmptyReads the reads that returned nothing (EAGAIN).
	SocketReads, SocketWaits, BytesRead, EmptyReads uint64
	// PerSyscall holds on-CPU time and calls by syscall number (see
	// SyscallName).
	PerSyscall map[int]SyscallStat
}

// SyscallStat is the on-CPU time spent in, and the number of calls of, one
// syscall.
type SyscallStat struct {
	Count uint64
	OnCPU time.Duration
}

// Sub returns the breakdown of the window from a to b, a taken earlier
// from the same Tracer. Threads and Unknown are b's.
func (b Breakdown) Sub(a Breakdown) Breakdown {
	d := Breakdown{
		Wall: b.Wall - a.Wall, User: b.User - a.User, Syscall: b.Syscall - a.Syscall,
		RunQueue: b.RunQueue - a.RunQueue, Blocked: b.Blocked - a.Blocked, SocketWait: b.SocketWait - a.SocketWait,
		Threads: b.Threads, Unknown: b.Unknown,
		Syscalls: b.Syscalls - a.Syscalls, Wakeups: b.Wakeups - a.Wakeups, Preemptions: b.Preemptions - a.Preemptions,
		SocketReads: b.SocketReads - a.SocketReads, SocketWaits: b.SocketWaits - a.SocketWaits,
		BytesRead: b.BytesRead - a.BytesRead, EmptyReads: b.EmptyReads - a.EmptyReads,
		PerSyscall: map[int]SyscallStat{},
	}
	for id, s := range b.PerSyscall {
		p := a.PerSyscall[id]
		if s.Count != p.Count || s.OnCPU != p.OnCPU {
			d.PerSyscall[id] = SyscallStat{Count: s.Count - p.Count, OnCPU: s.OnCPU - p.OnCPU}
		}
	}
	return d
}

// Add returns the sum of two windows (of the same or other tracers), for
// totals over rounds. Threads and Unknown are the larger of the two.
func (b Breakdown) Add(a Breakdown) Breakdown {
	d := Breakdown{
		Wall: b.Wall + a.Wall, User: b.User + a.User, Syscall: b.Syscall + a.Syscall,
		RunQueue: b.RunQueue + a.RunQueue, Blocked: b.Blocked + a.Blocked, SocketWait: b.SocketWait + a.SocketWait,
		Threads: max(b.Threads, a.Threads), Unknown: max(b.Unknown, a.Unknown),
		Syscalls: b.Syscalls + a.Syscalls, Wakeups: b.Wakeups + a.Wakeups, Preemptions: b.Preemptions + a.Preemptions,
		SocketReads: b.SocketReads + a.SocketReads, SocketWaits: b.SocketWaits + a.SocketWaits,
		BytesRead: b.BytesRead + a.BytesRead, EmptyReads: b.EmptyReads + a.EmptyReads,
		PerSyscall: map[int]SyscallStat{},
	}
	for _, m := range []map[int]SyscallStat{a.PerSyscall, b.PerSyscall} {
		for id, s := range m {
			p := d.PerSyscall[id]
			d.PerSyscall[id] = SyscallStat{Count: p.Count + s.Count, OnCPU: p.OnCPU + s.OnCPU}
		}
	}
	return d
}

// Accounted is User + Syscall + RunQueue + Blocked: the thread time the
// breakdown covers, about Wall × Threads.
func (b Breakdown) Accounted() time.Duration { return b.User + b.Syscall + b.RunQueue + b.Blocked }

// The part names of Parts, in order.
const (
	PartUser       = "user"
	PartSyscall    = "syscall"
	PartRunQueue   = "run queue"
	PartSocketWait = "socket wait"
	PartBlocked    = "blocked"
)

// Part is one part of a Row: a name (PartUser, ...) and its time per I/O.
type Part struct {
	Name  string
	PerIO time.Duration
}

// Row is one measured workload on one target, divided by its I/Os: the
// data of a table row and of a bar of WriteSVG.
type Row struct {
	Workload, Target string
	// IOs is the number of I/Os completed in the windows.
	IOs uint64
	// Parts are the Breakdown's times per I/O, in the order user,
	// syscall, run queue, socket wait, blocked.
	Parts []Part
	// WallPerIO is the window per I/O (1/IOPS); SyscallsPerIO and
	// WakeupsPerIO are counts per I/O.
	WallPerIO                   time.Duration
	SyscallsPerIO, WakeupsPerIO float64
	// Threads is the average number of the process's threads accounted
	// over the window, Accounted / Wall: the parts user, syscall, run
	// queue and blocked add up to WallPerIO × Threads. A process that
	// starts threads while measured (Go adds Ms for blocking syscalls)
	// has fewer on average than at the end.
	Threads float64
	// Syscalls are the syscalls taking the most on-CPU time, most first,
	// per I/O.
	Syscalls []SyscallPerIO
}

// SyscallPerIO is one syscall's calls and on-CPU time per I/O.
type SyscallPerIO struct {
	Name  string
	Calls float64
	OnCPU time.Duration
}

// PerIO divides b by ios, the I/Os completed in its window (0 gives a
// row of zeros), keeping the top syscalls by on-CPU time.
func (b Breakdown) PerIO(workload, target string, ios uint64, top int) Row {
	r := Row{Workload: workload, Target: target, IOs: ios}
	if b.Wall > 0 {
		r.Threads = float64(b.Accounted()) / float64(b.Wall)
	}
	per := func(d time.Duration) time.Duration {
		if ios == 0 {
			return 0
		}
		return d / time.Duration(ios)
	}
	count := func(n uint64) float64 {
		if ios == 0 {
			return 0
		}
		return float64(n) / float64(ios)
	}
	r.Parts = []Part{
		{PartUser, per(b.User)}, {PartSyscall, per(b.Syscall)}, {PartRunQueue, per(b.RunQueue)},
		{PartSocketWait, per(b.SocketWait)}, {PartBlocked, per(b.Blocked)},
	}
	r.WallPerIO, r.SyscallsPerIO, r.WakeupsPerIO = per(b.Wall), count(b.Syscalls), count(b.Wakeups)
	ids := make([]int, 0, len(b.PerSyscall))
	for id := range b.PerSyscall {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y int) int {
		return cmp.Or(cmp.Compare(b.PerSyscall[y].OnCPU, b.PerSyscall[x].OnCPU), cmp.Compare(x, y))
	})
	for _, id := range ids[:min(top, len(ids))] {
		s := b.PerSyscall[id]
		r.Syscalls = append(r.Syscalls, SyscallPerIO{Name: SyscallName(id), Calls: count(s.Count), OnCPU: per(s.OnCPU)})
	}
	return r
}

// Part returns the time per I/O of the named part, or 0.
func (r Row) Part(name string) time.Duration {
	for _, p := range r.Parts {
		if p.Name == name {
			return p.PerIO
		}
	}
	return 0
}

// amd64Syscalls names the x86_64 syscalls a target is likely to make.
var amd64Syscalls = map[int]string{
	0: "read", 1: "write", 7: "poll", 16: "ioctl", 17: "pread64", 18: "pwrite64", 19: "readv", 20: "writev",
	23: "select", 24: "sched_yield", 28: "madvise", 35: "nanosleep", 39: "getpid", 44: "sendto", 45: "recvfrom",
	46: "sendmsg", 54: "setsockopt", 55: "getsockopt", 62: "kill", 47: "recvmsg", 72: "fcntl", 74: "fsync", 75: "fdatasync", 186: "gettid", 200: "tkill",
	202: "futex", 206: "io_setup", 208: "io_getevents", 209: "io_submit", 228: "clock_gettime", 230: "clock_nanosleep",
	232: "epoll_wait", 233: "epoll_ctl", 234: "tgkill", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait",
	284: "eventfd", 290: "eventfd2", 295: "preadv", 296: "pwritev", 426: "io_uring_enter", 441: "epoll_pwait2",
	13: "rt_sigaction", 14: "rt_sigprocmask", 15: "rt_sigreturn", 131: "sigaltstack", 9: "mmap", 11: "munmap",
	56: "clone", 435: "clone3", 60: "exit", 3: "close", 257: "openat", 262: "newfstatat", 43: "accept", 288: "accept4",
}

// SyscallName names syscall number id of this machine's architecture
// ("read"), or returns "syscall N" for one it does not know.
func SyscallName(id int) string {
	if runtime.GOARCH == "amd64" {
		if n, ok := amd64Syscalls[id]; ok {
			return n
		}
	}
	return fmt.Sprintf("syscall %d", id)
}
