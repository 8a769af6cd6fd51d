//go:build linux

package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestParseState(t *testing.T) {
	for _, tc := range []struct {
		in      string
		n       int
		name    string
		wantErr bool
	}{
		{"4: ACTIVE\n", 4, "ACTIVE", false},
		{"1: DOWN", 1, "DOWN", false},
		{"5: LinkUp\n", 5, "LinkUp", false},
		{"ACTIVE", 0, "", true},
		{"x: ACTIVE", 0, "", true},
		{"", 0, "", true},
	} {
		n, name, err := parseState(tc.in)
		if (err != nil) != tc.wantErr || n != tc.n || name != tc.name {
			t.Errorf("parseState(%q) = %d, %q, %v; want %d, %q, error %v", tc.in, n, name, err, tc.n, tc.name, tc.wantErr)
		}
	}
}

// writeTree creates files (path relative to root -> content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A device directory laid out as the kernel lays out
// /sys/class/infiniband/rxe0 for rxe on a dummy netdev with 10.99.0.1.
func fakeDevice(t *testing.T, state string) string {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ports/1/state":                "" + state,
		"ports/1/phys_state":           "5: LinkUp\n",
		"ports/1/gids/0":               "fe80:0000:0000:0000:d82c:a6ff:feeb:82ae\n",
		"ports/1/gids/1":               "fe80:0000:0000:0000:d82c:a6ff:feeb:82ae\n",
		"ports/1/gids/2":               "0000:0000:0000:0000:0000:ffff:0a63:0001\n",
		"ports/1/gids/3":               "0000:0000:0000:0000:0000:ffff:0a63:0001\n",
		"ports/1/gids/4":               "0000:0000:0000:0000:0000:0000:0000:0000\n",
		"ports/1/gid_attrs/types/0":    "IB/RoCE v1\n",
		"ports/1/gid_attrs/types/1":    "RoCE v2\n",
		"ports/1/gid_attrs/types/2":    "IB/RoCE v1\n",
		"ports/1/gid_attrs/types/3":    "RoCE v2\n",
		"ports/1/gid_attrs/ndevs/0":    "rxedummy0\n",
		"ports/1/gid_attrs/ndevs/1":    "rxedummy0\n",
		"ports/1/gid_attrs/ndevs/2":    "rxedummy0\n",
		"ports/1/gid_attrs/ndevs/3":    "rxedummy0\n",
		"ports/1/gids/not-an-index":    "ignored\n",
		"ports/1/gid_attrs/types/4/.x": "", // unreadable as a file, like an unpopulated entry
	})
	return dir
}

func TestReadPort(t *testing.T) {
	dir := fakeDevice(t, "4: ACTIVE\n")
	p, err := readPort(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := Port{State: PortActive, StateName: "ACTIVE", Phys: 5, PhysName: "LinkUp"}
	if p != want {
		t.Errorf("readPort = %+v, want %+v", p, want)
	}
	if _, err := readPort(dir, 2); err == nil {
		t.Error("readPort of a missing port succeeded")
	}
	writeTree(t, dir, map[string]string{"ports/1/state": "garbage"})
	if _, err := readPort(dir, 1); err == nil {
		t.Error("readPort of a garbled state succeeded")
	}
}

func TestReadGIDsAndFind(t *testing.T) {
	dir := fakeDevice(t, "4: ACTIVE\n")
	gids, err := readGIDs(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(gids) != 4 {
		t.Fatalf("readGIDs returned %d entries, want 4 (the zero GID is skipped): %+v", len(gids), gids)
	}
	ip := net.ParseIP("10.99.0.1").To4()
	i := findRoCEv2GID(gids, "rxedummy0", ip)
	if i < 0 || gids[i].Index != 3 || gids[i].GID != "0000:0000:0000:0000:0000:ffff:0a63:0001" {
		t.Fatalf("findRoCEv2GID = %d (%+v), want the entry with index 3", i, gids)
	}
	if i := findRoCEv2GID(gids, "other0", ip); i >= 0 {
		t.Errorf("findRoCEv2GID matched another netdev: %+v", gids[i])
	}
	if i := findRoCEv2GID(gids, "rxedummy0", net.ParseIP("10.99.0.2")); i >= 0 {
		t.Errorf("findRoCEv2GID matched another address: %+v", gids[i])
	}
	if _, err := readGIDs(t.TempDir(), 1); err == nil {
		t.Error("readGIDs without a gids directory succeeded")
	}
}
