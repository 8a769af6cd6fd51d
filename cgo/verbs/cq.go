//go:build linux && cgo

package verbs

// #include "shim.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/goiser/goiser/rdma/driver"
)

// compQueue is an ibv_cq with its own completion channel and a C array of
// completions sized at creation.
//
// Poll and Arm are called by the CQ's owner goroutine; Wait may run
// concurrently with them, and Close may run concurrently with Wait (it
// unblocks it with ErrClosed).
type compQueue struct {
	c   *C.goiser_cq  // immutable until Close frees it
	out []C.goiser_wc // view of c.out (C memory); immutable

	// f wraps a dup of the completion channel's non-blocking fd, so Wait
	// parks in the netpoller; closing f wakes waiters. The channel keeps
	// its own fd, which ibv_destroy_comp_channel closes.
	// f and rc are replaced only while closed is set and no Wait is in
	// flight; Wait reads them under mu.
	f  *os.File
	rc syscall.RawConn

	// closed refuses Poll, Arm and new Waits while Close runs and after it
	// succeeded; a failed destroy clears it again. Written under mu.
	closed  atomic.Bool
	waiters sync.WaitGroup // Wait calls in flight; Close waits for them
	mu      sync.Mutex     // serialises Close against the start of Wait
	life    closeState
}

func (d *device) CreateCQ(cfg driver.CQConfig) (driver.CQ, error) {
	if cfg.Entries <= 0 {
		return nil, fmt.Errorf("verbs: create CQ with %d entries: %w", cfg.Entries, driver.NewVerbsError("ibv_create_cq", syscall.EINVAL))
	}
	c, err := C.goiser_cq_create(d.ctx, C.int(cfg.Entries), C.int(cfg.Vector))
	if c == nil {
		return nil, driver.NewVerbsError("ibv_create_cq", err)
	}
	q := &compQueue{c: c, out: unsafe.Slice(c.out, cfg.Entries)}
	if err := q.openFile(); err != nil {
		var chanRC C.int
		C.goiser_cq_destroy(c, &chanRC)
		return nil, err
	}
	return q, nil
}

// openFile wraps a dup of the completion channel's (non-blocking) fd in
// q.f, so Wait parks in the netpoller.
func (q *compQueue) openFile() error {
	fd, err := syscall.Dup(int(q.c.ch.fd))
	if err != nil {
		return fmt.Errorf("verbs: dup completion channel fd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "ibv_comp_channel")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("verbs: completion channel fd: %w", err)
	}
	q.f, q.rc = f, rc
	return nil
}

// Poll moves up to len(dst) completions into dst with one cgo call. It
// allocates nothing.
func (q *compQueue) Poll(dst []driver.Completion) (int, error) {
	if q.closed.Load() {
		return 0, driver.ErrClosed
	}
	n := len(dst)
	if n > len(q.out) {
		n = len(q.out)
	}
	if n == 0 {
		return 0, nil
	}
	got := int(C.goiser_cq_poll(q.c, C.int(n)))
	if got < 0 {
		return 0, driver.NewVerbsError("ibv_poll_cq", syscall.Errno(-got))
	}
	for i := range got {
		w := &q.out[i]
		dst[i] = driver.Completion{
			ID:              uint64(w.id),
			Status:          driver.WCStatus(w.status),
			Opcode:          driver.WCOpcode(w.opcode),
			Flags:           driver.WCFlags(w.flags),
			VendorErr:       uint32(w.vendor_err),
			ByteLen:         uint32(w.byte_len),
			Imm:             uint32(w.imm),
			InvalidatedRKey: uint32(w.inv_rkey),
			QPNum:           uint32(w.qp_num),
		}
	}
	return got, nil
}

func (q *compQueue) Arm(solicitedOnly bool) error {
	if q.closed.Load() {
		return driver.ErrClosed
	}
	s := C.int(0)
	if solicitedOnly {
		s = 1
	}
	return rcErr("ibv_req_notify_cq", C.goiser_cq_arm(q.c, s), nil)
}

// Wait parks the goroutine in the netpoller until the completion channel
// is readable, then takes and acknowledges the event. It allocates (the
// context watcher); it is the idle path, not the datapath.
func (q *compQueue) Wait(ctx context.Context) error {
	q.mu.Lock()
	if q.closed.Load() {
		q.mu.Unlock()
		return driver.ErrClosed
	}
	q.waiters.Add(1)
	f, rawConn := q.f, q.rc
	q.mu.Unlock()
	defer q.waiters.Done()

	if err := ctx.Err(); err != nil {
		return err
	}
	// A done context sets a read deadline in the past, which wakes the
	// read with os.ErrDeadlineExceeded. fired tells us the watcher ran,
	// so we clear the deadline only after it set it.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		f.SetReadDeadline(time.Now())
		close(fired)
	})
	var evErr error
	err := rawConn.Read(func(uintptr) bool {
		switch rc := C.goiser_cq_get_event(q.c); rc {
		case 0:
			return true
		case C.EAGAIN:
			return false
		default:
			evErr = driver.NewVerbsError("ibv_get_cq_event", syscall.Errno(rc))
			return true
		}
	})
	if !stop() {
		<-fired
		f.SetReadDeadline(time.Time{})
	}
	switch {
	case err == nil:
		return evErr
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ctx.Err()
	case errors.Is(err, os.ErrClosed) || q.closed.Load():
		return driver.ErrClosed
	default:
		return fmt.Errorf("verbs: wait on completion channel: %w", err)
	}
}

// Close wakes every Wait with ErrClosed, waits for them to leave, and
// destroys the CQ and its channel (every event was acknowledged when it
// was taken).
//
// The CQ counts as closed only once ibv_destroy_cq succeeded. When it fails
// (a QP still uses the CQ, say) the CQ is left open and usable again, with
// a fresh dup of the channel's fd for Wait, and Close may be retried. Once
// the CQ is gone, a failure to destroy its channel is reported once and a
// retry succeeds.
func (q *compQueue) Close() error {
	return q.life.close(func() error {
		if q.c == nil {
			return nil // destroyed; only the channel failed last time
		}
		q.mu.Lock()
		q.closed.Store(true)
		q.mu.Unlock()
		q.f.Close() // wakes every Wait
		q.waiters.Wait()
		var chanRC C.int
		if rc, err := C.goiser_cq_destroy(q.c, &chanRC); rc != 0 {
			err := rcErr("ibv_destroy_cq", rc, err)
			if ferr := q.openFile(); ferr != nil {
				// Poll, Arm and Wait stay refused; a retry of Close
				// still destroys the CQ.
				return errors.Join(err, ferr)
			}
			q.mu.Lock()
			q.closed.Store(false)
			q.mu.Unlock()
			return err
		}
		q.c = nil
		q.out = nil
		return rcErr("ibv_destroy_comp_channel", chanRC, nil)
	})
}
