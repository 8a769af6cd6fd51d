package soft

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/goiser/goiser/rdma/driver"
)

// cq is a completion queue: a ring of completions, an optional FIFO of
// delayed ones (fault injection), and a channel that plays the completion
// channel.
type cq struct {
	dev *device // immutable
	// mu guards every field below. A leaf lock: the engine mutex may be
	// held when taking it, never the other way round.
	mu       sync.Mutex
	ring     []driver.Completion
	head, n  int
	delayed  []delayedWC
	armed    bool
	solOnly  bool
	overflow bool
	closed   bool
	notify   chan struct{} // one pending event; immutable
	done     chan struct{} // closed by Close; immutable
}

type delayedWC struct {
	wc        driver.Completion
	solicited bool
	due       time.Time
}

func newCQ(d *device, entries int) *cq {
	return &cq{dev: d, ring: make([]driver.Completion, entries),
		notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// push adds a completion (the engine mutex is held). solicited marks a
// receive completion of a solicited SEND, for Arm(true).
func (c *cq) push(wc driver.Completion, solicited bool, delay time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if delay > 0 || len(c.delayed) > 0 {
		// Behind any delayed completion, to keep the order.
		due := time.Now().Add(delay)
		c.delayed = append(c.delayed, delayedWC{wc: wc, solicited: solicited, due: due})
		if delay > 0 {
			time.AfterFunc(delay, c.releaseDue)
		}
		return
	}
	c.addLocked(wc, solicited)
}

func (c *cq) addLocked(wc driver.Completion, solicited bool) {
	if c.n == len(c.ring) {
		c.overflow = true // the completion is lost, as on a device
		c.signalLocked()
		return
	}
	c.ring[(c.head+c.n)%len(c.ring)] = wc
	c.n++
	if c.armed && (!c.solOnly || solicited || wc.Status != driver.WCSuccess) {
		c.signalLocked()
	}
}

func (c *cq) signalLocked() {
	c.armed = false
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// releaseDue moves due delayed completions into the ring.
func (c *cq) releaseDue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseDueLocked()
}

func (c *cq) releaseDueLocked() {
	if len(c.delayed) == 0 {
		return
	}
	now := time.Now()
	i := 0
	for ; i < len(c.delayed) && !c.delayed[i].due.After(now); i++ {
		c.addLocked(c.delayed[i].wc, c.delayed[i].solicited)
	}
	if i > 0 {
		c.delayed = append(c.delayed[:0], c.delayed[i:]...)
		if len(c.delayed) > 0 && c.delayed[0].due.After(now) {
			time.AfterFunc(c.delayed[0].due.Sub(now), c.releaseDue)
		}
	}
}

// purge removes every completion of queue pair qpn, ready or delayed, as
// mlx5 does when a queue pair is destroyed (the engine mutex is held).
func (c *cq) purge(qpn uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for i := range c.n {
		wc := c.ring[(c.head+i)%len(c.ring)]
		if wc.QPNum != qpn {
			c.ring[(c.head+k)%len(c.ring)] = wc
			k++
		}
	}
	c.n = k
	kept := c.delayed[:0]
	for _, d := range c.delayed {
		if d.wc.QPNum != qpn {
			kept = append(kept, d)
		}
	}
	clear(c.delayed[len(kept):])
	c.delayed = kept
}

// Poll moves ready completions (and due delayed ones) into dst; an overrun
// queue fails with EOVERFLOW from then on.
func (c *cq) Poll(dst []driver.Completion) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, driver.ErrClosed
	}
	if c.overflow {
		return 0, &driver.VerbsError{Op: "soft_poll_cq (completion queue overrun)", Errno: syscall.EOVERFLOW}
	}
	c.releaseDueLocked()
	k := 0
	for k < len(dst) && c.n > 0 {
		dst[k] = c.ring[c.head]
		c.head = (c.head + 1) % len(c.ring)
		c.n--
		k++
	}
	return k, nil
}

// Arm makes the next completion added (or the next solicited or failed
// one) signal the notify channel.
func (c *cq) Arm(solicitedOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return driver.ErrClosed
	}
	c.armed, c.solOnly = true, solicitedOnly
	return nil
}

// Wait sleeps on the notify channel, the close channel and ctx.
func (c *cq) Wait(ctx context.Context) error {
	select {
	case <-c.notify:
		return nil
	case <-c.done:
		return driver.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close drops the ring and wakes Wait with ErrClosed.
func (c *cq) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("soft: close CQ: %w", driver.ErrClosed)
	}
	c.closed = true
	close(c.done)
	return nil
}
