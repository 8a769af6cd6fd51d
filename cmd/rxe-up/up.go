//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/Mellanox/rdmamap"
	"github.com/vishvananda/netlink"
)

// Defaults of Config, used for zero fields.
const (
	// DefaultName is the rdma link (and device) name the tests expect.
	DefaultName = "rxe0"
	// DefaultNetdev is the dummy interface rxe is bound to.
	DefaultNetdev = "rxedummy0"
	// DefaultAddr is the guest-private address of the dummy interface.
	DefaultAddr = "10.99.0.1/24"
	// DefaultSysfs is where the kernel lists RDMA devices.
	DefaultSysfs = rdmamap.RdmaClassDir
	// pollInterval is how often Up re-reads sysfs while waiting.
	pollInterval = 50 * time.Millisecond
)

// DefaultModules returns the modules loaded before anything else: the rxe
// driver, the user-space verbs and RDMA CM interfaces, and the dummy netdev
// driver.
func DefaultModules() []string { return []string{"rdma_rxe", "ib_uverbs", "rdma_ucm", "dummy"} }

// Config says which device to bring up. Zero fields take the defaults above.
type Config struct {
	Name         string       // rdma link name; default DefaultName
	Netdev       string       // dummy interface; default DefaultNetdev
	Addr         string       // CIDR address of Netdev; default DefaultAddr
	Modules      []string     // modules to load first; nil: DefaultModules()
	ExtraModules []string     // loaded after Modules (ib_iser, ib_isert, ...)
	Modprobe     string       // modprobe binary; default "modprobe" from PATH
	Sysfs        string       // RDMA class directory; default DefaultSysfs
	Logger       *slog.Logger // default slog.Default()
}

// withDefaults returns c with zero fields filled in and validates it.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Netdev == "" {
		c.Netdev = DefaultNetdev
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Modules == nil {
		c.Modules = DefaultModules()
	}
	if c.Modprobe == "" {
		c.Modprobe = "modprobe"
	}
	if c.Sysfs == "" {
		c.Sysfs = DefaultSysfs
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.Netdev) > 15 {
		return c, fmt.Errorf("netdev name %q longer than 15 bytes", c.Netdev)
	}
	ip, _, err := net.ParseCIDR(c.Addr)
	if err != nil {
		return c, fmt.Errorf("parse address: %w", err)
	}
	if ip.To4() == nil {
		return c, fmt.Errorf("address %s: only IPv4 is supported", c.Addr)
	}
	return c, nil
}

// Result describes the device Up brought up.
type Result struct {
	Device      string   // RDMA device name (e.g. rxe0)
	Netdev      string   // the network interface it is bound to
	Addr        net.IP   // the interface's IPv4 address
	Prefix      string   // the address with its prefix length, as configured
	Port        int      // the port checked (always 1 for rxe)
	State       Port     // the port's state when it became ACTIVE
	GIDIndex    int      // index of the RoCE v2 GID of Addr
	GID         string   // that GID, in sysfs notation
	CharDevices []string // /dev/infiniband nodes of the device
}

// Up loads the modules, creates the dummy interface with its address, adds
// the rxe link, and waits until the device's port is ACTIVE with a RoCE v2
// GID for the address. It returns when ready or when ctx is done. Every step
// reuses what already exists, so a second call on a ready guest succeeds.
func Up(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	log := cfg.Logger
	if err := loadModules(ctx, cfg.Modprobe, append(slices.Clone(cfg.Modules), cfg.ExtraModules...)); err != nil {
		return nil, err
	}
	log.Debug("modules loaded", "modules", cfg.Modules, "extra", cfg.ExtraModules)

	ip, err := setupNetdev(cfg.Netdev, cfg.Addr)
	if err != nil {
		return nil, err
	}
	log.Debug("netdev up", "netdev", cfg.Netdev, "addr", cfg.Addr)

	dev, err := addRxe(ctx, cfg.Name, cfg.Netdev, log)
	if err != nil {
		return nil, err
	}
	res := &Result{Device: dev, Netdev: cfg.Netdev, Addr: ip, Prefix: cfg.Addr, Port: 1}
	devDir := cfg.Sysfs + "/" + dev
	if res.State, err = waitActive(ctx, devDir, res.Port); err != nil {
		return nil, fmt.Errorf("wait for %s port %d: %w", dev, res.Port, err)
	}
	log.Debug("port active", "device", dev, "state", res.State)
	if res.GIDIndex, res.GID, err = waitGID(ctx, devDir, res.Port, cfg.Netdev, ip); err != nil {
		return nil, fmt.Errorf("wait for the RoCE v2 GID of %s on %s: %w", ip, dev, err)
	}
	res.CharDevices = rdmamap.GetRdmaCharDevices(dev)
	return res, nil
}

