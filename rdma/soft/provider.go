package soft

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/goiser/goiser/rdma/driver"
)

// Config specifies a soft fabric. The zero value is one device, "soft0",
// reached by the CM at host "127.0.0.1".
type Config struct {
	// Devices are the devices of the fabric; empty means one device
	// {Name: "soft0", Host: "127.0.0.1"}.
	Devices []DeviceConfig
	// RNRDelay is the real delay between two receiver-not-ready retries
	// of a queue pair whose RNRRetry is below 7; 0 means 1 ms. (With 7
	// the sender simply waits until the peer posts a receive.)
	RNRDelay time.Duration
	// CompletionDelay delays every completion by this long before Poll
	// sees it (fault injection; see also Provider.SetCompletionDelay).
	CompletionDelay time.Duration
	// Logger receives fault-injection and connection events; nil
	// discards them.
	Logger *slog.Logger
}

// DeviceConfig names one device of the fabric.
type DeviceConfig struct {
	// Name is the device name given to Open, e.g. "soft1".
	Name string
	// Host is the CM address host part this device owns ("10.0.0.1"):
	// Listen on Host:port puts requests on this device, and Dial to it
	// arrives here. Empty means none (the device is then reached only by
	// listeners on an unspecified host).
	Host string
}

// Device limits the soft provider reports and enforces.
const (
	MaxQPWR  = 16384
	MaxSGE   = 32
	MaxCQE   = 1 << 20
	MaxRdAtm = 16
	// MaxPrivateData is the CM private data limit (RDMA_PS_TCP).
	MaxPrivateData = 56
	// RejectNoListener is the RejectError status for a connect to an
	// address nobody listens on (IB CM "invalid service ID").
	RejectNoListener = 8
	// RejectConsumer is the RejectError status of ConnRequest.Reject and
	// of requests left pending when their listener closes (IB CM
	// "consumer reject").
	RejectConsumer = 28
)

// Provider is an in-process RDMA fabric. Two endpoints talk when they use
// the same Provider value. It implements driver.Provider.
//
// Concurrency model: one engine mutex (mu) guards every device, protection
// domain, memory region, queue pair and CM object of the fabric; work
// requests execute synchronously inside PostSend and PostRecv (or in a
// timer goroutine for receiver-not-ready retries) with mu held. Each
// completion queue has its own mutex (a leaf: acquire mu before a CQ's
// mu), so Poll never contends with the engine for long.
type Provider struct {
	cfg Config       // immutable
	log *slog.Logger // immutable; never nil

	mu        sync.Mutex
	devs      []*device            // immutable after New
	qps       map[uint32]*qp       // by QPN; guarded by mu
	mrs       map[uint32]*mr       // by key (lkey == rkey); guarded by mu
	listeners map[string]*listener // by "host:port"; guarded by mu
	nextQPN   uint32               // guarded by mu
	nextKey   uint32               // guarded by mu
	nextPort  int                  // ephemeral CM ports; guarded by mu
	faults    []*fault             // guarded by mu
	delay     time.Duration        // completion delay; guarded by mu
	// scratch segment lists for copies, reused under mu.
	srcSegs, dstSegs [][]byte
}

