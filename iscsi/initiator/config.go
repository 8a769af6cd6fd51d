package initiator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// Digest selects a digest to offer at login (RFC 7143 §13.1).
type Digest uint8

// Digests.
const (
	// DigestNone offers "None" (the default).
	DigestNone Digest = iota
	// DigestCRC32C offers "CRC32C,None": CRC32C if the target agrees.
	DigestCRC32C
	// DigestRequireCRC32C offers only "CRC32C"; login fails if the target
	// refuses it.
	DigestRequireCRC32C
)

// String returns the name of the digest choice.
func (d Digest) String() string {
	switch d {
	case DigestNone:
		return "None"
	case DigestCRC32C:
		return "CRC32C,None"
	case DigestRequireCRC32C:
		return "CRC32C"
	}
	return fmt.Sprintf("Digest(%d)", uint8(d))
}

// Bool is a Boolean key offer with a default (RFC 7143 §6.2.1).
type Bool uint8

// Boolean offers.
const (
	// Default offers the RFC 7143 default value of the key.
	Default Bool = iota
	// Yes offers Yes.
	Yes
	// No offers No.
	No
)

// value returns the offered value given the key's RFC default.
func (b Bool) value(def bool) bool {
	switch b {
	case Yes:
		return true
	case No:
		return false
	}
	return def
}

// CHAP holds CHAP credentials (RFC 7143 §12.1.3). With only User and
// Secret set, the target authenticates the initiator (one-way CHAP); with
// TargetUser and TargetSecret also set, the initiator authenticates the
// target too (mutual CHAP).
type CHAP struct {
	User   string // CHAP_N the initiator sends
	Secret string // secret the target knows for User
	// TargetUser is the CHAP_N the target must answer with (mutual CHAP).
	TargetUser string
	// TargetSecret is the target's secret (mutual CHAP); empty means
	// one-way. It must differ from Secret (RFC 7143 §12.1.3).
	TargetSecret string
	// Algorithms lists the CHAP_A values to offer in order of preference
	// (5 = MD5, 6 = SHA-1, 7 = SHA-256, 8 = SHA3-256). Empty offers
	// iscsi/auth's default list.
	Algorithms []int
}

