package iscsi

import (
	"context"
	"net"
)

// Transport accepts iSCSI connections. It is the datamover seam of RFC 5047
// §3 cut the way LIO cuts iscsit_transport: the core never sees a byte
// stream, only whole control PDUs and two data verbs (PutData, GetData).
// iscsi/tcp implements it over TCP; iser implements it over RDMA.
type Transport interface {
	// Accept waits for the next connection. It returns an error wrapping
	// net.ErrClosed after Close.
	Accept(ctx context.Context) (TransportConn, error)
	// Addr is the listening address (it may be a wildcard address).
	Addr() net.Addr
	// Close stops accepting. Connections already accepted stay open.
	Close() error
}

// Params are the negotiated values a TransportConn needs, handed over by
// SetParams when the connection enters the full feature phase (RFC 7143
// §13). Lengths are in bytes.
type Params struct {
	// RDMAExtensions is true on an iSER connection (RFC 7145 §6.2); the
	// two data segment lengths then come from TargetRecvDataSegmentLength
	// and InitiatorRecvDataSegmentLength, and digests are off.
	RDMAExtensions bool
	HeaderDigest   bool // CRC32C on headers (HeaderDigest=CRC32C)
	DataDigest     bool // CRC32C on data segments (DataDigest=CRC32C)
	// MaxRecvDataSegmentLength the target declared: the largest data
	// segment the transport accepts; a longer one is a protocol error.
	TargetMaxRecvDSL uint32
	// MaxRecvDataSegmentLength the initiator declared: the largest data
	// segment the transport may send (Data-In, text, NOP-In).
	InitiatorMaxRecvDSL uint32
	MaxBurstLength      uint32 // largest Data-In sequence and R2T
	FirstBurstLength    uint32 // unsolicited data limit (immediate + Data-Out)
	MaxOutstandingR2T   uint32 // R2Ts outstanding per task
	ImmediateData       bool   // immediate data may ride with SCSI Commands
	InitialR2T          bool   // no unsolicited Data-Out: every burst waits for an R2T
	// Discovery is true for a discovery session (no SCSI tasks).
	Discovery bool
	// CmdWindow is the most commands the session may have in flight
	// (the CmdSN window the core advertises through MaxCmdSN, RFC 7143
	// §4.2.2.1); immediate commands may add a few more.
	CmdWindow int
	// Budget bounds the bytes of task buffers the session holds (nil:
	// unbounded). The transport takes a buffer's bytes from it before
	// allocating the buffer and gives them back when the buffer returns
	// to its pool; when it has no room, the command arrives with
	// Inbound.NoMemory set instead of a buffer.
	Budget *Budget
}

// InboundKind says what an Inbound carries.
type InboundKind uint8

// Inbound kinds.
const (
	// InPDU is a PDU for the core: Login, Text, NOP-Out, SCSI Command (with
	// its immediate data already placed in the task buffer), Task
	// Management, Logout, SNACK, or an unknown opcode the core rejects.
	InPDU InboundKind = iota + 1
	// InDataDone reports that a task's Data-Out transfer started by GetData
	// has finished: every byte the task asked for has been placed in its
	// buffer, or Err says why not. ITT and Task name the task.
	InDataDone
	// InBufferReady reports that a task which arrived with NeedBuffer now
	// has its buffer: Task.Buffer() returns it, with the immediate data
	// (Imm bytes) in place. ITT and Task name the task.
	InBufferReady
)

// String returns the name of the kind.
func (k InboundKind) String() string {
	switch k {
	case InPDU:
		return "PDU"
	case InDataDone:
		return "DataDone"
	case InBufferReady:
		return "BufferReady"
	}
	return "InboundKind(?)"
}

// TaskData is a transport's per-task state, the handle through which the
// core and the transport name a task's data: the buffer and what moves it.
// Implementations must be pointer types: the core compares handles to tell
// a task from a later one with the same ITT, and a task with a buffer
// always has a non-nil handle, so Release is never skipped.
type TaskData interface {
	// Buffer returns the task's data buffer; nil while the transport has
	// not given one yet (Inbound.NeedBuffer).
	Buffer() []byte
}

// BHSLen is the length of the iSCSI Basic Header Segment (RFC 7143 §11.2.1).
const BHSLen = 48

