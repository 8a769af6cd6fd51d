package rdma

import (
	"fmt"

	"github.com/goiser/goiser/rdma/driver"
)

// Device is an opened RDMA device (an ibv_context). Its children are
// protection domains and completion queues; Close refuses while any is
// open.
//
// A Device is safe for concurrent use.
type Device struct {
	ctx  driver.Context // immutable; never nil
	info DeviceInfo     // immutable
	// borrowed marks a device context owned by the provider's connection
	// manager (ConnRequest.Device, Dialer.Device): Close does not close
	// the driver context. Immutable.
	borrowed bool
	life     lifecycle
}

// PortInfo describes one port of a device.
type PortInfo struct {
	Number uint8 // 1-based port number
	Attr   PortAttr
	// GIDs holds the non-zero entries among the first MaxListedGIDs of the
	// port's GID table, indexed as in the table.
	GIDs map[int]GID
}

// MaxListedGIDs bounds how many GID table entries Device.Query reads per
// port.
const MaxListedGIDs = 16

// DeviceDescription is what Device.Query reports: the device's name,
// attributes and ports.
type DeviceDescription struct {
	Info  DeviceInfo
	Attr  DeviceAttr
	Ports []PortInfo
}

// Devices lists the devices provider p can open. Equivalent to:
// `ibv_devices`.
func Devices(p driver.Provider) ([]DeviceInfo, error) {
	if p == nil {
		return nil, fmt.Errorf("rdma: list devices: nil provider: %w", ErrNoDevice)
	}
	infos, err := p.Devices()
	if err != nil {
		return nil, fmt.Errorf("rdma: list %s devices: %w", p.Name(), err)
	}
	return infos, nil
}

// Open opens the device called name through provider p, e.g.
// rdma.Open(soft.New(soft.Config{}), "soft0").
func Open(p driver.Provider, name string) (*Device, error) {
	if p == nil {
		return nil, fmt.Errorf("rdma: open %s: nil provider: %w", name, ErrNoDevice)
	}
	ctx, err := p.Open(name)
	if err != nil {
		return nil, fmt.Errorf("rdma: open %s device %s: %w", p.Name(), name, err)
	}
	return &Device{ctx: ctx, info: ctx.Info()}, nil
}

// borrowDevice wraps a provider-owned context (from the CM).
func borrowDevice(ctx driver.Context) *Device {
	return &Device{ctx: ctx, info: ctx.Info(), borrowed: true}
}

// Info describes the device.
func (d *Device) Info() DeviceInfo { return d.info }

// Name is the device name, e.g. "rxe0" or "soft0".
func (d *Device) Name() string { return d.info.Name }

// Query returns the device attributes and every port's attributes and
// GIDs. Equivalent to: `ibv_devinfo -v`.
func (d *Device) Query() (DeviceDescription, error) {
	d.life.mu.RLock()
	defer d.life.mu.RUnlock()
	if !d.life.liveLocked() {
		return DeviceDescription{}, fmt.Errorf("rdma: query device %s: %w", d.info.Name, ErrClosed)
	}
	attr, err := d.ctx.Query()
	if err != nil {
		return DeviceDescription{}, fmt.Errorf("rdma: query device %s: %w", d.info.Name, err)
	}
	desc := DeviceDescription{Info: d.info, Attr: attr}
	for port := uint8(1); port <= attr.PhysPortCount && port != 0; port++ {
		pa, err := d.ctx.QueryPort(port)
		if err != nil {
			return desc, fmt.Errorf("rdma: query device %s port %d: %w", d.info.Name, port, err)
		}
		pi := PortInfo{Number: port, Attr: pa, GIDs: map[int]GID{}}
		for i := 0; i < pa.GIDTableLen && i < MaxListedGIDs; i++ {
			gid, err := d.ctx.QueryGID(port, i)
			if err != nil {
				break
			}
			if gid != (GID{}) {
				pi.GIDs[i] = gid
			}
		}
		desc.Ports = append(desc.Ports, pi)
	}
	return desc, nil
}

