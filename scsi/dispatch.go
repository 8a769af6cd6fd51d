package scsi

import (
	"context"
)

// result is what a handler returns: a status and, for CHECK CONDITION, the
// sense to build. The zero value is GOOD.
type result struct {
	status Status
	sense  senseInfo
}

var good = result{}

func checkCondition(key SenseKey, asc ASC) result {
	return result{status: StatusCheckCondition, sense: senseInfo{key: key, asc: asc}}
}

// invalidCDB is ILLEGAL REQUEST, INVALID FIELD IN CDB pointing at byte
// (and bit, if bit >= 0) of the CDB.
func invalidCDB(byteIdx int, bit int) result {
	r := checkCondition(SenseIllegalRequest, ASCInvalidFieldInCDB)
	r.sense.fieldValid, r.sense.cd, r.sense.field = true, true, uint16(byteIdx)
	if bit >= 0 {
		r.sense.bitValid, r.sense.bit = true, uint8(bit)
	}
	return r
}

// invalidParam is ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST
// pointing at byte of the parameter list.
func invalidParam(byteIdx int) result {
	r := checkCondition(SenseIllegalRequest, ASCInvalidFieldInParamList)
	r.sense.fieldValid, r.sense.field = true, uint16(byteIdx)
	return r
}

var (
	resLBAOutOfRange   = checkCondition(SenseIllegalRequest, ASCLBAOutOfRange)
	resParamListLength = checkCondition(SenseIllegalRequest, ASCParameterListLengthError)
	resWriteProtected  = checkCondition(SenseDataProtect, ASCWriteProtected)
	resConflict        = result{status: StatusReservationConflict}
	resInvalidOpcode   = checkCondition(SenseIllegalRequest, ASCInvalidOpcode)
	// resInsufficientRegResources refuses a registration beyond
	// LUNConfig.MaxRegistrations (SPC-4 5.13.7).
	resInsufficientRegResources = checkCondition(SenseIllegalRequest, ASCInsufficientRegResources)
)

// resvClass classifies a command for reservation conflict checks
// (SPC-4 5.13.1, Table 63; SBC-3 4.17).
type resvClass uint8

const (
	resvAllowed resvClass = iota // never conflicts (INQUIRY, REPORT LUNS, PR IN/OUT ...)
	resvRead                     // reads the medium: allowed for WRITE EXCLUSIVE types
	resvWrite                    // modifies the medium or the LU's state
)

// handler runs one command after the common checks passed.
type handler func(t *Target, l *lun, ctx context.Context, c *Command) result

// opInfo describes one operation code (or one service action of it).
type opInfo struct {
	op, sa    byte
	hasSA     bool // reported with SERVACTV=1 in REPORT SUPPORTED OPERATION CODES
	name      string
	run       handler
	usage     []byte // CDB usage data (SPC-4 6.35.3): bits the command uses; also the reserved-bit check
	class     resvClass
	spc2OK    bool // allowed while another nexus holds a RESERVE(6/10) reservation
	noUA      bool // does not report or clear pending unit attentions (INQUIRY, REPORT LUNS, REQUEST SENSE)
	noLUN     bool // runs for a LUN that does not exist
	medium    bool // needs the medium: NOT READY, MEDIUM NOT PRESENT while a removable LU is ejected
	blockData bool // its Data-Out is logical block data (not a parameter list); see shortDataOut
	// protected: a write-protected LU refuses it with DATA PROTECT, WRITE
	// PROTECTED before its Data-Out is looked at (blockData commands are
	// protected too).
	protected bool
	fua       bool // byte 1 bit 3 is FUA and bit 1 FUA_NV: forces the changes durable
	verify    bool // WRITE AND VERIFY: its changes are always made durable
	timeoutMs uint32
	sub       []*opInfo // commands with service actions, by service action
}

// opTable maps operation codes (and service actions) to handlers. It is
// built once per Target and immutable after.
type opTable struct {
	byOp [256]*opInfo
	all  []*opInfo // every leaf, sorted by opcode and service action, for REPORT SUPPORTED OPERATION CODES
}