// Inbound is one event from a TransportConn to the core. The core owns the
// Inbound it passes to Recv; the transport fills it. Data and AHS alias
// buffers of the Inbound itself (grown by the transport as needed, so that a
// steady stream of PDUs allocates nothing) and stay valid until the core
// passes the Inbound to Recv again.
type Inbound struct {
	// Kind says which of the fields below are valid.
	Kind InboundKind
	// BHS is the header of an InPDU, digest checked.
	BHS [BHSLen]byte
	// AHS holds the additional header segments (RFC 7143 §11.2.2), if any.
	AHS []byte
	// Data is the data segment of a non-SCSI PDU (text, ping data), digest
	// checked and without padding. Empty for a SCSI Command: its immediate
	// data went to TaskBuf.
	Data []byte

	// Task is the transport's state for a SCSI Command that moves data
	// (nil when EDTL is 0 and there is no immediate data): its data
	// buffer, which must exist before unsolicited data arrives, and what
	// the transport needs to move the data (TCP: Data-Out routing; iSER:
	// the initiator's STags and VAs). Task.Buffer() has length
	// min(EDTL, the transport's largest task buffer); for a write its
	// first Imm bytes hold the immediate data. The task owns Task from now
	// until the core passes it to TransportConn.Release, which it always
	// does for a non-nil Task.
	Task TaskData
	// Imm is the number of immediate data bytes placed in the buffer.
	Imm int
	// NeedBuffer reports a SCSI Command whose buffer the transport could
	// not give yet (its pool is empty): Task is set but Task.Buffer() is
	// nil, and the transport delivers an InBufferReady event once it has
	// one (in arrival order). The command waits; nothing fails.
	NeedBuffer bool
	// NoMemory reports a SCSI Command whose data buffer the session's
	// Budget had no room for: Task is nil, any immediate data was
	// discarded, and the core ends the task with TASK SET FULL (which
	// initiators retry). Transports also give no buffer (and do not set
	// NoMemory) to a non-immediate command outside the CmdSN window,
	// which the core drops.
	NoMemory bool

	// ITT of the task an InDataDone or InBufferReady is for.
	ITT uint32
	// Err of an InDataDone: the transfer failed (the task must not run).
	Err error

	ahsBuf  []byte
	dataBuf []byte
}

// Grow returns in.Data resized to n bytes, reusing the Inbound's buffer.
// Transports call it to read a data segment without allocating in steady
// state.
func (in *Inbound) Grow(n int) []byte {
	if cap(in.dataBuf) < n {
		in.dataBuf = make([]byte, n, max(n, 8192))
	}
	in.Data = in.dataBuf[:n]
	return in.Data
}

// GrowAHS returns in.AHS resized to n bytes, reusing the Inbound's buffer.
func (in *Inbound) GrowAHS(n int) []byte {
	if cap(in.ahsBuf) < n {
		in.ahsBuf = make([]byte, n)
	}
	in.AHS = in.ahsBuf[:n]
	return in.AHS
}

// reset clears the per-PDU fields, keeping the buffers.
func (in *Inbound) reset() {
	in.Kind = 0
	in.AHS = nil
	in.Data = nil
	in.Task = nil
	in.Imm = 0
	in.NeedBuffer = false
	in.NoMemory = false
	in.ITT = 0
	in.Err = nil
}

// Reset clears the Inbound for reuse; transports call it at the start of
// Recv.
func (in *Inbound) Reset() { in.reset() }

// Response is the outcome of a SCSI task, handed to PutData.
type Response struct {
	// DataLen is the number of bytes of Task.Buf to send as Data-In.
	DataLen int
	Status  uint8  // SCSI status
	Sense   []byte // sense data; empty for none
	// Overflow and Underflow are the O and U flags (RFC 7143 §11.4.5).
	Overflow, Underflow bool
	// Residual is the residual count, valid with Overflow or Underflow.
	Residual uint32
	// Sequence numbers for the status PDU, assigned by the core.
	StatSN, ExpCmdSN, MaxCmdSN uint32
}

// SeqNumbers are the numbers a transport stamps on PDUs it sends on its
// own (R2Ts): StatSN (not advanced by an R2T), ExpCmdSN and MaxCmdSN. The
// core updates them; the transport may read them from any goroutine.
type SeqNumbers interface {
	Numbers() (statSN, expCmdSN, maxCmdSN uint32)
}

