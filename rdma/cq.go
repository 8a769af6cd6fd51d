package rdma

import (
	"context"
	"fmt"

	"github.com/goiser/goiser/rdma/driver"
)

// CompletionQueue receives the completions of the queue pairs bound to it,
// with a completion channel to sleep on when it is empty.
//
// Poll, Arm and Wait are meant for one goroutine, the queue's owner (a
// poll group); Close may be called from another goroutine and wakes Wait.
type CompletionQueue struct {
	dev     *Device   // immutable; never nil
	cq      driver.CQ // immutable; never nil
	entries int       // immutable
	life    lifecycle
}

// Device is the device the queue belongs to.
func (cq *CompletionQueue) Device() *Device { return cq.dev }

// Entries is the capacity the queue was created with.
func (cq *CompletionQueue) Entries() int { return cq.entries }

// Poll moves up to len(dst) completions into dst and returns how many. It
// never blocks and allocates nothing. A failed completion (Status !=
// WCSuccess, see Completion.Err) defines only ID, Status, VendorErr and
// QPNum; it means its queue pair went to the error state, and the
// remaining work requests of that queue pair complete with WCWRFlushErr.
func (cq *CompletionQueue) Poll(dst []Completion) (int, error) {
	cq.life.mu.RLock()
	if cq.life.closed {
		cq.life.mu.RUnlock()
		return 0, ErrClosed
	}
	n, err := cq.cq.Poll(dst)
	cq.life.mu.RUnlock()
	if err != nil {
		return n, fmt.Errorf("rdma: poll CQ: %w", err)
	}
	return n, nil
}

// Arm requests a completion-channel event for the next completion (or the
// next solicited one when solicitedOnly). Equivalent to ibv_req_notify_cq.
// After arming, poll once more before Wait: a completion that arrived
// between the last Poll and Arm raises no event.
func (cq *CompletionQueue) Arm(solicitedOnly bool) error {
	cq.life.mu.RLock()
	defer cq.life.mu.RUnlock()
	if cq.life.closed {
		return ErrClosed
	}
	if err := cq.cq.Arm(solicitedOnly); err != nil {
		return fmt.Errorf("rdma: arm CQ: %w", err)
	}
	return nil
}

// Wait blocks until the armed queue signals an event, ctx is done (the
// context's error is returned), or the queue is closed (ErrClosed). Waiting
// does not pin an OS thread. After Wait, Poll until empty, then Arm and
// Poll once more before waiting again; WaitPoll does all of that.
func (cq *CompletionQueue) Wait(ctx context.Context) error {
	cq.life.mu.RLock()
	closed := cq.life.closed
	cq.life.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	// Not holding mu: Close must be able to run (and wake us) meanwhile.
	if err := cq.cq.Wait(ctx); err != nil {
		if ctx.Err() != nil && err == ctx.Err() {
			return err
		}
		return fmt.Errorf("rdma: wait CQ: %w", err)
	}
	return nil
}

// WaitPoll returns at least one completion, sleeping on the completion
// channel while the queue is empty: it polls, arms, polls again (closing
// the race between the last poll and the arm) and only then waits, and
// repeats after a wake-up that found nothing. It returns 0 and an error
// when ctx is done or the queue is closed or failed.
func (cq *CompletionQueue) WaitPoll(ctx context.Context, dst []Completion) (int, error) {
	if len(dst) == 0 {
		return 0, fmt.Errorf("rdma: wait-poll CQ: empty destination")
	}
	for {
		if n, err := cq.Poll(dst); n > 0 || err != nil {
			return n, err
		}
		if err := cq.Arm(false); err != nil {
			return 0, err
		}
		if n, err := cq.Poll(dst); n > 0 || err != nil {
			return n, err
		}
		if err := cq.Wait(ctx); err != nil {
			return 0, err
		}
	}
}

// Close destroys the queue and wakes a pending Wait with ErrClosed. It
// refuses with an error wrapping ErrBusy while queue pairs bound to it are
// open. Close is idempotent.
func (cq *CompletionQueue) Close() error {
	cq.life.mu.Lock()
	defer cq.life.mu.Unlock()
	if cq.life.closed {
		return nil
	}
	if n := cq.life.children.Load(); n > 0 {
		return fmt.Errorf("rdma: close CQ on %s: %d queue pairs still bound: %w", cq.dev.info.Name, n, ErrBusy)
	}
	if err := cq.cq.Close(); err != nil {
		return fmt.Errorf("rdma: close CQ on %s: %w", cq.dev.info.Name, err)
	}
	cq.life.closed = true
	cq.dev.life.release()
	return nil
}
