package attribute

import (
	"context"
	"errors"
	"fmt"

	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Thread states of bpf/tracer.c.
const (
	stateUnknown  = 0
	stateRunning  = 1
	stateRunnable = 2
	stateBlocked  = 3
	stateExited   = 4
)

// Tracer accounts the time of one process's threads from the moment Start
// attached it until Stop. Its methods are safe for concurrent use.
type Tracer struct {
	pid   int
	start time.Duration // CLOCK_MONOTONIC at Start

	unmeasured []string // parts this kernel cannot measure, with why; immutable

	mu     sync.Mutex // guards the fields below
	objs   tracerObjects
	links  []link.Link
	closed bool
	stop   func() bool // ends the context.AfterFunc of Start
}

// Start loads the eBPF programs, attaches them to the scheduler, syscall
// and socket tracepoints and begins accounting the time of process pid's
// threads. It needs root (or CAP_BPF with CAP_PERFMON) and tracefs; when
// tracefs is not mounted and the caller may mount it, Start mounts it at
// /sys/kernel/tracing. When it cannot attach, the error says why (not
// privileged, no tracefs, a tracepoint missing or laid out differently on
// this kernel, the verifier's refusal). When ctx ends, the tracer detaches
// as if Stop had been called. Call Stop when done.
func Start(ctx context.Context, pid int) (*Tracer, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("attribute: pid %d is not a process", pid)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return nil, fmt.Errorf("attribute: no process %d: %w", pid, err)
	}
	if err := privileged(); err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}
	dir, err := tracefs()
	if err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}
	skip, err := checkFormats(dir)
	if err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("attribute: raise the locked memory limit for eBPF maps: %w", err)
	}
	spec, err := loadTracer()
	if err != nil {
		return nil, fmt.Errorf("attribute: read the eBPF object: %w", err)
	}
	if err := spec.Variables["target_tgid"].Set(uint32(pid)); err != nil {
		return nil, fmt.Errorf("attribute: set the target pid: %w", err)
	}
	t := &Tracer{pid: pid}
	skipped := map[string]bool{}
	var missing []string
	for _, tp := range skip {
		skipped[tp.name] = true
		missing = append(missing, tp.group+"/"+tp.name)
	}
	if len(missing) > 0 {
		t.unmeasured = append(t.unmeasured, fmt.Sprintf("socket wait: this kernel (%s) lacks the tracepoints %s (Linux 6.4 and later have them)",
			kernelRelease(), strings.Join(missing, " and ")))
	}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("attribute: the kernel's verifier refused the eBPF programs: %+v", ve)
		}
		return nil, fmt.Errorf("attribute: load the eBPF programs: %w", err)
	}
	if err := ctx.Err(); err != nil {
		t.objs.Close()
		return nil, err
	}
	t.start = monotonic()
	t.seed()
	progs := map[string]*ebpf.Program{
		"sys_enter": t.objs.SysEnter, "sys_exit": t.objs.SysExit,
		"sched_switch": t.objs.SchedSwitch, "sched_waking": t.objs.SchedWaking,
		"sk_data_ready": t.objs.SkDataReady, "sock_recv_length": t.objs.SockRecvLength,
	}
	for _, tp := range tracepoints {
		if skipped[tp.name] {
			continue
		}
		l, err := link.Tracepoint(tp.group, tp.name, progs[tp.name], nil)
		if err != nil {
			t.detach()
			return nil, fmt.Errorf("attribute: attach to tracepoint %s/%s: %w", tp.group, tp.name, err)
		}
		t.links = append(t.links, l)
	}
	t.stop = context.AfterFunc(ctx, func() { t.detach() })
	return t, nil
}

// Unmeasured lists the parts this kernel cannot measure, each with the
// reason (e.g. socket wait on a kernel without the sock tracepoints);
// those parts stay 0 in every Breakdown.
func (t *Tracer) Unmeasured() []string { return t.unmeasured }

// kernelRelease is uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// privileged returns nil when this process may load tracing eBPF programs:
// CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON, in its effective set.
func privileged() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("cannot read the capabilities of this process: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			capEff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return fmt.Errorf("cannot parse CapEff %q: %w", v, err)
			}
			has := func(c int) bool { return capEff&(1<<c) != 0 }
			if has(unix.CAP_SYS_ADMIN) || has(unix.CAP_BPF) && has(unix.CAP_PERFMON) {
				return nil
			}
			return fmt.Errorf("not privileged: tracing with eBPF needs root, or CAP_BPF and CAP_PERFMON (running as uid %d, CapEff %#x)", os.Geteuid(), capEff)
		}
	}
	return errors.New("cannot find CapEff in /proc/self/status")
}

