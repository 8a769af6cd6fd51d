package initiator

// Transport carries the PDUs of one iSCSI connection for a login and then
// a Session: whole headers and data segments, never stream offsets, plus
// the data of each SCSI command. *Conn implements it over TCP (RFC 7143
// framing: padding, digests, Data-In and R2T/Data-Out PDUs). Package iser
// implements it over RDMA (RFC 7145), where every PDU, login included, is
// a SEND behind a 28-byte iSER header, and the target moves SCSI data
// itself with RDMA WRITE (Data-In) and RDMA READ (solicited Data-Out).
//
// The Session calls the methods as follows:
//
//   - Send from any goroutine (commands, Data-Out, NOP-Out answers): the
//     transport serializes them. It never retains bhs, ahs or data after
//     it returns.
//   - RecvHeader, then RecvData or SkipData for the data segment that
//     header announced, from one goroutine at a time (the login, then the
//     Session's reader).
//   - Caps before the login starts; Negotiated once after it succeeds and
//     before any full feature PDU.
//   - BeginTask before the SCSI Command PDU of a task is sent, EndTask
//     exactly once for every BeginTask that succeeded, when the task is
//     over (see EndTask).
//   - Close from any goroutine, possibly more than once; a blocked Recv
//     call then returns an error.
type Transport interface {
	// Send sends one PDU: the BHS, with TotalAHSLength and
	// DataSegmentLength already matching ahs and data, the AHS and the
	// data segment (without padding; TCP adds padding and digests, iSER
	// the iSER header). For a SCSI Command the transport finds the task
	// registered with BeginTask by the ITT in bhs (iSER: it puts the
	// task's Write and Read STag/VA in the iSER header and sends the
	// immediate data in the same SEND).
	Send(bhs *[BHSLen]byte, ahs, data []byte) error
	// RecvHeader reads the next PDU's BHS into bhs and its AHS into *ahs
	// (grown as needed). An error ends the connection.
	RecvHeader(bhs *[BHSLen]byte, ahs *[]byte) error
	// RecvData places the data segment announced by the last header in
	// dst; len(dst) is the announced length.
	RecvData(bhs *[BHSLen]byte, dst []byte) error
	// SkipData drops the n-byte data segment of the last header.
	SkipData(bhs *[BHSLen]byte, n int) error

	// Caps says how the transport moves data and how to log in.
	Caps() Caps
	// Negotiated is called once the login succeeded, before the first
	// full feature PDU, with the values in force: TCP turns on digests
	// and its receive limit; iSER sizes its buffers from the
	// InitiatorRecvDataSegmentLength and TargetRecvDataSegmentLength.
	Negotiated(p Params) error

	// BeginTask registers a SCSI command's data before its command PDU is
	// sent. An error fails the command before anything is sent. TCP does
	// nothing; iSER makes the buffers reachable by the target (it may
	// register them, or stage them through a registered pool: then it
	// copies io.DataOut in now). The transport may keep io until EndTask.
	BeginTask(io *TaskIO) error
	// EndTask ends the transport's use of a task's buffers. It is called
	// when the SCSI Response arrived (before the caller sees the result),
	// or when the task ended otherwise: aborted by a task management
	// function, or failed with the session (after Close). dataInLen is
	// the number of bytes of io.DataIn the target filled (a transport
	// that staged Data-In copies them out now); it is negative when the
	// caller abandoned the task, whose buffers must then not be touched.
	// The target must no longer access the buffers once EndTask returns
	// (iSER: a response, a completed TMF or a drained connection
	// guarantees it).
	EndTask(itt uint32, dataInLen int)

	// Close ends the connection. It may be called more than once.
	Close() error
}

// Caps are what a Transport does itself and what the Session must
// respect.
type Caps struct {
	// ISER logs in with RDMAExtensions=Yes (RFC 7145 §6.3):
	// InitiatorRecvDataSegmentLength and TargetRecvDataSegmentLength
	// replace MaxRecvDataSegmentLength, and digests (HeaderDigest,
	// DataDigest) and markers are not offered, so they stay None and No.
	// The login fails if the target does not answer RDMAExtensions=Yes.
	ISER bool
	// PlacesDataIn says that the transport puts read data into the
	// task's buffer itself (iSER: the target's RDMA WRITE): no Data-In
	// PDU is expected (one is a protocol error that ends the session),
	// and a read's Result.DataInLen comes from the SCSI Response: the
	// Expected Data Transfer Length less the residual on underflow.
	PlacesDataIn bool
	// NoR2T says that the target fetches solicited write data itself
	// (iSER: RDMA READ from the task's buffer): an R2T is a protocol
	// error that ends the session. Immediate data and unsolicited
	// Data-Out PDUs are still sent through Send.
	NoR2T bool
	// MaxRecvDataSegmentLength, when not zero, bounds the data segment
	// the transport can receive in one PDU (iSER: its receive buffers);
	// the login declares no more.
	MaxRecvDataSegmentLength uint32
	// MaxSendDataSegmentLength, when not zero, bounds the data segment
	// the transport can send in one PDU (iSER: its send buffers); the
	// login offers no more as TargetRecvDataSegmentLength (iSER only).
	MaxSendDataSegmentLength uint32
}

// TaskIO is the data of one SCSI command, handed to Transport.BeginTask.
// The slices are the caller's buffers (Session.Start's dataOut and
// dataIn); they belong to the session until the task ends.
type TaskIO struct {
	// ITT is the command's Initiator Task Tag.
	ITT uint32
	// DataOut is the write data (nil for a read or no data); its length
	// is the Expected Data Transfer Length of a write.
	DataOut []byte
	// DataIn is the read buffer (nil for a write or no data); its length
	// is the Expected Data Transfer Length of a read.
	DataIn []byte
	// Immediate is the number of leading DataOut bytes sent as immediate
	// data in the command PDU.
	Immediate int
	// Unsolicited is the number of leading DataOut bytes the initiator
	// sends itself, immediate data included (unsolicited Data-Out PDUs
	// carry the rest of them, RFC 7143 §11.7.4). The target solicits the
	// remaining len(DataOut)-Unsolicited bytes (iSER: the Write VA points
	// Unsolicited bytes into the buffer, as Linux ib_iser sets it).
	Unsolicited int
}
