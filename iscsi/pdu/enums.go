package pdu

import "fmt"

// TaskAttr is the ATTR field of a SCSI Command (RFC 7143 §11.3.1, SAM task
// attributes).
type TaskAttr uint8

// Task attributes (RFC 7143 §11.3.1).
const (
	AttrUntagged    TaskAttr = 0
	AttrSimple      TaskAttr = 1
	AttrOrdered     TaskAttr = 2
	AttrHeadOfQueue TaskAttr = 3
	AttrACA         TaskAttr = 4
)

// String implements fmt.Stringer.
func (a TaskAttr) String() string {
	switch a {
	case AttrUntagged:
		return "Untagged"
	case AttrSimple:
		return "Simple"
	case AttrOrdered:
		return "Ordered"
	case AttrHeadOfQueue:
		return "Head of Queue"
	case AttrACA:
		return "ACA"
	}
	return fmt.Sprintf("TaskAttr(%d)", uint8(a))
}

// ResponseCode is the Response field of a SCSI Response (RFC 7143 §11.4.3).
type ResponseCode uint8

// SCSI Response codes (RFC 7143 §11.4.3).
const (
	ResponseCompleted     ResponseCode = 0x00 // Command Completed at Target
	ResponseTargetFailure ResponseCode = 0x01 // Target Failure
)

// String implements fmt.Stringer.
func (r ResponseCode) String() string {
	switch {
	case r == ResponseCompleted:
		return "Command Completed at Target"
	case r == ResponseTargetFailure:
		return "Target Failure"
	case r >= 0x80:
		return fmt.Sprintf("Vendor specific (%#02x)", uint8(r))
	}
	return fmt.Sprintf("ResponseCode(%#02x)", uint8(r))
}

// TMFunction is the Function field of a Task Management Function Request
// (RFC 7143 §11.5.1).
type TMFunction uint8

// Task management functions (RFC 7143 §11.5.1).
const (
	TMFAbortTask        TMFunction = 1
	TMFAbortTaskSet     TMFunction = 2
	TMFClearACA         TMFunction = 3
	TMFClearTaskSet     TMFunction = 4
	TMFLogicalUnitReset TMFunction = 5
	TMFTargetWarmReset  TMFunction = 6
	TMFTargetColdReset  TMFunction = 7
	TMFTaskReassign     TMFunction = 8
)

// String implements fmt.Stringer.
func (f TMFunction) String() string {
	switch f {
	case TMFAbortTask:
		return "ABORT TASK"
	case TMFAbortTaskSet:
		return "ABORT TASK SET"
	case TMFClearACA:
		return "CLEAR ACA"
	case TMFClearTaskSet:
		return "CLEAR TASK SET"
	case TMFLogicalUnitReset:
		return "LOGICAL UNIT RESET"
	case TMFTargetWarmReset:
		return "TARGET WARM RESET"
	case TMFTargetColdReset:
		return "TARGET COLD RESET"
	case TMFTaskReassign:
		return "TASK REASSIGN"
	}
	return fmt.Sprintf("TMFunction(%d)", uint8(f))
}

// TMFResponse is the Response field of a Task Management Function Response
// (RFC 7143 §11.6.1).
type TMFResponse uint8

// Task management responses (RFC 7143 §11.6.1).
const (
	TMFComplete             TMFResponse = 0
	TMFTaskNotExist         TMFResponse = 1
	TMFLUNNotExist          TMFResponse = 2
	TMFTaskStillAllegiant   TMFResponse = 3
	TMFReassignNotSupported TMFResponse = 4
	TMFNotSupported         TMFResponse = 5
	TMFAuthorizationFailed  TMFResponse = 6
	TMFRejected             TMFResponse = 255
)

// String implements fmt.Stringer.
func (r TMFResponse) String() string {
	switch r {
	case TMFComplete:
		return "Function complete"
	case TMFTaskNotExist:
		return "Task does not exist"
	case TMFLUNNotExist:
		return "LUN does not exist"
	case TMFTaskStillAllegiant:
		return "Task still allegiant"
	case TMFReassignNotSupported:
		return "Task allegiance reassignment not supported"
	case TMFNotSupported:
		return "Task management function not supported"
	case TMFAuthorizationFailed:
		return "Function authorization failed"
	case TMFRejected:
		return "Function rejected"
	}
	return fmt.Sprintf("TMFResponse(%d)", uint8(r))
}

// RejectReason is the Reason field of a Reject PDU (RFC 7143 §11.17.1).
type RejectReason uint8

