package rdma

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/goiser/goiser/rdma/driver"
)

// QueuePair is a reliable-connected (RC) queue pair: a send queue and a
// receive queue connected to exactly one peer queue pair.
//
// It is connected either through the connection manager (Listener.Accept
// then ConnRequest.CreateQP and Accept; Dial then Dialer.CreateQP and
// Connect) or manually (ProtectionDomain.NewQueuePair, exchange Endpoint
// values out of band, ConnectManual or Modify through Init, RTR and RTS).
//
// PostSend and PostRecv may be called from different goroutines, but each
// queue should have one poster at a time to keep its order meaningful.
// Close may be called from any goroutine.
type QueuePair struct {
	pd   *ProtectionDomain  // immutable; never nil
	qp   driver.QP          // immutable; never nil
	num  uint32             // immutable
	cqs  []*CompletionQueue // the send CQ and, if different, the recv CQ; immutable
	cfg  driver.QPConfig    // immutable
	cm   bool               // connected through the CM; immutable
	life lifecycle
	// state is the last state this side moved the queue pair to (Modify,
	// Accept, Connect, Disconnect). The device may have moved it to Error
	// since; State asks the device.
	state atomic.Uint32
}

// Num is the queue pair number.
func (qp *QueuePair) Num() uint32 { return qp.num }

// ProtectionDomain is the domain the queue pair belongs to.
func (qp *QueuePair) ProtectionDomain() *ProtectionDomain { return qp.pd }

// Config returns the capacities the queue pair was created with.
func (qp *QueuePair) Config() QPConfig { return qp.cfg }

// State asks the device for the queue pair's current state.
func (qp *QueuePair) State() (QPState, error) {
	qp.life.mu.RLock()
	defer qp.life.mu.RUnlock()
	if qp.life.closed {
		return 0, fmt.Errorf("rdma: query QP %d: %w", qp.num, ErrClosed)
	}
	s, err := qp.qp.State()
	if err != nil {
		return 0, fmt.Errorf("rdma: query QP %d: %w", qp.num, err)
	}
	return s, nil
}

// Modify moves the queue pair to attr.State with the attributes that
// transition needs (see QPAttr). Equivalent to ibv_modify_qp. A manual
// connection goes Reset -> Init -> RTR -> RTS; any state -> Error stops the
// queue pair and flushes its work requests.
func (qp *QueuePair) Modify(attr QPAttr) error {
	qp.life.mu.RLock()
	defer qp.life.mu.RUnlock()
	if qp.life.closed {
		return fmt.Errorf("rdma: modify QP %d to %v: %w", qp.num, attr.State, ErrClosed)
	}
	if err := qp.qp.Modify(attr); err != nil {
		return fmt.Errorf("rdma: modify QP %d to %v: %w", qp.num, attr.State, err)
	}
	qp.state.Store(uint32(attr.State))
	return nil
}

// QPEndpoint is what a peer needs to connect its queue pair to this one
// manually: exchange it out of band (a TCP socket, a file) and pass the
// peer's to ConnectManual.
type QPEndpoint struct {
	QPN uint32 // queue pair number
	PSN uint32 // first packet sequence number of the send queue (24 bits)
	LID uint16 // port LID (InfiniBand; 0 on RoCE)
	GID GID    // port GID at the chosen index (RoCE)
}

// QPEndpointSize is the length of a QPEndpoint's binary form.
const QPEndpointSize = 26

// AppendBinary appends the endpoint's 26-byte big-endian wire form (QPN,
// PSN, LID, GID), for an out-of-band exchange.
func (e QPEndpoint) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, e.QPN)
	b = binary.BigEndian.AppendUint32(b, e.PSN)
	b = binary.BigEndian.AppendUint16(b, e.LID)
	return append(b, e.GID[:]...), nil
}

// UnmarshalBinary decodes the form AppendBinary writes; the length must be
// exactly QPEndpointSize and the QPN and PSN must fit in 24 bits.
func (e *QPEndpoint) UnmarshalBinary(b []byte) error {
	if len(b) != QPEndpointSize {
		return fmt.Errorf("rdma: decode QP endpoint: %d bytes, want %d", len(b), QPEndpointSize)
	}
	qpn, psn := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	if qpn > 0xffffff || psn > 0xffffff {
		return fmt.Errorf("rdma: decode QP endpoint: QPN %#x or PSN %#x exceeds 24 bits", qpn, psn)
	}
	e.QPN, e.PSN, e.LID = qpn, psn, binary.BigEndian.Uint16(b[8:])
	copy(e.GID[:], b[10:])
	return nil
}

