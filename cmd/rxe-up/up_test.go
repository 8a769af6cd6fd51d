//go:build linux

package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != DefaultName || c.Netdev != DefaultNetdev || c.Addr != DefaultAddr ||
		!reflect.DeepEqual(c.Modules, DefaultModules()) || c.Modprobe != "modprobe" || c.Sysfs != DefaultSysfs || c.Logger == nil {
		t.Errorf("defaults not applied: %+v", c)
	}
	for _, bad := range []Config{
		{Addr: "10.99.0.1"},               // no prefix
		{Addr: "fd00::1/64"},              // IPv6
		{Addr: "not-an-address"},          // garbage
		{Netdev: "a-name-longer-than-15"}, // IFNAMSIZ
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("withDefaults(%+v) accepted an invalid config", bad)
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(" ib_iser,ib_isert  iscsi_target_mod,,")
	want := []string{"ib_iser", "ib_isert", "iscsi_target_mod"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitList = %q, want %q", got, want)
	}
	if got := splitList(""); len(got) != 0 {
		t.Errorf("splitList(\"\") = %q", got)
	}
}

// TestEnvSourcedByShell sources Result.Env in a real shell, values with
// quotes and spaces included.
func TestEnvSourcedByShell(t *testing.T) {
	r := &Result{
		Device: "rxe0", Netdev: "rxedummy0", Addr: net.ParseIP("10.99.0.1"), Prefix: "10.99.0.1/24",
		Port: 1, GIDIndex: 3, GID: "0000:0000:0000:0000:0000:ffff:0a63:0001",
		CharDevices: []string{"/dev/infiniband/uverbs0", "/dev/it's odd"},
	}
	f := filepath.Join(t.TempDir(), "rxe.env")
	if err := os.WriteFile(f, []byte(r.Env()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", `. "$1" && printf '%s|%s|%s|%s|%s|%s' "$RXE_DEV" "$RXE_NETDEV" "$RXE_ADDR" "$RXE_GID_INDEX" "$RXE_GID" "$RXE_CHARDEVS"`, "sh", f).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	want := "rxe0|rxedummy0|10.99.0.1|3|0000:0000:0000:0000:0000:ffff:0a63:0001|/dev/infiniband/uverbs0 /dev/it's odd"
	if string(out) != want {
		t.Errorf("sourced env gives\n%s\nwant\n%s", out, want)
	}
	if s := r.Summary(); !strings.Contains(s, "rxe0") || !strings.Contains(s, "10.99.0.1/24") {
		t.Errorf("summary lacks device or address:\n%s", s)
	}
}

// TestUpInGuest brings up a second Soft-RoCE device from scratch, then again
// (reusing it), then removes it. It needs root and a kernel with rdma_rxe:
// the hack/rxe guest (stage 00-sanity runs it there). Elsewhere it skips.
func TestUpInGuest(t *testing.T) {
	if os.Getenv("RXE_UP_TEST") != "1" {
		t.Skip("set RXE_UP_TEST=1 in the Soft-RoCE guest to run (make test-rxe does; see docs/testing.md)")
	}
	cfg := Config{Name: "rxetest1", Netdev: "rxetestnd1", Addr: "10.99.1.1/24"}
	t.Cleanup(func() {
		if l, err := netlink.RdmaLinkByName(cfg.Name); err == nil {
			if err := netlink.RdmaLinkDel(l.Attrs.Name); err != nil {
				t.Errorf("remove rdma link %s: %v", cfg.Name, err)
			}
		}
		if l, err := netlink.LinkByName(cfg.Netdev); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				t.Errorf("remove link %s: %v", cfg.Netdev, err)
			}
		}
	})
	for round := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		res, err := Up(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("round %d: Up: %v", round, err)
		}
		if res.Device != cfg.Name || res.State.State != PortActive || !res.Addr.Equal(net.ParseIP("10.99.1.1")) || res.GID == "" {
			t.Fatalf("round %d: Up = %+v", round, res)
		}
		t.Logf("round %d:\n%s", round, res.Summary())
	}
}
