package text

import (
	"fmt"
	"strconv"
)

// Params holds every negotiated value of a session and connection, with
// RFC defaults for keys that were not negotiated. As a Negotiator's input
// (Config.Local) it holds our own preferences and limits.
type Params struct {
	HeaderDigest bool // HeaderDigest=CRC32C (§13.1); as input: CRC32C allowed/offered
	DataDigest   bool // DataDigest=CRC32C (§13.1)

	MaxConnections uint16 // §13.2
	InitialR2T     bool   // §13.10
	ImmediateData  bool   // §13.11

	// MaxRecvDataSegmentLength is what we declared (§13.12): the largest
	// data segment we accept.
	MaxRecvDataSegmentLength uint32
	// PeerMaxRecvDataSegmentLength is what the peer declared: the largest
	// data segment we may send it.
	PeerMaxRecvDataSegmentLength uint32

	MaxBurstLength      uint32 // §13.13
	FirstBurstLength    uint32 // §13.14; irrelevant with InitialR2T && !ImmediateData
	DefaultTime2Wait    uint16 // §13.15
	DefaultTime2Retain  uint16 // §13.16
	MaxOutstandingR2T   uint16 // §13.17
	DataPDUInOrder      bool   // §13.18
	DataSequenceInOrder bool   // §13.19
	ErrorRecoveryLevel  uint8  // §13.20
	ProtocolLevel       uint8  // iSCSIProtocolLevel, §13.24
	TaskReporting       string // §13.23

	SessionType          string // "Normal" or "Discovery" (§13.21)
	InitiatorName        string // §13.5
	InitiatorAlias       string // §13.7
	TargetName           string // §13.4
	TargetAlias          string // §13.6
	TargetPortalGroupTag uint16 // §13.9
	AuthMethod           string // agreed AuthMethod (§12.1)

	// iSER (RFC 7145 §6); meaningful only with RDMAExtensions.
	RDMAExtensions                   bool
	InitiatorRecvDataSegmentLength   uint32
	TargetRecvDataSegmentLength      uint32
	MaxAHSLength                     uint16
	TaggedBufferForSolicitedDataOnly bool
	ISERHelloRequired                bool
	MaxOutstandingUnexpectedPDUs     uint32
}

// RFC 7143 §13 and RFC 7145 §6 defaults: the value a key has when it is
// not negotiated. They are the one source of every default in goiser:
// DefaultParams, the key table (KeyDef.Default), the target
// (iscsi.Negotiation) and the initiator (initiator.Config) derive theirs
// from these and from the Offered constants below.
const (
	DefaultMaxConnections           = 1      // §13.2
	DefaultInitialR2T               = true   // §13.10
	DefaultImmediateData            = true   // §13.11
	DefaultMaxRecvDataSegmentLength = 8192   // §13.12, also during login
	DefaultMaxBurstLength           = 262144 // §13.13
	DefaultFirstBurstLength         = 65536  // §13.14
	DefaultTime2Wait                = 2      // §13.15, seconds
	DefaultTime2Retain              = 20     // §13.16, seconds
	DefaultMaxOutstandingR2T        = 1      // §13.17
	DefaultDataPDUInOrder           = true   // §13.18
	DefaultDataSequenceInOrder      = true   // §13.19
	DefaultErrorRecoveryLevel       = 0      // §13.20
	DefaultProtocolLevel            = 1      // §13.24 (iSCSIProtocolLevel)
	DefaultTaskReporting            = "RFC3720"
	// DefaultISERRecvDataSegmentLength is the default of
	// InitiatorRecvDataSegmentLength and TargetRecvDataSegmentLength
	// (RFC 7145 §6.3, §6.4).
	DefaultISERRecvDataSegmentLength = 8192
	DefaultMaxAHSLength              = 256 // RFC 7145 §6.5
)

// What goiser offers or declares when its configuration leaves a value
// unset, as target (iscsi.Negotiation) and as initiator
// (initiator.Config). Where they equal the RFC default they are named
// anyway, so that both sides change together.
const (
	// OfferedMaxRecvDataSegmentLength is the MaxRecvDataSegmentLength
	// both sides declare (and, on iSER, their receive limit).
	OfferedMaxRecvDataSegmentLength = 262144
	// OfferedMaxBurstLength and OfferedFirstBurstLength are offered by
	// both sides.
	OfferedMaxBurstLength   = DefaultMaxBurstLength
	OfferedFirstBurstLength = DefaultFirstBurstLength
	// OfferedMaxOutstandingR2T is offered by both sides.
	OfferedMaxOutstandingR2T = DefaultMaxOutstandingR2T
	// OfferedTargetTime2Wait and OfferedTargetTime2Retain are the
	// target's offers (the RFC defaults).
	OfferedTargetTime2Wait   = DefaultTime2Wait
	OfferedTargetTime2Retain = DefaultTime2Retain
	// OfferedInitiatorTime2Wait and OfferedInitiatorTime2Retain are the
	// initiator's offers: at ErrorRecoveryLevel 0 it never reinstates
	// tasks, so it asks for no wait and no retention.
	OfferedInitiatorTime2Wait   = 0
	OfferedInitiatorTime2Retain = 0
)