// TransportConn is one iSCSI connection as the core sees it. The core calls
// every method from one goroutine (the connection owner) except Recv, which a
// reader goroutine calls in a loop, and Close, which may be called from
// anywhere, any number of times.
type TransportConn interface {
	// Recv fills in with the next event: a PDU or the end of a data
	// transfer. Data-Out PDUs never appear: the transport places them in
	// the buffer of their task. A Data-Out that breaks its sequence
	// (DataSN, offset, TTT) fails only its task: InDataDone with Err.
	// A header that cannot be trusted (digest error, oversized data
	// segment, AHS where none belongs) returns an error and the
	// connection ends (ERL 0); the transport may send a Reject first.
	Recv(ctx context.Context, in *Inbound) error

	// Send sends one control PDU (Login/Text/NOP-In/TMF/Logout
	// Response, Reject, Async Message): bhs with its fields complete
	// (sequence numbers filled by the core) and an optional data segment.
	// The transport adds padding and digests. bhs and data are not
	// retained after Send returns.
	Send(bhs *[BHSLen]byte, data []byte) error

	// SetParams switches to the negotiated parameters. The core calls it
	// just before it sends the Login Response that enters the full feature
	// phase, so that the first full-feature PDU the initiator sends is
	// read with them; Login Responses themselves never carry digests.
	SetParams(p Params, seq SeqNumbers) error

	// GetData starts fetching a write task's data into t.Buf until its
	// first want bytes are there (want <= len(t.Buf)). Immediate data is
	// already in place; unsolicited Data-Out (InitialR2T=No) is awaited up
	// to FirstBurstLength, and the rest is solicited (TCP: R2Ts,
	// MaxOutstandingR2T at a time, MaxBurstLength each; iSER: RDMA READ).
	// It returns at once: done is true when every byte is already there;
	// otherwise an InDataDone event from Recv reports the end. It never
	// blocks on the transport's own limits (send queue depth, RDMA READs
	// outstanding): work that does not fit waits in the transport's
	// queues, in order.
	GetData(t *Task, want int) (done bool, err error)

	// PutData sends rsp.DataLen bytes of t.Buf to the initiator followed
	// by the status (TCP: Data-In PDUs, with the status collapsed into the
	// last one when there is no sense data; iSER: RDMA WRITE chained with
	// the SCSI Response SEND). rsp is not retained. The core calls Release
	// right after PutData returns: a transport whose sends complete later
	// (iSER) keeps t.Buf out of its pool until their completions are
	// reaped. Like GetData it queues rather than block on the transport's
	// own limits (TCP blocks at most its write timeout on the socket).
	PutData(t *Task, rsp *Response) error

	// Release ends the core's use of t.Data (and t.Buf); the transport
	// recycles them once nothing of its own (a Data-Out being placed, an
	// RDMA READ or send in flight) still touches them. Data-Out still
	// arriving for the task is discarded; a task still waiting for a
	// buffer (NeedBuffer) leaves the queue.
	Release(t *Task)

	// RemoteAddr and LocalAddr are the connection's endpoints.
	RemoteAddr() net.Addr
	LocalAddr() net.Addr

	// Close starts ending the connection: a blocked Recv returns an
	// error, and nothing new is sent. It may be called any number of
	// times, from any goroutine.
	Close() error

	// Drained is closed once the connection is closed and the transport
	// holds nothing for it any more: every work request it posted has
	// been reaped (completed or flushed) and every buffer is back in its
	// pool. The server counts a connection as gone, and Server.Shutdown
	// returns, only then. A transport with nothing in flight after Close
	// (TCP) closes it in Close.
	Drained() <-chan struct{}
}

// BatchSender is implemented by a TransportConn that can write the PDUs of
// several PutData and Send calls together (TCP: one writev). The owner
// goroutine calls Hold before it answers a burst of tasks that are already
// waiting, and Flush once the burst is over, before it waits for anything:
// fewer, larger writes cost less CPU per command than one per response.
// Between Hold and Flush the transport may send earlier than Flush (Send,
// R2Ts, a size limit), never later, and keeps the buffers of released
// tasks whose data it still references out of its pool until they are
// written. Flush ends the hold even when it fails, and returns those
// buffers.
type BatchSender interface {
	Hold()
	Flush() error
}

// ISERConn is implemented by TransportConns of the iSER transport (RFC
// 7145): the login then negotiates RDMAExtensions=Yes and the iSER keys
// instead of MaxRecvDataSegmentLength and digests.
type ISERConn interface {
	TransportConn
	// ISER reports whether the connection runs iSER.
	ISER() bool
	// TargetRecvDataSegmentLength is the largest data segment the
	// transport can receive in one SEND (its receive buffers): the target
	// declares no more than that (RFC 7145 §6.4).
	TargetRecvDataSegmentLength() uint32
}