// lookup finds the opInfo for cdb; the second result is false for an
// unsupported opcode, the third false for an unsupported service action.
func (o *opTable) lookup(cdb []byte) (*opInfo, bool) {
	i := o.byOp[cdb[0]]
	if i == nil {
		return nil, false
	}
	if i.sub != nil {
		if len(cdb) < 2 {
			return i, true // hInvalidSA answers
		}
		sa := cdb[1] & 0x1F
		for _, s := range i.sub {
			if s.sa == sa {
				return s, true
			}
		}
		return i, true // the opcode exists, the service action not
	}
	return i, true
}

// find returns the leaf for op/sa as REPORT SUPPORTED OPERATION CODES asks.
func (o *opTable) find(op, sa byte, withSA bool) (*opInfo, bool) {
	i := o.byOp[op]
	if i == nil {
		return nil, false
	}
	if i.sub == nil {
		return i, !withSA
	}
	if !withSA {
		return nil, false
	}
	for _, s := range i.sub {
		if s.sa == sa {
			return s, true
		}
	}
	return nil, true
}

func (o *opTable) add(i *opInfo) {
	if i.timeoutMs == 0 {
		i.timeoutMs = 30000
	}
	if !i.hasSA {
		o.byOp[i.op] = i
		o.all = append(o.all, i)
		return
	}
	p := o.byOp[i.op]
	if p == nil {
		p = &opInfo{op: i.op, name: i.name, run: hInvalidSA, usage: []byte{i.op, 0x1F}, noUA: i.noUA, noLUN: i.noLUN, class: i.class, spc2OK: i.spc2OK}
		o.byOp[i.op] = p
	}
	p.sub = append(p.sub, i)
	o.all = append(o.all, i)
}

// hInvalidSA answers an unsupported service action of a known opcode.
func hInvalidSA(_ *Target, _ *lun, _ context.Context, _ *Command) result {
	return invalidCDB(1, 4)
}

// usage bytes helpers: c is the control byte usage (0: NACA, LINK unsupported).
func u(b ...byte) []byte { return b }