// DefaultParams returns the RFC 7143 and RFC 7145 defaults.
func DefaultParams() Params {
	return Params{
		MaxConnections:                 DefaultMaxConnections,
		InitialR2T:                     DefaultInitialR2T,
		ImmediateData:                  DefaultImmediateData,
		MaxRecvDataSegmentLength:       DefaultMaxRecvDataSegmentLength,
		PeerMaxRecvDataSegmentLength:   DefaultMaxRecvDataSegmentLength,
		MaxBurstLength:                 DefaultMaxBurstLength,
		FirstBurstLength:               DefaultFirstBurstLength,
		DefaultTime2Wait:               DefaultTime2Wait,
		DefaultTime2Retain:             DefaultTime2Retain,
		MaxOutstandingR2T:              DefaultMaxOutstandingR2T,
		DataPDUInOrder:                 DefaultDataPDUInOrder,
		DataSequenceInOrder:            DefaultDataSequenceInOrder,
		ErrorRecoveryLevel:             DefaultErrorRecoveryLevel,
		ProtocolLevel:                  DefaultProtocolLevel,
		TaskReporting:                  DefaultTaskReporting,
		SessionType:                    SessionNormal,
		AuthMethod:                     None,
		InitiatorRecvDataSegmentLength: DefaultISERRecvDataSegmentLength,
		TargetRecvDataSegmentLength:    DefaultISERRecvDataSegmentLength,
		MaxAHSLength:                   DefaultMaxAHSLength,
	}
}

// Discovery reports whether this is a discovery session.
func (p *Params) Discovery() bool { return p.SessionType == SessionDiscovery }

// FirstBurstRelevant reports whether FirstBurstLength applies: not when
// InitialR2T=Yes and ImmediateData=No (RFC 7143 §13.14).
func (p *Params) FirstBurstRelevant() bool { return !(p.InitialR2T && !p.ImmediateData) }

// value returns our local value for key as a wire string; ok is false for
// keys the Params do not carry.
func (p *Params) value(key string) (string, bool) {
	u := func(n uint64) (string, bool) { return strconv.FormatUint(n, 10), true }
	switch key {
	case KeyHeaderDigest:
		return digestValue(p.HeaderDigest), true
	case KeyDataDigest:
		return digestValue(p.DataDigest), true
	case KeyMaxConnections:
		return u(uint64(p.MaxConnections))
	case KeyInitialR2T:
		return FormatBool(p.InitialR2T), true
	case KeyImmediateData:
		return FormatBool(p.ImmediateData), true
	case KeyMaxRecvDataSegmentLength:
		return u(uint64(p.MaxRecvDataSegmentLength))
	case KeyMaxBurstLength:
		return u(uint64(p.MaxBurstLength))
	case KeyFirstBurstLength:
		return u(uint64(p.FirstBurstLength))
	case KeyDefaultTime2Wait:
		return u(uint64(p.DefaultTime2Wait))
	case KeyDefaultTime2Retain:
		return u(uint64(p.DefaultTime2Retain))
	case KeyMaxOutstandingR2T:
		return u(uint64(p.MaxOutstandingR2T))
	case KeyDataPDUInOrder:
		return FormatBool(p.DataPDUInOrder), true
	case KeyDataSequenceInOrder:
		return FormatBool(p.DataSequenceInOrder), true
	case KeyErrorRecoveryLevel:
		return u(uint64(p.ErrorRecoveryLevel))
	case KeyProtocolLevel:
		return u(uint64(p.ProtocolLevel))
	case KeyTaskReporting:
		return p.TaskReporting, true
	case KeySessionType:
		return p.SessionType, true
	case KeyInitiatorName:
		return p.InitiatorName, p.InitiatorName != ""
	case KeyInitiatorAlias:
		return p.InitiatorAlias, p.InitiatorAlias != ""
	case KeyTargetName:
		return p.TargetName, p.TargetName != ""
	case KeyTargetAlias:
		return p.TargetAlias, p.TargetAlias != ""
	case KeyTargetPortalGroupTag:
		return u(uint64(p.TargetPortalGroupTag))
	case KeyRDMAExtensions:
		return FormatBool(p.RDMAExtensions), true
	case KeyInitiatorRecvDataSegmentLength:
		return u(uint64(p.InitiatorRecvDataSegmentLength))
	case KeyTargetRecvDataSegmentLength:
		return u(uint64(p.TargetRecvDataSegmentLength))
	case KeyMaxAHSLength:
		return u(uint64(p.MaxAHSLength))
	case KeyTaggedBufferForSolicitedDataOnly:
		return FormatBool(p.TaggedBufferForSolicitedDataOnly), true
	case KeyISERHelloRequired:
		return FormatBool(p.ISERHelloRequired), true
	case KeyMaxOutstandingUnexpectedPDUs:
		return u(uint64(p.MaxOutstandingUnexpectedPDUs))
	case KeyIFMarker, KeyOFMarker:
		return No, true
	}
	return "", false
}

