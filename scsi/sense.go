package scsi

import "fmt"

// SenseKey is the sense key of sense data (SPC-4 4.5.6).
type SenseKey uint8

// Sense keys.
const (
	SenseNoSense        SenseKey = 0x0
	SenseRecoveredError SenseKey = 0x1
	SenseNotReady       SenseKey = 0x2
	SenseMediumError    SenseKey = 0x3
	SenseHardwareError  SenseKey = 0x4
	SenseIllegalRequest SenseKey = 0x5
	SenseUnitAttention  SenseKey = 0x6
	SenseDataProtect    SenseKey = 0x7
	SenseBlankCheck     SenseKey = 0x8
	SenseVendorSpecific SenseKey = 0x9
	SenseCopyAborted    SenseKey = 0xA
	SenseAbortedCommand SenseKey = 0xB
	SenseVolumeOverflow SenseKey = 0xD
	SenseMiscompare     SenseKey = 0xE
)

// String returns the SPC-4 name of the sense key.
func (k SenseKey) String() string {
	switch k {
	case SenseNoSense:
		return "NO SENSE"
	case SenseRecoveredError:
		return "RECOVERED ERROR"
	case SenseNotReady:
		return "NOT READY"
	case SenseMediumError:
		return "MEDIUM ERROR"
	case SenseHardwareError:
		return "HARDWARE ERROR"
	case SenseIllegalRequest:
		return "ILLEGAL REQUEST"
	case SenseUnitAttention:
		return "UNIT ATTENTION"
	case SenseDataProtect:
		return "DATA PROTECT"
	case SenseBlankCheck:
		return "BLANK CHECK"
	case SenseVendorSpecific:
		return "VENDOR SPECIFIC"
	case SenseCopyAborted:
		return "COPY ABORTED"
	case SenseAbortedCommand:
		return "ABORTED COMMAND"
	case SenseVolumeOverflow:
		return "VOLUME OVERFLOW"
	case SenseMiscompare:
		return "MISCOMPARE"
	}
	return fmt.Sprintf("SenseKey(0x%x)", uint8(k))
}

// ASC is an additional sense code and qualifier pair (ASC in the high byte,
// ASCQ in the low byte), SPC-4 Table 28.
type ASC uint16

// Additional sense codes used by the target.
const (
	ASCNoAdditionalSense            ASC = 0x0000
	ASCLUNotReadyManualIntervention ASC = 0x0403
	ASCWriteError                   ASC = 0x0C00
	ASCInvalidFieldInCommandIU      ASC = 0x0E03
	ASCUnrecoveredReadError         ASC = 0x1100
	ASCMiscompareDuringVerify       ASC = 0x1D00
	ASCParameterListLengthError     ASC = 0x1A00
	ASCInvalidOpcode                ASC = 0x2000
	ASCLBAOutOfRange                ASC = 0x2100
	ASCInvalidFieldInCDB            ASC = 0x2400
	ASCLUNNotSupported              ASC = 0x2500
	ASCInvalidFieldInParamList      ASC = 0x2600
	ASCInvalidReleaseOfPR           ASC = 0x2604
	ASCWriteProtected               ASC = 0x2700
	ASCPowerOnOccurred              ASC = 0x2901
	ASCBusDeviceResetOccurred       ASC = 0x2903
	ASCModeParametersChanged        ASC = 0x2A01
	ASCReservationsPreempted        ASC = 0x2A03
	ASCReservationsReleased         ASC = 0x2A04
	ASCRegistrationsPreempted       ASC = 0x2A05
	ASCCommandSequenceError         ASC = 0x2C00
	ASCSavingParamsNotSupported     ASC = 0x3900
	ASCMediumNotPresent             ASC = 0x3A00
	ASCReportedLUNsDataChanged      ASC = 0x3F0E
	ASCInternalTargetFailure        ASC = 0x4400
	ASCInsufficientRegResources     ASC = 0x5504
	ASCMediumRemovalPrevented       ASC = 0x5302
)

// Code returns the additional sense code byte.
func (a ASC) Code() uint8 { return uint8(a >> 8) }

// Qualifier returns the additional sense code qualifier byte.
func (a ASC) Qualifier() uint8 { return uint8(a) }

