package scsi

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/goiser/goiser/scsi/backend"
)

// itl is the state of one I_T nexus on one logical unit.
type itl struct {
	ua []ASC // pending unit attentions, oldest first; guarded by lun.mu
}

// prReg is one persistent reservation registration.
type prReg struct {
	nexus Nexus
	key   uint64
}

// PR types (SPC-4 6.15.4, Table 173).
const (
	prWriteExclusive         = 1
	prExclusiveAccess        = 3
	prWriteExclusiveRegOnly  = 5
	prExclusiveAccessRegOnly = 6
	prWriteExclusiveAllRegs  = 7
	prExclusiveAccessAllRegs = 8
	prScopeLU                = 0
	maxPendingUnitAttentions = 8
	// maxWriteSameBlocks is the MAXIMUM WRITE SAME LENGTH. Below 65536 on
	// purpose: libiscsi's WriteSame16.Unmap writes and reads 65536 blocks
	// (32 MiB) in one command when the limit allows it, more than one
	// transfer may carry.
	maxWriteSameBlocks = 65535
)

func prAllRegistrants(typ byte) bool {
	return typ == prWriteExclusiveAllRegs || typ == prExclusiveAccessAllRegs
}

func prRegistrantsOnly(typ byte) bool {
	return typ == prWriteExclusiveRegOnly || typ == prExclusiveAccessRegOnly
}

// lun is one logical unit's state.
type lun struct {
	t             *Target
	number        uint64           // immutable
	be            backend.Backend  // immutable
	unmapper      backend.Unmapper // immutable; nil without thin provisioning
	mapper        backend.Mapper   // immutable; may be nil
	nonBlocking   bool             // immutable: a memory or null backend, which never blocks (Target.Inline)
	blockSize     int              // immutable
	physBlockSize int              // immutable, a power-of-two multiple of blockSize
	nblocks       uint64           // immutable
	readOnly      bool             // immutable
	removable     bool             // immutable
	serial        string           // immutable
	naa           [16]byte         // immutable NAA IEEE Registered Extended designator

	// Mode page state read on the datapath.
	dsense atomic.Bool // control page D_SENSE: descriptor format sense
	swp    atomic.Bool // control page SWP: software write protect
	wce    atomic.Bool // caching page WCE: write cache enabled

	// ejected is true while a removable LU's medium is out.
	ejected atomic.Bool

	// anyResv is true while a RESERVE(6/10) or persistent reservation exists
	// (registrations alone never conflict), so that commands skip the
	// reservation check without taking mu.
	anyResv atomic.Bool
	// anyUA counts nexuses with pending unit attentions (guarded by mu for
	// writes); zero lets commands skip the unit attention check.
	anyUA atomic.Int32

	// cawMu makes COMPARE AND WRITE, ORWRITE and WRITE ATOMIC atomic with
	// respect to other commands: READ and WRITE hold it shared, they hold
	// it exclusively.
	cawMu sync.RWMutex

	mu      sync.RWMutex   // guards the fields below
	nexi    map[Nexus]*itl // nexuses that have sent commands to this LU
	resv    *Nexus         // holder of the RESERVE(6/10) reservation, nil if none
	prRegs  []prReg        // persistent reservation registrations, in order of registration; at most maxRegs
	prIdx   map[Nexus]int  // index in prRegs of each registered nexus (prAddLocked, prFilterLocked keep it)
	maxRegs int            // immutable: LUNConfig.MaxRegistrations
	prGen   uint32         // PRgeneration
	prHeld  bool           // a persistent reservation exists
	prType  byte           // its type
	prOwner Nexus          // its holder (meaningless for all-registrants types)
	copies  []copyResult   // held EXTENDED COPY results, oldest first
	prevent map[Nexus]bool // nexuses that PREVENT medium removal (removable LUs)
}