// Endpoint describes this queue pair as reached through port and the GID at
// gidIndex.
func (qp *QueuePair) Endpoint(port uint8, gidIndex int) (QPEndpoint, error) {
	if port == 0 {
		port = 1
	}
	pa, err := qp.pd.dev.QueryPort(port)
	if err != nil {
		return QPEndpoint{}, fmt.Errorf("rdma: endpoint of QP %d: %w", qp.num, err)
	}
	gid, err := qp.pd.dev.QueryGID(port, gidIndex)
	if err != nil {
		return QPEndpoint{}, fmt.Errorf("rdma: endpoint of QP %d: %w", qp.num, err)
	}
	return QPEndpoint{QPN: qp.num, PSN: psnOf(qp.num), LID: pa.LID, GID: gid}, nil
}

// psnOf derives the initial send PSN from the queue pair number; both
// sides compute it the same way from the endpoint they were given.
func psnOf(qpn uint32) uint32 { return (qpn*2654435761 + 1) & 0xffffff }

// ManualPath is the local side of a manual connection. Zero values are
// defaults.
type ManualPath struct {
	Port     uint8  // 1-based local port; 0 means 1
	GIDIndex int    // local GID index to send from (RoCE)
	PathMTU  MTU    // 0 means 1024
	Access   Access // remote rights granted to the peer; 0 means RemoteRead|RemoteWrite (plus LocalWrite)
}

// ConnectManual connects a queue pair in state Reset to the peer described
// by remote, moving it through Init, RTR and RTS. param carries the RDMA
// READ depths and the retry counts of this side: InitiatorDepth RDMA READs
// it may issue at once and ResponderResources it answers (both must be at
// least 1 for RDMA READ), RetryCount transport retries and RNRRetryCount
// receiver-not-ready retries of its own sends (7 retries forever; 0 never
// retries). The zero ConnParam allows no RDMA READ and no retry. The peer
// does the same with this side's Endpoint.
func (qp *QueuePair) ConnectManual(path ManualPath, remote QPEndpoint, param ConnParam) error {
	if path.Port == 0 {
		path.Port = 1
	}
	if path.PathMTU == 0 {
		path.PathMTU = 1024
	}
	if path.Access == 0 {
		path.Access = AccessRemoteRead | AccessRemoteWrite
	}
	path.Access |= AccessLocalWrite
	pa, err := qp.pd.dev.QueryPort(path.Port)
	if err != nil {
		return fmt.Errorf("rdma: connect QP %d: %w", qp.num, err)
	}
	if pa.ActiveMTU != 0 && pa.ActiveMTU < path.PathMTU {
		path.PathMTU = pa.ActiveMTU
	}
	steps := []QPAttr{
		{State: QPInit, Port: path.Port, Access: path.Access},
		{State: QPRTR, PathMTU: path.PathMTU, DestQPN: remote.QPN, RQPSN: remote.PSN,
			MaxDestRdAtomic: int(param.ResponderResources), MinRNRTimer: 12,
			Remote: Endpoint{LID: remote.LID, GID: remote.GID, GIDIndex: path.GIDIndex,
				Global: pa.LinkLayer == LinkLayerEthernet || remote.LID == 0, HopLimit: 64}},
		{State: QPRTS, SQPSN: psnOf(qp.num), Timeout: 14, RetryCount: param.RetryCount,
			RNRRetry: param.RNRRetryCount, MaxRdAtomic: int(param.InitiatorDepth)},
	}
	for _, a := range steps {
		if err := qp.Modify(a); err != nil {
			return fmt.Errorf("rdma: connect QP %d to QP %d: %w", qp.num, remote.QPN, err)
		}
	}
	return nil
}

