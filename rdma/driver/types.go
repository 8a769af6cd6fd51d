package driver

import (
	"fmt"
	"net"
	"time"
)

// DeviceInfo names a device a provider can open.
type DeviceInfo struct {
	Name     string // e.g. "rxe0", "mlx5_0", "soft0"
	NodeGUID uint64 // 0 when unknown
	// NetDevs are the network interfaces of the device's ports, when known
	// (e.g. "eth0" for rxe0); empty for the soft provider.
	NetDevs []string
}

// DeviceAttr holds device attributes (a subset of ibv_device_attr).
type DeviceAttr struct {
	FirmwareVersion string
	NodeGUID        uint64
	SysImageGUID    uint64
	VendorID        uint32
	VendorPartID    uint32
	HardwareVersion uint32
	PhysPortCount   uint8
	MaxMRSize       uint64
	MaxQP           int
	MaxQPWR         int // max outstanding WRs per queue
	MaxSGE          int // max SGEs per WR
	MaxCQ           int
	MaxCQE          int
	MaxMR           int
	MaxPD           int
	MaxQPRdAtom     int // max outstanding RDMA READs a QP can answer (responder resources)
	MaxQPInitRdAtom int // max outstanding RDMA READs a QP can issue (initiator depth)
}

// PortState is the logical state of a port (ibv_port_state numbering).
type PortState uint8

// Port states.
const (
	PortNop         PortState = 0
	PortDown        PortState = 1
	PortInit        PortState = 2
	PortArmed       PortState = 3
	PortActive      PortState = 4
	PortActiveDefer PortState = 5
)

func (s PortState) String() string {
	switch s {
	case PortNop:
		return "NOP"
	case PortDown:
		return "DOWN"
	case PortInit:
		return "INIT"
	case PortArmed:
		return "ARMED"
	case PortActive:
		return "ACTIVE"
	case PortActiveDefer:
		return "ACTIVE_DEFER"
	}
	return fmt.Sprintf("PortState(%d)", uint8(s))
}

// MTU is a path MTU in bytes: 256, 512, 1024, 2048 or 4096.
type MTU int

// LinkLayer is a port's link layer.
type LinkLayer uint8

// Link layers.
const (
	LinkLayerUnspecified LinkLayer = iota
	LinkLayerInfiniBand
	LinkLayerEthernet
)

func (l LinkLayer) String() string {
	switch l {
	case LinkLayerInfiniBand:
		return "InfiniBand"
	case LinkLayerEthernet:
		return "Ethernet"
	}
	return "Unspecified"
}

// PortAttr holds port attributes (a subset of ibv_port_attr).
type PortAttr struct {
	State       PortState
	MaxMTU      MTU
	ActiveMTU   MTU
	LID         uint16
	SMLID       uint16
	GIDTableLen int
	LinkLayer   LinkLayer
	ActiveSpeed uint32 // ibv_port_attr.active_speed encoding
	ActiveWidth uint8  // ibv_port_attr.active_width encoding
}

// GID is a 128-bit global identifier; on RoCE it holds an IPv6 or
// IPv4-mapped address.
type GID [16]byte

// IP returns the GID as an IP address.
func (g GID) IP() net.IP { return net.IP(g[:]) }

func (g GID) String() string { return net.IP(g[:]).String() }

// Access is a set of memory-region access rights (ibv_access_flags values).
type Access uint32

// Access rights. Local read is always granted.
const (
	AccessLocalWrite   Access = 1 << 0
	AccessRemoteWrite  Access = 1 << 1
	AccessRemoteRead   Access = 1 << 2
	AccessRemoteAtomic Access = 1 << 3
)

