package scsi

import "fmt"

// Nexus identifies an I_T nexus (SAM-5). It is comparable and used as a map key.
type Nexus struct {
	InitiatorName string // e.g. "iqn.1994-05.com.redhat:client"
	InitiatorPort string // SCSI initiator port name: iSCSI "<name>,i,0x<ISID as 12 hex digits>"
	TargetPort    string // SCSI target port name: iSCSI "<target name>,t,0x<TPGT as 4 hex digits>"
	RelativePort  uint16 // relative target port identifier (TPGT for iSCSI), >= 1
}

// TaskAttr is the SAM task attribute of a command.
type TaskAttr uint8

// Task attributes (SAM-5 8.9), numbered as in the iSCSI SCSI Command PDU ATTR field.
const (
	TaskUntagged    TaskAttr = 0
	TaskSimple      TaskAttr = 1
	TaskOrdered     TaskAttr = 2
	TaskHeadOfQueue TaskAttr = 3
	TaskACA         TaskAttr = 4
)

// String returns the SAM name of the attribute.
func (a TaskAttr) String() string {
	switch a {
	case TaskUntagged:
		return "UNTAGGED"
	case TaskSimple:
		return "SIMPLE"
	case TaskOrdered:
		return "ORDERED"
	case TaskHeadOfQueue:
		return "HEAD OF QUEUE"
	case TaskACA:
		return "ACA"
	}
	return fmt.Sprintf("TaskAttr(%d)", uint8(a))
}

// Status is the SCSI status byte (SAM-5 5.3).
type Status uint8

// SCSI status codes.
const (
	StatusGood                Status = 0x00
	StatusCheckCondition      Status = 0x02
	StatusConditionMet        Status = 0x04
	StatusBusy                Status = 0x08
	StatusReservationConflict Status = 0x18
	StatusTaskSetFull         Status = 0x28
	StatusACAActive           Status = 0x30
	StatusTaskAborted         Status = 0x40
)

// String returns the SAM name of the status.
func (s Status) String() string {
	switch s {
	case StatusGood:
		return "GOOD"
	case StatusCheckCondition:
		return "CHECK CONDITION"
	case StatusConditionMet:
		return "CONDITION MET"
	case StatusBusy:
		return "BUSY"
	case StatusReservationConflict:
		return "RESERVATION CONFLICT"
	case StatusTaskSetFull:
		return "TASK SET FULL"
	case StatusACAActive:
		return "ACA ACTIVE"
	case StatusTaskAborted:
		return "TASK ABORTED"
	}
	return fmt.Sprintf("Status(0x%02x)", uint8(s))
}

// MaxSenseLen is the largest sense data a Command carries.
const MaxSenseLen = 96

// Command is one SCSI command. The transport fills the input fields, calls
// Target.Execute, then reads the result fields. A Command is reused from a
// pool: Reset clears it.
type Command struct {
	// Inputs.

	Nexus Nexus
	// LUN is the LUN number decoded from the 8-byte SAM LUN field
	// (peripheral or flat addressing).
	LUN  uint64
	CDB  []byte // 6..32 bytes
	Attr TaskAttr
	// DataOut holds the bytes received from the initiator (for WRITE-like
	// commands). Longer than the CDB asks, the excess is ignored; shorter,
	// the command fails before it changes anything (ILLEGAL REQUEST,
	// INVALID FIELD IN COMMAND INFORMATION UNIT for block data, PARAMETER
	// LIST LENGTH ERROR for parameter lists).
	DataOut []byte
	// DataIn is the caller-provided buffer for data to the initiator
	// (len = the most the transport can return, i.e. EDTL). The core never
	// replaces it.
	DataIn []byte
	// ExpectedDataOutLen is optional: the Data-Out length the initiator
	// announced (iSCSI: the Expected Data Transfer Length of a write), 0
	// when unknown. A transport that fetches only the bytes the CDB asks
	// for (DataOutLen) sets it, so that commands whose Data-Out must match
	// the CDB exactly (COMPARE AND WRITE, WRITE SAME) can reject a
	// mismatch as SBC-3 and libiscsi's InvalidDataOutSize tests require.
	// Below what the CDB asks, the command fails like a short DataOut.
	ExpectedDataOutLen int

	// Results, set by Execute.

	Status Status
	// Sense is the sense data (fixed format, or descriptor format when the
	// LUN's control mode page has D_SENSE=1). It aliases an array inside
	// the Command and is valid until Reset.
	Sense []byte
	// DataInLen is the number of bytes of DataIn filled (<= len(DataIn)).
	DataInLen int
	// Want is the number of bytes the CDB itself asks to transfer in its
	// data direction (transfer length x block size, or allocation/parameter
	// list length); the transport derives iSCSI residuals from it.
	Want int

	senseBuf [MaxSenseLen]byte
	// changed records the LUs this command changed; Execute resets it and
	// flushes them before GOOD when it must (see mediumChanges).
	changed mediumChanges
}

// Reset clears every field so the Command can be reused.
func (c *Command) Reset() {
	*c = Command{}
}
