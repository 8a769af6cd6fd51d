package driver

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors shared by every provider (package rdma re-exports them).
var (
	// ErrNotSupported: the provider, device or build cannot do this (a
	// build without cgo, an operation the device lacks, EOPNOTSUPP).
	ErrNotSupported = errors.New("rdma: not supported")
	// ErrClosed: the object (or its parent) is closed.
	ErrClosed = errors.New("rdma: use of closed object")
	// ErrInvalidState: the QP is not in a state that allows the operation
	// (posting on a QP in Reset or Error, an illegal state transition).
	ErrInvalidState = errors.New("rdma: invalid queue pair state")
	// ErrQueueFull: more WRs than the queue's capacity are outstanding.
	ErrQueueFull = errors.New("rdma: work queue full")
	// ErrNoDevice: no device of that name, or none reaches the address.
	ErrNoDevice = errors.New("rdma: no such device")
)

// VerbsError is a failure of a verbs or CM call, carrying the OS errno.
type VerbsError struct {
	Op    string        // the failing call, e.g. "ibv_create_cq"
	Errno syscall.Errno // 0 when the library gave none
}

// NewVerbsError wraps err (normally the syscall.Errno from cgo's
// two-result call) as a *VerbsError for op. A nil or non-errno err yields
// an Errno of 0 (or EIO when the library signalled failure without one).
func NewVerbsError(op string, err error) *VerbsError {
	var errno syscall.Errno
	if !errors.As(err, &errno) || errno == 0 {
		errno = syscall.EIO
	}
	return &VerbsError{Op: op, Errno: errno}
}

func (e *VerbsError) Error() string {
	return fmt.Sprintf("%s: %v", e.Op, e.Errno)
}

// Unwrap returns the errno, so errors.Is(err, syscall.ENOMEM) works.
func (e *VerbsError) Unwrap() error { return e.Errno }

// Is reports EOPNOTSUPP and ENOSYS as ErrNotSupported.
func (e *VerbsError) Is(target error) bool {
	return target == ErrNotSupported && (e.Errno == syscall.EOPNOTSUPP || e.Errno == syscall.ENOSYS)
}

// RejectError is a connect request the peer rejected.
type RejectError struct {
	Status      int    // CM reject status (provider-specific; 28 = consumer reject on IB/RoCE)
	PrivateData []byte // the peer's reject private data
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("rdma: connection rejected (status %d, %d bytes of private data)", e.Status, len(e.PrivateData))
}

// WCError is a failed work completion turned into an error.
type WCError struct {
	ID        uint64
	Status    WCStatus
	VendorErr uint32
}

func (e *WCError) Error() string {
	return fmt.Sprintf("rdma: work request %#x failed: %s (vendor error %#x)", e.ID, e.Status, e.VendorErr)
}

// Err returns nil for a successful completion and a *WCError otherwise.
func (c *Completion) Err() error {
	if c.Status == WCSuccess {
		return nil
	}
	return &WCError{ID: c.ID, Status: c.Status, VendorErr: c.VendorErr}
}