func newOpTable() *opTable {
	o := &opTable{}
	ff4 := []byte{0xFF, 0xFF, 0xFF, 0xFF}
	ff8 := append(append([]byte{}, ff4...), ff4...)
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	rw10 := func(op, b1 byte) []byte { return cat(u(op, b1), ff4, u(0x1F, 0xFF, 0xFF, 0x00)) }
	rw12 := func(op, b1 byte) []byte { return cat(u(op, b1), ff4, ff4, u(0x1F, 0x00)) }
	rw16 := func(op, b1 byte) []byte { return cat(u(op, b1), ff8, ff4, u(0x1F, 0x00)) }

	o.add(&opInfo{op: OpTestUnitReady, name: "TEST UNIT READY", run: hTestUnitReady, usage: u(0x00, 0, 0, 0, 0, 0), class: resvAllowed, medium: true})
	o.add(&opInfo{op: OpRequestSense, name: "REQUEST SENSE", run: hRequestSense, usage: u(0x03, 0x01, 0, 0, 0xFF, 0), class: resvAllowed, spc2OK: true, noUA: true, noLUN: true})
	o.add(&opInfo{op: OpRead6, name: "READ(6)", run: hRead, usage: u(0x08, 0x1F, 0xFF, 0xFF, 0xFF, 0), class: resvRead, medium: true})
	o.add(&opInfo{op: OpWrite6, name: "WRITE(6)", run: hWrite, usage: u(0x0A, 0x1F, 0xFF, 0xFF, 0xFF, 0), class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpInquiry, name: "INQUIRY", run: hInquiry, usage: u(0x12, 0x01, 0xFF, 0xFF, 0xFF, 0), class: resvAllowed, spc2OK: true, noUA: true, noLUN: true})
	o.add(&opInfo{op: OpModeSelect6, name: "MODE SELECT(6)", run: hModeSelect, usage: u(0x15, 0x11, 0, 0, 0xFF, 0), class: resvWrite})
	o.add(&opInfo{op: OpReserve6, name: "RESERVE(6)", run: hReserve, usage: u(0x16, 0, 0, 0, 0, 0), class: resvAllowed})
	o.add(&opInfo{op: OpRelease6, name: "RELEASE(6)", run: hRelease, usage: u(0x17, 0, 0, 0, 0, 0), class: resvAllowed, spc2OK: true})
	o.add(&opInfo{op: OpModeSense6, name: "MODE SENSE(6)", run: hModeSense, usage: u(0x1A, 0x08, 0xFF, 0xFF, 0xFF, 0), class: resvRead})
	o.add(&opInfo{op: OpStartStopUnit, name: "START STOP UNIT", run: hStartStop, usage: u(0x1B, 0x01, 0, 0x0F, 0xF7, 0), class: resvWrite})
	o.add(&opInfo{op: OpPreventAllow, name: "PREVENT ALLOW MEDIUM REMOVAL", run: hPreventAllow, usage: u(0x1E, 0, 0, 0, 0x03, 0), class: resvWrite})
	o.add(&opInfo{op: OpReadCapacity10, name: "READ CAPACITY(10)", run: hReadCapacity10, usage: u(0x25, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x01, 0), class: resvAllowed, medium: true})
	o.add(&opInfo{op: OpRead10, name: "READ(10)", run: hRead, usage: rw10(OpRead10, 0x1E), class: resvRead, medium: true})
	o.add(&opInfo{op: OpWrite10, name: "WRITE(10)", run: hWrite, usage: rw10(OpWrite10, 0x1A), fua: true, class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpWriteVerify10, name: "WRITE AND VERIFY(10)", run: hWriteVerify, usage: rw10(OpWriteVerify10, 0x16), verify: true, class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpVerify10, name: "VERIFY(10)", run: hVerify, usage: rw10(OpVerify10, 0x16), class: resvRead, medium: true})
	o.add(&opInfo{op: OpPrefetch10, name: "PRE-FETCH(10)", run: hPrefetch, usage: rw10(OpPrefetch10, 0x02), class: resvRead, medium: true})
	o.add(&opInfo{op: OpReadDefectData10, name: "READ DEFECT DATA(10)", run: hReadDefectData, usage: u(0x37, 0, 0x1F, 0, 0, 0, 0, 0xFF, 0xFF, 0), class: resvRead})
	o.add(&opInfo{op: OpSyncCache10, name: "SYNCHRONIZE CACHE(10)", run: hSyncCache, usage: rw10(OpSyncCache10, 0x06), class: resvWrite, medium: true})
	o.add(&opInfo{op: OpWriteSame10, name: "WRITE SAME(10)", run: hWriteSame, usage: rw10(OpWriteSame10, 0x08), class: resvWrite, medium: true, protected: true, timeoutMs: 120000})
	o.add(&opInfo{op: OpUnmap, name: "UNMAP", run: hUnmap, usage: u(0x42, 0, 0, 0, 0, 0, 0x1F, 0xFF, 0xFF, 0), class: resvWrite, medium: true, protected: true, timeoutMs: 120000})
	o.add(&opInfo{op: OpModeSelect10, name: "MODE SELECT(10)", run: hModeSelect, usage: u(0x55, 0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0), class: resvWrite})
	o.add(&opInfo{op: OpReserve10, name: "RESERVE(10)", run: hReserve, usage: u(0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0), class: resvAllowed})
	o.add(&opInfo{op: OpRelease10, name: "RELEASE(10)", run: hRelease, usage: u(0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0), class: resvAllowed, spc2OK: true})
	o.add(&opInfo{op: OpModeSense10, name: "MODE SENSE(10)", run: hModeSense, usage: u(0x5A, 0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0), class: resvRead})
	for sa, name := range []string{"READ KEYS", "READ RESERVATION", "REPORT CAPABILITIES", "READ FULL STATUS"} {
		o.add(&opInfo{op: OpPersistentReserveIn, sa: byte(sa), hasSA: true, name: "PERSISTENT RESERVE IN " + name, run: hPRIn,
			usage: u(0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0), class: resvAllowed})
	}
	for sa, name := range []string{"REGISTER", "RESERVE", "RELEASE", "CLEAR", "PREEMPT", "PREEMPT AND ABORT", "REGISTER AND IGNORE EXISTING KEY", "REGISTER AND MOVE"} {
		o.add(&opInfo{op: OpPersistentReserveOut, sa: byte(sa), hasSA: true, name: "PERSISTENT RESERVE OUT " + name, run: hPROut,
			usage: u(0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0), class: resvAllowed})
	}
	o.add(&opInfo{op: OpExtendedCopy, sa: SAExtendedCopyLID1, hasSA: true, name: "EXTENDED COPY(LID1)", run: hExtendedCopy,
		usage: cat(u(OpExtendedCopy, 0x1F), make([]byte, 8), ff4, u(0, 0)), class: resvWrite, timeoutMs: 120000})
	for _, sa := range []byte{SACopyStatus, SAOperatingParameters} {
		o.add(&opInfo{op: OpReceiveCopyResults, sa: sa, hasSA: true, name: "RECEIVE COPY RESULTS", run: hReceiveCopyResults,
			usage: cat(u(OpReceiveCopyResults, 0x1F, 0xFF), make([]byte, 7), ff4, u(0, 0)), class: resvRead})
	}
	o.add(&opInfo{op: OpRead16, name: "READ(16)", run: hRead, usage: rw16(OpRead16, 0x1E), class: resvRead, medium: true})
	o.add(&opInfo{op: OpCompareAndWrite, name: "COMPARE AND WRITE", run: hCompareAndWrite, usage: cat(u(OpCompareAndWrite, 0x1A), ff8, u(0, 0, 0, 0xFF, 0x1F, 0)), fua: true, class: resvWrite, medium: true, protected: true})
	o.add(&opInfo{op: OpWrite16, name: "WRITE(16)", run: hWrite, usage: rw16(OpWrite16, 0x1A), fua: true, class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpOrWrite16, name: "ORWRITE(16)", run: hOrWrite, usage: rw16(OpOrWrite16, 0x1A), fua: true, class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpWriteVerify16, name: "WRITE AND VERIFY(16)", run: hWriteVerify, usage: rw16(OpWriteVerify16, 0x16), verify: true, class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpVerify16, name: "VERIFY(16)", run: hVerify, usage: rw16(OpVerify16, 0x16), class: resvRead, medium: true})
	o.add(&opInfo{op: OpPrefetch16, name: "PRE-FETCH(16)", run: hPrefetch, usage: rw16(OpPrefetch16, 0x02), class: resvRead, medium: true})
	o.add(&opInfo{op: OpSyncCache16, name: "SYNCHRONIZE CACHE(16)", run: hSyncCache, usage: rw16(OpSyncCache16, 0x06), class: resvWrite, medium: true})
	o.add(&opInfo{op: OpWriteSame16, name: "WRITE SAME(16)", run: hWriteSame, usage: rw16(OpWriteSame16, 0x09), class: resvWrite, medium: true, protected: true, timeoutMs: 120000})
	o.add(&opInfo{op: OpWriteAtomic16, name: "WRITE ATOMIC(16)", run: hWriteAtomic, usage: cat(u(OpWriteAtomic16, 0x18), ff8, u(0, 0, 0xFF, 0xFF, 0x1F, 0)), fua: true, class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpServiceActionIn16, sa: SAReadCapacity16, hasSA: true, name: "READ CAPACITY(16)", run: hReadCapacity16,
		usage: cat(u(0x9E, 0x1F), ff8, ff4, u(0x01, 0)), class: resvAllowed, medium: true})
	o.add(&opInfo{op: OpServiceActionIn16, sa: SAGetLBAStatus, hasSA: true, name: "GET LBA STATUS", run: hGetLBAStatus,
		usage: cat(u(0x9E, 0x1F), ff8, ff4, u(0, 0)), class: resvRead, medium: true})
	o.add(&opInfo{op: OpReportLUNs, name: "REPORT LUNS", run: hReportLUNs, usage: u(0xA0, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), class: resvAllowed, spc2OK: true, noUA: true, noLUN: true})
	o.add(&opInfo{op: OpMaintenanceIn, sa: SAReportSupportedOpcodes, hasSA: true, name: "REPORT SUPPORTED OPERATION CODES", run: hReportOpcodes,
		usage: u(0xA3, 0x1F, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), class: resvAllowed, spc2OK: true})
	o.add(&opInfo{op: OpMaintenanceIn, sa: SAReportSupportedTMFunctions, hasSA: true, name: "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", run: hReportTMFs,
		usage: u(0xA3, 0x1F, 0x80, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), class: resvAllowed, spc2OK: true})
	o.add(&opInfo{op: OpRead12, name: "READ(12)", run: hRead, usage: rw12(OpRead12, 0x1E), class: resvRead, medium: true})
	o.add(&opInfo{op: OpWrite12, name: "WRITE(12)", run: hWrite, usage: rw12(OpWrite12, 0x1A), fua: true, class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpWriteVerify12, name: "WRITE AND VERIFY(12)", run: hWriteVerify, usage: rw12(OpWriteVerify12, 0x16), verify: true, class: resvWrite, blockData: true, medium: true})
	o.add(&opInfo{op: OpVerify12, name: "VERIFY(12)", run: hVerify, usage: rw12(OpVerify12, 0x16), class: resvRead, medium: true})
	o.add(&opInfo{op: OpReadDefectData12, name: "READ DEFECT DATA(12)", run: hReadDefectData, usage: cat(u(0xB7, 0x1F), ff4, ff4, u(0, 0)), class: resvRead})
	// o.all is in insertion order, which follows opcode order above except
	// for service actions; REPORT SUPPORTED OPERATION CODES sorts it.
	sortOps(o.all)
	return o
}

