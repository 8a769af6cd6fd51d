package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/initiator"
)

// buildDaemon compiles goiserd into a temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(t.TempDir(), "goiserd")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a 127.0.0.1 port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// daemon is a goiserd process under test.
type daemon struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	output bytes.Buffer // stdout and stderr, guarded by mu
	done   chan struct{}
	err    error // exit error, valid after done is closed
}

func (d *daemon) Output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.output.String()
}

// startDaemon starts bin with args and waits until it listens on addr.
func startDaemon(t *testing.T, bin, addr string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	pr, pw := io.Pipe()
	d.cmd.Stdout, d.cmd.Stderr = pw, pw
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			d.mu.Lock()
			d.output.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
	}()
	go func() {
		d.err = d.cmd.Wait()
		pw.Close()
		<-scanned // every line is in d.output before done
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("goiserd output:\n%s", d.Output())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("goiserd exited before listening on %s: %v\n%s", addr, d.err, d.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("goiserd does not listen on %s after 20 s\n%s", addr, d.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits (bounded) for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("goiserd did not exit within 30 s of SIGTERM\n%s", d.Output())
	}
	if d.err != nil {
		t.Fatalf("goiserd exited with %v after SIGTERM\n%s", d.err, d.Output())
	}
}

// requireTools skips the test, loudly, when a client tool is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: %s is not installed (Debian packages libiscsi-bin, qemu-utils, qemu-block-extra): run make deps", tool)
		}
	}
}

// runTool runs a client tool with a time limit and returns its output.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// TestEndToEnd serves a file-backed LUN, checks it with the libiscsi tools,
// writes a pattern through one session (qemu-img's libiscsi driver), stops
// the daemon with SIGTERM, checks the backing file, restarts the daemon on
// the same file and reads the pattern back over iSCSI.
func TestEndToEnd(t *testing.T) {
	requireTools(t, "iscsi-ls", "iscsi-inq", "iscsi-readcapacity16", "qemu-img")
	if out, _ := exec.Command("qemu-img", "--help").Output(); !strings.Contains(string(out), " iscsi") {
		t.Skip("SKIPPED: qemu-img has no iscsi block driver (Debian package qemu-block-extra): run make deps")
	}
	bin := buildDaemon(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	const iqn = "iqn.2026-11.dev.goiser:e2e"
	const size = 64 << 20
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"-listen", addr, "-target", iqn, "-lun", "file:" + img + ",size=64M", "-lun", "mem:16M"}
	d := startDaemon(t, bin, addr, args...)
	url := "iscsi://" + addr + "/" + iqn + "/0"

	if out := runTool(t, "iscsi-ls", "-s", "iscsi://"+addr); !strings.Contains(out, "Target:"+iqn) || !strings.Contains(out, "Lun:1") {
		t.Errorf("iscsi-ls does not list the target and both LUNs:\n%s", out)
	}
	if out := runTool(t, "iscsi-inq", url); !strings.Contains(out, "Peripheral Device Type:DIRECT_ACCESS") || !strings.Contains(out, "Vendor:GOISER") {
		t.Errorf("iscsi-inq:\n%s", out)
	}
	if out := runTool(t, "iscsi-readcapacity16", url); !strings.Contains(out, "LOGICAL BLOCK LENGTH IN BYTES:512") ||
		!strings.Contains(out, fmt.Sprintf("Total size:%d", size)) {
		t.Errorf("iscsi-readcapacity16:\n%s", out)
	}

	// 4 MiB of pseudo-random data, written through one session.
	pattern := make([]byte, 4<<20)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	rng.Read(pattern)
	patFile := filepath.Join(dir, "pattern.bin")
	if err := os.WriteFile(patFile, pattern, 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", patFile, url)
	d.stop(t)
	if out := d.Output(); !strings.Contains(out, "backends flushed and closed") {
		t.Errorf("no flush line in the log after SIGTERM:\n%s", out)
	}

	disk, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(disk) != size {
		t.Fatalf("backing file has %d bytes, want %d", len(disk), size)
	}
	if sha(disk[:len(pattern)]) != sha(pattern) {
		t.Fatal("the backing file does not hold the pattern written before SIGTERM")
	}

	// Restart on the same file and read everything back over iSCSI.
	d = startDaemon(t, bin, addr, args...)
	back := filepath.Join(dir, "back.img")
	runTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", url, back)
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size {
		t.Fatalf("read back %d bytes, want %d", len(got), size)
	}
	if sha(got[:len(pattern)]) != sha(pattern) {
		t.Fatal("data read back after the restart differs from the pattern written before it")
	}
	if !bytes.Equal(got[len(pattern):], make([]byte, size-len(pattern))) {
		t.Fatal("blocks never written read back as non-zero")
	}
	d.stop(t)
}

// TestBusyPort checks the error for a portal that is already taken.
func TestBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"-listen", addr}, &stdout, &stderr)
	want := "listen " + addr + ": address already in use"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("run on a busy port: err = %v, want it to contain %q", err, want)
	}
}

