package rdma

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrCQFull: a PollGroup has no room left in its completion queue for
// the queue depths an Attach asked for. Attach the queue pair to another
// group (or make one).
var ErrCQFull = errors.New("rdma: poll group completion queue has no room")

// Defaults of PollGroupConfig.
const (
	// DefaultPollGroupCQEntries is the completion-queue size of a poll
	// group whose config leaves CQEntries at 0.
	DefaultPollGroupCQEntries = 4096
	// DefaultPollBatch is the completions taken per poll.
	DefaultPollBatch = 32
	// DefaultPostQueue is the capacity of a poll group's Post queue.
	DefaultPostQueue = 256
)

// PollGroupConfig specifies a PollGroup. Zero values are defaults.
type PollGroupConfig struct {
	// CQEntries is the size of the group's completion queue, the total
	// of the queue depths its attachments may reserve. 0 means
	// DefaultPollGroupCQEntries; it is clamped to the device's max_cqe.
	CQEntries int
	// Vector is the completion vector hint of the queue; 0 is fine.
	Vector int
	// Poller tunes the busy-poll/arm/wait policy.
	Poller PollerConfig
	// Batch is the completions taken per poll; 0 means DefaultPollBatch.
	Batch int
	// PostQueue is the capacity of the Post queue; 0 means
	// DefaultPostQueue.
	PostQueue int
	// Logger receives CQ errors and completions of unknown queue pairs;
	// nil discards them.
	Logger *slog.Logger
}

// CompletionHandler receives the completions of one attached queue pair.
//
// Both methods run on the poll group's goroutine, which serves every
// queue pair of the group: they must not block (no waiting on a channel
// that another goroutine drains, no blocking I/O, no SCSI execution).
// Posting work requests, non-blocking channel sends, Pool Get/Put and
// PollGroup.Post are fine.
type CompletionHandler interface {
	// HandleCompletions takes a batch of completions of the handler's
	// queue pair, in the order the queue pair produced them. wcs is only
	// valid during the call.
	HandleCompletions(wcs []Completion)
	// HandleError reports that the group's completion queue failed
	// (overrun, device error): no further completion will be delivered,
	// so the connection must end. The handler's queue pair's outstanding
	// work requests cannot be reaped through this group any more. Called
	// at most once per attachment.
	HandleError(err error)
}

// Attachment is a queue pair attached to a PollGroup; Detach ends it.
type Attachment struct {
	g       *PollGroup        // immutable
	qp      *QueuePair        // immutable
	h       CompletionHandler // immutable
	entries int               // CQ entries reserved; immutable
	// detached is set by Detach; guarded by g.mu.
	detached bool
}

// PollGroupStats is a snapshot of a poll group's counters.
type PollGroupStats struct {
	Polls       uint64 // CQ polls (busy and after arm or wake-up)
	EmptyPolls  uint64 // polls that found nothing
	Arms        uint64 // times the CQ was armed
	Waits       uint64 // times the goroutine slept on the completion channel
	Completions uint64 // completions dispatched to handlers
	Unknown     uint64 // completions of queue pairs not attached (dropped)
	Posts       uint64 // Post functions run
	Errors      uint64 // CQ errors reported to handlers
	Attached    int    // attachments now
	Reserved    int    // CQ entries reserved by them
	Entries     int    // CQ entries in all
}

// PollGroup is one goroutine that owns one completion queue shared by
// many queue pairs, and dispatches each completion to the handler of its
// queue pair. A device has a few groups (say one per CPU), not one
// goroutine per connection.
//
// The goroutine starts with NewPollGroup and ends with Close. It follows
// a Poller: busy-polls (runtime.Gosched between empty polls) while
// completions flow, and once idle arms the queue, polls once more and
// sleeps on the completion channel through the Go netpoller, so an idle
// group uses no CPU.
//
// Attach reserves room in the queue for the queue pair's work requests
// (admission control), so the shared queue cannot overflow: a completion
// queue overrun is fatal on a device. Should the queue fail anyway, every
// handler's HandleError is called and the group stops polling.
//
// Teardown of one connection, with its queue pair attached: Disconnect
// (or Modify to Error); the handler sees every outstanding work request
// come back (success or WCWRFlushErr); then Detach, close the queue pair
// and release its buffers. Detach before the last completion drops the
// rest (counted as Unknown).
//
// A PollGroup is safe for concurrent use.
type PollGroup struct {
	dev     *Device          // immutable
	cq      *CompletionQueue // immutable
	log     *slog.Logger     // immutable; never nil
	poller  *Poller          // the goroutine's
	wcs     []Completion     // poll batch; the goroutine's
	sorted  []Completion     // wcs grouped by queue pair; the goroutine's
	taken   []bool           // per wcs entry: already grouped; the goroutine's
	posts   chan func()      // immutable
	ctx     context.Context  // cancelled by Close; immutable
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine ends; immutable
	entries int           // immutable

	mu       sync.Mutex
	handlers map[uint32]*Attachment // by QP number; guarded by mu
	reserved int                    // guarded by mu
	wake     context.CancelFunc     // set while the goroutine sleeps; guarded by mu
	err      error                  // the CQ's failure; guarded by mu
	closed   bool                   // guarded by mu
	stopping atomic.Bool            // set by Close before it cancels ctx

	polls, empty, arms, waits, completions, unknown, posted, errs atomic.Uint64
}