func newLUN(t *Target, c LUNConfig) (*lun, error) {
	if c.Backend == nil {
		return nil, fmt.Errorf("no backend")
	}
	bs := c.BlockSize
	if bs == 0 {
		bs = 512
	}
	if bs != 512 && bs != 4096 {
		return nil, fmt.Errorf("block size %d: want 512 or 4096", bs)
	}
	nb := c.Backend.Size() / int64(bs)
	if nb < 1 {
		return nil, fmt.Errorf("backend of %d bytes holds no %d-byte block", c.Backend.Size(), bs)
	}
	serial := c.SerialNumber
	if serial == "" {
		serial = fmt.Sprintf("goiser-lun-%d", c.Number)
	}
	for i := 0; i < len(serial); i++ {
		if serial[i] < 0x20 || serial[i] > 0x7E {
			return nil, fmt.Errorf("serial number %q is not printable ASCII", serial)
		}
	}
	pbs := c.PhysicalBlockSize
	if pbs == 0 {
		pbs = bs
	}
	if pbs < bs || pbs > 1<<15*bs || pbs&(pbs-1) != 0 {
		return nil, fmt.Errorf("physical block size %d: want a power of two >= the block size %d", pbs, bs)
	}
	maxRegs := c.MaxRegistrations
	if maxRegs == 0 {
		maxRegs = DefaultMaxRegistrations
	}
	if maxRegs < 0 {
		return nil, fmt.Errorf("MaxRegistrations %d is negative", maxRegs)
	}
	l := &lun{t: t, number: c.Number, be: c.Backend, blockSize: bs, physBlockSize: pbs, nblocks: uint64(nb),
		readOnly: c.ReadOnly, removable: c.Removable, serial: serial, prevent: make(map[Nexus]bool), nexi: make(map[Nexus]*itl),
		prIdx: make(map[Nexus]int), maxRegs: maxRegs}
	if um, ok := c.Backend.(backend.Unmapper); ok && !c.NoThinProvisioning && !c.ReadOnly {
		l.unmapper = um
	}
	if m, ok := c.Backend.(backend.Mapper); ok {
		l.mapper = m
	}
	// Only the concrete types: a wrapper that embeds one (a test's gate,
	// a fault injector) may block, and its methods would not say so.
	switch c.Backend.(type) {
	case *backend.Memory, *backend.Null:
		l.nonBlocking = true
	}
	l.wce.Store(!c.WriteThrough)
	// NAA 6 (IEEE Registered Extended): 4-bit NAA, 24-bit OUI (none: 0),
	// then 100 bits of vendor-specific identifier derived from the target
	// name and the serial number, so every path sees the same identity.
	h := sha256.Sum256([]byte(t.name + "\x00" + serial))
	copy(l.naa[:], h[:16])
	l.naa[0] = 0x60
	l.naa[1] = 0x00
	l.naa[2] = 0x00
	l.naa[3] &= 0x0F
	return l, nil
}

// lbppbe is the LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT.
func (l *lun) lbppbe() byte {
	e := byte(0)
	for (l.blockSize << e) < l.physBlockSize {
		e++
	}
	return e
}

// maxTransferBlocks is the MAXIMUM TRANSFER LENGTH in blocks.
func (l *lun) maxTransferBlocks() int {
	return l.t.maxTransfer / l.blockSize
}

// thin reports whether unmapped blocks read as zeros (all our backends).
func (l *lun) thin() bool { return l.unmapper != nil }

// writeProtected reports the LU's write protection (ReadOnly or SWP).
func (l *lun) writeProtected() bool { return l.readOnly || l.swp.Load() }

// nexusLocked returns the state of nexus n, creating it. Called with mu held.
func (l *lun) nexusLocked(n Nexus) *itl {
	s := l.nexi[n]
	if s == nil {
		s = &itl{}
		l.nexi[n] = s
	}
	return s
}

// addUALocked queues asc for s. Called with mu held.
func (l *lun) addUALocked(s *itl, asc ASC) {
	for _, a := range s.ua {
		if a == asc {
			return
		}
	}
	if len(s.ua) >= maxPendingUnitAttentions {
		return
	}
	if len(s.ua) == 0 {
		l.anyUA.Add(1)
	}
	s.ua = append(s.ua, asc)
}

// prUALocked queues asc for the registered nexus n, if n is still known
// to the LU. Registrations outlive their I_T nexus (NexusLost keeps them),
// so a persistent reservation action must not recreate the state of a
// nexus that is gone: that state would never be reclaimed, and there is no
// nexus to report the condition to. Called with mu held.
func (l *lun) prUALocked(n Nexus, asc ASC) {
	if s := l.nexi[n]; s != nil {
		l.addUALocked(s, asc)
	}
}

// uaOthersLocked queues asc for every known nexus but n.
func (l *lun) uaOthersLocked(n Nexus, asc ASC) {
	for k, s := range l.nexi {
		if k != n {
			l.addUALocked(s, asc)
		}
	}
}

