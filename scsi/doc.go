// Package scsi is the transport-free SCSI target core: it decodes CDBs,
// runs the SPC-4 and SBC-3 commands of a block device against a
// backend.Backend, and builds sense data. It knows nothing of iSCSI; a
// transport hands it commands and moves the data.
//
// # Walk-through
//
// A transport builds one Target from the configured logical units and
// calls Execute for each command, with buffers it owns (pooled heap for
// TCP, registered memory for iSER):
//
//	be, _ := backend.NewMemory(1 << 30)
//	t, _ := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}})
//	n, ok := t.DataOutLen(lun, cdb) // before a write: how much Data-Out to fetch
//	var cmd scsi.Command            // pooled; Reset before reuse
//	cmd.Nexus = nexus               // who sends it (reservations, unit attentions)
//	cmd.LUN, cmd.CDB = lun, cdb
//	cmd.DataOut = received          // write data, or
//	cmd.DataIn = buf                // where read data goes; never replaced
//	t.Execute(ctx, &cmd)
//	// cmd.Status, cmd.Sense, cmd.DataInLen, cmd.Want
//
// Want is what the CDB itself asks to move (for allocation-length
// commands, what the device server would return); with the transport's
// expected length it gives the residual: overflow when Want exceeds it,
// underflow when DataInLen (reads) or Want (writes) falls short of it.
//
// # Inside Execute
//
// The handler is found by operation code and service action in a table
// built once per Target (dispatch.go). Each entry carries its CDB usage
// data, which REPORT SUPPORTED OPERATION CODES returns and which also
// rejects every reserved bit set in a CDB. Before the handler runs, the
// common checks happen in SAM-5 order: LUN existence (INQUIRY gets
// peripheral qualifier 011b, other commands LOGICAL UNIT NOT SUPPORTED),
// pending unit attentions of the nexus, operation code, reserved bits and
// the CONTROL byte (NACA and LINK are not supported), reservation
// conflicts (RESERVE(6/10) and the six persistent reservation types, SPC-4
// 5.13), and a removable LU's missing medium. Handlers return a status and
// sense information by value; Execute builds fixed or descriptor format
// sense (control mode page D_SENSE) into an array inside the Command, so
// READ and WRITE allocate nothing.
//
// # State and concurrency
//
// A Target is safe for concurrent use. The state of one logical unit (unit
// attentions per I_T nexus, reservations and registrations, mode page
// values, held EXTENDED COPY results, PREVENT ALLOW) lives in its lun struct
// under one mutex; the datapath reads the few values it needs (D_SENSE,
// SWP, WCE, "any reservation", "any unit attention", "ejected") through
// atomics and takes the lock only when one of them says so. A second
// reader-writer lock per LU makes COMPARE AND WRITE, ORWRITE and WRITE
// ATOMIC indivisible with respect to READ and WRITE. Persistent reservation
// registrations are capped per LU (LUNConfig.MaxRegistrations) and indexed
// by nexus, so the conflict check of a command is a lookup under the read
// lock.
//
// # Commands
//
// SPC-4: TEST UNIT READY, REQUEST SENSE, INQUIRY (standard; VPD 0x00,
// 0x80, 0x83, 0xB0, 0xB1, 0xB2), MODE SENSE and MODE SELECT 6/10 (caching,
// control, informational exceptions pages; saved values not supported),
// REPORT LUNS, REPORT SUPPORTED OPERATION CODES (with timeouts),
// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, RESERVE/RELEASE 6/10,
// PERSISTENT RESERVE IN (READ KEYS, READ RESERVATION, REPORT CAPABILITIES,
// READ FULL STATUS) and OUT (REGISTER, REGISTER AND IGNORE EXISTING KEY,
// RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT AND ABORT, REGISTER AND MOVE
// to a nexus the LU knows), EXTENDED COPY (LID1, block to block; every LU
// it reads or writes gets the checks a READ or WRITE of the same nexus would,
// and a refusal is COPY ABORTED) and RECEIVE COPY RESULTS.
//
// SBC-3: READ/WRITE 6/10/12/16, WRITE AND VERIFY and VERIFY 10/12/16,
// PRE-FETCH and SYNCHRONIZE CACHE 10/16, WRITE SAME 10/16 (UNMAP, NDOB),
// UNMAP, GET LBA STATUS, COMPARE AND WRITE, ORWRITE(16), WRITE ATOMIC(16),
// READ CAPACITY 10/16, READ DEFECT DATA 10/12, START STOP UNIT, PREVENT
// ALLOW MEDIUM REMOVAL. FUA, FUA_NV, SYNCHRONIZE CACHE and a write cache
// disabled through MODE SELECT reach the backend's Flush: every command that
// changes a medium (WRITE, WRITE SAME, UNMAP, COMPARE AND WRITE, EXTENDED
// COPY's destinations ...) records the LUs it changed in the Command, and
// Execute flushes them before GOOD while their WCE is 0 or the CDB has FUA.
//
// Not implemented: persistence of reservations across power loss (APTPL),
// ALL_TG_PT and SPEC_I_PT, protection information, SANITIZE, EXTENDED COPY
// LID4 and ROD tokens.
//
// Task management (LOGICAL UNIT RESET, TARGET WARM/COLD RESET) and I_T
// nexus loss come from the transport through ResetLUN, Reset and
// NexusLost.
package scsi