// NewPollGroup creates the group's completion queue on dev and starts its
// goroutine.
func NewPollGroup(dev *Device, cfg PollGroupConfig) (*PollGroup, error) {
	if dev == nil {
		return nil, fmt.Errorf("rdma: new poll group: nil device")
	}
	if cfg.CQEntries < 0 || cfg.Batch < 0 || cfg.PostQueue < 0 {
		return nil, fmt.Errorf("rdma: new poll group on %s: negative CQ entries %d, batch %d or post queue %d",
			dev.Name(), cfg.CQEntries, cfg.Batch, cfg.PostQueue)
	}
	if cfg.CQEntries == 0 {
		cfg.CQEntries = DefaultPollGroupCQEntries
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultPollBatch
	}
	if cfg.PostQueue == 0 {
		cfg.PostQueue = DefaultPostQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	desc, err := dev.Query()
	if err != nil {
		return nil, fmt.Errorf("rdma: new poll group: %w", err)
	}
	if m := desc.Attr.MaxCQE; m > 0 && cfg.CQEntries > m {
		cfg.CQEntries = m
	}
	cq, err := dev.NewCompletionQueue(CompletionQueueConfig{Entries: cfg.CQEntries, Vector: cfg.Vector})
	if err != nil {
		return nil, fmt.Errorf("rdma: new poll group: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &PollGroup{
		dev: dev, cq: cq, log: cfg.Logger.With("device", dev.Name()),
		poller: NewPoller(cfg.Poller),
		wcs:    make([]Completion, cfg.Batch), sorted: make([]Completion, 0, cfg.Batch),
		taken: make([]bool, cfg.Batch),
		posts: make(chan func(), cfg.PostQueue), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), entries: cfg.CQEntries,
		handlers: map[uint32]*Attachment{},
	}
	go g.run()
	return g, nil
}

// CQ is the group's completion queue: create the queue pairs to attach
// with it as both SendCQ and RecvCQ. Do not Poll, Arm or Wait it: the
// group's goroutine owns it.
func (g *PollGroup) CQ() *CompletionQueue { return g.cq }

// Device is the device of the group's completion queue.
func (g *PollGroup) Device() *Device { return g.dev }

// Room is how many CQ entries are not reserved: the most sendDepth +
// recvDepth an Attach can still be granted.
func (g *PollGroup) Room() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entries - g.reserved
}

