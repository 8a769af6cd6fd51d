// Package iscsi is the transport-agnostic iSCSI target core (RFC 7143):
// login, sessions, connections, tasks and task management, on top of the
// SCSI core in package scsi.
//
// A Server serves Targets on one or more Transports, the way net/http's
// Server serves Handlers on net.Listeners:
//
//	be, _ := backend.NewMemory(1 << 30)
//	luns, _ := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}})
//	srv := &iscsi.Server{
//		Targets: []*iscsi.Target{{Name: "iqn.2026-01.io.goiser:disk", LUNs: luns}},
//		Logger:  slog.Default(),
//	}
//	go tcp.ListenAndServe(srv, "127.0.0.1:3260", tcp.Config{}) // returns ErrServerClosed
//	...
//	srv.Shutdown(ctx)
//
// # Layers
//
// A Transport (iscsi/tcp over TCP, iser over RDMA) accepts connections and
// hands the core a TransportConn. The seam sits at the datamover level of
// RFC 5047: the core receives whole control PDUs (Recv), sends control PDUs
// (Send), and moves task data with two verbs: GetData (TCP: R2T and
// Data-Out; iSER: RDMA READ) and PutData (TCP: Data-In with the status
// collapsed into the last PDU; iSER: RDMA WRITE chained with the SCSI
// Response SEND). The transport allocates each task's data buffer when the
// SCSI Command arrives (pooled heap memory for TCP, registered memory for
// iSER), so the SCSI core reads and writes straight into it.
//
// # Goroutines
//
// Each connection has a reader goroutine that pumps TransportConn.Recv
// events into a channel, an owner goroutine that holds all ordering state
// (StatSN, ExpCmdSN/MaxCmdSN window, the task table keyed by ITT, the login
// state machine, pending task management requests), and up to
// Server.Workers worker goroutines that call scsi.Target.Execute and hand
// finished tasks back over a channel. Nothing but the owner touches a task
// outside Execute, so there are no locks on the command path.
//
// # Login
//
// A loginState, like crypto/tls's handshake state, lives only until the
// full feature phase: it checks versions, stages (CSG/NSG, T and C bits),
// the initiator ACL of the target, runs AuthMethod and CHAP (MD5, SHA-1,
// SHA-256; one-way and mutual), negotiates the operational keys, allocates
// the TSIH and reinstates an older session of the same initiator and ISID.
// Every failure sends the Login Response status of RFC 7143 §11.13.5.
//
// # Text limits
//
// What an initiator sends decides little of what the target keeps or
// sends. A login or Text request continued over PDUs (C bit) is joined up
// to Server.MaxTextLength (64 KiB): past it a login fails with an
// initiator error and a Text exchange ends with a Reject, its buffers
// freed. A text may carry at most text.MaxUnknownKeys keys to answer
// NotUnderstood (login) or Reject (Text). Responses go out in pieces the
// initiator may receive, continued with the C bit: Login Responses at 8192
// bytes or the MaxRecvDataSegmentLength the initiator declared if less,
// Text Responses at the negotiated one. Between exchanges a session holds
// no text buffer.
//
// # Task management
//
// ABORT TASK and ABORT TASK SET abort the session's own tasks; LOGICAL
// UNIT RESET, CLEAR TASK SET and the TARGET RESETs also reach the other
// sessions of the target, whose affected tasks end with TASK ABORTED. The
// TMF response is sent once every affected task is gone, and aborted tasks
// of the requesting session get no response (RFC 7143 §4.2.3). Resets then
// call scsi.Target.ResetLUN or Reset; a TARGET COLD RESET also ends every
// session of the target. CLEAR ACA is not supported, TASK REASSIGN needs
// ErrorRecoveryLevel 2.
//
// # Error recovery
//
// ErrorRecoveryLevel is 0. A header that cannot be trusted (digest error,
// oversized data segment) drops the connection; a malformed but readable
// PDU, an unknown opcode or a SNACK gets a Reject and the connection goes
// on; a broken Data-Out sequence fails its task with CHECK CONDITION. A
// session has one connection (MaxConnections=1): logging in again with the
// same ISID, TSIH and CID replaces it (connection reinstatement), the same
// ISID with TSIH 0 replaces the whole session (session reinstatement).
// Commands outside the CmdSN window are ignored; immediate commands beyond
// the queue get TASK SET FULL.
//
// # Shutdown
//
// Server.Shutdown closes the transports, sends each full-feature session an
// Async Message asking to log out, answers the commands already received,
// and waits for the logouts (at most LoginTimeout per connection) or for
// its context. Server.Close drops everything at once.
package iscsi