// QueryPort returns the attributes of a port (1-based).
func (d *Device) QueryPort(port uint8) (PortAttr, error) {
	d.life.mu.RLock()
	defer d.life.mu.RUnlock()
	if !d.life.liveLocked() {
		return PortAttr{}, fmt.Errorf("rdma: query device %s port %d: %w", d.info.Name, port, ErrClosed)
	}
	pa, err := d.ctx.QueryPort(port)
	if err != nil {
		return PortAttr{}, fmt.Errorf("rdma: query device %s port %d: %w", d.info.Name, port, err)
	}
	return pa, nil
}

// QueryGID returns the GID at index of a port.
func (d *Device) QueryGID(port uint8, index int) (GID, error) {
	d.life.mu.RLock()
	defer d.life.mu.RUnlock()
	if !d.life.liveLocked() {
		return GID{}, fmt.Errorf("rdma: query device %s port %d gid %d: %w", d.info.Name, port, index, ErrClosed)
	}
	gid, err := d.ctx.QueryGID(port, index)
	if err != nil {
		return GID{}, fmt.Errorf("rdma: query device %s port %d gid %d: %w", d.info.Name, port, index, err)
	}
	return gid, nil
}

// AllocPD allocates a protection domain on the device.
func (d *Device) AllocPD() (*ProtectionDomain, error) {
	d.life.mu.RLock()
	defer d.life.mu.RUnlock()
	if !d.life.liveLocked() {
		return nil, fmt.Errorf("rdma: alloc PD on %s: %w", d.info.Name, ErrClosed)
	}
	pd, err := d.ctx.AllocPD()
	if err != nil {
		return nil, fmt.Errorf("rdma: alloc PD on %s: %w", d.info.Name, err)
	}
	d.life.children.Add(1)
	return &ProtectionDomain{dev: d, pd: pd}, nil
}

// CompletionQueueConfig specifies a completion queue.
type CompletionQueueConfig struct {
	// Entries is the minimum number of completions the queue holds; it
	// must cover every WR that may be outstanding on the queue pairs bound
	// to it, or the queue overflows (a fatal CQ error). 0 means 256.
	Entries int
	// Vector is the completion vector hint; 0 is fine.
	Vector int
}

// NewCompletionQueue creates a completion queue with its own completion
// channel.
func (d *Device) NewCompletionQueue(cfg CompletionQueueConfig) (*CompletionQueue, error) {
	if cfg.Entries < 0 || cfg.Vector < 0 {
		return nil, fmt.Errorf("rdma: create CQ on %s: negative entries %d or vector %d", d.info.Name, cfg.Entries, cfg.Vector)
	}
	if cfg.Entries == 0 {
		cfg.Entries = 256
	}
	d.life.mu.RLock()
	defer d.life.mu.RUnlock()
	if !d.life.liveLocked() {
		return nil, fmt.Errorf("rdma: create CQ on %s: %w", d.info.Name, ErrClosed)
	}
	cq, err := d.ctx.CreateCQ(driver.CQConfig{Entries: cfg.Entries, Vector: cfg.Vector})
	if err != nil {
		return nil, fmt.Errorf("rdma: create CQ of %d entries on %s: %w", cfg.Entries, d.info.Name, err)
	}
	d.life.children.Add(1)
	return &CompletionQueue{dev: d, cq: cq, entries: cfg.Entries}, nil
}

// Close closes the device. It refuses with an error wrapping ErrBusy while
// protection domains or completion queues of the device are open. A device
// obtained from the connection manager (ConnRequest.Device, Dialer.Device)
// belongs to the provider: its Close only checks for live children and
// leaves it open for later connections. Close is idempotent.
func (d *Device) Close() error {
	d.life.mu.Lock()
	defer d.life.mu.Unlock()
	if d.life.closed {
		return nil
	}
	if n := d.life.children.Load(); n > 0 {
		return fmt.Errorf("rdma: close device %s: %d protection domains and completion queues still open: %w", d.info.Name, n, ErrBusy)
	}
	if d.borrowed {
		return nil // the provider's: stays usable for later connections
	}
	if err := d.ctx.Close(); err != nil {
		return fmt.Errorf("rdma: close device %s: %w", d.info.Name, err)
	}
	d.life.closed = true
	return nil
}
