package text

import (
	"fmt"
	"strconv"
)

// Kind is a key's negotiation type (RFC 7143 §6.2, §13).
type Kind uint8

// Key kinds.
const (
	KindDeclarative Kind = iota + 1 // each side states its own value; no answer
	KindList                        // answer: first offered value the responder supports
	KindBoolAnd                     // result: offer AND local
	KindBoolOr                      // result: offer OR local
	KindMin                         // numerical, result: minimum
	KindMax                         // numerical, result: maximum
	KindAuth                        // CHAP_* keys: exchanged by iscsi/auth, not negotiated
	KindSendTargets                 // SendTargets: answered by the session from its target list
)

// String implements fmt.Stringer.
func (k Kind) String() string {
	switch k {
	case KindDeclarative:
		return "declarative"
	case KindList:
		return "list"
	case KindBoolAnd:
		return "Boolean-AND"
	case KindBoolOr:
		return "Boolean-OR"
	case KindMin:
		return "numerical-min"
	case KindMax:
		return "numerical-max"
	case KindAuth:
		return "authentication"
	case KindSendTargets:
		return "SendTargets"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Use is the set of phases in which a key may be sent (RFC 7143 §13, the
// "Use" line of each key).
type Use uint8

// Phases.
const (
	UseSecurity    Use = 1 << iota // login, SecurityNegotiation stage
	UseOperational                 // login, LoginOperationalNegotiation stage
	UseFFP                         // Text requests in full feature phase
)

// Common Use combinations.
const (
	useLogin = UseSecurity | UseOperational
	useAll   = UseSecurity | UseOperational | UseFFP
)

// Sender says who may originate a key (RFC 7143 §13, "Senders").
type Sender uint8

// Senders.
const (
	SenderInitiator Sender = 1 << iota
	SenderTarget
	SenderBoth = SenderInitiator | SenderTarget
)

// KeyDef describes one key of RFC 7143 §13 or RFC 7145 §6.
type KeyDef struct {
	Name    string
	Kind    Kind
	Numeric bool     // value is numerical in [Min, Max]
	Min     uint64   // smallest valid value (Numeric)
	Max     uint64   // largest valid value (Numeric)
	Values  []string // valid values of lists and enumerated keys; nil: any text
	Default string   // RFC default; "" when none
	Use     Use      // phases where the key may be sent
	Senders Sender   // who may originate it
	// SessionWide is true for SW keys, false for connection-only (CO) keys.
	SessionWide bool
	// LeadingOnly (LO) keys are negotiated on the leading connection only.
	LeadingOnly bool
	// ISER keys (RFC 7145 §6) are relevant only with RDMAExtensions=Yes.
	ISER bool
	// NotISER keys are not negotiated when RDMAExtensions=Yes (digests and
	// MaxRecvDataSegmentLength, RFC 7145 §6.3).
	NotISER bool
	// DiscoveryIrrelevant keys are Irrelevant in a Discovery session.
	DiscoveryIrrelevant bool
}

// Standard key names.
const (
	KeyHeaderDigest             = "HeaderDigest"
	KeyDataDigest               = "DataDigest"
	KeyMaxConnections           = "MaxConnections"
	KeySendTargets              = "SendTargets"
	KeyTargetName               = "TargetName"
	KeyInitiatorName            = "InitiatorName"
	KeyTargetAlias              = "TargetAlias"
	KeyInitiatorAlias           = "InitiatorAlias"
	KeyTargetAddress            = "TargetAddress"
	KeyTargetPortalGroupTag     = "TargetPortalGroupTag"
	KeyInitialR2T               = "InitialR2T"
	KeyImmediateData            = "ImmediateData"
	KeyMaxRecvDataSegmentLength = "MaxRecvDataSegmentLength"
	KeyMaxBurstLength           = "MaxBurstLength"
	KeyFirstBurstLength         = "FirstBurstLength"
	KeyDefaultTime2Wait         = "DefaultTime2Wait"
	KeyDefaultTime2Retain       = "DefaultTime2Retain"
	KeyMaxOutstandingR2T        = "MaxOutstandingR2T"
	KeyDataPDUInOrder           = "DataPDUInOrder"
	KeyDataSequenceInOrder      = "DataSequenceInOrder"
	KeyErrorRecoveryLevel       = "ErrorRecoveryLevel"
	KeySessionType              = "SessionType"
	KeyAuthMethod               = "AuthMethod"
	KeyCHAPA                    = "CHAP_A"
	KeyCHAPI                    = "CHAP_I"
	KeyCHAPC                    = "CHAP_C"
	KeyCHAPN                    = "CHAP_N"
	KeyCHAPR                    = "CHAP_R"
	KeyTaskReporting            = "TaskReporting"
	KeyProtocolLevel            = "iSCSIProtocolLevel"
	KeyIFMarker                 = "IFMarker"
	KeyOFMarker                 = "OFMarker"
	KeyIFMarkInt                = "IFMarkInt"
	KeyOFMarkInt                = "OFMarkInt"

	// RFC 7145 §6 (iSER).
	KeyRDMAExtensions                   = "RDMAExtensions"
	KeyInitiatorRecvDataSegmentLength   = "InitiatorRecvDataSegmentLength"
	KeyTargetRecvDataSegmentLength      = "TargetRecvDataSegmentLength"
	KeyMaxAHSLength                     = "MaxAHSLength"
	KeyTaggedBufferForSolicitedDataOnly = "TaggedBufferForSolicitedDataOnly"
	KeyISERHelloRequired                = "iSERHelloRequired"
	KeyMaxOutstandingUnexpectedPDUs     = "MaxOutstandingUnexpectedPDUs"
)

// Session types (RFC 7143 §13.21).
const (
	SessionNormal    = "Normal"
	SessionDiscovery = "Discovery"
)

// Digest and auth method values.
const (
	DigestCRC32C = "CRC32C"
	AuthCHAP     = "CHAP"
)

// KeyNames lists every key Lookup knows, in the order an initiator offers
// them.
func KeyNames() []string {
	return []string{
		KeyInitiatorName, KeyInitiatorAlias, KeyTargetName, KeySessionType, KeyTargetAlias,
		KeyTargetAddress, KeyTargetPortalGroupTag, KeyAuthMethod,
		KeyCHAPA, KeyCHAPI, KeyCHAPC, KeyCHAPN, KeyCHAPR,
		KeyHeaderDigest, KeyDataDigest, KeyMaxRecvDataSegmentLength, KeyMaxConnections,
		KeyInitialR2T, KeyImmediateData, KeyMaxBurstLength, KeyFirstBurstLength,
		KeyDefaultTime2Wait, KeyDefaultTime2Retain, KeyMaxOutstandingR2T,
		KeyDataPDUInOrder, KeyDataSequenceInOrder, KeyErrorRecoveryLevel,
		KeyTaskReporting, KeyProtocolLevel, KeySendTargets,
		KeyIFMarker, KeyOFMarker, KeyIFMarkInt, KeyOFMarkInt,
		KeyRDMAExtensions, KeyInitiatorRecvDataSegmentLength, KeyTargetRecvDataSegmentLength,
		KeyMaxAHSLength, KeyTaggedBufferForSolicitedDataOnly, KeyISERHelloRequired,
		KeyMaxOutstandingUnexpectedPDUs,
	}
}

const maxLen24 = 1<<24 - 1

// Lookup returns the definition of a standard key. Extension keys (X-...,
// X#...) and unknown keys are not found; they are answered NotUnderstood.
func Lookup(name string) (KeyDef, bool) {
	d := KeyDef{Name: name}
	num := func(kind Kind, min, max uint64, def uint64) {
		d.Kind, d.Numeric, d.Min, d.Max, d.Default = kind, true, min, max, strconv.FormatUint(def, 10)
	}
	boolean := func(kind Kind, def bool) {
		d.Kind, d.Values, d.Default = kind, []string{Yes, No}, FormatBool(def)
	}
	lo := func() { d.Use, d.Senders, d.SessionWide, d.LeadingOnly = UseOperational, SenderBoth, true, true }
	switch name {
	case KeyHeaderDigest, KeyDataDigest: // §13.1
		d.Kind, d.Values, d.Default = KindList, []string{DigestCRC32C, None}, None
		d.Use, d.Senders, d.NotISER = UseOperational, SenderBoth, true
	case KeyMaxConnections: // §13.2
		num(KindMin, 1, 65535, DefaultMaxConnections)
		lo()
		d.DiscoveryIrrelevant = true
	case KeySendTargets: // §13.3
		d.Kind, d.Use, d.Senders, d.SessionWide = KindSendTargets, UseFFP, SenderInitiator, true
	case KeyTargetName: // §13.4
		d.Kind, d.Use, d.Senders, d.SessionWide = KindDeclarative, useAll, SenderBoth, true
	case KeyInitiatorName: // §13.5
		d.Kind, d.Use, d.Senders, d.SessionWide = KindDeclarative, useLogin, SenderInitiator, true
	case KeyTargetAlias: // §13.6
		d.Kind, d.Use, d.Senders, d.SessionWide = KindDeclarative, useAll, SenderTarget, true
	case KeyInitiatorAlias: // §13.7
		d.Kind, d.Use, d.Senders, d.SessionWide = KindDeclarative, useAll, SenderInitiator, true
	case KeyTargetAddress: // §13.8
		d.Kind, d.Use, d.Senders, d.SessionWide = KindDeclarative, useAll, SenderTarget, true
	case KeyTargetPortalGroupTag: // §13.9
		d.Kind, d.Numeric, d.Min, d.Max = KindDeclarative, true, 0, 65535
		d.Use, d.Senders, d.SessionWide = useLogin, SenderTarget, true
	case KeyInitialR2T: // §13.10
		boolean(KindBoolOr, DefaultInitialR2T)
		lo()
		d.DiscoveryIrrelevant = true
	case KeyImmediateData: // §13.11
		boolean(KindBoolAnd, DefaultImmediateData)
		lo()
		d.DiscoveryIrrelevant = true
	case KeyMaxRecvDataSegmentLength: // §13.12
		num(KindDeclarative, 512, maxLen24, DefaultMaxRecvDataSegmentLength)
		d.Use, d.Senders, d.NotISER = useAll, SenderBoth, true
	case KeyMaxBurstLength: // §13.13
		num(KindMin, 512, maxLen24, DefaultMaxBurstLength)
		lo()
		d.DiscoveryIrrelevant = true
	case KeyFirstBurstLength: // §13.14
		num(KindMin, 512, maxLen24, DefaultFirstBurstLength)
		lo()
		d.DiscoveryIrrelevant = true
	case KeyDefaultTime2Wait: // §13.15
		num(KindMax, 0, 3600, DefaultTime2Wait)
		lo()
	case KeyDefaultTime2Retain: // §13.16
		num(KindMin, 0, 3600, DefaultTime2Retain)
		lo()
	case KeyMaxOutstandingR2T: // §13.17
		num(KindMin, 1, 65535, DefaultMaxOutstandingR2T)
		lo()
		d.DiscoveryIrrelevant = true
	case KeyDataPDUInOrder: // §13.18
		boolean(KindBoolOr, DefaultDataPDUInOrder)
		lo()
		d.DiscoveryIrrelevant = true
	case KeyDataSequenceInOrder: // §13.19
		boolean(KindBoolOr, DefaultDataSequenceInOrder)
		lo()
		d.DiscoveryIrrelevant = true
	case KeyErrorRecoveryLevel: // §13.20
		num(KindMin, 0, 2, DefaultErrorRecoveryLevel)
		lo()
	case KeySessionType: // §13.21
		d.Kind, d.Values, d.Default = KindDeclarative, []string{SessionDiscovery, SessionNormal}, SessionNormal
		d.Use, d.Senders, d.SessionWide, d.LeadingOnly = useLogin, SenderInitiator, true, true
	case KeyAuthMethod: // §12.1
		d.Kind, d.Values, d.Default = KindList, []string{"KRB5", "SRP", "SPKM1", "SPKM2", AuthCHAP, None}, None
		d.Use, d.Senders = UseSecurity, SenderBoth
	case KeyCHAPA, KeyCHAPI, KeyCHAPC, KeyCHAPN, KeyCHAPR: // §12.1.3
		d.Kind, d.Use, d.Senders = KindAuth, UseSecurity, SenderBoth
	case KeyTaskReporting: // §13.23
		d.Kind, d.Values, d.Default = KindList, []string{"RFC3720", "ResponseFence", "FastAbort"}, DefaultTaskReporting
		lo()
		d.DiscoveryIrrelevant = true
	case KeyProtocolLevel: // §13.24
		num(KindMin, 0, 31, DefaultProtocolLevel)
		lo()
	case KeyIFMarker, KeyOFMarker: // RFC 3720 §A.3, obsolete in RFC 7143
		boolean(KindBoolAnd, false)
		d.Use, d.Senders = UseOperational, SenderBoth
	case KeyIFMarkInt, KeyOFMarkInt: // RFC 3720 §A.3, obsolete: always Irrelevant here
		d.Kind, d.Default = KindDeclarative, ""
		d.Use, d.Senders = UseOperational, SenderBoth
	case KeyRDMAExtensions: // RFC 7145 §6.2
		boolean(KindBoolAnd, false)
		lo()
	case KeyInitiatorRecvDataSegmentLength, KeyTargetRecvDataSegmentLength: // RFC 7145 §6.3, §6.4
		num(KindMin, 512, maxLen24, DefaultISERRecvDataSegmentLength)
		d.Use, d.Senders, d.ISER = UseOperational, SenderBoth, true
	case KeyMaxAHSLength: // RFC 7145 §6.5
		num(KindMin, 0, 65535, DefaultMaxAHSLength)
		lo()
		d.ISER = true
	case KeyTaggedBufferForSolicitedDataOnly: // RFC 7145 §6.6
		boolean(KindBoolOr, false)
		lo()
		d.ISER = true
	case KeyISERHelloRequired: // RFC 7145 §6.7
		boolean(KindBoolOr, false)
		lo()
		d.ISER = true
	case KeyMaxOutstandingUnexpectedPDUs: // RFC 7145 §6.8: 0 (no limit) or 2..2^32-1
		num(KindMin, 0, 1<<32-1, 0)
		lo()
		d.ISER = true
	default:
		return KeyDef{}, false
	}
	return d, true
}

// checkValue validates a value against the key definition: Yes/No for
// Boolean keys, range for numbers, known values for enumerated
// declaratives. Lists are checked item by item by the caller.
func (d *KeyDef) checkValue(v string) error {
	switch {
	case d.Kind == KindBoolAnd || d.Kind == KindBoolOr:
		_, err := ParseBool(v)
		return err
	case d.Numeric:
		n, err := ParseNumber(v)
		if err != nil {
			return err
		}
		if n < d.Min || n > d.Max {
			return &SyntaxError{Key: d.Name, Text: v, Msg: fmt.Sprintf("out of range %d..%d", d.Min, d.Max)}
		}
		if d.Name == KeyMaxOutstandingUnexpectedPDUs && n == 1 {
			return &SyntaxError{Key: d.Name, Text: v, Msg: "must be 0 or at least 2"}
		}
	case d.Kind == KindDeclarative && d.Values != nil:
		for _, ok := range d.Values {
			if v == ok {
				return nil
			}
		}
		return &SyntaxError{Key: d.Name, Text: v, Msg: "unknown value"}
	}
	return nil
}
