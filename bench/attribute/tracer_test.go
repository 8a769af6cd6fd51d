package attribute

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a helper process (TestHelperProcess)
// that runs the phases TestTracerBuckets asks for.
const helperEnv = "GOISER_ATTRIBUTE_HELPER"

// phase is how long each phase of the helper runs: in CPU time for the
// busy phases (so that a loaded machine stretches them rather than
// shrinking what they measure), in wall time for sleeping and waiting.
const phase = 200 * time.Millisecond

// startTracer starts a tracer on pid, or skips the test with the reason it
// cannot attach; under CI (env CI set: root, tracefs mountable) it fails.
func startTracer(t *testing.T, pid int) *Tracer {
	t.Helper()
	tr, err := Start(context.Background(), pid)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot attach the tracer under CI: %v", err)
		}
		t.Skipf("cannot attach the tracer (run as root on Linux with tracefs, or set CI to make this a failure): %v", err)
	}
	t.Cleanup(func() { tr.Stop() })
	return tr
}

// TestTracerBuckets runs a helper process through phases of known
// behaviour and checks that each lands in the right part. Timings on a
// loaded machine swing widely: the checks are orderings and large
// fractions, never tight bounds.
func TestTracerBuckets(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a helper process for a few seconds")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+ln.Addr().String())
	cmd.ExtraFiles = []*os.File{cmdR, repW} // fd 3, fd 4
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmdR.Close()
	repW.Close()
	defer func() {
		cmdW.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{1}); err != nil { // the helper's first read: the tracer learns the socket
		t.Fatal(err)
	}
	replies := bufio.NewReader(repR)
	ask := func(what string) {
		t.Helper()
		if _, err := fmt.Fprintln(cmdW, what); err != nil {
			t.Fatal(err)
		}
		if what == "socket" {
			// The data arrives now; the helper reads it a phase later.
			if _, err := c.Write(make([]byte, 4096)); err != nil {
				t.Fatal(err)
			}
		}
		line, err := replies.ReadString('\n')
		if err != nil || line != "ok\n" {
			t.Fatalf("helper answered %q to %s: %v", line, what, err)
		}
	}
	ask("ready")

	tr := startTracer(t, cmd.Process.Pid)
	// A socket's first read after Start teaches the tracer the socket;
	// queue waits are timed from then on.
	if _, err := c.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	ask("learn")
	window := func(what string) Breakdown {
		t.Helper()
		a, err := tr.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		ask(what)
		b, err := tr.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		d := b.Sub(a)
		t.Logf("%-8s wall %v threads %d (unknown %d): user %v syscall %v runq %v blocked %v socket wait %v; syscalls %d wakeups %d reads %d bytes %d",
			what, d.Wall.Round(time.Millisecond), d.Threads, d.Unknown, d.User.Round(time.Microsecond), d.Syscall.Round(time.Microsecond),
			d.RunQueue.Round(time.Microsecond), d.Blocked.Round(time.Microsecond), d.SocketWait.Round(time.Microsecond),
			d.Syscalls, d.Wakeups, d.SocketReads, d.BytesRead)
		// The parts cover the known threads' time: about Wall × Threads.
		if want := d.Wall * time.Duration(d.Threads-d.Unknown); d.Accounted() < want/2 || d.Accounted() > want*3/2+d.Wall {
			t.Errorf("%s: accounted %v, want about wall × known threads = %v", what, d.Accounted(), want)
		}
		return d
	}

	busy := window("busy")
	if busy.User < phase/2 || busy.User < 5*busy.Syscall {
		t.Errorf("busy: user %v, syscall %v: want user >= %v and >= 5 × syscall", busy.User, busy.Syscall, phase/2)
	}
	sys := window("syscalls")
	if sys.Syscall < phase/2 || sys.Syscall < 2*sys.User || sys.Syscalls < 1000 {
		t.Errorf("syscalls: syscall %v, user %v, %d syscalls: want syscall >= %v and >= 2 × user, >= 1000 syscalls",
			sys.Syscall, sys.User, sys.Syscalls, phase/2)
	}
	if top := sys.PerIO("", "", 1, 1).Syscalls; runtime.GOARCH == "amd64" && (len(top) == 0 || top[0].Name != "read") {
		t.Errorf("syscalls: top syscall by on-CPU time is %v, want read", top)
	}
	sleep := window("sleep")
	if sleep.Blocked < phase*3/4 || sleep.User+sleep.Syscall > phase/4 || sleep.Blocked < 10*(sleep.User+sleep.Syscall) {
		t.Errorf("sleep: blocked %v, on-CPU %v: want blocked >= %v, on-CPU < %v", sleep.Blocked, sleep.User+sleep.Syscall, phase*3/4, phase/4)
	}
	sock := window("socket")
	if sock.SocketWait < phase/2 || sock.SocketWaits < 1 || sock.BytesRead < 4096 {
		t.Errorf("socket: waited %v in %d waits, read %d bytes: want >= %v, >= 1, >= 4096", sock.SocketWait, sock.SocketWaits, sock.BytesRead, phase/2)
	}
	runq := window("runq")
	// Each of two threads on one CPU waits while the other runs its phase.
	if runq.RunQueue < phase/2 || runq.Preemptions < 2 {
		t.Errorf("runq: run queue %v, %d preemptions: want >= %v, >= 2 (two busy threads on one CPU)", runq.RunQueue, runq.Preemptions, phase/2)
	}
	ask("exit")
	if _, err := tr.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if _, err := tr.Snapshot(); err != ErrStopped {
		t.Errorf("Snapshot after Stop: %v, want ErrStopped", err)
	}
}