// PostSend posts a batch of send-queue work requests (SEND, RDMA WRITE,
// RDMA READ, with or without immediate data) and returns how many were
// accepted before the first failure; wrs[n] is the one that failed. A
// queue pair that is not yet in RTS refuses sends (ErrInvalidState); a
// closed one returns ErrClosed. It allocates nothing.
//
// Ownership: the bytes covered by each accepted work request's SGEs belong
// to the device from this call until the completion carrying the same ID
// (success or error, including WCWRFlushErr) has been returned by Poll;
// reading, writing or releasing them earlier races with DMA. For an
// unsignaled work request that is the next signaled completion of the same
// send queue, or the flush when the queue pair fails. The remote memory of
// an RDMA WRITE or READ is the peer's until the same completion. wrs itself
// (and each SGL slice) may be reused as soon as PostSend returns.
func (qp *QueuePair) PostSend(wrs []SendWR) (int, error) {
	qp.life.mu.RLock()
	if qp.life.closed {
		qp.life.mu.RUnlock()
		return 0, ErrClosed
	}
	if s := QPState(qp.state.Load()); s < QPRTS {
		qp.life.mu.RUnlock()
		return 0, fmt.Errorf("rdma: post send on QP %d in state %v: %w", qp.num, s, ErrInvalidState)
	}
	n, err := qp.qp.PostSend(wrs)
	qp.life.mu.RUnlock()
	if err != nil {
		return n, fmt.Errorf("rdma: post send on QP %d (accepted %d of %d): %w", qp.num, n, len(wrs), err)
	}
	return n, nil
}

// PostRecv posts a batch of receive work requests and returns how many
// were accepted before the first failure. A queue pair in Reset refuses
// them (ErrInvalidState); post the receives the peer's first SENDs need
// before connecting (the CM's CreateQP leaves the queue pair in Init). It
// allocates nothing.
//
// Ownership: the bytes covered by each accepted work request's SGEs belong
// to the device from this call until the completion carrying the same ID
// (success or error, including WCWRFlushErr) has been returned by Poll;
// only then do they hold the received data and may be read, reused or
// released. wrs itself may be reused as soon as PostRecv returns.
func (qp *QueuePair) PostRecv(wrs []RecvWR) (int, error) {
	qp.life.mu.RLock()
	if qp.life.closed {
		qp.life.mu.RUnlock()
		return 0, ErrClosed
	}
	if s := QPState(qp.state.Load()); s == QPReset {
		qp.life.mu.RUnlock()
		return 0, fmt.Errorf("rdma: post recv on QP %d in state %v: %w", qp.num, s, ErrInvalidState)
	}
	n, err := qp.qp.PostRecv(wrs)
	qp.life.mu.RUnlock()
	if err != nil {
		return n, fmt.Errorf("rdma: post recv on QP %d (accepted %d of %d): %w", qp.num, n, len(wrs), err)
	}
	return n, nil
}

// Disconnect starts an orderly disconnect of a queue pair connected
// through the CM: the queue pair moves to Error, so its outstanding work
// requests flush, and the peer's Disconnected channel closes. It is a
// no-op for a manually connected queue pair (use Modify to Error).
func (qp *QueuePair) Disconnect() error {
	qp.life.mu.RLock()
	defer qp.life.mu.RUnlock()
	if qp.life.closed {
		return fmt.Errorf("rdma: disconnect QP %d: %w", qp.num, ErrClosed)
	}
	if err := qp.qp.Disconnect(); err != nil {
		return fmt.Errorf("rdma: disconnect QP %d: %w", qp.num, err)
	}
	if qp.cm {
		qp.state.Store(uint32(QPError))
	}
	return nil
}

// Disconnected is closed when the peer disconnected or the connection
// failed. It is nil (blocks forever in a select) for a manually connected
// queue pair.
func (qp *QueuePair) Disconnected() <-chan struct{} { return qp.qp.Disconnected() }

// Close destroys the queue pair (and its CM connection). Close is idempotent.
//
// Close does not flush: on real devices a destroyed QP's outstanding work
// requests never complete (rxe reports nothing, mlx5 removes the queue
// pair's completions from its CQs, and rdma/soft does both). To release
// buffers safely, first Disconnect (or Modify to QPError), poll until every
// outstanding WR has come back (success or WCWRFlushErr), then Close. A CM
// queue pair closed without Disconnect still disconnects the peer (its
// Disconnected channel closes and its work requests flush); its own work
// requests are not reported.
//
// When the provider fails to destroy the queue pair, Close returns the
// error and the queue pair stays open, still counted by its protection
// domain and completion queues; call Close again.
func (qp *QueuePair) Close() error {
	qp.life.mu.Lock()
	defer qp.life.mu.Unlock()
	if qp.life.closed {
		return nil
	}
	if err := qp.qp.Close(); err != nil {
		return fmt.Errorf("rdma: close QP %d: %w", qp.num, err)
	}
	qp.life.closed = true
	qp.pd.life.release()
	for _, cq := range qp.cqs {
		cq.life.release()
	}
	return nil
}