// TestMissingBackingFile checks the error for a file LUN whose file does
// not exist and cannot be created (no size given).
func TestMissingBackingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.img")
	err := run(context.Background(), []string{"-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-lun", "file:" + path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v, want one naming %s and saying it does not exist", err, path)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		t.Fatalf("a missing backing file is a runtime error (exit 1), got exit %d", ee.code)
	}
}

// TestBadConfigExit runs the real binary on a bad config and checks the
// exit status and that the message names the field.
func TestBadConfigExit(t *testing.T) {
	bin := buildDaemon(t)
	conf := filepath.Join(t.TempDir(), "bad.json")
	body := `{"targets": [{"name": "iqn.2026-11.dev.goiser:x", "luns": [{"lun": 0, "backend": "mem", "size": "1G"}, {"lun": 0, "backend": "null", "size": "1G"}]}]}`
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-config", conf).CombinedOutput()
	var xe *exec.ExitError
	if !errors.As(err, &xe) || xe.ExitCode() != 2 {
		t.Fatalf("goiserd on a bad config: %v, want exit status 2\n%s", err, out)
	}
	want := "goiserd: config " + conf + ": targets[0].luns[1].lun: LUN 0 is also luns[0]"
	if !strings.Contains(string(out), want) {
		t.Fatalf("output %q does not contain %q", out, want)
	}
}

