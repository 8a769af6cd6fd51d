package driver

import (
	"context"
	"net"
)

// Provider is the entry point of an RDMA implementation.
type Provider interface {
	// Name names the provider, e.g. "verbs" or "soft".
	Name() string
	// Devices lists the devices the provider can open.
	// Equivalent to: `ibv_devices`.
	Devices() ([]DeviceInfo, error)
	// Open opens the named device. Opening the same device twice returns
	// two Contexts that share the underlying device; connections that the
	// CM places on a device (ConnRequest.Context, Dialer.Context) use a
	// Context of the provider's own that compares equal by DeviceInfo.Name.
	Open(name string) (Context, error)
	// Listen starts an RDMA CM listener on addr ("ip:port"), in the
	// RDMA_PS_TCP port space. Connect requests arrive on the device that
	// owns the address.
	Listen(addr string, cfg ListenConfig) (Listener, error)
	// Dial resolves addr ("ip:port") and its route, and returns a Dialer
	// bound to the device that reaches it. ctx bounds the resolution.
	Dial(ctx context.Context, addr string, cfg DialConfig) (Dialer, error)
}

// Context is an opened device.
type Context interface {
	// Info describes the device.
	Info() DeviceInfo
	// Query returns the device attributes. Equivalent to: `ibv_devinfo -v`.
	Query() (DeviceAttr, error)
	// QueryPort returns the attributes of a port (1-based).
	QueryPort(port uint8) (PortAttr, error)
	// QueryGID returns the GID at index of a port.
	QueryGID(port uint8, index int) (GID, error)
	// AllocPD allocates a protection domain.
	AllocPD() (PD, error)
	// CreateCQ creates a completion queue with its own completion channel.
	CreateCQ(cfg CQConfig) (CQ, error)
	// Close closes the device; every child has been closed before.
	Close() error
}

// PD is a protection domain.
type PD interface {
	// RegMR registers mem, which is off-heap memory (never the Go heap),
	// for local access and the given remote access rights. The device may
	// access mem until the MR is closed.
	RegMR(mem []byte, access Access) (MR, error)
	// CreateQP creates a queue pair in state Reset, bound to the given CQs
	// (which may be the same CQ). Connect it with Modify, or use the CM
	// (ConnRequest.Accept, Dialer.Connect), which creates its own QP.
	CreateQP(cfg QPConfig, send, recv CQ) (QP, error)
	// Close deallocates the PD; every MR and QP has been closed before.
	Close() error
}

// MR is a registered memory region.
type MR interface {
	// LKey is the local key used in SGEs.
	LKey() uint32
	// RKey is the remote key a peer uses for RDMA READ and WRITE.
	RKey() uint32
	// Addr is the virtual address of the first byte, as peers address it.
	Addr() uint64
	// Len is the registered length in bytes.
	Len() int
	// Close deregisters the region.
	Close() error
}

// CQ is a completion queue with a completion channel.
type CQ interface {
	// Poll moves up to len(dst) completions into dst and returns how many.
	// One C call per batch in cgo/verbs; it never blocks.
	Poll(dst []Completion) (int, error)
	// Arm requests an event on the completion channel for the next
	// completion (or the next solicited one). Equivalent to ibv_req_notify_cq.
	Arm(solicitedOnly bool) error
	// Wait blocks until the armed CQ signals an event, the context is done,
	// or the CQ is closed (ErrClosed). It acknowledges the event. Waiting
	// does not pin an OS thread: cgo/verbs waits on the completion channel's
	// file descriptor through the Go netpoller. After Wait returns, Poll
	// until empty, then Arm and Poll once more before waiting again, to
	// close the race between the last poll and the arm.
	Wait(ctx context.Context) error
	// Close destroys the CQ; no QP uses it any more.
	Close() error
}

