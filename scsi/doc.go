// Package scsi is the transport-free SCSI target core: it decodes CDBs,
// runs the SPC-4 and SBC-3 commands of a block device against a
// backend.Backend, and builds sense data. It knows nothing of iSCSI.
//
// A transport builds one Target from the configured logical units and
// calls Execute for each command:
//
//	be, _ := backend.NewMemory(1 << 30)
//	t, _ := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}})
//	var cmd scsi.Command
//	cmd.Nexus = nexus            // who sends it (reservations, unit attentions)
//	cmd.CDB = cdb                // e.g. READ(10)
//	cmd.DataIn = buf             // where read data goes; never replaced
//	t.Execute(ctx, &cmd)
//	// cmd.Status, cmd.Sense, cmd.DataInLen, cmd.Want
//
// Execute finds the handler by operation code (and service action) in a
// table built once per Target. Before the handler runs, the common checks
// happen in SAM order: LUN existence, CONTROL byte (NACA), pending unit
// attentions of the nexus, and reservation conflicts. Per-LUN state
// (unit attentions, reservations, mode pages) lives in one struct guarded
// by one mutex; READ and WRITE touch it only through atomics, so the
// datapath takes no lock and allocates nothing.
//
// Task management (LOGICAL UNIT RESET, TARGET RESET) and I_T nexus loss
// come from the transport through ResetLUN, Reset and NexusLost.
package scsi
