package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/initiator"
)

// floodConfig writes a config with a small memory LUN on addr and extra
// "limits" JSON, and returns its path.
func floodConfig(t *testing.T, addr, limits string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "goiserd.json")
	js := fmt.Sprintf(`{"portals": [%q], "log": {"level": "info"}, "shutdown_timeout": "5s",
  "limits": {%s},
  "targets": [{"name": %q, "luns": [{"lun": 0, "backend": "mem", "size": "64M"}]}]}`, addr, limits, defaultIQN)
	if err := os.WriteFile(conf, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// verifiedIO writes a pattern at lba and reads it back through s.
func verifiedIO(t *testing.T, s *initiator.Session, lba uint32, seed byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := make([]byte, 64<<10)
	for i := range out {
		out[i] = byte(i) ^ seed
	}
	blocks := uint16(len(out) / 512)
	wr := []byte{0x2a, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(blocks >> 8), byte(blocks), 0}
	if r, err := s.Execute(ctx, 0, wr, out, nil); err != nil || r.Status != 0 {
		t.Fatalf("WRITE at %d: %v status %#x", lba, err, r.Status)
	}
	in := make([]byte, len(out))
	rd := append([]byte{0x28}, wr[1:]...)
	if r, err := s.Execute(ctx, 0, rd, nil, in); err != nil || r.Status != 0 {
		t.Fatalf("READ at %d: %v status %#x", lba, err, r.Status)
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("READ at %d returned other data than was written", lba)
	}
}

// dialSession logs in a normal session to the daemon's default target.
func dialSession(t *testing.T, addr, name string) *initiator.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := initiator.Dial(ctx, addr, initiator.Config{InitiatorName: "iqn.2026-11.dev.goiser:" + name, TargetName: defaultIQN})
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openIdle opens n TCP connections to addr that never send anything (the
// ones the daemon refuses are closed by it; the test keeps its ends).
func openIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial idle connection %d: %v", len(cs), err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	return cs
}

// rssKB returns the resident set size of process pid in KiB.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// alive fails the test if the daemon has exited.
func (d *daemon) alive(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
		t.Fatalf("goiserd exited: %v\n%s", d.err, d.Output())
	default:
	}
}

// TestConnectionFloodFDLimit is the audit's first finding end to end: with
// a low open-file limit, more idle connections than file descriptors must
// neither stop the daemon nor disturb a logged-in session; once they go, new
// sessions log in again.
func TestConnectionFloodFDLimit(t *testing.T) {
	bin := buildDaemon(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := floodConfig(t, addr, "")
	d := startDaemon(t, "/bin/sh", addr, "-c", "ulimit -n 256 && exec "+bin+" -config "+conf)
	s := dialSession(t, addr, "steady")
	verifiedIO(t, s, 0, 1)
	idle := openIdle(t, addr, 600)
	d.waitOutput(t, "connection refused over a limit")
	for i := range 5 {
		verifiedIO(t, s, uint32(256*i), byte(i))
	}
	d.alive(t)
	if !strings.Contains(d.Output(), "max_connections lowered to fit the open-file limit") {
		t.Errorf("no log line about max_connections and the open-file limit")
	}
	for _, c := range idle {
		c.Close()
	}
	// The portal still accepts: a new session logs in once the flood ends.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s2, err := initiator.Dial(ctx, addr, initiator.Config{InitiatorName: "iqn.2026-11.dev.goiser:after", TargetName: defaultIQN})
		cancel()
		if err == nil {
			verifiedIO(t, s2, 4096, 7)
			s2.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login after the flood ended: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.alive(t)
	d.stop(t)
}

// slowLoris opens n connections that each send a Login Request header
// announcing an 8 KiB data segment, then one byte of it, and stall.
func slowLoris(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	cs := openIdle(t, addr, n)
	var bhs [48]byte
	bhs[0] = 0x43 // Login Request, immediate
	bhs[1] = 0x87 // T, CSG=1, NSG=3
	binary.BigEndian.PutUint32(bhs[4:8], 8192)
	for _, c := range cs {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(append(bhs[:], 'I'))
	}
	return cs
}

// TestConnectionFloodMemory holds thousands of idle connections and a
// slow-loris login storm against the daemon while a logged-in session keeps
// doing verified I/O; the daemon's memory stays under a bound
// (docs/security.md) and the storm ends with the login timeout.
func TestConnectionFloodMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 3,000 connections; skipped with -short")
	}
	bin := buildDaemon(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := floodConfig(t, addr, `"login_timeout": "3s", "max_connections_per_host": 4000`)
	d := startDaemon(t, "/bin/sh", addr, "-c", "ulimit -n 8192 && exec "+bin+" -config "+conf)
	s := dialSession(t, addr, "steady")
	verifiedIO(t, s, 0, 1)
	base := rssKB(t, d.cmd.Process.Pid)
	openIdle(t, addr, 3000)
	slowLoris(t, addr, 500)
	for i := range 5 {
		verifiedIO(t, s, uint32(256*i), byte(i))
	}
	d.alive(t)
	peak := rssKB(t, d.cmd.Process.Pid)
	t.Logf("goiserd RSS: %d KiB logged in, %d KiB with 3,000 idle and 500 slow-loris connections", base, peak)
	const boundKB = 256 << 10
	if peak > boundKB {
		t.Errorf("goiserd RSS %d KiB with 3,500 connections, bound %d KiB", peak, boundKB)
	}
	// The login timeout ends the storm (and the idle ones) while the
	// session keeps working.
	d.waitOutput(t, "login timeout")
	verifiedIO(t, s, 8192, 9)
	d.alive(t)
	d.stop(t)
}

// TestAddrFilePortZero: with port 0 the daemon picks a free port and
// reports it in -addr-file, where scripts read it instead of guessing.
func TestAddrFilePortZero(t *testing.T) {
	bin := buildDaemon(t)
	file := filepath.Join(t.TempDir(), "addrs")
	d := &daemon{cmd: exec.Command(bin, "-listen", "127.0.0.1:0", "-lun", "mem:16M", "-addr-file", file), done: make(chan struct{})}
	var out syncBuffer
	d.cmd.Stdout, d.cmd.Stderr = &out, &out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
	})
	var b []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if b, err = os.ReadFile(file); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 20 s:\n%s", file, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	kind, addr, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	if !ok || kind != "tcp" || strings.HasSuffix(addr, ":0") || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("addr file %q, want \"tcp 127.0.0.1:PORT\"", b)
	}
	s := dialSession(t, addr, "portzero")
	verifiedIO(t, s, 0, 3)
}

// TestISERWithoutRDMA: -iser on a host without an RDMA device (every
// machine here but the Soft-RoCE guest) says so in one line and keeps
// serving TCP.
func TestISERWithoutRDMA(t *testing.T) {
	if entries, _ := os.ReadDir("/sys/class/infiniband"); len(entries) > 0 {
		t.Skip("this host has RDMA devices; the guest stages test -iser")
	}
	bin := buildDaemon(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startDaemon(t, bin, addr, "-listen", addr, "-lun", "mem:16M", "-iser", "127.0.0.1")
	d.waitOutput(t, "iSER portal not served")
	if n := strings.Count(d.Output(), "iSER portal not served"); n != 1 {
		t.Fatalf("%d warning lines about the iSER portal, want 1:\n%s", n, d.Output())
	}
	s := dialSession(t, addr, "no-rdma")
	verifiedIO(t, s, 0, 5)
	d.stop(t)
}