func sortOps(ops []*opInfo) {
	for i := 1; i < len(ops); i++ {
		for j := i; j > 0 && opLess(ops[j], ops[j-1]); j-- {
			ops[j], ops[j-1] = ops[j-1], ops[j]
		}
	}
}

func opLess(a, b *opInfo) bool {
	if a.op != b.op {
		return a.op < b.op
	}
	return a.sa < b.sa
}

// execute is Target.Execute.
func (t *Target) execute(ctx context.Context, c *Command) {
	c.Status, c.Sense, c.DataInLen, c.Want = StatusGood, nil, 0, 0
	c.changed = mediumChanges{}
	l := t.luns[c.LUN]
	r := t.dispatch(ctx, l, c)
	if c.changed.n > 0 || c.changed.overflow {
		r = t.settle(c, r)
	}
	c.Status = r.status
	if r.status == StatusCheckCondition {
		desc := false
		if l != nil {
			desc = l.dsense.Load()
		}
		n := buildSense(c.senseBuf[:], desc, r.sense)
		c.Sense = c.senseBuf[:n]
	}
	if c.DataInLen > len(c.DataIn) {
		c.DataInLen = len(c.DataIn)
	}
}

func (t *Target) dispatch(ctx context.Context, l *lun, c *Command) result {
	cdb := c.CDB
	if len(cdb) == 0 {
		return invalidCDB(0, -1)
	}
	info, ok := t.ops.lookup(cdb)
	if l == nil {
		if !ok || !info.noLUN {
			return checkCondition(SenseIllegalRequest, ASCLUNNotSupported)
		}
	}
	if l != nil {
		if r, pending := l.admit(c.Nexus, !ok || !info.noUA); pending {
			return r
		}
	}
	if !ok {
		return resInvalidOpcode
	}
	if info.sub != nil {
		return info.run(t, l, ctx, c) // hInvalidSA: known opcode, unknown service action
	}
	n := len(info.usage)
	if len(cdb) < n {
		return invalidCDB(len(cdb), -1)
	}
	// Reserved bits (every bit the usage data does not list), then the
	// CONTROL byte: NACA and LINK are not supported.
	for i := 1; i < n-1; i++ {
		if cdb[i]&^info.usage[i] != 0 {
			return invalidCDB(i, highBit(cdb[i]&^info.usage[i]))
		}
	}
	if cdb[n-1]&0x07 != 0 {
		return invalidCDB(n-1, highBit(cdb[n-1]&0x07))
	}
	if l != nil {
		if r := l.access(c.Nexus, info, cdb); r.status != StatusGood {
			return r
		}
		if r, short := l.shortDataOut(info, c); short {
			return r
		}
	}
	c.changed.force = info.verify || info.fua && cdb[1]&0x0A != 0
	return info.run(t, l, ctx, c)
}

