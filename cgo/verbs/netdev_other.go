//go:build !linux

package verbs

import "fmt"

// DeviceForNetdev names the RDMA device whose port sits on the network
// interface netdev. It needs Linux.
func DeviceForNetdev(netdev string) (string, error) {
	return "", fmt.Errorf("verbs: device for netdev %s: %w", netdev, errStub)
}

// DeviceForAddr names the RDMA device that owns the local IP address ip.
// It needs Linux.
func DeviceForAddr(ip string) (string, error) {
	return "", fmt.Errorf("verbs: device for address %s: %w", ip, errStub)
}