func (a Access) String() string {
	s := ""
	add := func(f Access, n string) {
		if a&f != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	add(AccessLocalWrite, "LocalWrite")
	add(AccessRemoteWrite, "RemoteWrite")
	add(AccessRemoteRead, "RemoteRead")
	add(AccessRemoteAtomic, "RemoteAtomic")
	if s == "" {
		return "LocalRead"
	}
	return s
}

// CQConfig specifies a completion queue.
type CQConfig struct {
	// Entries is the minimum number of completions the CQ holds; it must
	// cover every WR that may be outstanding on the QPs bound to it.
	Entries int
	// Vector is the completion vector (interrupt) hint; 0 is fine.
	Vector int
}

// QPType is a queue pair transport type. Only RC is supported.
type QPType uint8

// Queue pair types.
const (
	RC QPType = 2 // reliable connected (IBV_QPT_RC)
)

// QPConfig specifies a queue pair's capacities.
type QPConfig struct {
	Type       QPType // RC
	MaxSendWR  int    // outstanding send-queue WRs
	MaxRecvWR  int    // outstanding receive-queue WRs
	MaxSendSGE int    // SGEs per send WR
	MaxRecvSGE int    // SGEs per receive WR
	MaxInline  int    // bytes of inline data per send WR (0: no inline)
	// SignalAll makes every send WR signaled regardless of FlagSignaled.
	SignalAll bool
}

// QPState is a queue pair state (ibv_qp_state numbering).
type QPState uint8

// Queue pair states.
const (
	QPReset QPState = 0
	QPInit  QPState = 1
	QPRTR   QPState = 2 // ready to receive
	QPRTS   QPState = 3 // ready to send
	QPSQD   QPState = 4 // send queue drained
	QPSQE   QPState = 5 // send queue error
	QPError QPState = 6
)

func (s QPState) String() string {
	switch s {
	case QPReset:
		return "RESET"
	case QPInit:
		return "INIT"
	case QPRTR:
		return "RTR"
	case QPRTS:
		return "RTS"
	case QPSQD:
		return "SQD"
	case QPSQE:
		return "SQE"
	case QPError:
		return "ERR"
	}
	return fmt.Sprintf("QPState(%d)", uint8(s))
}

// QPAttr carries what a state transition needs when a QP is connected
// without the CM. Only the fields the transition to State uses are read:
//
//	Reset -> Init: Port, PKeyIndex, Access
//	Init  -> RTR:  PathMTU, DestQPN, RQPSN, MaxDestRdAtomic, MinRNRTimer, Remote
//	RTR   -> RTS:  SQPSN, Timeout, RetryCount, RNRRetry, MaxRdAtomic
//	any   -> Error or Reset: nothing
type QPAttr struct {
	State           QPState
	Port            uint8
	PKeyIndex       uint16
	Access          Access // remote access rights granted on this QP
	PathMTU         MTU
	DestQPN         uint32
	RQPSN           uint32
	SQPSN           uint32
	MaxRdAtomic     int   // outstanding RDMA READs this QP may issue
	MaxDestRdAtomic int   // outstanding RDMA READs this QP answers
	MinRNRTimer     uint8 // IB encoding
	Timeout         uint8 // IB encoding: 4.096 us * 2^Timeout
	RetryCount      uint8 // 0..7
	RNRRetry        uint8 // 0..7, 7 = infinite
	Remote          Endpoint
}

// Endpoint is the address of a remote port for a manual connection.
type Endpoint struct {
	LID      uint16
	GID      GID
	GIDIndex int  // local GID index to send from (RoCE)
	Global   bool // use the GRH (always on RoCE)
	HopLimit uint8
}

// SGE is a scatter/gather element: Length bytes at Addr inside the memory
// region with local key LKey.
type SGE struct {
	Addr   uint64
	Length uint32
	LKey   uint32
}

// Opcode is a send-queue work-request opcode.
type Opcode uint8

// Send-queue opcodes.
const (
	OpSend         Opcode = iota + 1 // SEND
	OpSendImm                        // SEND with immediate data
	OpSendInv                        // SEND with invalidate (InvalidateRKey)
	OpRDMAWrite                      // RDMA WRITE to Remote/RKey
	OpRDMAWriteImm                   // RDMA WRITE with immediate data
	OpRDMARead                       // RDMA READ from Remote/RKey
)

func (o Opcode) String() string {
	switch o {
	case OpSend:
		return "SEND"
	case OpSendImm:
		return "SEND_WITH_IMM"
	case OpSendInv:
		return "SEND_WITH_INV"
	case OpRDMAWrite:
		return "RDMA_WRITE"
	case OpRDMAWriteImm:
		return "RDMA_WRITE_WITH_IMM"
	case OpRDMARead:
		return "RDMA_READ"
	}
	return fmt.Sprintf("Opcode(%d)", uint8(o))
}

// SendFlags are send work-request flags.
type SendFlags uint8

// Send flags.
const (
	FlagSignaled  SendFlags = 1 << iota // generate a completion
	FlagSolicited                       // solicited event at the receiver
	FlagInline                          // copy the payload into the WR (<= MaxInline)
	FlagFence                           // wait for prior RDMA READs to complete
)

// SendWR is a send-queue work request.
type SendWR struct {
	ID     uint64 // returned in the Completion; encodes (operation, slot)
	Op     Opcode
	Flags  SendFlags
	SGL    []SGE  // local buffers; at most QPConfig.MaxSendSGE
	Remote uint64 // RDMA: remote virtual address
	RKey   uint32 // RDMA: remote key
	Imm    uint32 // immediate data (network byte order on the wire)
	// InvalidateRKey is the remote key that OpSendInv invalidates at the
	// receiver.
	InvalidateRKey uint32
}

// RecvWR is a receive-queue work request.
type RecvWR struct {
	ID  uint64
	SGL []SGE // at most QPConfig.MaxRecvSGE
}

// WCStatus is a work-completion status (ibv_wc_status numbering).
type WCStatus uint8

// Work-completion statuses.
const (
	WCSuccess          WCStatus = 0
	WCLocLenErr        WCStatus = 1
	WCLocQPOpErr       WCStatus = 2
	WCLocEECOpErr      WCStatus = 3
	WCLocProtErr       WCStatus = 4
	WCWRFlushErr       WCStatus = 5
	WCMWBindErr        WCStatus = 6
	WCBadRespErr       WCStatus = 7
	WCLocAccessErr     WCStatus = 8
	WCRemInvReqErr     WCStatus = 9
	WCRemAccessErr     WCStatus = 10
	WCRemOpErr         WCStatus = 11
	WCRetryExcErr      WCStatus = 12
	WCRNRRetryExcErr   WCStatus = 13
	WCLocRDDViolErr    WCStatus = 14
	WCRemInvRDReqErr   WCStatus = 15
	WCRemAbortErr      WCStatus = 16
	WCInvEECNErr       WCStatus = 17
	WCInvEECStateErr   WCStatus = 18
	WCFatalErr         WCStatus = 19
	WCRespTimeoutErr   WCStatus = 20
	WCGeneralErr       WCStatus = 21
	wcStatusNamesCount          = 22
)

var wcStatusNames = [wcStatusNamesCount]string{
	"success", "local length error", "local QP operation error", "local EE context operation error",
	"local protection error", "WR flushed", "memory window bind error", "bad response error",
	"local access error", "remote invalid request error", "remote access error", "remote operation error",
	"transport retry counter exceeded", "RNR retry counter exceeded", "local RDD violation error",
	"remote invalid RD request", "remote aborted error", "invalid EE context number",
	"invalid EE context state", "fatal error", "response timeout error", "general error",
}

func (s WCStatus) String() string {
	if int(s) < len(wcStatusNames) {
		return wcStatusNames[s]
	}
	return fmt.Sprintf("WCStatus(%d)", uint8(s))
}

// WCOpcode is the operation a completion reports.
type WCOpcode uint8

// Completion opcodes.
const (
	WCSend WCOpcode = iota + 1
	WCRDMAWrite
	WCRDMARead
	WCRecv
	WCRecvRDMAWithImm
)

func (o WCOpcode) String() string {
	switch o {
	case WCSend:
		return "SEND"
	case WCRDMAWrite:
		return "RDMA_WRITE"
	case WCRDMARead:
		return "RDMA_READ"
	case WCRecv:
		return "RECV"
	case WCRecvRDMAWithImm:
		return "RECV_RDMA_WITH_IMM"
	}
	return fmt.Sprintf("WCOpcode(%d)", uint8(o))
}

// WCFlags are completion flags.
type WCFlags uint8

// Completion flags.
const (
	WCWithImm WCFlags = 1 << iota // Imm is valid
	WCWithInv                     // InvalidatedRKey is valid
)

// Completion is a work completion. For a failed completion only ID,
// Status, VendorErr and QPNum are defined (as in verbs).
type Completion struct {
	ID              uint64
	Status          WCStatus
	Opcode          WCOpcode
	Flags           WCFlags
	VendorErr       uint32
	ByteLen         uint32 // bytes received (receive completions)
	Imm             uint32
	InvalidatedRKey uint32
	QPNum           uint32
}

// ConnParam holds RDMA CM connection parameters (rdma_conn_param).
type ConnParam struct {
	// ResponderResources is how many RDMA READs this side answers at once.
	ResponderResources uint8
	// InitiatorDepth is how many RDMA READs this side issues at once.
	InitiatorDepth uint8
	RetryCount     uint8 // 0..7
	RNRRetryCount  uint8 // 0..7, 7 = infinite
}

// ListenConfig specifies a CM listener.
type ListenConfig struct {
	Backlog int // 0: provider default
}

// DialConfig specifies a CM dial.
type DialConfig struct {
	// Source is an optional local address ("ip" or "ip:port").
	Source string
	// Timeout bounds each of address and route resolution; 0: 2 s.
	Timeout time.Duration
}
