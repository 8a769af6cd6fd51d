//go:build linux && cgo

package verbs

// #include "shim.h"
import "C"

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/goiser/goiser/rdma/driver"
)

// queuePair is an RC ibv_qp with its C work-request arrays.
//
// PostSend and PostRecv may run concurrently with each other (they touch
// separate arrays) but each must be called by one goroutine at a time, as
// package rdma guarantees. Close runs after every post has returned.
type queuePair struct {
	q    *C.goiser_qp // immutable until Close frees it
	num  uint32       // immutable
	swr  []C.goiser_send_wr
	ssge []C.struct_ibv_sge // len MaxSendWR*MaxSendSGE
	rwr  []C.goiser_recv_wr
	rsge []C.struct_ibv_sge // len MaxRecvWR*MaxRecvSGE
	nSGE int                // MaxSendSGE; immutable
	rSGE int                // MaxRecvSGE; immutable

	cm *cmID // the CM id for a CM-connected QP; nil otherwise
	// gone is set once the device QP is destroyed (q is nil from then
	// on): every method but Close returns ErrClosed. For a CM QP, Close is
	// finished only when the CM id is destroyed too (life).
	gone atomic.Bool
	life closeState
	// inErr is set when this provider moved the QP to Error (Modify,
	// Disconnect, or the peer's disconnect): posts are then refused with
	// ErrInvalidState instead of handed to a device that may never flush
	// them (rxe on Linux 6.1 does not complete WRs posted in Error).
	inErr atomic.Bool
}

// createQP creates a QP on pd; with id set, through rdma_create_qp so the
// CM drives its state.
func createQP(p *protDomain, id *C.struct_rdma_cm_id, cm *cmID, cfg driver.QPConfig, send, recv driver.CQ) (*queuePair, error) {
	if cfg.Type != 0 && cfg.Type != driver.RC {
		return nil, fmt.Errorf("verbs: QP type %d: %w", cfg.Type, driver.ErrNotSupported)
	}
	scq, ok1 := send.(*compQueue)
	rcq, ok2 := recv.(*compQueue)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("verbs: create QP: CQs of another provider: %w", driver.NewVerbsError("ibv_create_qp", syscall.EINVAL))
	}
	if scq.closed.Load() || rcq.closed.Load() {
		return nil, fmt.Errorf("verbs: create QP on a closed CQ: %w", driver.ErrClosed)
	}
	if p.pd == nil {
		return nil, fmt.Errorf("verbs: create QP on a closed PD: %w", driver.ErrClosed)
	}
	if cfg.MaxSendWR <= 0 || cfg.MaxRecvWR <= 0 {
		return nil, fmt.Errorf("verbs: create QP with %d send and %d receive WRs: %w", cfg.MaxSendWR, cfg.MaxRecvWR,
			driver.NewVerbsError("ibv_create_qp", syscall.EINVAL))
	}
	nSGE, rSGE := max(cfg.MaxSendSGE, 1), max(cfg.MaxRecvSGE, 1)
	sig := C.int(0)
	if cfg.SignalAll {
		sig = 1
	}
	op := "ibv_create_qp"
	if id != nil {
		op = "rdma_create_qp"
	}
	q, err := C.goiser_qp_create(p.pd, id, scq.c, rcq.c, C.int(cfg.MaxSendWR), C.int(cfg.MaxRecvWR),
		C.int(nSGE), C.int(rSGE), C.int(cfg.MaxInline), sig)
	if q == nil {
		return nil, driver.NewVerbsError(op, err)
	}
	if cm != nil {
		cm.attachQP(q)
	}
	return &queuePair{
		q:    q,
		num:  uint32(q.qp.qp_num),
		swr:  unsafe.Slice(q.swr, cfg.MaxSendWR),
		ssge: unsafe.Slice(q.ssge, cfg.MaxSendWR*nSGE),
		rwr:  unsafe.Slice(q.rwr, cfg.MaxRecvWR),
		rsge: unsafe.Slice(q.rsge, cfg.MaxRecvWR*rSGE),
		nSGE: nSGE,
		rSGE: rSGE,
		cm:   cm,
	}, nil
}

func (qp *queuePair) Num() uint32 { return qp.num }

func (qp *queuePair) State() (driver.QPState, error) {
	if qp.gone.Load() {
		return 0, driver.ErrClosed
	}
	s := C.goiser_qp_state(qp.q)
	if s < 0 {
		return 0, driver.NewVerbsError("ibv_query_qp", syscall.Errno(-s))
	}
	return driver.QPState(s), nil
}