// TestHelperProcess is the helper of TestTracerBuckets; it does nothing
// in a normal test run.
func TestHelperProcess(t *testing.T) {
	addr := os.Getenv(helperEnv)
	if addr == "" {
		t.Skip("helper process of TestTracerBuckets")
	}
	if err := helper(addr, os.NewFile(3, "commands"), os.NewFile(4, "replies")); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		t.Fatal(err)
	}
}

// helper connects to addr, reads one byte, then runs each command it reads
// from cmds and answers "ok" on replies.
func helper(addr string, cmds io.Reader, replies io.Writer) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return err
	}
	zero, err := os.Open("/dev/zero")
	if err != nil {
		return err
	}
	defer zero.Close()
	in := bufio.NewScanner(cmds)
	for in.Scan() {
		switch in.Text() {
		case "ready":
		case "learn":
			if _, err := io.ReadFull(c, buf[:1]); err != nil {
				return err
			}
		case "busy":
			spin(phase)
		case "syscalls":
			runtime.LockOSThread()
			for start := threadCPU(); threadCPU()-start < phase; {
				for range 10 {
					// Large reads of /dev/zero: the kernel's work outweighs the
					// call's in user space. unix.Syscall, not unix.Read: under
					// -race the latter marks the buffer written in user space.
					if _, _, e := unix.Syscall(unix.SYS_READ, zero.Fd(), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf))); e != 0 {
						return e
					}
				}
			}
			runtime.UnlockOSThread()
		case "sleep":
			time.Sleep(phase)
		case "socket":
			time.Sleep(phase)
			if _, err := io.ReadFull(c, buf[:4096]); err != nil {
				return err
			}
		case "runq":
			done := make(chan error, 2)
			for range 2 {
				go func() {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					var set unix.CPUSet
					set.Set(0)
					err := unix.SchedSetaffinity(0, &set)
					spin(phase)
					done <- err
				}()
			}
			for range 2 {
				if err := <-done; err != nil {
					return err
				}
			}
		case "exit":
			_, err := io.WriteString(replies, "ok\n")
			return err
		default:
			return fmt.Errorf("unknown command %q", in.Text())
		}
		if _, err := io.WriteString(replies, "ok\n"); err != nil {
			return err
		}
	}
	return in.Err()
}

// spin keeps a CPU busy in user space until the calling thread has run
// for d.
func spin(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := uint64(1)
	for start := threadCPU(); threadCPU()-start < d; {
		for range 200000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink.Add(x)
}

// threadCPU returns the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// sink keeps spin's loop from being optimised away.
var sink atomic.Uint64

// TestStartErrors checks that Start says why it refuses before touching
// the kernel.
func TestStartErrors(t *testing.T) {
	for pid, want := range map[int]string{0: "is not a process", -1: "is not a process", 1 << 30: "no process"} {
		if _, err := Start(context.Background(), pid); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Start(%d) = %v, want an error with %q", pid, err, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if tr, err := Start(ctx, os.Getpid()); err == nil {
		tr.Stop()
		t.Error("Start with an ended context succeeded")
	}
}
