package scsi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/goiser/goiser/scsi/backend"
)

// TargetConfig configures NewTarget. Zero values are documented defaults.
type TargetConfig struct {
	// LUNs are the logical units; numbers must be unique.
	LUNs []LUNConfig
	// Logger receives errors from backends; nil discards.
	Logger *slog.Logger
	// Vendor is the T10 vendor identification (at most 8 ASCII bytes);
	// default "GOISER".
	Vendor string
	// Product is the product identification (at most 16 ASCII bytes);
	// default "goiser".
	Product string
	// Revision is the product revision level (at most 4 ASCII bytes);
	// default "0001".
	Revision string
	// MaxTransferLength is the most bytes one READ or WRITE may move; it is
	// reported in the Block Limits VPD page and longer commands get
	// INVALID FIELD IN CDB. Set it to what the transport can buffer for one
	// command; default 16 MiB (iscsi/tcp's default MaxTaskData).
	MaxTransferLength int
	// Name identifies the target in derived identifiers (the NAA
	// designator of each LUN is derived from Name and the LUN's serial
	// number); default is the product name.
	Name string
}

// LUNConfig configures one logical unit.
type LUNConfig struct {
	// Number is the LUN (0..16383 with flat addressing).
	Number uint64
	// Backend stores the data; the Target closes it in Close.
	Backend backend.Backend
	// BlockSize is the logical block size: 512 (default) or 4096.
	BlockSize int
	// SerialNumber is reported in VPD page 0x80 and feeds the NAA
	// designator of VPD 0x83; default "goiser-lun-<Number>".
	SerialNumber string
	// ReadOnly makes the LUN write protected (DATA PROTECT on writes).
	ReadOnly bool
	// Removable makes the LU a removable medium (INQUIRY RMB=1): START
	// STOP UNIT with LOEJ ejects and loads it, PREVENT ALLOW MEDIUM
	// REMOVAL (per I_T nexus) stops the eject, and while it is ejected
	// medium access commands get NOT READY, MEDIUM NOT PRESENT.
	Removable bool
	// PhysicalBlockSize is reported in READ CAPACITY(16) (LOGICAL BLOCKS
	// PER PHYSICAL BLOCK EXPONENT); default BlockSize. Note that libiscsi
	// 1.19's GetLBAStatus.UnmapSingle test only passes with the default.
	PhysicalBlockSize int
	// NoThinProvisioning hides UNMAP and WRITE SAME UNMAP even when the
	// backend implements backend.Unmapper (LBPME=0).
	NoThinProvisioning bool
	// WriteThrough clears the initial WCE bit of the caching mode page:
	// every command that changes the medium (WRITE, WRITE SAME, UNMAP,
	// COMPARE AND WRITE, an EXTENDED COPY writing this LU ...) is then
	// flushed to the backend's stable storage before it completes. The zero value reports a write-back cache (WCE=1):
	// initiators make data durable with FUA and SYNCHRONIZE CACHE.
	WriteThrough bool
	// MaxRegistrations caps the persistent reservation registrations the
	// LU holds (one per I_T nexus); a REGISTER beyond it gets ILLEGAL
	// REQUEST, INSUFFICIENT REGISTRATION RESOURCES (SPC-4 5.13.7). Zero is
	// DefaultMaxRegistrations.
	MaxRegistrations int
}

// DefaultMaxRegistrations is the default LUNConfig.MaxRegistrations.
const DefaultMaxRegistrations = 1024

// DefaultMaxTransferLength is the default TargetConfig.MaxTransferLength.
const DefaultMaxTransferLength = 16 << 20

// Target is a set of logical units seen by initiators. It is safe for
// concurrent use by many sessions and workers. It handles REPORT LUNS,
// non-existent LUNs (INQUIRY peripheral qualifier 011b, other commands
// LOGICAL UNIT NOT SUPPORTED), unit attentions per I_T nexus and
// reservations (RESERVE/RELEASE and PERSISTENT RESERVE per I_T nexus).
type Target struct {
	log         *slog.Logger
	vendor      [8]byte         // immutable, space padded
	product     [16]byte        // immutable, space padded
	revision    [4]byte         // immutable, space padded
	name        string          // immutable
	maxTransfer int             // immutable, bytes
	luns        map[uint64]*lun // immutable after NewTarget; each lun guards itself
	lunList     []uint64        // immutable, sorted
	ops         *opTable        // immutable
}

// NewTarget validates cfg and returns a Target serving its LUNs.
func NewTarget(cfg TargetConfig) (*Target, error) {
	t := &Target{log: cfg.Logger, luns: make(map[uint64]*lun, len(cfg.LUNs))}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	vendor, product, revision := cfg.Vendor, cfg.Product, cfg.Revision
	if vendor == "" {
		vendor = "GOISER"
	}
	if product == "" {
		product = "goiser"
	}
	if revision == "" {
		revision = "0001"
	}
	if err := padASCII(t.vendor[:], vendor); err != nil {
		return nil, fmt.Errorf("new target: vendor: %w", err)
	}
	if err := padASCII(t.product[:], product); err != nil {
		return nil, fmt.Errorf("new target: product: %w", err)
	}
	if err := padASCII(t.revision[:], revision); err != nil {
		return nil, fmt.Errorf("new target: revision: %w", err)
	}
	t.maxTransfer = cfg.MaxTransferLength
	if t.maxTransfer == 0 {
		t.maxTransfer = DefaultMaxTransferLength
	}
	if t.maxTransfer < 4096 {
		return nil, fmt.Errorf("new target: MaxTransferLength %d below 4096 bytes", t.maxTransfer)
	}
	t.name = cfg.Name
	if t.name == "" {
		t.name = product
	}
	for i := range cfg.LUNs {
		lc := cfg.LUNs[i]
		if _, dup := t.luns[lc.Number]; dup {
			return nil, fmt.Errorf("new target: LUN %d configured twice", lc.Number)
		}
		l, err := newLUN(t, lc)
		if err != nil {
			return nil, fmt.Errorf("new target: LUN %d: %w", lc.Number, err)
		}
		t.luns[lc.Number] = l
		t.lunList = append(t.lunList, lc.Number)
	}
	slices.Sort(t.lunList)
	t.ops = newOpTable()
	return t, nil
}