// Config describes a session to open: spec in, *Session out. The zero
// value of every optional field selects the documented default.
type Config struct {
	// InitiatorName is our iSCSI name (RFC 7143 §4.2.7). Required.
	InitiatorName string
	// InitiatorAlias is sent as InitiatorAlias when non-empty.
	InitiatorAlias string
	// TargetName is the target to log in to. Required by Dial; Discover
	// ignores it.
	TargetName string
	// ISID is the initiator part of the session identifier. Zero picks a
	// random ISID of type 2 (RFC 7143 §11.12.5).
	ISID pdu.ISID
	// CHAP enables CHAP authentication when non-nil.
	CHAP *CHAP

	// HeaderDigest and DataDigest select the digests to offer.
	HeaderDigest, DataDigest Digest
	// MaxRecvDataSegmentLength is the largest data segment we accept
	// (declared to the target). Zero means 262144.
	MaxRecvDataSegmentLength uint32
	// ImmediateData and InitialR2T are offered as given (Default: the
	// RFC defaults, text.DefaultImmediateData and DefaultInitialR2T,
	// both Yes).
	ImmediateData, InitialR2T Bool
	// FirstBurstLength (default 65536), MaxBurstLength (default 262144)
	// and MaxOutstandingR2T (default 1) are offered as given.
	FirstBurstLength, MaxBurstLength, MaxOutstandingR2T uint32

	// MaxTasks bounds the SCSI commands in flight at once (queue depth);
	// further calls wait for a free slot. A few more slots are kept for
	// NOP-Out, task management, Text and Logout. Zero means 128.
	MaxTasks int
	// LoginTimeout bounds connecting and logging in when the context has
	// no earlier deadline. Zero means 15 s.
	LoginTimeout time.Duration
	// WriteTimeout bounds every write to the connection: a target that
	// stops reading for this long ends the session. Zero means 30 s.
	WriteTimeout time.Duration
	// Logger receives session events. Nil discards them.
	Logger *slog.Logger
	// DialContext opens the byte stream. Nil uses net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults. The negotiation values come from iscsi/text, the one source
// shared with the target (text.Offered...).
const (
	DefaultMaxRecvDataSegmentLength = text.OfferedMaxRecvDataSegmentLength
	DefaultFirstBurstLength         = text.OfferedFirstBurstLength
	DefaultMaxBurstLength           = text.OfferedMaxBurstLength
	DefaultMaxOutstandingR2T        = text.OfferedMaxOutstandingR2T
	DefaultMaxTasks                 = 128
	DefaultLoginTimeout             = 15 * time.Second
	DefaultWriteTimeout             = 30 * time.Second
)

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults(discovery bool) (Config, error) {
	if c.InitiatorName == "" {
		return c, errors.New("initiator: config: InitiatorName is required")
	}
	if !discovery && c.TargetName == "" {
		return c, errors.New("initiator: config: TargetName is required")
	}
	if c.MaxRecvDataSegmentLength == 0 {
		c.MaxRecvDataSegmentLength = DefaultMaxRecvDataSegmentLength
	}
	if c.MaxRecvDataSegmentLength < 512 || c.MaxRecvDataSegmentLength > maxDataSegment {
		return c, fmt.Errorf("initiator: config: MaxRecvDataSegmentLength %d outside 512..2^24-1", c.MaxRecvDataSegmentLength)
	}
	if c.FirstBurstLength == 0 {
		c.FirstBurstLength = DefaultFirstBurstLength
	}
	if c.MaxBurstLength == 0 {
		c.MaxBurstLength = DefaultMaxBurstLength
	}
	if c.MaxOutstandingR2T == 0 {
		c.MaxOutstandingR2T = DefaultMaxOutstandingR2T
	}
	if c.FirstBurstLength < 512 || c.MaxBurstLength < 512 || c.FirstBurstLength > maxDataSegment || c.MaxBurstLength > maxDataSegment {
		return c, fmt.Errorf("initiator: config: burst lengths %d/%d outside 512..2^24-1", c.FirstBurstLength, c.MaxBurstLength)
	}
	if c.MaxOutstandingR2T > 65535 {
		return c, fmt.Errorf("initiator: config: MaxOutstandingR2T %d above 65535", c.MaxOutstandingR2T)
	}
	if c.MaxTasks <= 0 {
		c.MaxTasks = DefaultMaxTasks
	}
	if c.MaxTasks > 0xfff0 {
		return c, fmt.Errorf("initiator: config: MaxTasks %d above 65520", c.MaxTasks)
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = DefaultLoginTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ISID == (pdu.ISID{}) {
		// Type 2 (random): T=10b; A reserved 0; B and C random; D qualifier.
		var r [4]byte
		if _, err := rand.Read(r[:]); err != nil {
			return c, fmt.Errorf("initiator: random ISID: %w", err)
		}
		c.ISID = pdu.ISID{0x80, 0, r[0], r[1], r[2], r[3]}
	}
	if c.CHAP != nil {
		if c.CHAP.User == "" || c.CHAP.Secret == "" {
			return c, errors.New("initiator: config: CHAP needs User and Secret")
		}
		ch := *c.CHAP
		ch.Algorithms = slices.Clone(ch.Algorithms)
		c.CHAP = &ch
	}
	return c, nil
}

// Params are the values in force after login (RFC 7143 §13).
type Params struct {
	// Discovery is true for a discovery session.
	Discovery bool
	// TSIH is the target-assigned session handle.
	TSIH uint16
	// ISID is the initiator part of the session identifier.
	ISID pdu.ISID
	// TargetPortalGroupTag is the TPGT the target declared (0 if none).
	TargetPortalGroupTag uint16
	// TargetAlias is the alias the target declared, if any.
	TargetAlias string
	// HeaderDigest and DataDigest are true when CRC32C is in use.
	HeaderDigest, DataDigest bool
	// MaxRecvDataSegmentLength is what we declared: the largest data
	// segment the target may send us. On iSER it is
	// InitiatorRecvDataSegmentLength.
	MaxRecvDataSegmentLength uint32
	// TargetMaxRecvDataSegmentLength is what the target declared: the
	// largest data segment we may send (default 8192). On iSER it is
	// TargetRecvDataSegmentLength.
	TargetMaxRecvDataSegmentLength uint32
	// RDMAExtensions is true on an iSER connection (RFC 7145 §6.2);
	// the two values below are then the negotiated
	// InitiatorRecvDataSegmentLength and TargetRecvDataSegmentLength
	// (RFC 7145 §6.3, §6.4): the largest data segment of a PDU the
	// initiator, respectively the target, receives in one SEND. Zero on
	// TCP.
	RDMAExtensions                                              bool
	InitiatorRecvDataSegmentLength, TargetRecvDataSegmentLength uint32
	// Negotiated session values.
	FirstBurstLength, MaxBurstLength, MaxOutstandingR2T uint32
	ImmediateData, InitialR2T                           bool
	// ErrorRecoveryLevel is always 0.
	ErrorRecoveryLevel uint8
}
