package attribute

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestWriteSVG(t *testing.T) {
	rows := []Row{
		fakeBreakdown(40*time.Microsecond).PerIO("4k-randread-qd1", "goiser", 1000, 3),
		fakeBreakdown(90*time.Microsecond).PerIO("4k-randread-qd1", "tgt <&>", 1000, 3),
	}
	var b bytes.Buffer
	if err := WriteSVG(&b, "breakdown", rows, nil); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b.Bytes(), new(struct{})); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	for _, want := range []string{"tgt &lt;&amp;&gt;", ">user<", ">syscall<", ">run queue<", "goiser: syscall 40 µs per I/O"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(b.String(), ">blocked<") {
		t.Error("default parts include blocked")
	}
}

func TestNiceMicros(t *testing.T) {
	for d, want := range map[time.Duration]float64{0: 1, 3 * time.Microsecond: 5, 120 * time.Microsecond: 200, 999 * time.Microsecond: 1000} {
		if got := niceMicros(d); got != want {
			t.Errorf("niceMicros(%v) = %v, want %v", d, got, want)
		}
	}
}

// fakeBreakdown is a window of 1000 I/Os in which the syscall part is
// sys per I/O.
func fakeBreakdown(sys time.Duration) Breakdown {
	return Breakdown{
		Wall: 100 * time.Millisecond, User: 20 * time.Millisecond, Syscall: 1000 * sys, RunQueue: 5 * time.Millisecond,
		Blocked: 300 * time.Millisecond, SocketWait: 7 * time.Millisecond, Threads: 4, Syscalls: 3000, Wakeups: 1500,
		PerSyscall: map[int]SyscallStat{0: {Count: 1000, OnCPU: 10 * time.Millisecond}, 1: {Count: 1000, OnCPU: 20 * time.Millisecond}},
	}
}

func TestBreakdownArithmetic(t *testing.T) {
	a := fakeBreakdown(10 * time.Microsecond)
	b := a.Add(fakeBreakdown(30 * time.Microsecond))
	if d := b.Sub(a); d.Syscall != 30*time.Millisecond || d.Wall != a.Wall || d.PerSyscall[1].Count != 1000 {
		t.Errorf("Sub: %+v", d)
	}
	r := b.PerIO("w", "t", 2000, 1)
	if r.Part(PartSyscall) != 20*time.Microsecond || r.SyscallsPerIO != 3 || r.WallPerIO != 100*time.Microsecond {
		t.Errorf("PerIO: %+v", r)
	}
	if len(r.Syscalls) != 1 || r.Syscalls[0].Calls != 1 || r.Syscalls[0].OnCPU != 20*time.Microsecond {
		t.Errorf("PerIO top syscall: %+v", r.Syscalls)
	}
	if z := b.PerIO("w", "t", 0, 1); z.Part(PartUser) != 0 || z.SyscallsPerIO != 0 {
		t.Errorf("PerIO(0): %+v", z)
	}
	if b.Accounted() != b.User+b.Syscall+b.RunQueue+b.Blocked {
		t.Error("Accounted")
	}
}