func (qp *queuePair) Modify(attr driver.QPAttr) error {
	if qp.gone.Load() {
		return driver.ErrClosed
	}
	a := C.goiser_qp_attr{
		state:              C.int(attr.State),
		access:             C.uint32_t(attr.Access),
		dest_qpn:           C.uint32_t(attr.DestQPN),
		rq_psn:             C.uint32_t(attr.RQPSN),
		sq_psn:             C.uint32_t(attr.SQPSN),
		pkey_index:         C.uint16_t(attr.PKeyIndex),
		dlid:               C.uint16_t(attr.Remote.LID),
		port:               C.uint8_t(attr.Port),
		max_rd_atomic:      C.uint8_t(attr.MaxRdAtomic),
		max_dest_rd_atomic: C.uint8_t(attr.MaxDestRdAtomic),
		min_rnr_timer:      C.uint8_t(attr.MinRNRTimer),
		timeout:            C.uint8_t(attr.Timeout),
		retry_cnt:          C.uint8_t(attr.RetryCount),
		rnr_retry:          C.uint8_t(attr.RNRRetry),
		sgid_index:         C.uint8_t(attr.Remote.GIDIndex),
		hop_limit:          C.uint8_t(attr.Remote.HopLimit),
	}
	if attr.State == driver.QPRTR {
		m := mtuEnum(attr.PathMTU)
		if m == 0 {
			return fmt.Errorf("verbs: modify QP to RTR: path MTU %d: %w", attr.PathMTU, driver.NewVerbsError("ibv_modify_qp", syscall.EINVAL))
		}
		a.path_mtu = C.int(m)
		if attr.Port == 0 {
			a.port = 1
		}
	}
	if attr.Remote.Global {
		a.is_global = 1
		if attr.Remote.HopLimit == 0 {
			a.hop_limit = 64
		}
		for i, b := range attr.Remote.GID {
			a.dgid[i] = C.uint8_t(b)
		}
	}
	if attr.State == driver.QPInit && attr.Port == 0 {
		a.port = 1
	}
	if rc, err := C.goiser_qp_modify(qp.q, &a); rc != 0 {
		if rc == C.EINVAL {
			return fmt.Errorf("verbs: modify QP %d to %s: %w (%w)", qp.num, attr.State, driver.ErrInvalidState, rcErr("ibv_modify_qp", rc, err))
		}
		return rcErr("ibv_modify_qp", rc, err)
	}
	switch attr.State {
	case driver.QPError:
		qp.inErr.Store(true)
	case driver.QPReset, driver.QPInit:
		qp.inErr.Store(false)
	}
	return nil
}

// errPosted is the error of a post on a QP this provider moved to Error.
func (qp *queuePair) errPosted(op string) error {
	return fmt.Errorf("verbs: %s on QP %d in state ERR: %w", op, qp.num, driver.ErrInvalidState)
}

// PostSend copies wrs into the QP's C arrays and posts them with one
// ibv_post_send call. It allocates nothing.
//
// Ownership: the bytes covered by each accepted WR's SGEs belong to the
// device until its completion (success or flush) has been polled.
func (qp *queuePair) PostSend(wrs []driver.SendWR) (int, error) {
	if qp.gone.Load() {
		return 0, driver.ErrClosed
	}
	if qp.inErr.Load() || (qp.cm != nil && qp.cm.inErr.Load()) {
		return 0, qp.errPosted("post send")
	}
	return qp.postSend(wrs, false)
}

// postSend fills the C arrays chunk by chunk and makes one C call per
// chunk (a chunk is the whole batch unless it exceeds MaxSendWR). dry
// builds the chain without handing it to the device (benchmarks).
func (qp *queuePair) postSend(wrs []driver.SendWR, dry bool) (int, error) {
	done := 0
	for done < len(wrs) {
		batch := wrs[done:]
		if len(batch) > len(qp.swr) {
			batch = batch[:len(qp.swr)]
		}
		for i := range batch {
			w := &batch[i]
			if len(w.SGL) > qp.nSGE {
				if i == 0 {
					return done, fmt.Errorf("verbs: post send WR %#x with %d SGEs: %w", w.ID, len(w.SGL),
						driver.NewVerbsError("ibv_post_send", syscall.EINVAL))
				}
				batch = batch[:i]
				break
			}
			s := &qp.swr[i]
			s.id = C.uint64_t(w.ID)
			s.remote = C.uint64_t(w.Remote)
			s.rkey = C.uint32_t(w.RKey)
			s.imm = C.uint32_t(w.Imm)
			s.inv_rkey = C.uint32_t(w.InvalidateRKey)
			s.num_sge = C.uint32_t(len(w.SGL))
			s.op = C.uint8_t(w.Op)
			s.flags = C.uint8_t(w.Flags)
			sg := qp.ssge[i*qp.nSGE:]
			for j := range w.SGL {
				sg[j].addr = C.uint64_t(w.SGL[j].Addr)
				sg[j].length = C.uint32_t(w.SGL[j].Length)
				sg[j].lkey = C.uint32_t(w.SGL[j].LKey)
			}
		}
		var rc C.int
		if dry {
			rc = C.goiser_post_send_dry(qp.q, C.int(len(batch)))
		} else {
			rc = C.goiser_post_send(qp.q, C.int(len(batch)))
		}
		done += int(qp.q.accepted)
		if rc != 0 {
			return done, postErr("ibv_post_send", rc)
		}
	}
	return done, nil
}