// shortDataOut refuses a command whose Data-Out falls short of what its CDB
// asks for (the transport received less, or the initiator announced less),
// before any handler can apply part of it: a torn sector or half a
// parameter list must never reach the medium or the LU's state. Want is set
// to the CDB's length so the transport reports the overflow residual.
//
// Block data gets ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT:
// FCP-4's choice b) for an FCP_DL below the command's transfer length,
// what Linux LIO answers for a WRITE whose data length does not match the
// CDB, and what libiscsi's Write*Residuals tests accept besides GOOD with
// exactly the EDTL written. Parameter lists (and the single block of WRITE
// SAME, the compare and write data of COMPARE AND WRITE and the verify data
// of VERIFY, which answered so before) get PARAMETER LIST LENGTH ERROR, as
// SPC-4 requires for a truncated parameter list. More Data-Out than the CDB
// asks for (EDTL above the transfer length) is not an error: the handler
// uses what the CDB asks and the transport reports the underflow.
func (l *lun) shortDataOut(info *opInfo, c *Command) (result, bool) {
	need, ok := dataOutLen(c.CDB, l.blockSize)
	if !ok || need == 0 {
		return good, false
	}
	if (info.blockData || info.protected) && l.writeProtected() {
		// The handler refuses it as write protected before reading any
		// data (libiscsi ReadOnly.ReadOnlySBC expects that answer).
		return good, false
	}
	if len(c.DataOut) >= need && (c.ExpectedDataOutLen == 0 || c.ExpectedDataOutLen >= need) {
		return good, false
	}
	c.Want = need
	if info.blockData {
		return checkCondition(SenseIllegalRequest, ASCInvalidFieldInCommandIU), true
	}
	return resParamListLength, true
}

// access runs the checks that decide whether nexus n may run a command of
// kind info on l at all, after its CDB is known to be valid: reservation
// conflicts (RESERVE(6/10) and persistent reservations) and a missing
// medium. dispatch applies them to the LU a command is addressed to, and
// the copy manager to every LU an EXTENDED COPY reads or writes.
func (l *lun) access(n Nexus, info *opInfo, cdb []byte) result {
	if l.conflict(n, info, cdb) {
		return resConflict
	}
	if info.medium && l.ejected.Load() {
		return checkCondition(SenseNotReady, ASCMediumNotPresent)
	}
	return good
}

func highBit(b byte) int {
	for i := 7; i >= 0; i-- {
		if b&(1<<i) != 0 {
			return i
		}
	}
	return -1
}

// fill copies src into c.DataIn, at most alloc bytes (the CDB's
// ALLOCATION LENGTH), and sets DataInLen and Want. Want is what the device
// server would send with unlimited buffer: min(alloc, len(src)), so a
// transport reports underflow when the data is shorter than its buffer and
// overflow only when the data did not fit.
func fill(c *Command, src []byte, alloc int) {
	n := min(len(src), alloc)
	c.Want = n
	c.DataInLen = copy(c.DataIn, src[:n])
}