func padASCII(dst []byte, s string) error {
	if len(s) > len(dst) {
		return fmt.Errorf("%q longer than %d bytes", s, len(dst))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return fmt.Errorf("%q is not printable ASCII", s)
		}
	}
	copy(dst, s)
	for i := len(s); i < len(dst); i++ {
		dst[i] = ' '
	}
	return nil
}

// LUNs returns the configured LUN numbers, sorted.
func (t *Target) LUNs() []uint64 { return slices.Clone(t.lunList) }

// Close flushes and closes every LUN's backend, so that writes completed
// under a write-back cache are durable. The Target must not be used after.
func (t *Target) Close() error {
	var errs []error
	for _, n := range t.lunList {
		be := t.luns[n].be
		if err := be.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flush LUN %d: %w", n, err))
		}
		if err := be.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close LUN %d: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// ErrNoLUN is returned (wrapped) by task management calls for a LUN the
// target does not have.
var ErrNoLUN = errors.New("no such logical unit")

// ResetLUN performs a LOGICAL UNIT RESET on behalf of nexus n: it clears
// RESERVE(6/10) reservations, restores the control mode page to its
// defaults and sets a BUS DEVICE RESET FUNCTION OCCURRED unit attention for
// every nexus that has used the LU, n included (SAM-5 6.3.3; libiscsi's
// MultipathIO.Reset checks every path). Persistent reservations survive.
func (t *Target) ResetLUN(n Nexus, lun uint64) error {
	l, ok := t.luns[lun]
	if !ok {
		return fmt.Errorf("reset LUN %d: %w", lun, ErrNoLUN)
	}
	l.reset(n, ASCBusDeviceResetOccurred)
	return nil
}

// Reset performs a TARGET WARM RESET (cold=false) or TARGET COLD RESET on
// behalf of nexus n: ResetLUN for every LUN, with POWER ON OCCURRED as the
// unit attention for a cold reset.
func (t *Target) Reset(n Nexus, cold bool) error {
	asc := ASCBusDeviceResetOccurred
	if cold {
		asc = ASCPowerOnOccurred
	}
	for _, num := range t.lunList {
		t.luns[num].reset(n, asc)
	}
	return nil
}

// NexusLost handles the loss of I_T nexus n (its session ended): its
// RESERVE(6/10) reservations are released and its pending unit attentions
// dropped. Persistent reservations and registrations survive.
func (t *Target) NexusLost(n Nexus) {
	for _, num := range t.lunList {
		t.luns[num].nexusLost(n)
	}
}

// Execute runs cmd to completion (blocking; ctx cancels a long backend
// operation) and sets Status, Sense, DataInLen and Want. It never panics
// on bad input: a bad CDB gets CHECK CONDITION with ILLEGAL REQUEST sense
// (INVALID COMMAND OPERATION CODE, INVALID FIELD IN CDB, LOGICAL BLOCK
// ADDRESS OUT OF RANGE, PARAMETER LIST LENGTH ERROR ...). READ and WRITE
// allocate nothing.
func (t *Target) Execute(ctx context.Context, cmd *Command) {
	t.execute(ctx, cmd)
}

// InlineMaxBytes is the largest READ or WRITE that Inline lets run on the
// caller's goroutine: the memory copy of a larger one would hold up the
// caller (an iSCSI connection's owner, which also answers task
// management and NOP-Outs) for longer than a hand-off to a worker costs.
const InlineMaxBytes = 128 << 10

// Inline reports whether a command may run on the caller's goroutine
// instead of a worker's: a READ or WRITE (6, 10, 12, 16) of at most
// InlineMaxBytes on a LUN whose backend never blocks (a *backend.Memory
// or *backend.Null itself, not a wrapper around one). Such a command still takes the LU's
// locks and honours reservations; a lock held by a long command on a
// worker (COMPARE AND WRITE) makes the caller wait for it.
func (t *Target) Inline(lun uint64, cdb []byte) bool {
	l, ok := t.luns[lun]
	if !ok || !l.nonBlocking || len(cdb) == 0 {
		return false
	}
	switch cdb[0] {
	case OpRead6, OpRead10, OpRead12, OpRead16, OpWrite6, OpWrite10, OpWrite12, OpWrite16:
	default:
		return false
	}
	if len(cdb) < cdbLen(cdb[0]) {
		return false
	}
	return uint64(decodeLBA(cdb).blocks)*uint64(l.blockSize) <= InlineMaxBytes
}

// DataOutLen decodes how many bytes of Data-Out the CDB asks for, so a
// transport can check it against the iSCSI Expected Data Transfer Length
// before fetching data. ok is false when the CDB is not understood, or when
// Execute needs all the data the initiator announced to judge the command
// (COMPARE AND WRITE of 0 blocks): the transport then fetches its Expected
// Data Transfer Length and Execute reports the error.
func (t *Target) DataOutLen(lun uint64, cdb []byte) (n int, ok bool) {
	bs := 512
	if l, found := t.luns[lun]; found {
		bs = l.blockSize
	}
	return dataOutLen(cdb, bs)
}