// PostRecv copies wrs into the QP's C arrays and posts them with one
// ibv_post_recv call. It allocates nothing.
//
// Ownership: the bytes covered by each accepted WR's SGEs belong to the
// device until its completion (success or flush) has been polled.
func (qp *queuePair) PostRecv(wrs []driver.RecvWR) (int, error) {
	if qp.gone.Load() {
		return 0, driver.ErrClosed
	}
	if qp.inErr.Load() || (qp.cm != nil && qp.cm.inErr.Load()) {
		return 0, qp.errPosted("post recv")
	}
	done := 0
	for done < len(wrs) {
		batch := wrs[done:]
		if len(batch) > len(qp.rwr) {
			batch = batch[:len(qp.rwr)]
		}
		for i := range batch {
			w := &batch[i]
			if len(w.SGL) > qp.rSGE {
				if i == 0 {
					return done, fmt.Errorf("verbs: post receive WR %#x with %d SGEs: %w", w.ID, len(w.SGL),
						driver.NewVerbsError("ibv_post_recv", syscall.EINVAL))
				}
				batch = batch[:i]
				break
			}
			r := &qp.rwr[i]
			r.id = C.uint64_t(w.ID)
			r.num_sge = C.uint32_t(len(w.SGL))
			sg := qp.rsge[i*qp.rSGE:]
			for j := range w.SGL {
				sg[j].addr = C.uint64_t(w.SGL[j].Addr)
				sg[j].length = C.uint32_t(w.SGL[j].Length)
				sg[j].lkey = C.uint32_t(w.SGL[j].LKey)
			}
		}
		rc := C.goiser_post_recv(qp.q, C.int(len(batch)))
		done += int(qp.q.accepted)
		if rc != 0 {
			return done, postErr("ibv_post_recv", rc)
		}
	}
	return done, nil
}

// postErr maps a post failure: ENOMEM from ibv_post_* means the work queue
// is full, EINVAL a QP in a state that does not accept posts (or a bad WR).
func postErr(op string, rc C.int) error {
	e := rcErr(op, rc, nil)
	switch syscall.Errno(rc) {
	case syscall.ENOMEM:
		return fmt.Errorf("%w (%w)", driver.ErrQueueFull, e)
	case syscall.EINVAL:
		return fmt.Errorf("%w (%w)", driver.ErrInvalidState, e)
	}
	return e
}

func (qp *queuePair) Disconnect() error {
	if qp.gone.Load() {
		return driver.ErrClosed
	}
	if qp.cm == nil {
		return nil
	}
	return qp.cm.disconnect()
}

func (qp *queuePair) Disconnected() <-chan struct{} {
	if qp.cm == nil {
		return nil
	}
	return qp.cm.disc
}

// Close destroys the QP (rdma_destroy_qp and then rdma_destroy_id for a CM
// QP, ibv_destroy_qp otherwise) and frees its arrays. It completes
// nothing: the WRs a destroyed QP still held are never reported (rxe drops
// them, mlx5 removes the QP's completions from its CQs), so the owner
// moves the QP to Error and reaps every WR before closing it.
//
// The QP counts as closed only once every destroy call succeeded. A failed
// ibv_destroy_qp leaves it intact and usable; a failed rdma_destroy_id
// leaves the QP destroyed (its methods return ErrClosed) and the id alive.
// Either way Close may be retried, and package rdma keeps the QP counted as
// a child of its PD and CQs until it succeeds.
func (qp *queuePair) Close() error {
	return qp.life.close(func() error {
		if !qp.gone.Load() {
			var id *C.struct_rdma_cm_id
			if qp.cm != nil {
				id = qp.cm.id
				qp.cm.detachQP() // the CM goroutine no longer touches the QP
			}
			if rc, err := C.goiser_qp_destroy(qp.q, id); rc != 0 {
				if qp.cm != nil {
					qp.cm.attachQP(qp.q)
				}
				return rcErr("ibv_destroy_qp", rc, err)
			}
			qp.gone.Store(true)
			qp.q, qp.swr, qp.ssge, qp.rwr, qp.rsge = nil, nil, nil, nil, nil
		}
		if qp.cm != nil {
			return qp.cm.destroy()
		}
		return nil
	})
}

// newDryQP is a queuePair with C arrays and no device QP, for measuring
// the provider's own cost per WR without a device (BenchmarkPostSendNoDevice).
func newDryQP(maxSend, sge int) *queuePair {
	q := C.goiser_qp_arrays(C.int(maxSend), 1, C.int(sge), 1)
	if q == nil {
		return nil
	}
	return &queuePair{q: q, swr: unsafe.Slice(q.swr, maxSend), ssge: unsafe.Slice(q.ssge, maxSend*sge), nSGE: sge}
}

// freeDry releases what newDryQP allocated.
func (qp *queuePair) freeDry() { C.goiser_qp_free_arrays(qp.q) }
