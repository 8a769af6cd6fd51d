package iser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
)

// Target defaults (see TargetConfig).
const (
	DefaultQueueDepth = 128
	DefaultMemory     = 256 << 20
	DefaultMaxIOSize  = 8 << 20
	DefaultPollGroups = 1
	// DefaultEstablishTimeout is TargetConfig.EstablishTimeout's default.
	DefaultEstablishTimeout = 10 * time.Second
	defaultCQEntries        = 8192
	minMemoryPerBlock       = 4096
	controlSlots            = 16 // receive and send slots beyond the command window
	smallSendData           = 512 - HeadersLen
)

// TargetConfig configures the iSER target transport. The zero value of
// each field is the documented default.
type TargetConfig struct {
	// Provider opens the RDMA devices: cgo/verbs' Provider() for real
	// devices and Soft-RoCE, rdma/soft in tests. Required.
	Provider driver.Provider
	// Logger receives connection errors; nil discards.
	Logger *slog.Logger
	// QueueDepth is the most commands a connection has in flight; it
	// sizes the receive ring and the send queue and must be at least the
	// iscsi.Server's QueueDepth (the CmdSN window). Default 128.
	QueueDepth int
	// Memory is the registered memory for task data buffers per RDMA
	// device, shared by every connection on it (bytes). When it runs
	// out, commands wait for a buffer; they do not fail. Default 256 MiB.
	Memory int64
	// MaxIOSize is the largest task buffer (bytes): a command moving
	// more fails with INVALID FIELD IN CDB. Default 8 MiB, what Linux
	// ib_iser issues at most.
	MaxIOSize int
	// RecvDataSize is the largest data segment of a PDU the initiator
	// sends in one SEND (immediate data, unsolicited Data-Out, text):
	// the TargetRecvDataSegmentLength the target declares. Default 8192,
	// as LIO.
	RecvDataSize int
	// PollGroups is the number of completion-polling goroutines per
	// device; connections are spread over them. Default 1.
	PollGroups int
	// NoSendWithInvalidate disables Send with Invalidate even when the
	// initiator allows it.
	NoSendWithInvalidate bool
	// EstablishTimeout bounds how long an accepted connect request may
	// take to become established (the initiator's RTU). Requests are
	// established concurrently, so one that never completes delays no
	// other. Default 10 s.
	EstablishTimeout time.Duration
}

func (c TargetConfig) withDefaults() TargetConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = DefaultQueueDepth
	}
	if c.Memory <= 0 {
		c.Memory = DefaultMemory
	}
	if c.MaxIOSize <= 0 {
		c.MaxIOSize = DefaultMaxIOSize
	}
	if c.RecvDataSize <= 0 {
		c.RecvDataSize = DefaultRecvDataSegmentLength
	}
	if c.PollGroups <= 0 {
		c.PollGroups = DefaultPollGroups
	}
	if c.EstablishTimeout <= 0 {
		c.EstablishTimeout = DefaultEstablishTimeout
	}
	return c
}

// Target is an iSER portal: an RDMA CM listener whose connections are
// iscsi.TransportConns. It implements iscsi.Transport; serve it with
// iscsi.Server.Serve beside TCP portals.
type Target struct {
	cfg TargetConfig // immutable
	l   *rdma.Listener
	log *slog.Logger

	// The accept loop takes connect requests, sets each up and
	// establishes it on a goroutine of its own; established connections
	// wait in ready for Accept.
	ready  chan *tconn
	stop   chan struct{}      // closed by Close
	ctx    context.Context    // cancelled by Close; bounds establishing
	cancel context.CancelFunc // cancels ctx
	wg     sync.WaitGroup     // the accept loop and establishing goroutines

	mu      sync.Mutex
	devs    map[string]*devState // by device name; guarded by mu
	closed  bool                 // guarded by mu
	conns   int                  // connections not yet drained; guarded by mu
	allDone chan struct{}        // closed when closed and conns == 0
	freeErr error                // what failed to close in freeDevices; guarded by mu
}

// TargetStats are counters for tests and metrics.
type TargetStats struct {
	// Connections not yet drained.
	Connections int
	// BlocksOut is the number of registered task buffers in use over all
	// devices; 0 when idle.
	BlocksOut int
	// MemoryInUse is the registered memory those buffers take (bytes).
	MemoryInUse int64
}

// Stats returns the target's counters.
func (t *Target) Stats() TargetStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := TargetStats{Connections: t.conns}
	for _, d := range t.devs {
		ps := d.pool.Stats()
		s.BlocksOut += ps.Outstanding
		s.MemoryInUse += int64(ps.InUse)
	}
	return s
}