// TestServeAndShutdown runs the daemon in process: it serves until its
// context ends, then shuts down and flushes a file backend.
func TestServeAndShutdown(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-listen", addr, "-lun", "file:" + img + ",size=1M", "-log-format", "json"}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("run returned before listening: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not listening on %s after 20 s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run after cancel: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s of cancel")
	}
	for _, want := range []string{"iscsi-ls -s iscsi://" + addr, "iscsi-inq iscsi://" + addr + "/" + defaultIQN + "/0"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout does not tell how to reach the target (%q):\n%s", want, stdout.String())
		}
	}
	for _, want := range []string{`"msg":"serving LUN"`, `"msg":"shutting down"`, `"msg":"backends flushed and closed"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, stderr.String())
		}
	}
	if st, err := os.Stat(img); err != nil || st.Size() != 1<<20 {
		t.Errorf("backing file: %v, %v", st, err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAccessControl serves two targets from a config file, one behind
// CHAP and one behind an initiator access list, and checks with iscsi-inq
// and iscsi-ls that only the right initiators get in.
func TestAccessControl(t *testing.T) {
	requireTools(t, "iscsi-ls", "iscsi-inq")
	bin := buildDaemon(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	const (
		chapIQN = "iqn.2026-11.dev.goiser:chap"
		aclIQN  = "iqn.2026-11.dev.goiser:acl"
		allowed = "iqn.2026-11.dev.goiser:allowed-initiator"
		other   = "iqn.2026-11.dev.goiser:other-initiator"
	)
	conf := filepath.Join(t.TempDir(), "goiserd.json")
	body := fmt.Sprintf(`{
  "portals": [%q],
  "targets": [
    {"name": %q, "chap": {"user": "alice", "secret": "alice-secret-1"}, "luns": [{"backend": "mem", "size": "8M"}]},
    {"name": %q, "initiators": [%q], "luns": [{"backend": "null", "size": "8M"}]}
  ]
}`, addr, chapIQN, aclIQN, allowed)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, bin, addr, "-config", conf)

	inq := func(url string, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "iscsi-inq", append(args, url)...).CombinedOutput()
		if err == nil && !strings.Contains(string(out), "Vendor:GOISER") {
			return fmt.Errorf("unexpected output:\n%s", out)
		}
		return err
	}
	if err := inq("iscsi://alice%alice-secret-1@" + addr + "/" + chapIQN + "/0"); err != nil {
		t.Errorf("CHAP with the right secret: %v", err)
	}
	if err := inq("iscsi://alice%wrong-secret-1@" + addr + "/" + chapIQN + "/0"); err == nil {
		t.Error("CHAP with a wrong secret logged in")
	}
	if err := inq("iscsi://" + addr + "/" + chapIQN + "/0"); err == nil {
		t.Error("a target with CHAP let an initiator in without it")
	}
	if err := inq("iscsi://"+addr+"/"+aclIQN+"/0", "-i", allowed); err != nil {
		t.Errorf("initiator on the access list: %v", err)
	}
	if err := inq("iscsi://"+addr+"/"+aclIQN+"/0", "-i", other); err == nil {
		t.Error("an initiator not on the access list logged in")
	}
	if out := runTool(t, "iscsi-ls", "-i", allowed, "iscsi://"+addr); !strings.Contains(out, aclIQN) {
		t.Errorf("discovery by an allowed initiator does not list %s:\n%s", aclIQN, out)
	}
	if out := runTool(t, "iscsi-ls", "-i", other, "iscsi://"+addr); strings.Contains(out, aclIQN) || !strings.Contains(out, chapIQN) {
		t.Errorf("discovery by an initiator not on the access list must show %s but not %s:\n%s", chapIQN, aclIQN, out)
	}
	d.stop(t)
}

// stuckSession logs in to the daemon at addr and then never reads again, so
// it ignores the target's request to log out at shutdown.
func stuckSession(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := initiator.DialConn(ctx, addr, initiator.Config{
		InitiatorName: "iqn.2026-11.dev.goiser:stuck-initiator",
		TargetName:    defaultIQN,
	})
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	t.Cleanup(func() { c.Close() })
}

// waitOutput waits (bounded) until the daemon's output contains s.
func (d *daemon) waitOutput(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(d.Output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output after 20 s:\n%s", s, d.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShutdownTimeout: a session that ignores the request to log out is
// closed when shutdown_timeout ends, and the daemon still exits cleanly.
func TestShutdownTimeout(t *testing.T) {
	bin := buildDaemon(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := filepath.Join(t.TempDir(), "goiserd.json")
	body := fmt.Sprintf(`{"portals": [%q], "shutdown_timeout": "500ms",
  "targets": [{"name": %q, "luns": [{"backend": "mem", "size": "1M"}]}]}`, addr, defaultIQN)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, bin, addr, "-config", conf)
	stuckSession(t, addr)
	d.stop(t) // fails unless the exit status is 0
	if out := d.Output(); !strings.Contains(out, "graceful shutdown timed out") || !strings.Contains(out, "backends flushed and closed") {
		t.Fatalf("no timed-out shutdown in the log:\n%s", out)
	}
}

// TestSecondSignal: while a graceful shutdown waits for a session, a second
// signal makes the daemon exit at once with status 1.
func TestSecondSignal(t *testing.T) {
	bin := buildDaemon(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := filepath.Join(t.TempDir(), "goiserd.json")
	body := fmt.Sprintf(`{"portals": [%q], "shutdown_timeout": "10m",
  "targets": [{"name": %q, "luns": [{"backend": "mem", "size": "1M"}]}]}`, addr, defaultIQN)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, bin, addr, "-config", conf)
	stuckSession(t, addr)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitOutput(t, `msg="shutting down"`)
	time.Sleep(2 * repeatWindow) // a repeat sooner is ignored (TestRepeatedSignal)
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("goiserd still runs 30 s after a second signal\n%s", d.Output())
	}
	var xe *exec.ExitError
	if !errors.As(d.err, &xe) || xe.ExitCode() != 1 {
		t.Fatalf("exit after a second signal: %v, want status 1\n%s", d.err, d.Output())
	}
	if out := d.Output(); !strings.Contains(out, "second signal") {
		t.Fatalf("no message about the second signal:\n%s", out)
	}
}

// TestRepeatedSignal: the same SIGTERM delivered twice at once (as coreutils
// timeout does to a child in its process group) is one shutdown request:
// the daemon shuts down gracefully and exits 0.
func TestRepeatedSignal(t *testing.T) {
	bin := buildDaemon(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startDaemon(t, bin, addr, "-listen", addr, "-lun", "mem:1M")
	for range 2 {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("goiserd still runs 30 s after SIGTERM\n%s", d.Output())
	}
	if d.err != nil {
		t.Fatalf("exit after a doubled SIGTERM: %v, want status 0\n%s", d.err, d.Output())
	}
	if out := d.Output(); !strings.Contains(out, "backends flushed and closed") {
		t.Fatalf("no graceful shutdown in the log:\n%s", out)
	}
}
