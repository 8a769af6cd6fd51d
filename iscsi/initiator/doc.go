// Package initiator is a Go iSCSI initiator (RFC 7143) for tests and load
// generation: the client counterpart of the goiser target.
//
// A session is opened with Dial, which connects, logs in (security
// negotiation with optional one-way or mutual CHAP, then operational
// negotiation) and starts one reader goroutine that routes every response
// to its command by Initiator Task Tag:
//
//	s, err := initiator.Dial(ctx, "127.0.0.1:3260", initiator.Config{
//		InitiatorName: "iqn.2026-11.org.goiser:client",
//		TargetName:    "iqn.2026-11.org.goiser:disk",
//		HeaderDigest:  initiator.DigestCRC32C,
//	})
//	if err != nil { ... }
//	defer s.Close()
//	buf := make([]byte, 4096)
//	err = s.Read16(ctx, 0, 0, 512, buf)  // LUN 0, LBA 0, 8 blocks
//	r, err := s.Execute(ctx, 0, cdb, nil, buf) // any CDB; r.Status, r.Sense()
//
// Any number of goroutines may call Execute at once (up to
// Config.MaxTasks in flight); commands leave in CmdSN order within the
// target's window. Writes send immediate data, unsolicited Data-Out up to
// FirstBurstLength, and Data-Out for each R2T within MaxBurstLength and the
// target's MaxRecvDataSegmentLength. Reads land straight in the caller's
// buffer. With buffers reused, a READ or WRITE allocates nothing.
//
// Discover runs a discovery session (SendTargets=All). Ping, TaskManagement
// (ABORT TASK via Start/Call, ABORT TASK SET, LUN RESET, TARGET WARM/COLD
// RESET) and Logout complete the full feature phase.
//
// For bad-input tests, DialConn logs in and returns the raw *Conn with no
// goroutine attached: WritePDU, WritePDURaw (lengths and digests as the
// test wants them) and ReadPDU exchange arbitrary PDUs, and SeqNumbers
// gives the CmdSN and ExpStatSN to put in them.
//
// The transport is a seam, Transport: the login and the Session only
// exchange whole headers and data segments with it, never stream bytes.
// *Conn is the TCP Transport (Dial, DialConn and Discover use it); Login
// and DiscoverOver log in over any Transport, such as package iser's,
// where every PDU is an RDMA SEND behind an iSER header:
//
//	s, err := initiator.Login(ctx, t, cfg) // t: an established Transport
//
// A Transport's Caps say what it does itself. With ISER the login offers
// RDMAExtensions=Yes, InitiatorRecvDataSegmentLength and
// TargetRecvDataSegmentLength and no digests (RFC 7145 §6.3). With
// PlacesDataIn the target writes read data itself (RDMA WRITE): no
// Data-In PDU may come, and Result.DataInLen is the EDTL less the
// residual. With NoR2T the target fetches write data itself (RDMA READ):
// an R2T ends the session. Per SCSI command the Session calls BeginTask
// with the command's buffers (a TaskIO) before the command PDU leaves, so
// the transport can put their STags in its header, and EndTask once the
// task is over, before the caller sees the result, so staged read data
// can be copied out. For TCP both are no-ops.
//
// The initiator is strict about what a target sends, so that tests of a
// target fail on its mistakes: PDUs are decoded with iscsi/pdu's strict
// types; StatSN must have no gaps; Data-In must arrive in DataSN and
// offset order; R2Ts must be numbered and within MaxBurstLength; a GOOD
// read must match its residual; a target must answer every key offered,
// except the Boolean offers whose outcome the offer decides (RFC 7143
// §6.2: InitialR2T=Yes, DataPDUInOrder=Yes, ImmediateData=No, ...), which
// LIO leaves unanswered.
//
// Errors: a command that reached the target returns its status in Result
// (Result.Err, *SCSIError with decoded sense); a login refusal is a
// *LoginError carrying the status class and detail; a Reject is a
// *RejectError; a command ended by a task management function fails with
// ErrAborted; calls on an ended session fail with its cause (ErrClosed
// after Close or Logout). Every blocking call takes a context; a write in
// progress is bounded by Config.WriteTimeout instead, and a context that
// ends while a command is in flight abandons it (ABORT TASK is sent in the
// background).
//
// Tests: go test ./iscsi/initiator runs end-to-end tests against the
// goiser target in process and, as root with Debian's tgt installed,
// against a private tgtd; a target bug fails with "server bug:". go test
// -bench . -benchmem shows 0
// allocs/op for 4 KiB and 128 KiB READ and WRITE.
package initiator