// tracefs returns where tracefs is mounted, mounting it at
// /sys/kernel/tracing when it is not and this process may.
func tracefs() (string, error) {
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(dir, "events")); err == nil {
			return dir, nil
		}
	}
	const dir = "/sys/kernel/tracing"
	if err := unix.Mount("nodev", dir, "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("tracefs is not mounted and mounting it failed (mount -t tracefs nodev %s: %w); mount it as root", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "events")); err != nil {
		return "", fmt.Errorf("mounted tracefs at %s but it has no events: %w", dir, err)
	}
	return dir, nil
}

// seed records the target's threads that sleep at Start as blocked since
// now, so that a thread that sleeps through a whole window is counted.
// Other threads stay unknown until their next state change.
func (t *Tracer) seed() {
	dir := fmt.Sprintf("/proc/%d/task", t.pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	now := uint64(monotonic())
	for _, e := range ents {
		tid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) STATE ...: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			continue
		}
		th := tracerThread{State: stateUnknown}
		switch s[i+2] {
		case 'S', 'D', 'I':
			th.State, th.Ts = stateBlocked, now
		}
		_ = t.objs.Threads.Update(uint32(tid), th, ebpf.UpdateNoExist)
	}
}

// detach removes the programs and frees the maps; it is idempotent.
func (t *Tracer) detach() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
	t.objs.Close()
}

// ErrStopped is returned by Snapshot after Stop, or after the context
// given to Start ended.
var ErrStopped = errors.New("attribute: tracer stopped")

// Snapshot returns the totals since Start, up to now: threads that are in
// the middle of a state are counted up to now too. The difference of two
// snapshots (Breakdown.Sub) is the breakdown of the window between them.
func (t *Tracer) Snapshot() (Breakdown, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return Breakdown{}, ErrStopped
	}
	return t.snapshotLocked()
}

// Stop takes a last snapshot, detaches the programs and frees the maps.
// After the first call it returns ErrStopped.
func (t *Tracer) Stop() (Breakdown, error) {
	b, err := t.Snapshot()
	if t.stop != nil {
		t.stop()
	}
	t.detach()
	return b, err
}

// snapshotLocked reads the maps. A thread's record can change while it is
// read; the error this allows is one state interval, which is small
// against the windows of a benchmark.
func (t *Tracer) snapshotLocked() (Breakdown, error) {
	now := monotonic()
	b := Breakdown{Wall: now - t.start, PerSyscall: map[int]SyscallStat{}}
	var (
		tid uint32
		th  tracerThread
	)
	it := t.objs.Threads.Iterate()
	for it.Next(&tid, &th) {
		open := time.Duration(0)
		if th.Ts != 0 && uint64(now) > th.Ts {
			open = now - time.Duration(th.Ts)
		}
		b.User += time.Duration(th.UserNs)
		b.Syscall += time.Duration(th.SysNs)
		b.RunQueue += time.Duration(th.RunqNs)
		b.Blocked += time.Duration(th.BlockedNs)
		switch th.State {
		case stateRunning:
			if th.InSyscall != 0 {
				b.Syscall += open
			} else {
				b.User += open
			}
		case stateRunnable:
			b.RunQueue += open
		case stateBlocked:
			b.Blocked += open
		}
		if th.State != stateExited {
			b.Threads++
		}
		if th.State == stateUnknown {
			b.Unknown++
		}
		b.Syscalls += th.Syscalls
		b.Wakeups += th.Wakeups
		b.Preemptions += th.Preemptions
	}
	if err := it.Err(); err != nil {
		return Breakdown{}, fmt.Errorf("attribute: read the thread map: %w", err)
	}
	var ss []tracerSockstats
	if err := t.objs.Sockstats.Lookup(uint32(0), &ss); err != nil {
		return Breakdown{}, fmt.Errorf("attribute: read the socket statistics: %w", err)
	}
	for _, s := range ss {
		b.SocketWait += time.Duration(s.WaitNs)
		b.SocketWaits += s.Waits
		b.SocketReads += s.Reads
		b.BytesRead += s.Bytes
		b.EmptyReads += s.EmptyReads
	}
	var (
		id  uint32
		per []tracerSyscallstat
	)
	sit := t.objs.Syscalls.Iterate()
	for sit.Next(&id, &per) {
		var s SyscallStat
		for _, p := range per {
			s.Count += p.Count
			s.OnCPU += time.Duration(p.Ns)
		}
		if s.Count != 0 || s.OnCPU != 0 {
			b.PerSyscall[int(id)] = s
		}
	}
	if err := sit.Err(); err != nil {
		return Breakdown{}, fmt.Errorf("attribute: read the syscall map: %w", err)
	}
	return b, nil
}

// monotonic returns CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}
