package soft

import (
	"fmt"
	"syscall"
	"unsafe"

	"github.com/goiser/goiser/rdma/driver"
)

// pd is a protection domain.
type pd struct {
	dev *device // immutable
	// closed is guarded by dev.p.mu.
	closed bool
}

// RegMR registers mem under a fresh key (lkey == rkey); the engine copies
// into and out of mem directly.
func (d *pd) RegMR(mem []byte, access driver.Access) (driver.MR, error) {
	p := d.dev.p
	if len(mem) == 0 {
		return nil, driver.NewVerbsError("soft_reg_mr", syscall.EINVAL)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("soft: register memory: %w", driver.ErrClosed)
	}
	key := p.nextKey
	p.nextKey++
	m := &mr{pd: d, mem: mem, addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem)))),
		key: key, access: access, valid: true}
	p.mrs[key] = m
	return m, nil
}

// CreateQP creates a queue pair in Reset for a manual connection.
func (d *pd) CreateQP(cfg driver.QPConfig, send, recv driver.CQ) (driver.QP, error) {
	return d.createQP(cfg, send, recv, false)
}

// Close marks the domain closed; rdma closed its children before.
func (d *pd) Close() error {
	d.dev.p.mu.Lock()
	d.closed = true
	d.dev.p.mu.Unlock()
	return nil
}

// mr is a registered memory region; its memory is the caller's off-heap
// slice, which the engine reads and writes as the device would.
type mr struct {
	pd     *pd           // immutable
	mem    []byte        // immutable
	addr   uint64        // address of mem[0]; immutable
	key    uint32        // lkey and rkey; immutable
	access driver.Access // immutable
	// valid is cleared by Close and by SEND with invalidate. Guarded by
	// the engine mutex.
	valid bool
}

// LKey is the region's key.
func (m *mr) LKey() uint32 { return m.key }

// RKey is the same key as LKey.
func (m *mr) RKey() uint32 { return m.key }

// Addr is the virtual address of mem[0].
func (m *mr) Addr() uint64 { return m.addr }

// Len is len(mem).
func (m *mr) Len() int { return len(m.mem) }

// Close invalidates the key: later accesses with it fail.
func (m *mr) Close() error {
	p := m.pd.dev.p
	p.mu.Lock()
	m.valid = false
	delete(p.mrs, m.key)
	p.mu.Unlock()
	return nil
}

// localLocked resolves an SGE of queue pair q's protection domain to its
// bytes, checking key, domain, bounds and (for write) local write access.
func (p *Provider) localLocked(d *pd, s driver.SGE, write bool) ([]byte, bool) {
	if s.Length == 0 {
		return nil, true
	}
	m := p.mrs[s.LKey]
	if m == nil || !m.valid || m.pd != d {
		return nil, false
	}
	if write && m.access&driver.AccessLocalWrite == 0 {
		return nil, false
	}
	return m.slice(s.Addr, uint64(s.Length))
}

// remoteLocked resolves a remote range for an RDMA access by a peer of
// domain d with the given right.
func (p *Provider) remoteLocked(d *pd, rkey uint32, addr, n uint64, right driver.Access) ([]byte, bool) {
	m := p.mrs[rkey]
	if m == nil || !m.valid || m.pd != d || m.access&right == 0 {
		return nil, false
	}
	return m.slice(addr, n)
}

func (m *mr) slice(addr, n uint64) ([]byte, bool) {
	if addr < m.addr || addr-m.addr > uint64(len(m.mem)) || n > uint64(len(m.mem))-(addr-m.addr) {
		return nil, false
	}
	off := addr - m.addr
	return m.mem[off : off+n], true
}

// copySegs copies the concatenation of src into the concatenation of dst
// and returns the bytes copied.
func copySegs(dst, src [][]byte) int {
	total, di := 0, 0
	var d []byte
	for _, s := range src {
		for len(s) > 0 {
			for len(d) == 0 {
				if di == len(dst) {
					return total
				}
				d = dst[di]
				di++
			}
			n := copy(d, s)
			d, s = d[n:], s[n:]
			total += n
		}
	}
	return total
}