// Err is the completion queue's failure, nil while it works.
func (g *PollGroup) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Attach routes the completions of qp, whose SendCQ and RecvCQ must both
// be CQ(), to h. It reserves sendDepth + recvDepth CQ entries: the most
// work requests the caller keeps outstanding on the send and receive
// queues, counting unsignaled sends (they complete when flushed). A depth
// of 0 means the queue pair's capacity (Config().MaxSendWR or MaxRecvWR);
// larger values are cut to it. When the group has no room left, Attach
// fails with an error wrapping ErrCQFull. Attach the queue pair before
// posting to it (or before connecting it).
func (g *PollGroup) Attach(qp *QueuePair, sendDepth, recvDepth int, h CompletionHandler) (*Attachment, error) {
	if qp == nil || h == nil {
		return nil, fmt.Errorf("rdma: attach to poll group: nil queue pair or handler")
	}
	if len(qp.cqs) != 1 || qp.cqs[0] != g.cq {
		return nil, fmt.Errorf("rdma: attach QP %d to poll group on %s: its SendCQ and RecvCQ must both be the group's CQ", qp.num, g.dev.Name())
	}
	if sendDepth < 0 || recvDepth < 0 {
		return nil, fmt.Errorf("rdma: attach QP %d to poll group: negative depth %d/%d", qp.num, sendDepth, recvDepth)
	}
	if sendDepth == 0 || sendDepth > qp.cfg.MaxSendWR {
		sendDepth = qp.cfg.MaxSendWR
	}
	if recvDepth == 0 || recvDepth > qp.cfg.MaxRecvWR {
		recvDepth = qp.cfg.MaxRecvWR
	}
	need := sendDepth + recvDepth
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return nil, fmt.Errorf("rdma: attach QP %d to poll group: %w", qp.num, ErrClosed)
	case g.err != nil:
		return nil, fmt.Errorf("rdma: attach QP %d to poll group: %w", qp.num, g.err)
	case g.handlers[qp.num] != nil:
		return nil, fmt.Errorf("rdma: attach QP %d to poll group: already attached", qp.num)
	case g.reserved+need > g.entries:
		return nil, fmt.Errorf("rdma: attach QP %d to poll group on %s: %d CQ entries wanted, %d of %d free: %w",
			qp.num, g.dev.Name(), need, g.entries-g.reserved, g.entries, ErrCQFull)
	}
	a := &Attachment{g: g, qp: qp, h: h, entries: need}
	g.handlers[qp.num] = a
	g.reserved += need
	return a, nil
}

// QueuePair is the attached queue pair.
func (a *Attachment) QueuePair() *QueuePair { return a.qp }

// Entries is how many CQ entries the attachment reserved.
func (a *Attachment) Entries() int { return a.entries }

// Detach stops dispatching the queue pair's completions and frees its
// reservation. Call it once every work request of the queue pair was
// reaped (after Disconnect and the last flush), typically from the
// handler itself; completions that still arrive are dropped and counted
// as Unknown. After Detach returns no new call of the handler starts; one
// already running on the group's goroutine (when Detach is called from
// elsewhere) may still finish. Detach is idempotent.
func (a *Attachment) Detach() {
	g := a.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if a.detached {
		return
	}
	a.detached = true
	delete(g.handlers, a.qp.num)
	g.reserved -= a.entries
}

// Post queues fn to run on the group's goroutine (before its next poll)
// and wakes the goroutine if it sleeps. Use it to act in the goroutine
// that owns the handlers' state, e.g. "the peer closed the connection:
// disconnect and start reaping". fn must not block. Post never blocks: a
// full queue fails with an error wrapping ErrQueueFull; a closed group
// with ErrClosed.
func (g *PollGroup) Post(fn func()) error {
	if fn == nil {
		return fmt.Errorf("rdma: poll group post: nil function")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("rdma: poll group post: %w", ErrClosed)
	}
	select {
	case g.posts <- fn:
	default:
		return fmt.Errorf("rdma: poll group post: %d functions queued: %w", cap(g.posts), ErrQueueFull)
	}
	if g.wake != nil {
		g.wake()
		g.wake = nil
	}
	return nil
}

// Stats returns the group's counters.
func (g *PollGroup) Stats() PollGroupStats {
	g.mu.Lock()
	attached, reserved := len(g.handlers), g.reserved
	g.mu.Unlock()
	return PollGroupStats{
		Polls: g.polls.Load(), EmptyPolls: g.empty.Load(), Arms: g.arms.Load(), Waits: g.waits.Load(),
		Completions: g.completions.Load(), Unknown: g.unknown.Load(), Posts: g.posted.Load(),
		Errors: g.errs.Load(), Attached: attached, Reserved: reserved, Entries: g.entries,
	}
}

// Close stops the goroutine and destroys the completion queue. It refuses
// with an error wrapping ErrBusy while queue pairs are attached or queue
// pairs bound to CQ() are open (detach and close them first). Functions
// still queued by Post are dropped. Close waits for the goroutine to end,
// so it must not be called from a handler or a Post function. Close is
// idempotent; when destroying the queue fails, Close returns the error
// and may be called again.
func (g *PollGroup) Close() error {
	g.mu.Lock()
	if !g.closed {
		if n := len(g.handlers); n > 0 {
			g.mu.Unlock()
			return fmt.Errorf("rdma: close poll group on %s: %d queue pairs still attached: %w", g.dev.Name(), n, ErrBusy)
		}
		if n := g.cq.life.children.Load(); n > 0 {
			g.mu.Unlock()
			return fmt.Errorf("rdma: close poll group on %s: %d queue pairs still bound to its CQ: %w", g.dev.Name(), n, ErrBusy)
		}
		g.closed = true
	}
	g.mu.Unlock()
	g.stopping.Store(true)
	g.cancel()
	<-g.done
	if err := g.cq.Close(); err != nil {
		return fmt.Errorf("rdma: close poll group: %w", err)
	}
	return nil
}

