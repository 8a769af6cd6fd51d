//go:build linux

package verbs

import (
	"fmt"
	"net"
	"sort"

	"github.com/Mellanox/rdmamap"

	"github.com/goiser/goiser/rdma/driver"
)

// DeviceForNetdev names the RDMA device whose port sits on the network
// interface netdev (e.g. "rxe0" for the dummy or Ethernet interface it was
// created on). Equivalent to: `rdma link show` and reading the NETDEV column.
func DeviceForNetdev(netdev string) (string, error) {
	name, err := rdmamap.GetRdmaDeviceForNetdevice(netdev)
	if err != nil || name == "" {
		return "", fmt.Errorf("verbs: device for netdev %s: %w", netdev, driver.ErrNoDevice)
	}
	return name, nil
}

// DeviceForAddr names the RDMA device that owns the local IP address ip, so
// that a user can name a portal address and the right device is opened. It
// finds the network interface that carries ip and asks DeviceForNetdev.
func DeviceForAddr(ip string) (string, error) {
	want := net.ParseIP(ip)
	if want == nil {
		return "", fmt.Errorf("verbs: device for address %q: not an IP address", ip)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("verbs: device for address %s: list interfaces: %w", ip, err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(want) {
				name, err := DeviceForNetdev(ifc.Name)
				if err != nil {
					return "", fmt.Errorf("verbs: device for address %s on %s: %w", ip, ifc.Name, driver.ErrNoDevice)
				}
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("verbs: device for address %s: no local interface has it: %w", ip, driver.ErrNoDevice)
}

// netdevsOf lists the network interfaces whose RDMA device is dev, sorted.
func netdevsOf(dev string) []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, ifc := range ifs {
		if name, err := rdmamap.GetRdmaDeviceForNetdevice(ifc.Name); err == nil && name == dev {
			out = append(out, ifc.Name)
		}
	}
	sort.Strings(out)
	return out
}