// Wait blocks until the target is closed, every connection has drained
// and the devices' shared resources are freed, or ctx ends. It returns an
// error when a resource could not be freed (a leak: something was still
// in use).
func (t *Target) Wait(ctx context.Context) error {
	select {
	case <-t.allDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.freeErr
}

// devState is what the connections on one RDMA device share: the
// protection domain, the registered pool of task buffers and the poll
// groups. It lives until the Target is closed and its last connection
// drained.
type devState struct {
	name   string
	pd     *rdma.ProtectionDomain
	pool   *rdma.BufferPool
	groups []*rdma.PollGroup
	attr   rdma.DeviceAttr
	next   int // next poll group to use; guarded by Target.mu

	wmu     sync.Mutex
	waiters []*tconn // connections with tasks waiting for a buffer, FIFO; guarded by wmu
}

// Listen opens an iSER portal on addr ("ip:port"; RDMA CM, port space
// TCP). The address must belong to an RDMA device of cfg.Provider.
func Listen(addr string, cfg TargetConfig) (*Target, error) {
	cfg = cfg.withDefaults()
	if cfg.Provider == nil {
		return nil, errors.New("iser: listen: TargetConfig.Provider is required")
	}
	if cfg.MaxIOSize < minMemoryPerBlock || int64(cfg.MaxIOSize) > cfg.Memory {
		return nil, fmt.Errorf("iser: listen: MaxIOSize %d must be between %d and Memory (%d)", cfg.MaxIOSize, minMemoryPerBlock, cfg.Memory)
	}
	l, err := rdma.Listen(cfg.Provider, addr, rdma.ListenConfig{})
	if err != nil {
		return nil, fmt.Errorf("iser: listen on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Target{cfg: cfg, l: l, log: cfg.Logger.With("portal", l.Addr().String(), "transport", "iser"),
		ready: make(chan *tconn, acceptQueue), stop: make(chan struct{}), ctx: ctx, cancel: cancel,
		devs: make(map[string]*devState), allDone: make(chan struct{})}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// acceptQueue is how many established connections wait for Accept.
const acceptQueue = 16

// Addr is the listening address.
func (t *Target) Addr() net.Addr { return t.l.Addr() }

// Accept returns the next established connection: its queue pair set
// up, the login receive posted, the CM connection accepted and
// established. Connect requests are set up and established in the
// background, each on its own (an initiator that never completes the CM
// handshake delays no other); one that cannot be served is rejected and
// logged. After Close, Accept returns an error wrapping net.ErrClosed.
func (t *Target) Accept(ctx context.Context) (iscsi.TransportConn, error) {
	select {
	case c := <-t.ready:
		return c, nil
	case <-t.stop:
		return nil, fmt.Errorf("iser: accept on %s: %w", t.l.Addr(), net.ErrClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// acceptLoop takes connect requests until the listener is closed.
func (t *Target) acceptLoop() {
	defer t.wg.Done()
	for {
		req, err := t.l.Accept(t.ctx)
		if err != nil {
			if errors.Is(err, rdma.ErrClosed) || t.ctx.Err() != nil {
				return
			}
			t.log.Error("iser: accept", "err", err)
			select {
			case <-time.After(100 * time.Millisecond): // as net/http backs off
			case <-t.stop:
				return
			}
			continue
		}
		c, param, priv, err := t.setup(req)
		if err != nil {
			t.log.Warn("iser: connection refused", "peer", req.RemoteAddr().String(), "err", err)
			continue
		}
		t.wg.Add(1)
		go t.establish(c, req, param, priv)
	}
}

// establish accepts req and waits, within EstablishTimeout, for the
// connection to be established, then queues it for Accept.
func (t *Target) establish(c *tconn, req *rdma.ConnRequest, param rdma.ConnParam, priv []byte) {
	defer t.wg.Done()
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.EstablishTimeout)
	err := req.Accept(ctx, param, priv)
	cancel()
	if err != nil {
		if t.ctx.Err() == nil {
			t.log.Warn("iser: connection not established", "peer", c.remote.String(), "err", err)
		}
		_ = c.Close() // reaps the login receive; connGone balances conns
		return
	}
	c.start()
	select {
	case t.ready <- c:
	case <-t.stop:
		_ = c.Close()
	}
}

// Close stops accepting: connect requests being established are
// abandoned and established connections not yet taken by Accept are
// closed. Connections already accepted stay open; the shared device
// resources are freed once the last of them has drained.
func (t *Target) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	close(t.stop)
	t.cancel()
	err := t.l.Close()
	t.wg.Wait()
	for {
		select {
		case c := <-t.ready:
			_ = c.Close()
			continue
		default:
		}
		break
	}
	t.mu.Lock()
	done := t.conns == 0
	t.mu.Unlock()
	if done {
		t.freeDevices()
	}
	return err
}

// connGone is called when a connection has drained.
func (t *Target) connGone() {
	t.mu.Lock()
	t.conns--
	done := t.closed && t.conns == 0
	t.mu.Unlock()
	if done {
		t.freeDevices()
	}
}

// freeDevices closes the poll groups, pools and protection domains.
func (t *Target) freeDevices() {
	t.mu.Lock()
	devs := t.devs
	t.devs = map[string]*devState{}
	t.mu.Unlock()
	var errs []error
	for _, d := range devs {
		for _, g := range d.groups {
			if err := g.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close poll group on %s: %w", d.name, err))
			}
		}
		if err := d.pool.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close buffer pool on %s: %w", d.name, err))
		}
		if err := d.pd.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close protection domain on %s: %w", d.name, err))
		}
	}
	for _, err := range errs {
		t.log.Error("iser: " + err.Error())
	}
	t.mu.Lock()
	t.freeErr = errors.Join(t.freeErr, errors.Join(errs...))
	t.mu.Unlock()
	select {
	case <-t.allDone:
	default:
		close(t.allDone)
	}
}

// device returns the shared state of the request's device, creating it.
func (t *Target) device(dev *rdma.Device) (*devState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.devs[dev.Name()]; d != nil {
		return d, nil
	}
	desc, err := dev.Query()
	if err != nil {
		return nil, err
	}
	pd, err := dev.AllocPD()
	if err != nil {
		return nil, err
	}
	d := &devState{name: dev.Name(), pd: pd, attr: desc.Attr}
	d.pool, err = rdma.NewBufferPool(pd, rdma.BufferPoolConfig{
		Size:     int(t.cfg.Memory),
		MinBlock: minMemoryPerBlock,
		MaxBlock: maxBlockFor(t.cfg.MaxIOSize),
		Access:   rdma.AccessLocalWrite | rdma.AccessRemoteRead | rdma.AccessRemoteWrite,
	})
	if err != nil {
		_ = pd.Close()
		return nil, fmt.Errorf("registered pool of %d bytes: %w", t.cfg.Memory, err)
	}
	entries := defaultCQEntries
	if desc.Attr.MaxCQE > 0 {
		entries = min(entries, desc.Attr.MaxCQE)
	}
	for range t.cfg.PollGroups {
		g, err := rdma.NewPollGroup(dev, rdma.PollGroupConfig{CQEntries: entries, Logger: t.log})
		if err != nil {
			for _, g := range d.groups {
				_ = g.Close()
			}
			_ = d.pool.Close()
			_ = pd.Close()
			return nil, fmt.Errorf("poll group: %w", err)
		}
		d.groups = append(d.groups, g)
	}
	t.devs[dev.Name()] = d
	return d, nil
}

// setup builds a connection for req: queue pair on a poll group's CQ,
// registered receive and send slots and the login receive posted; it
// returns the CM parameters and private data to accept it with.
func (t *Target) setup(req *rdma.ConnRequest) (*tconn, rdma.ConnParam, []byte, error) {
	reject := func(err error) (*tconn, rdma.ConnParam, []byte, error) {
		_ = req.Reject(nil)
		return nil, rdma.ConnParam{}, nil, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return reject(net.ErrClosed)
	}
	t.mu.Unlock()
	hdr, err := ParseCMPrivateData(req.PrivateData())
	if err != nil {
		return reject(err)
	}
	d, err := t.device(req.Device())
	if err != nil {
		return reject(fmt.Errorf("device %s: %w", req.Device().Name(), err))
	}
	reply, sendInv := AcceptPrivateData(hdr, !t.cfg.NoSendWithInvalidate)
	// The most RDMA READs we issue at once: what the initiator answers
	// (its responder resources, seen from our side as our initiator
	// depth), within what our device can issue (isert does the same).
	ird := int(req.Param().InitiatorDepth)
	if m := d.attr.MaxQPInitRdAtom; m > 0 {
		ird = min(ird, m)
	}
	ird = max(ird, 1)
	c, err := newTConn(t, d, req, sendInv, ird)
	if err != nil {
		return reject(err)
	}
	t.mu.Lock()
	t.conns++
	t.mu.Unlock()
	b, _ := reply.AppendBinary(make([]byte, 0, CMHeaderLen))
	param := rdma.ConnParam{ResponderResources: 0, InitiatorDepth: uint8(ird), RetryCount: 7, RNRRetryCount: 7}
	return c, param, b, nil
}