// String returns the SPC-4 description of the code.
func (a ASC) String() string {
	switch a {
	case ASCNoAdditionalSense:
		return "NO ADDITIONAL SENSE INFORMATION"
	case ASCLUNotReadyManualIntervention:
		return "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED"
	case ASCWriteError:
		return "WRITE ERROR"
	case ASCInvalidFieldInCommandIU:
		return "INVALID FIELD IN COMMAND INFORMATION UNIT"
	case ASCUnrecoveredReadError:
		return "UNRECOVERED READ ERROR"
	case ASCMiscompareDuringVerify:
		return "MISCOMPARE DURING VERIFY OPERATION"
	case ASCParameterListLengthError:
		return "PARAMETER LIST LENGTH ERROR"
	case ASCInvalidOpcode:
		return "INVALID COMMAND OPERATION CODE"
	case ASCLBAOutOfRange:
		return "LOGICAL BLOCK ADDRESS OUT OF RANGE"
	case ASCInvalidFieldInCDB:
		return "INVALID FIELD IN CDB"
	case ASCLUNNotSupported:
		return "LOGICAL UNIT NOT SUPPORTED"
	case ASCInvalidFieldInParamList:
		return "INVALID FIELD IN PARAMETER LIST"
	case ASCInvalidReleaseOfPR:
		return "INVALID RELEASE OF PERSISTENT RESERVATION"
	case ASCWriteProtected:
		return "WRITE PROTECTED"
	case ASCPowerOnOccurred:
		return "POWER ON OCCURRED"
	case ASCBusDeviceResetOccurred:
		return "BUS DEVICE RESET FUNCTION OCCURRED"
	case ASCModeParametersChanged:
		return "MODE PARAMETERS CHANGED"
	case ASCReservationsPreempted:
		return "RESERVATIONS PREEMPTED"
	case ASCReservationsReleased:
		return "RESERVATIONS RELEASED"
	case ASCRegistrationsPreempted:
		return "REGISTRATIONS PREEMPTED"
	case ASCCommandSequenceError:
		return "COMMAND SEQUENCE ERROR"
	case ASCSavingParamsNotSupported:
		return "SAVING PARAMETERS NOT SUPPORTED"
	case ASCMediumNotPresent:
		return "MEDIUM NOT PRESENT"
	case ASCReportedLUNsDataChanged:
		return "REPORTED LUNS DATA HAS CHANGED"
	case ASCInternalTargetFailure:
		return "INTERNAL TARGET FAILURE"
	case ASCInsufficientRegResources:
		return "INSUFFICIENT REGISTRATION RESOURCES"
	case ASCMediumRemovalPrevented:
		return "MEDIUM REMOVAL PREVENTED"
	case ASCTooManyTargetDescriptors:
		return "TOO MANY TARGET DESCRIPTORS"
	case ASCUnsupportedTargetDescriptor:
		return "UNSUPPORTED TARGET DESCRIPTOR TYPE CODE"
	case ASCTooManySegmentDescriptors:
		return "TOO MANY SEGMENT DESCRIPTORS"
	case ASCUnsupportedSegmentDescriptor:
		return "UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE"
	case ASCThirdPartyDeviceFailure:
		return "THIRD PARTY DEVICE FAILURE"
	case ASCCopyTargetDeviceNotReachable:
		return "COPY TARGET DEVICE NOT REACHABLE"
	}
	return fmt.Sprintf("ASC(0x%02x/0x%02x)", a.Code(), a.Qualifier())
}

// senseInfo is what goes into sense data beyond key and code.
type senseInfo struct {
	key SenseKey
	asc ASC
	// info, when infoValid, is the INFORMATION field (e.g. the miscompare offset).
	info      uint64
	infoValid bool
	// field pointer (sense-key specific, ILLEGAL REQUEST): byte index into
	// the CDB (cd=true) or parameter list, and bit index when bitValid.
	fieldValid bool
	cd         bool
	bitValid   bool
	bit        uint8
	field      uint16
}

// buildSense writes sense data into dst (len >= 18, or >= 8+12+8 for
// descriptor format) and returns its length.
func buildSense(dst []byte, descriptor bool, s senseInfo) int {
	var sks [3]byte
	hasSKS := s.fieldValid
	if hasSKS {
		sks[0] = 0x80
		if s.cd {
			sks[0] |= 0x40
		}
		if s.bitValid {
			sks[0] |= 0x08 | (s.bit & 7)
		}
		sks[1] = byte(s.field >> 8)
		sks[2] = byte(s.field)
	}
	if !descriptor {
		// Fixed format (SPC-4 4.5.3).
		b := dst[:18]
		clear(b)
		b[0] = 0x70
		if s.infoValid {
			b[0] |= 0x80
			putU32(b[3:], uint32(s.info))
		}
		b[2] = byte(s.key) & 0x0F
		b[7] = 10
		b[12] = s.asc.Code()
		b[13] = s.asc.Qualifier()
		if hasSKS {
			copy(b[15:18], sks[:])
		}
		return 18
	}
	// Descriptor format (SPC-4 4.5.2).
	b := dst[:8]
	clear(b)
	b[0] = 0x72
	b[1] = byte(s.key) & 0x0F
	b[2] = s.asc.Code()
	b[3] = s.asc.Qualifier()
	n := 8
	if s.infoValid {
		d := dst[n : n+12]
		clear(d)
		d[0] = 0x00 // information descriptor
		d[1] = 0x0A
		d[2] = 0x80 // VALID
		putU64(d[4:], s.info)
		n += 12
	}
	if hasSKS {
		d := dst[n : n+8]
		clear(d)
		d[0] = 0x02 // sense key specific descriptor
		d[1] = 0x06
		copy(d[4:7], sks[:])
		n += 8
	}
	dst[7] = byte(n - 8)
	return n
}

// SenseFields decodes the key, code and qualifier from fixed or descriptor
// format sense data. ok is false if sense is too short or of an unknown
// format.
func SenseFields(sense []byte) (key SenseKey, asc ASC, ok bool) {
	if len(sense) < 1 {
		return 0, 0, false
	}
	switch sense[0] & 0x7F {
	case 0x70, 0x71:
		if len(sense) < 14 {
			return 0, 0, false
		}
		return SenseKey(sense[2] & 0x0F), ASC(sense[12])<<8 | ASC(sense[13]), true
	case 0x72, 0x73:
		if len(sense) < 4 {
			return 0, 0, false
		}
		return SenseKey(sense[1] & 0x0F), ASC(sense[2])<<8 | ASC(sense[3]), true
	}
	return 0, 0, false
}