// New returns a fresh fabric.
func New(cfg Config) *Provider {
	if len(cfg.Devices) == 0 {
		cfg.Devices = []DeviceConfig{{Name: "soft0", Host: "127.0.0.1"}}
	}
	if cfg.RNRDelay <= 0 {
		cfg.RNRDelay = time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Provider{cfg: cfg, log: log, qps: map[uint32]*qp{}, mrs: map[uint32]*mr{},
		listeners: map[string]*listener{}, nextQPN: 0x11, nextKey: 0x1000, nextPort: 40000,
		delay: cfg.CompletionDelay}
	for i, dc := range cfg.Devices {
		d := &device{p: p, name: dc.Name, host: dc.Host, lid: uint16(i + 1),
			guid: 0x0200_5e00_0000_0000 | uint64(i+1)}
		d.gid[0], d.gid[1] = 0xfe, 0x80
		for b := 0; b < 8; b++ {
			d.gid[8+b] = byte(d.guid >> (56 - 8*b))
		}
		d.cm = &devContext{dev: d, owned: true}
		p.devs = append(p.devs, d)
	}
	return p
}

// Name is "soft".
func (p *Provider) Name() string { return "soft" }

// Devices lists the fabric's devices.
func (p *Provider) Devices() ([]driver.DeviceInfo, error) {
	out := make([]driver.DeviceInfo, 0, len(p.devs))
	for _, d := range p.devs {
		out = append(out, d.info())
	}
	return out, nil
}

// Open opens the named device. Every Context of a device shares it.
func (p *Provider) Open(name string) (driver.Context, error) {
	for _, d := range p.devs {
		if d.name == name {
			return &devContext{dev: d}, nil
		}
	}
	return nil, fmt.Errorf("soft: open %q: %w", name, driver.ErrNoDevice)
}

// SetCompletionDelay delays every completion generated from now on by d
// before Poll sees it (0 turns the delay off). Completions stay in order.
func (p *Provider) SetCompletionDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
	p.log.Info("soft: completion delay", "delay", d)
}

// Fault makes one send-queue work request fail.
type Fault struct {
	// QPNum selects the queue pair; 0 means any.
	QPNum uint32
	// Nth counts send-queue work requests executed on matching queue
	// pairs from the injection on; the Nth (1-based; 0 means 1) fails.
	Nth int
	// Status is the completion status it fails with; the zero value
	// (success) means WCGeneralErr. The queue pair moves to Error and its
	// other work requests flush.
	Status driver.WCStatus
}

type fault struct {
	Fault
	seen int
}

// InjectFault arms f. Each fault fires once.
func (p *Provider) InjectFault(f Fault) {
	if f.Nth <= 0 {
		f.Nth = 1
	}
	if f.Status == driver.WCSuccess {
		f.Status = driver.WCGeneralErr
	}
	p.mu.Lock()
	p.faults = append(p.faults, &fault{Fault: f})
	p.mu.Unlock()
	p.log.Info("soft: fault armed", "qp", f.QPNum, "nth", f.Nth, "status", f.Status.String())
}

// DropConnection breaks the connection of queue pair qpn as a failed link
// would: both queue pairs move to Error (flushing their work requests) and,
// for CM connections, both Disconnected channels close.
func (p *Provider) DropConnection(qpn uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.qps[qpn]
	if q == nil {
		return fmt.Errorf("soft: drop connection of QP %d: %w", qpn, driver.NewVerbsError("soft_drop", syscall.ENOENT))
	}
	p.log.Info("soft: dropping connection", "qp", qpn, "peer", q.destQPN)
	peer := q.peerLocked()
	q.toErrorLocked()
	q.disconnectedLocked()
	if peer != nil {
		peer.toErrorLocked()
		peer.disconnectedLocked()
	}
	return nil
}

// takeFaultLocked reports whether the next send WR of q must fail, and
// with which status.
func (p *Provider) takeFaultLocked(q *qp) (driver.WCStatus, bool) {
	for i, f := range p.faults {
		if f.QPNum != 0 && f.QPNum != q.num {
			continue
		}
		f.seen++
		if f.seen >= f.Nth {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
			p.log.Info("soft: fault fired", "qp", q.num, "status", f.Status.String())
			return f.Status, true
		}
	}
	return 0, false
}

// device is one device of the fabric.
type device struct {
	p    *Provider   // immutable
	name string      // immutable
	host string      // immutable
	lid  uint16      // immutable
	guid uint64      // immutable
	gid  driver.GID  // immutable
	cm   *devContext // the CM's own context; immutable
}