// admit records that n talks to this LU (so later unit attentions reach
// it) and, if takeUA, pops the oldest pending unit attention of n.
func (l *lun) admit(n Nexus, takeUA bool) (result, bool) {
	l.mu.RLock()
	s := l.nexi[n]
	fast := s != nil && (!takeUA || l.anyUA.Load() == 0 || len(s.ua) == 0)
	l.mu.RUnlock()
	if fast {
		return result{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s = l.nexusLocked(n)
	if !takeUA || len(s.ua) == 0 {
		return result{}, false
	}
	asc := s.ua[0]
	s.ua = append(s.ua[:0], s.ua[1:]...)
	if len(s.ua) == 0 {
		l.anyUA.Add(-1)
	}
	return checkCondition(SenseUnitAttention, asc), true
}

// takeUAForSense pops the oldest pending unit attention of n for REQUEST
// SENSE.
func (l *lun) takeUAForSense(n Nexus) (ASC, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.nexusLocked(n)
	if len(s.ua) == 0 {
		return 0, false
	}
	asc := s.ua[0]
	s.ua = append(s.ua[:0], s.ua[1:]...)
	if len(s.ua) == 0 {
		l.anyUA.Add(-1)
	}
	return asc, true
}

func (l *lun) updateResvLocked() {
	l.anyResv.Store(l.resv != nil || l.prHeld)
}

// reset is LOGICAL UNIT RESET (and target reset) on behalf of n.
func (l *lun) reset(n Nexus, asc ASC) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resv = nil
	l.updateResvLocked()
	l.dsense.Store(false)
	l.swp.Store(false)
	clear(l.prevent)
	// SAM-5 6.3.3: the unit attention goes to every I_T nexus, the one
	// that asked for the reset included.
	for _, s := range l.nexi {
		l.addUALocked(s, asc)
	}
	_ = n
}

// nexusLost is I_T nexus loss of n.
func (l *lun) nexusLost(n Nexus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.resv != nil && *l.resv == n {
		l.resv = nil
		l.updateResvLocked()
	}
	delete(l.prevent, n)
	for i := 0; i < len(l.copies); {
		if l.copies[i].nexus == n {
			l.copies = append(l.copies[:i], l.copies[i+1:]...)
			continue
		}
		i++
	}
	if s := l.nexi[n]; s != nil {
		if len(s.ua) > 0 {
			l.anyUA.Add(-1)
		}
		delete(l.nexi, n)
	}
}

// registeredLocked returns the index of n's registration, or -1. It is a
// map lookup: the reservation check of every command uses it.
func (l *lun) registeredLocked(n Nexus) int {
	if i, ok := l.prIdx[n]; ok {
		return i
	}
	return -1
}

// prAddLocked registers n with key; false if the LU already holds maxRegs
// registrations (INSUFFICIENT REGISTRATION RESOURCES). n must not be
// registered.
func (l *lun) prAddLocked(n Nexus, key uint64) bool {
	if len(l.prRegs) >= l.maxRegs {
		return false
	}
	l.prIdx[n] = len(l.prRegs)
	l.prRegs = append(l.prRegs, prReg{nexus: n, key: key})
	return true
}

// prFilterLocked keeps the registrations for which keep is true, in order,
// and reindexes them.
func (l *lun) prFilterLocked(keep func(prReg) bool) {
	kept := l.prRegs[:0]
	for _, r := range l.prRegs {
		if keep(r) {
			kept = append(kept, r)
		}
	}
	clear(l.prRegs[len(kept):])
	l.prRegs = kept
	clear(l.prIdx)
	for i, r := range l.prRegs {
		l.prIdx[r.nexus] = i
	}
}

// prHolderLocked reports whether n holds the persistent reservation.
func (l *lun) prHolderLocked(n Nexus) bool {
	if !l.prHeld {
		return false
	}
	if prAllRegistrants(l.prType) {
		return l.registeredLocked(n) >= 0
	}
	return l.prOwner == n
}

// conflict reports whether cmd from n must get RESERVATION CONFLICT.
func (l *lun) conflict(n Nexus, info *opInfo, cdb []byte) bool {
	if !l.anyResv.Load() {
		return false
	}
	// Shared: the check only reads, and every command of every nexus
	// makes it while a reservation exists.
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.resv != nil {
		if *l.resv == n {
			return false
		}
		if info.spc2OK {
			return false
		}
		if info.op == OpPreventAllow && cdb[4]&0x03 == 0 {
			return false
		}
		return true
	}
	if !l.prHeld {
		return false // registrations only
	}
	switch info.op {
	case OpReserve6, OpReserve10, OpRelease6, OpRelease10:
		return true
	}
	if info.class == resvAllowed || l.prHolderLocked(n) {
		return false
	}
	registered := l.registeredLocked(n) >= 0
	switch l.prType {
	case prWriteExclusive:
		return info.class == resvWrite
	case prExclusiveAccess:
		return true
	case prWriteExclusiveRegOnly, prWriteExclusiveAllRegs:
		return !registered && info.class == resvWrite
	case prExclusiveAccessRegOnly, prExclusiveAccessAllRegs:
		return !registered
	}
	return false
}