// run is the group's goroutine.
func (g *PollGroup) run() {
	defer close(g.done)
	act := PollAgain
	for !g.stopping.Load() {
		g.runPosts()
		switch act {
		case PollArm:
			g.arms.Add(1)
			if err := g.cq.Arm(false); err != nil {
				g.fail(err)
				g.idle()
				return
			}
		case PollWait:
			if !g.sleep() {
				return
			}
			// The poller is in its woken state: an empty poll now re-arms
			// rather than busy-polling after a spurious wake-up.
			act = PollAgain
			continue
		}
		n, err := g.pollOnce()
		if err != nil {
			g.fail(err)
			g.idle()
			return
		}
		act = g.poller.Next(n)
		if act == PollAgain && n == 0 {
			runtime.Gosched()
		}
	}
}

// sleep waits on the armed queue until a completion, a Post or Close.
// It reports false when the group is closing.
func (g *PollGroup) sleep() bool {
	g.mu.Lock()
	if len(g.posts) > 0 {
		g.mu.Unlock()
		return true
	}
	ctx, cancel := context.WithCancel(g.ctx)
	g.wake = cancel
	g.mu.Unlock()
	g.waits.Add(1)
	err := g.cq.Wait(ctx)
	g.mu.Lock()
	g.wake = nil
	g.mu.Unlock()
	cancel()
	switch {
	case g.ctx.Err() != nil:
		return false
	case err == nil || ctx.Err() != nil: // an event, or woken by Post
		return true
	default:
		g.fail(err)
		g.idle()
		return false
	}
}

// pollOnce polls one batch and dispatches it. It allocates nothing.
func (g *PollGroup) pollOnce() (int, error) {
	n, err := g.cq.Poll(g.wcs)
	g.polls.Add(1)
	if n == 0 {
		g.empty.Add(1)
	}
	if n > 0 {
		g.dispatch(g.wcs[:n])
	}
	return n, err
}

// dispatch hands each queue pair its completions of the batch, in order,
// in one call per queue pair.
func (g *PollGroup) dispatch(wcs []Completion) {
	taken := g.taken[:len(wcs)]
	clear(taken)
	for i := range wcs {
		if taken[i] {
			continue
		}
		qpn := wcs[i].QPNum
		batch := g.sorted[:0]
		for j := i; j < len(wcs); j++ {
			if !taken[j] && wcs[j].QPNum == qpn {
				batch = append(batch, wcs[j])
				taken[j] = true
			}
		}
		g.mu.Lock()
		a := g.handlers[qpn]
		g.mu.Unlock()
		if a == nil {
			g.unknown.Add(uint64(len(batch)))
			g.log.Warn("rdma: poll group: completions of a queue pair not attached dropped",
				"qp", qpn, "count", len(batch), "status", batch[0].Status.String(), "wr_id", batch[0].ID)
			continue
		}
		g.completions.Add(uint64(len(batch)))
		a.h.HandleCompletions(batch)
	}
}

// runPosts runs the functions queued by Post.
func (g *PollGroup) runPosts() {
	for {
		select {
		case fn := <-g.posts:
			g.posted.Add(1)
			fn()
		default:
			return
		}
	}
}

// fail records the queue's failure and reports it to every handler.
func (g *PollGroup) fail(err error) {
	err = fmt.Errorf("rdma: poll group on %s: completion queue failed: %w", g.dev.Name(), err)
	g.mu.Lock()
	if g.err != nil || g.ctx.Err() != nil {
		g.mu.Unlock()
		return
	}
	g.err = err
	hs := make([]CompletionHandler, 0, len(g.handlers))
	for _, a := range g.handlers {
		hs = append(hs, a.h)
	}
	g.mu.Unlock()
	g.errs.Add(1)
	g.log.Error("rdma: poll group: completion queue failed; ending its connections", "err", err, "queue_pairs", len(hs))
	for _, h := range hs {
		h.HandleError(err)
	}
}

// idle serves Post until Close, once the queue failed: the handlers'
// owners may still need the goroutine to tear their connections down.
func (g *PollGroup) idle() {
	for {
		select {
		case fn := <-g.posts:
			g.posted.Add(1)
			fn()
		case <-g.ctx.Done():
			return
		}
	}
}