// loadModules loads mods (and their dependencies) with one modprobe -a.
func loadModules(ctx context.Context, modprobe string, mods []string) error {
	if len(mods) == 0 {
		return nil
	}
	out, err := exec.CommandContext(ctx, modprobe, append([]string{"-a"}, mods...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("load modules %s: %w: %s", strings.Join(mods, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setupNetdev brings lo up, creates the dummy interface netdev unless it
// exists, sets addr on it and brings it up. It returns the parsed address.
func setupNetdev(netdev, addr string) (net.IP, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return nil, fmt.Errorf("set lo up: %w", err)
	}
	link, err := netlink.LinkByName(netdev)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		err = netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: netdev}})
		if err != nil {
			return nil, fmt.Errorf("add dummy link %s: %w", netdev, err)
		}
		link, err = netlink.LinkByName(netdev)
	}
	if err != nil {
		return nil, fmt.Errorf("find link %s: %w", netdev, err)
	}
	a, err := netlink.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("parse address %s: %w", addr, err)
	}
	if err := netlink.AddrReplace(link, a); err != nil {
		return nil, fmt.Errorf("set address %s on %s: %w", addr, netdev, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up: %w", netdev, err)
	}
	return a.IP.To4(), nil
}

// addRxe adds the rxe link name on netdev unless netdev already has an RDMA
// device, then waits until rdmamap maps netdev to it. It returns the name of
// the device bound to netdev.
func addRxe(ctx context.Context, name, netdev string, log *slog.Logger) (string, error) {
	if dev, err := rdmamap.GetRdmaDeviceForNetdevice(netdev); err == nil && dev != "" {
		if dev != name {
			log.Warn("netdev already has an RDMA device with another name", "netdev", netdev, "device", dev, "want", name)
		}
		return dev, nil
	}
	if _, err := netlink.RdmaLinkByName(name); err != nil {
		if err := netlink.RdmaLinkAdd(name, "rxe", netdev); err != nil && !errors.Is(err, syscall.EEXIST) {
			return "", fmt.Errorf("add rdma link %s type rxe netdev %s: %w", name, netdev, err)
		}
		log.Debug("rdma link added", "name", name, "netdev", netdev)
	}
	// The GID table (which rdmamap reads) fills in asynchronously.
	var lastErr error
	for {
		dev, err := rdmamap.GetRdmaDeviceForNetdevice(netdev)
		if err == nil && dev != "" {
			if dev != name {
				return "", fmt.Errorf("netdev %s maps to RDMA device %s, not %s", netdev, dev, name)
			}
			return dev, nil
		}
		lastErr = err
		if err := sleep(ctx, pollInterval); err != nil {
			return "", fmt.Errorf("find the RDMA device of %s: %w (last: %v)", netdev, err, lastErr)
		}
	}
}

// waitActive polls the port's state until it is ACTIVE.
func waitActive(ctx context.Context, devDir string, port int) (Port, error) {
	for {
		p, err := readPort(devDir, port)
		if err == nil && p.State == PortActive {
			return p, nil
		}
		if err := sleep(ctx, pollInterval); err != nil {
			if p.StateName != "" {
				return p, fmt.Errorf("%w (port state %s, physical state %s)", err, p.StateName, p.PhysName)
			}
			return p, err
		}
	}
}

// waitGID polls the port's GID table until it holds the RoCE v2 GID of ip
// on netdev.
func waitGID(ctx context.Context, devDir string, port int, netdev string, ip net.IP) (int, string, error) {
	for {
		gids, err := readGIDs(devDir, port)
		if err == nil {
			if i := findRoCEv2GID(gids, netdev, ip); i >= 0 {
				return gids[i].Index, gids[i].GID, nil
			}
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return -1, "", err
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Summary renders r for people, one fact per line.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rxe-up: device   %s (netdev %s)\n", r.Device, r.Netdev)
	fmt.Fprintf(&b, "rxe-up: port     %d %s, physical %s\n", r.Port, r.State.StateName, r.State.PhysName)
	fmt.Fprintf(&b, "rxe-up: gid      [%d] %s (RoCE v2)\n", r.GIDIndex, r.GID)
	fmt.Fprintf(&b, "rxe-up: address  %s\n", r.Prefix)
	fmt.Fprintf(&b, "rxe-up: chardevs %s\n", strings.Join(r.CharDevices, " "))
	return b.String()
}

// Env renders r as shell variable assignments (sourced by hack/rxe scripts).
func (r *Result) Env() string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"RXE_DEV", r.Device},
		{"RXE_NETDEV", r.Netdev},
		{"RXE_ADDR", r.Addr.String()},
		{"RXE_PREFIX", r.Prefix},
		{"RXE_PORT", fmt.Sprint(r.Port)},
		{"RXE_GID", r.GID},
		{"RXE_GID_INDEX", fmt.Sprint(r.GIDIndex)},
		{"RXE_CHARDEVS", strings.Join(r.CharDevices, " ")},
	} {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
