//go:build linux && cgo

package verbs

// #include "shim.h"
import "C"

import (
	"fmt"
	"syscall"
	"unsafe"

	"github.com/goiser/goiser/rdma/driver"
)

// device is an opened device: an ibv_context that librdmacm owns (it opens
// every device once per process and never closes it), so Close only marks
// this handle closed.
type device struct {
	ctx   *C.struct_ibv_context // immutable; never nil
	info  driver.DeviceInfo     // immutable
	owned bool                  // opened by the user (Open), not handed out by the CM
}

func newDevice(ctx *C.struct_ibv_context, owned bool) *device {
	name := C.GoString(C.goiser_context_name(ctx))
	return &device{
		ctx:   ctx,
		owned: owned,
		info: driver.DeviceInfo{
			Name:     name,
			NodeGUID: uint64(C.goiser_context_guid(ctx)),
			NetDevs:  netdevsOf(name),
		},
	}
}

func (d *device) Info() driver.DeviceInfo {
	info := d.info
	info.NetDevs = append([]string(nil), d.info.NetDevs...)
	return info
}

func (d *device) Query() (driver.DeviceAttr, error) {
	var a C.goiser_dev_attr
	if rc, err := C.goiser_query_device(d.ctx, &a); rc != 0 {
		return driver.DeviceAttr{}, rcErr("ibv_query_device", rc, err)
	}
	return driver.DeviceAttr{
		FirmwareVersion: C.GoString(&a.fw_ver[0]),
		NodeGUID:        uint64(a.node_guid),
		SysImageGUID:    uint64(a.sys_image_guid),
		VendorID:        uint32(a.vendor_id),
		VendorPartID:    uint32(a.vendor_part_id),
		HardwareVersion: uint32(a.hw_ver),
		PhysPortCount:   uint8(a.phys_port_cnt),
		MaxMRSize:       uint64(a.max_mr_size),
		MaxQP:           int(a.max_qp),
		MaxQPWR:         int(a.max_qp_wr),
		MaxSGE:          int(a.max_sge),
		MaxCQ:           int(a.max_cq),
		MaxCQE:          int(a.max_cqe),
		MaxMR:           int(a.max_mr),
		MaxPD:           int(a.max_pd),
		MaxQPRdAtom:     int(a.max_qp_rd_atom),
		MaxQPInitRdAtom: int(a.max_qp_init_rd_atom),
	}, nil
}

func (d *device) QueryPort(port uint8) (driver.PortAttr, error) {
	var a C.goiser_port_attr
	if rc, err := C.goiser_query_port(d.ctx, C.uint8_t(port), &a); rc != 0 {
		return driver.PortAttr{}, rcErr("ibv_query_port", rc, err)
	}
	ll := driver.LinkLayerUnspecified
	switch a.link_layer {
	case C.IBV_LINK_LAYER_INFINIBAND:
		ll = driver.LinkLayerInfiniBand
	case C.IBV_LINK_LAYER_ETHERNET:
		ll = driver.LinkLayerEthernet
	}
	return driver.PortAttr{
		State:       driver.PortState(a.state),
		MaxMTU:      mtuBytes(int(a.max_mtu)),
		ActiveMTU:   mtuBytes(int(a.active_mtu)),
		LID:         uint16(a.lid),
		SMLID:       uint16(a.sm_lid),
		GIDTableLen: int(a.gid_tbl_len),
		LinkLayer:   ll,
		ActiveSpeed: uint32(a.active_speed),
		ActiveWidth: uint8(a.active_width),
	}, nil
}

func (d *device) QueryGID(port uint8, index int) (driver.GID, error) {
	var g driver.GID
	if rc, err := C.goiser_query_gid(d.ctx, C.uint8_t(port), C.int(index), (*C.uint8_t)(unsafe.Pointer(&g[0]))); rc != 0 {
		return driver.GID{}, rcErr("ibv_query_gid", rc, err)
	}
	return g, nil
}