// Reject reasons (RFC 7143 §11.17.1).
const (
	RejectDataDigestError     RejectReason = 0x02 // Data (payload) digest error
	RejectSNACKReject         RejectReason = 0x03 // SNACK Reject
	RejectProtocolError       RejectReason = 0x04 // Protocol Error
	RejectCommandNotSupported RejectReason = 0x05 // Command not supported
	RejectImmediateCommand    RejectReason = 0x06 // Immediate command reject: too many immediate commands
	RejectTaskInProgress      RejectReason = 0x07 // Task in progress
	RejectInvalidDataACK      RejectReason = 0x08 // Invalid data ack
	RejectInvalidPDUField     RejectReason = 0x09 // Invalid PDU field
	RejectOutOfResources      RejectReason = 0x0a // Long op reject: can't generate Target Transfer Tag, out of resources
	RejectNegotiationReset    RejectReason = 0x0b // Deprecated (was Negotiation Reset)
	RejectWaitingForLogout    RejectReason = 0x0c // Waiting for Logout
)

// String implements fmt.Stringer.
func (r RejectReason) String() string {
	switch r {
	case RejectDataDigestError:
		return "Data digest error"
	case RejectSNACKReject:
		return "SNACK reject"
	case RejectProtocolError:
		return "Protocol error"
	case RejectCommandNotSupported:
		return "Command not supported"
	case RejectImmediateCommand:
		return "Immediate command reject"
	case RejectTaskInProgress:
		return "Task in progress"
	case RejectInvalidDataACK:
		return "Invalid data ack"
	case RejectInvalidPDUField:
		return "Invalid PDU field"
	case RejectOutOfResources:
		return "Long op reject"
	case RejectNegotiationReset:
		return "Negotiation reset"
	case RejectWaitingForLogout:
		return "Waiting for logout"
	}
	return fmt.Sprintf("RejectReason(%#02x)", uint8(r))
}

// LogoutReason is the Reason Code of a Logout Request (RFC 7143 §11.14.1).
type LogoutReason uint8

// Logout reasons (RFC 7143 §11.14.1).
const (
	LogoutCloseSession      LogoutReason = 0
	LogoutCloseConnection   LogoutReason = 1
	LogoutRemoveForRecovery LogoutReason = 2
)

// String implements fmt.Stringer.
func (r LogoutReason) String() string {
	switch r {
	case LogoutCloseSession:
		return "close the session"
	case LogoutCloseConnection:
		return "close the connection"
	case LogoutRemoveForRecovery:
		return "remove the connection for recovery"
	}
	return fmt.Sprintf("LogoutReason(%d)", uint8(r))
}

// LogoutResponseCode is the Response field of a Logout Response
// (RFC 7143 §11.15.1).
type LogoutResponseCode uint8

// Logout responses (RFC 7143 §11.15.1).
const (
	LogoutSuccess             LogoutResponseCode = 0
	LogoutCIDNotFound         LogoutResponseCode = 1
	LogoutRecoveryUnsupported LogoutResponseCode = 2
	LogoutCleanupFailed       LogoutResponseCode = 3
)

// String implements fmt.Stringer.
func (r LogoutResponseCode) String() string {
	switch r {
	case LogoutSuccess:
		return "connection or session closed successfully"
	case LogoutCIDNotFound:
		return "CID not found"
	case LogoutRecoveryUnsupported:
		return "connection recovery is not supported"
	case LogoutCleanupFailed:
		return "cleanup failed for various reasons"
	}
	return fmt.Sprintf("LogoutResponseCode(%d)", uint8(r))
}

// LoginStatus is the Status-Class (high byte) and Status-Detail (low byte)
// of a Login Response (RFC 7143 §11.13.5).
type LoginStatus uint16

// Login status codes (RFC 7143 §11.13.5).
const (
	LoginSuccess                LoginStatus = 0x0000
	LoginTargetMovedTemp        LoginStatus = 0x0101
	LoginTargetMovedPerm        LoginStatus = 0x0102
	LoginInitiatorError         LoginStatus = 0x0200
	LoginAuthFailed             LoginStatus = 0x0201
	LoginAuthorizationFailed    LoginStatus = 0x0202
	LoginNotFound               LoginStatus = 0x0203
	LoginTargetRemoved          LoginStatus = 0x0204
	LoginUnsupportedVersion     LoginStatus = 0x0205
	LoginTooManyConnections     LoginStatus = 0x0206
	LoginMissingParameter       LoginStatus = 0x0207
	LoginCantIncludeInSession   LoginStatus = 0x0208
	LoginSessionTypeUnsupported LoginStatus = 0x0209
	LoginSessionNotExist        LoginStatus = 0x020a
	LoginInvalidDuringLogin     LoginStatus = 0x020b
	LoginTargetError            LoginStatus = 0x0300
	LoginServiceUnavailable     LoginStatus = 0x0301
	LoginOutOfResources         LoginStatus = 0x0302
)

// Status classes (RFC 7143 §11.13.5).
const (
	ClassSuccess        = 0
	ClassRedirection    = 1
	ClassInitiatorError = 2
	ClassTargetError    = 3
)