func (d *device) info() driver.DeviceInfo {
	return driver.DeviceInfo{Name: d.name, NodeGUID: d.guid}
}

// devContext is an opened device.
type devContext struct {
	dev   *device // immutable
	owned bool    // the CM's context: Close is refused; immutable
	// closed is guarded by dev.p.mu.
	closed bool
}

// Info names the device.
func (c *devContext) Info() driver.DeviceInfo { return c.dev.info() }

// Query reports the soft device's fixed limits.
func (c *devContext) Query() (driver.DeviceAttr, error) {
	if err := c.check("soft_query_device"); err != nil {
		return driver.DeviceAttr{}, err
	}
	return driver.DeviceAttr{FirmwareVersion: "soft-1", NodeGUID: c.dev.guid, SysImageGUID: c.dev.guid,
		VendorID: 0, VendorPartID: 0, PhysPortCount: 1, MaxMRSize: 1 << 40, MaxQP: 1 << 16,
		MaxQPWR: MaxQPWR, MaxSGE: MaxSGE, MaxCQ: 1 << 16, MaxCQE: MaxCQE, MaxMR: 1 << 20, MaxPD: 1 << 16,
		MaxQPRdAtom: MaxRdAtm, MaxQPInitRdAtom: MaxRdAtm}, nil
}

// QueryPort reports port 1: active, 4096-byte MTU, InfiniBand link with
// the device's LID.
func (c *devContext) QueryPort(port uint8) (driver.PortAttr, error) {
	if err := c.check("soft_query_port"); err != nil {
		return driver.PortAttr{}, err
	}
	if port != 1 {
		return driver.PortAttr{}, driver.NewVerbsError("soft_query_port", syscall.EINVAL)
	}
	return driver.PortAttr{State: driver.PortActive, MaxMTU: 4096, ActiveMTU: 4096, LID: c.dev.lid,
		SMLID: 1, GIDTableLen: 1, LinkLayer: driver.LinkLayerInfiniBand, ActiveSpeed: 1, ActiveWidth: 1}, nil
}

// QueryGID returns GID 0 of port 1, the only one.
func (c *devContext) QueryGID(port uint8, index int) (driver.GID, error) {
	if err := c.check("soft_query_gid"); err != nil {
		return driver.GID{}, err
	}
	if port != 1 || index != 0 {
		return driver.GID{}, driver.NewVerbsError("soft_query_gid", syscall.EINVAL)
	}
	return c.dev.gid, nil
}

func (c *devContext) check(op string) error {
	c.dev.p.mu.Lock()
	defer c.dev.p.mu.Unlock()
	if c.closed {
		return fmt.Errorf("soft: %s on %s: %w", op, c.dev.name, driver.ErrClosed)
	}
	return nil
}

// AllocPD allocates a protection domain.
func (c *devContext) AllocPD() (driver.PD, error) {
	if err := c.check("soft_alloc_pd"); err != nil {
		return nil, err
	}
	return &pd{dev: c.dev}, nil
}

// CreateCQ creates a completion queue of exactly cfg.Entries entries.
func (c *devContext) CreateCQ(cfg driver.CQConfig) (driver.CQ, error) {
	if err := c.check("soft_create_cq"); err != nil {
		return nil, err
	}
	if cfg.Entries <= 0 || cfg.Entries > MaxCQE {
		return nil, driver.NewVerbsError("soft_create_cq", syscall.EINVAL)
	}
	return newCQ(c.dev, cfg.Entries), nil
}

// Close closes an opened context; the CM's own contexts refuse (EPERM).
func (c *devContext) Close() error {
	c.dev.p.mu.Lock()
	defer c.dev.p.mu.Unlock()
	if c.owned {
		return fmt.Errorf("soft: close CM context of %s: it belongs to the provider: %w", c.dev.name, driver.NewVerbsError("soft_close_device", syscall.EPERM))
	}
	c.closed = true
	return nil
}