func digestValue(crc bool) string {
	if crc {
		return DigestCRC32C
	}
	return None
}

// set stores an agreed (or declared) value. peer is true when the value is
// the peer's declaration (MaxRecvDataSegmentLength goes to the Peer field).
// v must have passed KeyDef.checkValue.
func (p *Params) set(key, v string, peer bool) error {
	var n uint64
	if d, ok := Lookup(key); ok && d.Numeric {
		var err error
		if n, err = ParseNumber(v); err != nil {
			return err
		}
	}
	b := v == Yes
	switch key {
	case KeyHeaderDigest:
		p.HeaderDigest = v == DigestCRC32C
	case KeyDataDigest:
		p.DataDigest = v == DigestCRC32C
	case KeyMaxConnections:
		p.MaxConnections = uint16(n)
	case KeyInitialR2T:
		p.InitialR2T = b
	case KeyImmediateData:
		p.ImmediateData = b
	case KeyMaxRecvDataSegmentLength:
		if peer {
			p.PeerMaxRecvDataSegmentLength = uint32(n)
		} else {
			p.MaxRecvDataSegmentLength = uint32(n)
		}
	case KeyMaxBurstLength:
		p.MaxBurstLength = uint32(n)
	case KeyFirstBurstLength:
		p.FirstBurstLength = uint32(n)
	case KeyDefaultTime2Wait:
		p.DefaultTime2Wait = uint16(n)
	case KeyDefaultTime2Retain:
		p.DefaultTime2Retain = uint16(n)
	case KeyMaxOutstandingR2T:
		p.MaxOutstandingR2T = uint16(n)
	case KeyDataPDUInOrder:
		p.DataPDUInOrder = b
	case KeyDataSequenceInOrder:
		p.DataSequenceInOrder = b
	case KeyErrorRecoveryLevel:
		p.ErrorRecoveryLevel = uint8(n)
	case KeyProtocolLevel:
		p.ProtocolLevel = uint8(n)
	case KeyTaskReporting:
		p.TaskReporting = v
	case KeySessionType:
		p.SessionType = v
	case KeyInitiatorName:
		p.InitiatorName = v
	case KeyInitiatorAlias:
		p.InitiatorAlias = v
	case KeyTargetName:
		p.TargetName = v
	case KeyTargetAlias:
		p.TargetAlias = v
	case KeyTargetPortalGroupTag:
		p.TargetPortalGroupTag = uint16(n)
	case KeyAuthMethod:
		p.AuthMethod = v
	case KeyRDMAExtensions:
		p.RDMAExtensions = b
	case KeyInitiatorRecvDataSegmentLength:
		p.InitiatorRecvDataSegmentLength = uint32(n)
	case KeyTargetRecvDataSegmentLength:
		p.TargetRecvDataSegmentLength = uint32(n)
	case KeyMaxAHSLength:
		p.MaxAHSLength = uint16(n)
	case KeyTaggedBufferForSolicitedDataOnly:
		p.TaggedBufferForSolicitedDataOnly = b
	case KeyISERHelloRequired:
		p.ISERHelloRequired = b
	case KeyMaxOutstandingUnexpectedPDUs:
		p.MaxOutstandingUnexpectedPDUs = uint32(n)
	}
	return nil
}

// validate checks that local values are in their RFC ranges.
func (p *Params) validate() error {
	for _, key := range KeyNames() {
		d, _ := Lookup(key)
		v, ok := p.value(key)
		if !ok || (!d.Numeric && d.Kind != KindBoolAnd && d.Kind != KindBoolOr) {
			continue
		}
		if err := d.checkValue(v); err != nil {
			return fmt.Errorf("text: local parameter: %w", err)
		}
	}
	if p.SessionType != SessionNormal && p.SessionType != SessionDiscovery {
		return fmt.Errorf("text: local parameter: SessionType %q", p.SessionType)
	}
	return nil
}
