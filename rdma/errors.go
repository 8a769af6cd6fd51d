package rdma

import (
	"errors"

	"github.com/goiser/goiser/rdma/driver"
)

// Sentinel errors. The first five are the provider sentinels of
// rdma/driver (the same values), so errors.Is works whichever package
// produced the error.
var (
	// ErrNotSupported: the provider, device or build cannot do this.
	ErrNotSupported = driver.ErrNotSupported
	// ErrClosed: the object, or its parent, is closed.
	ErrClosed = driver.ErrClosed
	// ErrInvalidState: the queue pair's state does not allow the operation.
	ErrInvalidState = driver.ErrInvalidState
	// ErrQueueFull: more work requests outstanding than the queue holds.
	ErrQueueFull = driver.ErrQueueFull
	// ErrNoDevice: no device of that name, or none reaches the address.
	ErrNoDevice = driver.ErrNoDevice

	// ErrBusy: Close of a parent that still has live children (a device
	// with protection domains or completion queues, a protection domain
	// with memory regions or queue pairs, a completion queue used by queue
	// pairs). The error names how many; close the children first.
	ErrBusy = errors.New("rdma: object still has live children")
	// ErrNotOffHeap: memory given to RegisterMemory is not inside a Buffer
	// from AllocBuffer (for example a Go-heap make([]byte)), so the device
	// must not be given it.
	ErrNotOffHeap = errors.New("rdma: memory is not an off-heap buffer from AllocBuffer")
)

// Error types, re-exported from rdma/driver.
type (
	// VerbsError is a failed verbs or CM call carrying the OS errno; it
	// unwraps to the syscall.Errno.
	VerbsError = driver.VerbsError
	// RejectError is a connect request the peer rejected.
	RejectError = driver.RejectError
	// WCError is a failed work completion (see Completion.Err).
	WCError = driver.WCError
)
