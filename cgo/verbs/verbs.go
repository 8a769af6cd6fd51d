//go:build linux && cgo

package verbs

/*
#cgo LDFLAGS: -libverbs -lrdmacm
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/goiser/goiser/rdma/driver"
)

// Provider returns the verbs provider: libibverbs for the datapath and
// librdmacm for devices and connection management. It holds no state of its
// own; every call opens what it needs.
func Provider() driver.Provider { return provider{} }

type provider struct{}

func (provider) Name() string { return "verbs" }

// Devices lists the devices librdmacm knows, with their node GUIDs and the
// network interfaces of their ports. A host without RDMA devices (or without
// the rdma_cm module) yields an empty list.
func (provider) Devices() ([]driver.DeviceInfo, error) {
	n, err := C.goiser_device_count()
	if n < 0 {
		if isNoDeviceErrno(err) {
			return nil, nil
		}
		return nil, driver.NewVerbsError("rdma_get_devices", err)
	}
	out := make([]driver.DeviceInfo, 0, int(n))
	var buf [C.IBV_SYSFS_NAME_MAX]C.char
	for i := 0; i < int(n); i++ {
		var guid C.uint64_t
		if rc, err := C.goiser_device_name(C.int(i), &buf[0], C.int(len(buf)), &guid); rc != 0 {
			return nil, driver.NewVerbsError("rdma_get_devices", err)
		}
		name := C.GoString(&buf[0])
		out = append(out, driver.DeviceInfo{Name: name, NodeGUID: uint64(guid), NetDevs: netdevsOf(name)})
	}
	return out, nil
}

// Open opens the named device through librdmacm, so the context is the one
// that CM ids on this device use: a PD allocated here works with QPs of
// connections accepted or dialed on the device.
func (provider) Open(name string) (driver.Context, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	ctx, err := C.goiser_open_device(cname)
	if ctx == nil {
		if isNoDeviceErrno(err) {
			return nil, fmt.Errorf("verbs: open %s: %w", name, driver.ErrNoDevice)
		}
		return nil, driver.NewVerbsError("rdma_get_devices", err)
	}
	return newDevice(ctx, true), nil
}

// isNoDeviceErrno reports the errnos librdmacm gives when there is no device
// or no RDMA CM at all.
func isNoDeviceErrno(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ENODEV, syscall.ENOENT, syscall.ENXIO, syscall.ENOSYS:
		return true
	}
	return false
}

// rcErr turns the result of a C call into an error: 0 is success, a positive
// value is the errno itself (the libibverbs convention), -1 means errno is in
// err (the librdmacm and libc convention), and another negative value is a
// negated errno.
func rcErr(op string, rc C.int, err error) error {
	switch {
	case rc == 0:
		return nil
	case rc > 0:
		return driver.NewVerbsError(op, syscall.Errno(rc))
	case rc == -1:
		return driver.NewVerbsError(op, err)
	default:
		return driver.NewVerbsError(op, syscall.Errno(-rc))
	}
}

// nop is one trivial cgo crossing, for BenchmarkCgoCall.
func nop(x int) int { return int(C.goiser_nop(C.int(x))) }

// cInt builds a C.int, for tests (a _test.go file cannot use cgo).
func cInt(x int) C.int { return C.int(x) }