func (d *device) AllocPD() (driver.PD, error) {
	pd, err := C.ibv_alloc_pd(d.ctx)
	if pd == nil {
		return nil, driver.NewVerbsError("ibv_alloc_pd", err)
	}
	return &protDomain{pd: pd, dev: d}, nil
}

func (d *device) Close() error { return nil }

// mtuBytes converts an enum ibv_mtu (1 = 256 ... 5 = 4096) to bytes.
func mtuBytes(m int) driver.MTU {
	if m < 1 || m > 5 {
		return 0
	}
	return driver.MTU(128 << m)
}

// mtuEnum converts bytes to an enum ibv_mtu; 0 when m is not a valid MTU.
func mtuEnum(m driver.MTU) int {
	for e := 1; e <= 5; e++ {
		if driver.MTU(128<<e) == m {
			return e
		}
	}
	return 0
}

// protDomain is an ibv_pd.
type protDomain struct {
	pd  *C.struct_ibv_pd // immutable; never nil until Close
	dev *device          // immutable
}

// RegMR registers mem. mem must not be Go-heap memory: package rdma
// allocates it with mmap, which is what makes handing its address to the
// device (which keeps it until ibv_dereg_mr) legal under the cgo rules.
func (p *protDomain) RegMR(mem []byte, access driver.Access) (driver.MR, error) {
	if p.pd == nil {
		return nil, fmt.Errorf("verbs: register memory on a closed PD: %w", driver.ErrClosed)
	}
	if len(mem) == 0 {
		return nil, fmt.Errorf("verbs: register an empty region: %w", driver.NewVerbsError("ibv_reg_mr", syscall.EINVAL))
	}
	addr := unsafe.Pointer(unsafe.SliceData(mem))
	mr, err := C.goiser_reg_mr(p.pd, addr, C.size_t(len(mem)), C.int(access))
	if mr == nil {
		return nil, driver.NewVerbsError("ibv_reg_mr", err)
	}
	return &memRegion{mr: mr, lkey: uint32(mr.lkey), rkey: uint32(mr.rkey), addr: uint64(uintptr(addr)), n: len(mem)}, nil
}

func (p *protDomain) CreateQP(cfg driver.QPConfig, send, recv driver.CQ) (driver.QP, error) {
	return createQP(p, nil, nil, cfg, send, recv)
}

// Close deallocates the PD. A failed ibv_dealloc_pd (EBUSY while an MR or
// QP uses it) leaves it open; Close may be retried. It is closed (pd nil)
// only once the call succeeded, and Close does nothing after that.
func (p *protDomain) Close() error {
	if p.pd == nil {
		return nil
	}
	if rc, err := C.ibv_dealloc_pd(p.pd); rc != 0 {
		return rcErr("ibv_dealloc_pd", rc, err)
	}
	p.pd = nil
	return nil
}

// memRegion is an ibv_mr.
type memRegion struct {
	mr   *C.struct_ibv_mr // nil once Close succeeded
	lkey uint32           // immutable
	rkey uint32           // immutable
	addr uint64           // immutable
	n    int              // immutable
}

func (m *memRegion) LKey() uint32 { return m.lkey }
func (m *memRegion) RKey() uint32 { return m.rkey }
func (m *memRegion) Addr() uint64 { return m.addr }
func (m *memRegion) Len() int     { return m.n }

// Close deregisters the region. A failed ibv_dereg_mr leaves it
// registered (the device may still access the memory, so package rdma
// keeps it counted and its Buffer mapped); Close may be retried. It does
// nothing once the call succeeded.
func (m *memRegion) Close() error {
	if m.mr == nil {
		return nil
	}
	if rc, err := C.ibv_dereg_mr(m.mr); rc != 0 {
		return rcErr("ibv_dereg_mr", rc, err)
	}
	m.mr = nil
	return nil
}