// Class returns the Status-Class byte.
func (s LoginStatus) Class() uint8 { return uint8(s >> 8) }

// Detail returns the Status-Detail byte.
func (s LoginStatus) Detail() uint8 { return uint8(s) }

// String implements fmt.Stringer.
func (s LoginStatus) String() string {
	var d string
	switch s {
	case LoginSuccess:
		d = "success"
	case LoginTargetMovedTemp:
		d = "target moved temporarily"
	case LoginTargetMovedPerm:
		d = "target moved permanently"
	case LoginInitiatorError:
		d = "initiator error"
	case LoginAuthFailed:
		d = "authentication failure"
	case LoginAuthorizationFailed:
		d = "authorization failure"
	case LoginNotFound:
		d = "not found"
	case LoginTargetRemoved:
		d = "target removed"
	case LoginUnsupportedVersion:
		d = "unsupported version"
	case LoginTooManyConnections:
		d = "too many connections"
	case LoginMissingParameter:
		d = "missing parameter"
	case LoginCantIncludeInSession:
		d = "can't include in session"
	case LoginSessionTypeUnsupported:
		d = "session type not supported"
	case LoginSessionNotExist:
		d = "session does not exist"
	case LoginInvalidDuringLogin:
		d = "invalid during login"
	case LoginTargetError:
		d = "target error"
	case LoginServiceUnavailable:
		d = "service unavailable"
	case LoginOutOfResources:
		d = "out of resources"
	default:
		d = "unknown"
	}
	return fmt.Sprintf("%#04x (%s)", uint16(s), d)
}

// Stage is a login stage, the CSG and NSG fields of Login PDUs
// (RFC 7143 §11.12.3).
type Stage uint8

// Login stages (RFC 7143 §11.12.3); 2 is reserved.
const (
	StageSecurity    Stage = 0 // SecurityNegotiation
	StageOperational Stage = 1 // LoginOperationalNegotiation
	StageFullFeature Stage = 3 // FullFeaturePhase
)

// String implements fmt.Stringer.
func (s Stage) String() string {
	switch s {
	case StageSecurity:
		return "SecurityNegotiation"
	case StageOperational:
		return "LoginOperationalNegotiation"
	case StageFullFeature:
		return "FullFeaturePhase"
	}
	return fmt.Sprintf("Stage(%d)", uint8(s))
}

// AsyncEvent is the AsyncEvent field of an Asynchronous Message
// (RFC 7143 §11.9.1).
type AsyncEvent uint8

// Asynchronous events (RFC 7143 §11.9.1).
const (
	AsyncSCSI               AsyncEvent = 0   // SCSI asynchronous event (sense data in the data segment)
	AsyncLogoutRequested    AsyncEvent = 1   // target requests Logout
	AsyncDropConnection     AsyncEvent = 2   // target will drop the connection
	AsyncDropAllConnections AsyncEvent = 3   // target will drop all connections of the session
	AsyncNegotiate          AsyncEvent = 4   // target requests parameter negotiation
	AsyncVendor             AsyncEvent = 255 // vendor-specific event
)

// String implements fmt.Stringer.
func (e AsyncEvent) String() string {
	switch e {
	case AsyncSCSI:
		return "SCSI asynchronous event"
	case AsyncLogoutRequested:
		return "logout requested"
	case AsyncDropConnection:
		return "connection will be dropped"
	case AsyncDropAllConnections:
		return "all connections will be dropped"
	case AsyncNegotiate:
		return "parameter negotiation requested"
	case AsyncVendor:
		return "vendor specific"
	}
	return fmt.Sprintf("AsyncEvent(%d)", uint8(e))
}

// SNACKType is the Type field of a SNACK Request (RFC 7143 §11.16.1).
type SNACKType uint8

// SNACK types (RFC 7143 §11.16.1).
const (
	SNACKDataR2T SNACKType = 0 // Data/R2T SNACK
	SNACKStatus  SNACKType = 1 // Status SNACK
	SNACKDataACK SNACKType = 2 // DataACK
	SNACKRData   SNACKType = 3 // R-Data SNACK
)

// String implements fmt.Stringer.
func (t SNACKType) String() string {
	switch t {
	case SNACKDataR2T:
		return "Data/R2T"
	case SNACKStatus:
		return "Status"
	case SNACKDataACK:
		return "DataACK"
	case SNACKRData:
		return "R-Data"
	}
	return fmt.Sprintf("SNACKType(%d)", uint8(t))
}

// ISID is the 6-byte initiator part of the session identifier
// (RFC 7143 §11.12.5): T (2 bits) and A (6 bits), B (16 bits), C (8 bits),
// D (16 bits).
type ISID [6]byte

// String prints the ISID as 12 hex digits.
func (i ISID) String() string { return fmt.Sprintf("%x", i[:]) }
