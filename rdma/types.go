package rdma

import "github.com/goiser/goiser/rdma/driver"

// Value types shared with the providers, re-exported so that users of
// package rdma never import rdma/driver. They are aliases: no conversion,
// no cost on the datapath.
type (
	// DeviceInfo names a device a provider can open.
	DeviceInfo = driver.DeviceInfo
	// DeviceAttr holds device attributes (a subset of ibv_device_attr).
	DeviceAttr = driver.DeviceAttr
	// PortAttr holds port attributes (a subset of ibv_port_attr).
	PortAttr = driver.PortAttr
	// PortState is the logical state of a port.
	PortState = driver.PortState
	// MTU is a path MTU in bytes.
	MTU = driver.MTU
	// LinkLayer is a port's link layer.
	LinkLayer = driver.LinkLayer
	// GID is a 128-bit global identifier.
	GID = driver.GID
	// Access is a set of memory-region access rights.
	Access = driver.Access
	// QPType is a queue pair transport type (only RC).
	QPType = driver.QPType
	// QPConfig is a queue pair's capacities as the provider got them
	// (see QueuePair.Config).
	QPConfig = driver.QPConfig
	// QPState is a queue pair state.
	QPState = driver.QPState
	// QPAttr carries what a manual state transition needs (see QueuePair.Modify).
	QPAttr = driver.QPAttr
	// Endpoint is the address of a remote port for a manual connection.
	Endpoint = driver.Endpoint
	// SGE is a scatter/gather element inside a registered memory region.
	SGE = driver.SGE
	// Opcode is a send-queue work-request opcode.
	Opcode = driver.Opcode
	// SendFlags are send work-request flags.
	SendFlags = driver.SendFlags
	// SendWR is a send-queue work request.
	SendWR = driver.SendWR
	// RecvWR is a receive-queue work request.
	RecvWR = driver.RecvWR
	// WCStatus is a work-completion status.
	WCStatus = driver.WCStatus
	// WCOpcode is the operation a completion reports.
	WCOpcode = driver.WCOpcode
	// WCFlags are completion flags.
	WCFlags = driver.WCFlags
	// Completion is a work completion.
	Completion = driver.Completion
	// ConnParam holds RDMA CM connection parameters.
	ConnParam = driver.ConnParam
	// ListenConfig specifies a CM listener.
	ListenConfig = driver.ListenConfig
	// DialConfig specifies a CM dial.
	DialConfig = driver.DialConfig
)

// Port states.
const (
	PortDown   = driver.PortDown
	PortInit   = driver.PortInit
	PortArmed  = driver.PortArmed
	PortActive = driver.PortActive
)

// Link layers.
const (
	LinkLayerInfiniBand = driver.LinkLayerInfiniBand
	LinkLayerEthernet   = driver.LinkLayerEthernet
)

// Access rights. Local read is always granted.
const (
	AccessLocalWrite   = driver.AccessLocalWrite
	AccessRemoteWrite  = driver.AccessRemoteWrite
	AccessRemoteRead   = driver.AccessRemoteRead
	AccessRemoteAtomic = driver.AccessRemoteAtomic
)

// RC is the reliable-connected queue pair type, the only one supported.
const RC = driver.RC

// Queue pair states.
const (
	QPReset = driver.QPReset
	QPInit  = driver.QPInit
	QPRTR   = driver.QPRTR
	QPRTS   = driver.QPRTS
	QPSQD   = driver.QPSQD
	QPSQE   = driver.QPSQE
	QPError = driver.QPError
)

// Send-queue opcodes.
const (
	OpSend         = driver.OpSend
	OpSendImm      = driver.OpSendImm
	OpSendInv      = driver.OpSendInv
	OpRDMAWrite    = driver.OpRDMAWrite
	OpRDMAWriteImm = driver.OpRDMAWriteImm
	OpRDMARead     = driver.OpRDMARead
)

// Send flags.
const (
	FlagSignaled  = driver.FlagSignaled
	FlagSolicited = driver.FlagSolicited
	FlagInline    = driver.FlagInline
	FlagFence     = driver.FlagFence
)

// Work-completion statuses (the ones callers branch on; every value of
// driver.WCStatus can be returned).
const (
	WCSuccess        = driver.WCSuccess
	WCLocLenErr      = driver.WCLocLenErr
	WCLocQPOpErr     = driver.WCLocQPOpErr
	WCLocProtErr     = driver.WCLocProtErr
	WCWRFlushErr     = driver.WCWRFlushErr
	WCBadRespErr     = driver.WCBadRespErr
	WCLocAccessErr   = driver.WCLocAccessErr
	WCRemInvReqErr   = driver.WCRemInvReqErr
	WCRemAccessErr   = driver.WCRemAccessErr
	WCRemOpErr       = driver.WCRemOpErr
	WCRetryExcErr    = driver.WCRetryExcErr
	WCRNRRetryExcErr = driver.WCRNRRetryExcErr
	WCFatalErr       = driver.WCFatalErr
	WCGeneralErr     = driver.WCGeneralErr
)

// Completion opcodes.
const (
	WCSend            = driver.WCSend
	WCRDMAWrite       = driver.WCRDMAWrite
	WCRDMARead        = driver.WCRDMARead
	WCRecv            = driver.WCRecv
	WCRecvRDMAWithImm = driver.WCRecvRDMAWithImm
)

// Completion flags.
const (
	WCWithImm = driver.WCWithImm
	WCWithInv = driver.WCWithInv
)
