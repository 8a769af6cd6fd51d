package iscsi

import (
	"time"

	"github.com/goiser/goiser/scsi"
)

// taskState is where a task is in its life (RFC 7143 §4.2.3 "task"):
// received, fetching Data-Out, executing on a worker, answered.
type taskState uint8

const (
	taskFree       taskState = iota // in the free list
	taskNeedBuffer                  // waiting for the transport's buffer (InBufferReady)
	taskWaitData                    // write: GetData in progress
	taskExecuting                   // on a worker inside scsi.Target.Execute
	taskDone                        // response sent (or suppressed); about to be released
)

// String returns the name of the state.
func (s taskState) String() string {
	switch s {
	case taskFree:
		return "free"
	case taskNeedBuffer:
		return "need-buffer"
	case taskWaitData:
		return "wait-data"
	case taskExecuting:
		return "executing"
	case taskDone:
		return "done"
	}
	return "taskState(?)"
}

// Task is one SCSI command of a connection, from its SCSI Command PDU to its
// SCSI Response. Tasks are pooled per connection. The exported fields are
// what a transport needs; they are set by the core before the task is
// handed to GetData or PutData and stay fixed while the transport uses
// them.
type Task struct {
	// ITT is the Initiator Task Tag.
	ITT uint32
	// LUN is the raw 8-byte LUN field of the SCSI Command.
	LUN uint64
	// EDTL is the Expected Data Transfer Length of the command.
	EDTL uint32
	// Data is the transport's handle for the task's data, from
	// Inbound.Task; nil for a command that moves no data.
	Data TaskData
	// Buf is Data.Buffer() once the transport has given the buffer:
	// Data-Out lands here, Data-In is read from here. It belongs to the
	// transport's pool; the task borrows it until Release.
	Buf []byte

	// Core state, owned by the connection's owner goroutine except cmd,
	// which the worker running the task owns while state is
	// taskExecuting.
	state   taskState
	cmdSN   uint32
	read    bool   // R bit
	write   bool   // W bit
	imm     int    // immediate data bytes in Buf
	dsl     uint32 // data segment length of the SCSI Command PDU
	want    int    // Data-Out bytes to fetch (write)
	aborted bool   // a TMF aborted it: no response is sent...
	// thirdParty: ...unless another session's TMF aborted it: then it
	// ends with TASK ABORTED status.
	thirdParty bool
	// dataSince is when the task started waiting for its Data-Out
	// (taskWaitData), for Limits.DataOutTimeout.
	dataSince time.Time
	cmd       scsi.Command
	cdb       [32]byte
}

// reset prepares the task for reuse.
func (t *Task) reset() {
	t.ITT, t.LUN, t.EDTL = 0, 0, 0
	t.Buf, t.Data = nil, nil
	t.state = taskFree
	t.cmdSN = 0
	t.read, t.write = false, false
	t.imm, t.want, t.dsl = 0, 0, 0
	t.aborted, t.thirdParty = false, false
	t.dataSince = time.Time{}
	t.cmd.Reset()
}