// QP is a queue pair.
type QP interface {
	// Num is the queue pair number.
	Num() uint32
	// State returns the current state as the provider knows it.
	State() (QPState, error)
	// Modify moves the QP to attr.State with the attributes the transition
	// needs (manual connection without the CM). Equivalent to ibv_modify_qp.
	Modify(attr QPAttr) error
	// PostSend posts a batch of send-queue work requests and returns how
	// many were accepted before the first failure (bad_wr in verbs). The
	// bytes covered by each accepted WR's SGEs belong to the device until
	// its completion (success or flush) has been polled; unsignaled WRs are
	// completed by the next signaled completion on the same send queue.
	PostSend(wrs []SendWR) (int, error)
	// PostRecv posts a batch of receive work requests, with the same count
	// and ownership rules as PostSend.
	PostRecv(wrs []RecvWR) (int, error)
	// Disconnect starts an orderly disconnect of a CM-connected QP (and
	// moves the QP to the error state, so outstanding WRs flush). It is a
	// no-op for a QP not connected through the CM.
	Disconnect() error
	// Disconnected is closed when the peer disconnected or the connection
	// failed. It is nil for a QP not connected through the CM.
	Disconnected() <-chan struct{}
	// Close destroys the QP (and its CM id). It does not flush: the owner
	// moves the QP to Error (Disconnect or Modify), reaps every outstanding
	// WR's completion, and only then closes it and frees the buffers.
	Close() error
}

// Listener receives RDMA CM connect requests.
type Listener interface {
	// Addr is the bound address (the port is filled in when 0 was asked).
	Addr() net.Addr
	// GetRequest blocks until a connect request arrives, ctx is done, or
	// the listener is closed (ErrClosed).
	GetRequest(ctx context.Context) (ConnRequest, error)
	// Close stops listening. Pending requests that were not taken are
	// rejected.
	Close() error
}

// ConnRequest is a pending connect request. Exactly one of Accept or Reject
// must be called; CreateQP may be called once before Accept.
type ConnRequest interface {
	// Context is the device the request arrived on. It belongs to the
	// provider: do not close it. Allocate the PD and CQs of the connection
	// on it.
	Context() Context
	// PrivateData is the peer's private data (a copy; at most 56 bytes on
	// RDMA_PS_TCP, possibly padded with zeros by the CM).
	PrivateData() []byte
	// Param is the peer's connection parameters seen from this side, as
	// the IB CM and librdmacm report them: InitiatorDepth is how many
	// RDMA READs this side may issue at once (the peer's responder
	// resources) and ResponderResources how many of the peer's READs this
	// side is asked to answer (the peer's initiator depth).
	Param() ConnParam
	// LocalAddr and RemoteAddr are the IP addresses of the two ends.
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// CreateQP creates the connection's RC QP on pd, bound to send and
	// recv, in a state that accepts PostRecv (Init). Post the receives the
	// peer's first SENDs need before Accept.
	CreateQP(pd PD, cfg QPConfig, send, recv CQ) (QP, error)
	// Accept accepts the request with private data; the CM moves the QP to
	// RTS. It returns when the connection is established, ctx is done, or
	// the peer gave up. On error the QP is unusable and must be closed.
	Accept(ctx context.Context, param ConnParam, private []byte) error
	// Reject rejects the request with private data; a QP created by
	// CreateQP must then be closed by the caller.
	Reject(private []byte) error
}

// Dialer is a resolved outgoing RDMA CM connection.
type Dialer interface {
	// Context is the device the route goes through; it belongs to the
	// provider: do not close it.
	Context() Context
	// CreateQP creates the connection's RC QP on pd, bound to send and
	// recv, in a state that accepts PostRecv (Init).
	CreateQP(pd PD, cfg QPConfig, send, recv CQ) (QP, error)
	// Connect connects with private data and waits, bounded by ctx, for
	// the peer to accept. It returns the peer's private data. A rejection
	// is a *RejectError. On error the QP is unusable and must be closed.
	Connect(ctx context.Context, param ConnParam, private []byte) ([]byte, error)
	// Close releases the CM id when no QP was created; once CreateQP
	// succeeded, closing the QP releases it and Close is a no-op.
	Close() error
}
