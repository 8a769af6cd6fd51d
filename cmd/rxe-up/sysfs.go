//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PortState is the logical state of an RDMA port, as numbered by the IB
// specification and shown in sysfs ("4: ACTIVE").
type PortState int

// Port states (ports/N/state in sysfs).
const (
	PortNop    PortState = 0
	PortDown   PortState = 1
	PortInit   PortState = 2
	PortArmed  PortState = 3
	PortActive PortState = 4
)

// Port is what sysfs says about one port of an RDMA device.
type Port struct {
	State     PortState // numeric logical state
	StateName string    // its name, e.g. "ACTIVE"
	Phys      int       // numeric physical state (5 = LinkUp)
	PhysName  string    // its name, e.g. "LinkUp"
}

// GID is one populated entry of a port's GID table.
type GID struct {
	Index  int    // index in the table (ibv_query_gid's index)
	GID    string // sysfs notation: eight groups of four hex digits
	Type   string // "RoCE v2" or "IB/RoCE v1"
	Netdev string // the network interface the GID belongs to
}

// parseState parses a sysfs state line such as "4: ACTIVE".
func parseState(s string) (int, string, error) {
	num, name, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, "", fmt.Errorf("parse state %q: no colon", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil {
		return 0, "", fmt.Errorf("parse state %q: %w", s, err)
	}
	return n, strings.TrimSpace(name), nil
}

// readPort reads the logical and physical state of port under devDir (a
// directory such as /sys/class/infiniband/rxe0).
func readPort(devDir string, port int) (Port, error) {
	var p Port
	dir := filepath.Join(devDir, "ports", strconv.Itoa(port))
	b, err := os.ReadFile(filepath.Join(dir, "state"))
	if err != nil {
		return p, fmt.Errorf("read port state: %w", err)
	}
	n, name, err := parseState(string(b))
	if err != nil {
		return p, err
	}
	p.State, p.StateName = PortState(n), name
	b, err = os.ReadFile(filepath.Join(dir, "phys_state"))
	if err != nil {
		return p, fmt.Errorf("read port physical state: %w", err)
	}
	if p.Phys, p.PhysName, err = parseState(string(b)); err != nil {
		return p, err
	}
	return p, nil
}

// readGIDs lists the populated entries of the port's GID table. Unpopulated
// entries read as all zeros and have no type or netdev; they are skipped.
func readGIDs(devDir string, port int) ([]GID, error) {
	dir := filepath.Join(devDir, "ports", strconv.Itoa(port))
	entries, err := os.ReadDir(filepath.Join(dir, "gids"))
	if err != nil {
		return nil, fmt.Errorf("list gids: %w", err)
	}
	var gids []GID
	for _, e := range entries {
		i, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "gids", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read gid %d: %w", i, err)
		}
		g := GID{Index: i, GID: strings.TrimSpace(string(b))}
		if ip := net.ParseIP(g.GID); ip == nil || ip.IsUnspecified() {
			continue
		}
		g.Type = readAttr(filepath.Join(dir, "gid_attrs", "types", e.Name()))
		g.Netdev = readAttr(filepath.Join(dir, "gid_attrs", "ndevs", e.Name()))
		gids = append(gids, g)
	}
	return gids, nil
}

// readAttr reads a gid_attrs file. The kernel fails the read (EINVAL) for
// an entry that is not populated, so any read error reads as "".
func readAttr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// findRoCEv2GID returns the position in gids of the RoCE v2 GID that maps
// the IPv4 address ip on netdev (::ffff:a.b.c.d), or -1.
func findRoCEv2GID(gids []GID, netdev string, ip net.IP) int {
	for i, g := range gids {
		if g.Type != "RoCE v2" || g.Netdev != netdev {
			continue
		}
		if gip := net.ParseIP(g.GID); gip != nil && gip.Equal(ip) {
			return i
		}
	}
	return -1
}
