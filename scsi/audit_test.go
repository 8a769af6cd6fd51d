package scsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goiser/goiser/scsi/backend"
)

// Regression tests for the SCSI core holes of the security audit (issue 7).

// probeBackend is a thin-provisioned memory backend that records whether
// changes since the last Flush are outstanding, and calls the optional hooks
// before each operation (set them before commands run).
type probeBackend struct {
	*backend.Memory
	flushes  atomic.Int64
	unsynced atomic.Bool // a WriteAt or Unmap happened after the last Flush
	reads    atomic.Int64
	onRead   func()
	onChange func()
}

func newProbe(t testing.TB, size int64) *probeBackend {
	t.Helper()
	m, err := backend.NewMemory(size)
	if err != nil {
		t.Fatal(err)
	}
	return &probeBackend{Memory: m}
}

func (p *probeBackend) ReadAt(b []byte, off int64) (int, error) {
	p.reads.Add(1)
	if p.onRead != nil {
		p.onRead()
	}
	return p.Memory.ReadAt(b, off)
}

func (p *probeBackend) WriteAt(b []byte, off int64) (int, error) {
	if p.onChange != nil {
		p.onChange()
	}
	p.unsynced.Store(true)
	return p.Memory.WriteAt(b, off)
}

func (p *probeBackend) Unmap(off, n int64) error {
	if p.onChange != nil {
		p.onChange()
	}
	p.unsynced.Store(true)
	return p.Memory.Unmap(off, n)
}

func (p *probeBackend) Flush() error {
	p.flushes.Add(1)
	p.unsynced.Store(false)
	return p.Memory.Flush()
}

// twoLUNs returns a target with LUNs 0 and 1 on probe backends of testBlocks
// blocks, each configured by mod (which may be nil).
func twoLUNs(t *testing.T, mod func(*LUNConfig)) (*Target, [2]*probeBackend) {
	t.Helper()
	var bes [2]*probeBackend
	var lcs []LUNConfig
	for i := range bes {
		bes[i] = newProbe(t, testBlocks*512)
		lc := LUNConfig{Number: uint64(i), Backend: bes[i]}
		if mod != nil {
			mod(&lc)
		}
		lcs = append(lcs, lc)
	}
	tg, err := NewTarget(TargetConfig{LUNs: lcs, Name: "iqn.2026-01.test:tgt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg, bes
}

func prOutLUN(tg *Target, n Nexus, lun uint64, sa, typ byte, key, saKey uint64) *Command {
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p[0:], key)
	binary.BigEndian.PutUint64(p[8:], saKey)
	return run(tg, n, lun, []byte{OpPersistentReserveOut, sa, typ, 0, 0, 0, 0, 0, 24, 0}, p, 0)
}

func readBlocks(t *testing.T, tg *Target, lun uint64, lba uint32, n uint16) []byte {
	t.Helper()
	r := run(tg, nexA, lun, cdb10(OpRead10, 0, lba, n), nil, int(n)*512)
	expectGood(t, r)
	return r.DataIn
}

// TestShortDataOutChangesNothing: a command whose Data-Out is shorter than
// its CDB asks (EDTL < transfer length) fails without touching the medium.
func TestShortDataOutChangesNothing(t *testing.T) {
	tg := newTarget(t, nil)
	orig := pattern(4*512, 5)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 4), orig, 0))
	exec := func(cdb, out []byte, edtl int) *Command {
		c := &Command{Nexus: nexA, CDB: cdb, DataOut: out, ExpectedDataOutLen: edtl}
		tg.Execute(context.Background(), c)
		return c
	}
	other := pattern(4*512, 77)
	wa := cdb16(OpWriteAtomic16, 0, 0, 0)
	binary.BigEndian.PutUint16(wa[12:], 2)
	caw := cdb16(OpCompareAndWrite, 0, 0, 0)
	caw[13] = 1
	cases := []struct {
		name string
		cdb  []byte
		out  []byte
		edtl int
		want int
		asc  ASC
	}{
		{"write10 100 of 512 bytes", cdb10(OpWrite10, 0, 0, 1), other[:100], 100, 512, ASCInvalidFieldInCommandIU},
		{"write6", []byte{OpWrite6, 0, 0, 0, 2, 0}, other[:600], 600, 1024, ASCInvalidFieldInCommandIU},
		{"write12", cdb12(OpWrite12, 0, 0, 2), other[:512], 512, 1024, ASCInvalidFieldInCommandIU},
		{"write16", cdb16(OpWrite16, 0, 0, 4), other[:1500], 0, 2048, ASCInvalidFieldInCommandIU},
		{"write16 all data, EDTL short", cdb16(OpWrite16, 0, 0, 2), other[:1024], 512, 1024, ASCInvalidFieldInCommandIU},
		{"write and verify", cdb10(OpWriteVerify10, 0, 0, 2), other[:700], 700, 1024, ASCInvalidFieldInCommandIU},
		{"orwrite", cdb16(OpOrWrite16, 0, 0, 2), other[:513], 513, 1024, ASCInvalidFieldInCommandIU},
		{"write atomic", wa, other[:1000], 1000, 1024, ASCInvalidFieldInCommandIU},
		{"write same", cdb10(OpWriteSame10, 0, 0, 4), other[:100], 100, 512, ASCParameterListLengthError},
		{"compare and write", caw, append(append([]byte{}, orig[:512]...), other[:100]...), 612, 1024, ASCParameterListLengthError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := exec(tc.cdb, tc.out, tc.edtl)
			expect(t, c, StatusCheckCondition, SenseIllegalRequest, tc.asc)
			if c.Want != tc.want {
				t.Errorf("Want %d, want %d (the transport's overflow residual)", c.Want, tc.want)
			}
			if !bytes.Equal(readBlocks(t, tg, 0, 0, 4), orig) {
				t.Fatal("a short Data-Out changed the medium")
			}
		})
	}
	// Parameter lists: nothing applies.
	pg := controlPage(t, tg, nexA, pcCurrent)
	pg[2] |= 0x04 // D_SENSE
	ms := append(make([]byte, 4), pg...)
	expect(t, exec([]byte{OpModeSelect6, 0x10, 0, 0, byte(len(ms)), 0}, ms[:len(ms)-1], len(ms)-1), StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError)
	if tg.luns[0].dsense.Load() {
		t.Fatal("a short MODE SELECT parameter list applied")
	}
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p[8:], 0xAB)
	expect(t, exec([]byte{OpPersistentReserveOut, prOutRegisterIgnore, 0, 0, 0, 0, 0, 0, 24, 0}, p[:16], 16), StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError)
	if _, keys := readKeys(t, tg, nexA); len(keys) != 0 {
		t.Fatal("a short PR OUT parameter list registered")
	}
	// EDTL larger than the CDB asks: the CDB's length is written, GOOD.
	c := exec(cdb10(OpWrite10, 0, 0, 1), other[:1024], 1024)
	expectGood(t, c)
	if !bytes.Equal(readBlocks(t, tg, 0, 0, 2), append(append([]byte{}, other[:512]...), orig[512:1024]...)) {
		t.Fatal("EDTL > transfer length wrote beyond the CDB")
	}
}

// TestWriteThroughEveryMediumChange: with WCE=0 every command that changes
// the medium leaves nothing unsynced behind when it returns GOOD.
func TestWriteThroughEveryMediumChange(t *testing.T) {
	tg, bes := twoLUNs(t, func(c *LUNConfig) { c.WriteThrough = true })
	n0, n1 := naaOf(t, tg, 0), naaOf(t, tg, 1)
	blk := pattern(512, 1)
	caw := cdb16(OpCompareAndWrite, 0, 40, 0)
	caw[13] = 1
	unmap := make([]byte, 24)
	binary.BigEndian.PutUint16(unmap[0:], 22)
	binary.BigEndian.PutUint16(unmap[2:], 16)
	binary.BigEndian.PutUint64(unmap[8:], 60)
	binary.BigEndian.PutUint32(unmap[16:], 4)
	xc := xcopyList(1, 2, [][]byte{n0, n1}, 512, [][5]uint64{{0, 1, 8, 0, 0}})
	wa := cdb16(OpWriteAtomic16, 0, 70, 0)
	binary.BigEndian.PutUint16(wa[12:], 1)
	cases := []struct {
		name string
		lun  uint64 // the LU whose medium changes
		cdb  []byte
		out  []byte
	}{
		{"write10", 0, cdb10(OpWrite10, 0, 40, 1), blk},
		{"write6", 0, []byte{OpWrite6, 0, 0, 41, 1, 0}, blk},
		{"write same", 0, cdb10(OpWriteSame10, 0, 50, 8), blk},
		{"write same unmap", 0, cdb16(OpWriteSame16, 0x08, 50, 8), blk},
		{"write same ndob", 0, cdb16(OpWriteSame16, 0x01, 50, 8), nil},
		{"unmap", 0, []byte{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0}, unmap},
		{"compare and write", 0, caw, append(append([]byte{}, blk...), pattern(512, 2)...)},
		{"orwrite", 0, cdb16(OpOrWrite16, 0, 42, 1), blk},
		{"write atomic", 0, wa, blk},
		{"write and verify", 0, cdb10(OpWriteVerify10, 0, 43, 1), blk},
		{"extended copy", 1, xcopyCDB(len(xc)), xc},
	}
	for _, tc := range cases {
		bes[0].unsynced.Store(false)
		bes[1].unsynced.Store(false)
		expectGood(t, run(tg, nexA, 0, tc.cdb, tc.out, 0))
		if bes[tc.lun].unsynced.Load() {
			t.Errorf("%s: GOOD with WCE=0 but the change was not flushed", tc.name)
		}
	}
	// With the write cache enabled a plain WRITE is not flushed.
	tgWB, bWB := twoLUNs(t, nil)
	before := bWB[0].flushes.Load()
	expectGood(t, run(tgWB, nexA, 0, cdb10(OpWrite10, 0, 40, 1), blk, 0))
	if bWB[0].flushes.Load() != before {
		t.Error("WCE=1 WRITE was flushed")
	}
	// FUA flushes under WCE=1.
	expectGood(t, run(tgWB, nexA, 0, cdb10(OpWrite10, 0x08, 40, 1), blk, 0))
	if bWB[0].unsynced.Load() {
		t.Error("WRITE with FUA was not flushed")
	}
}

// TestExtendedCopyHonoursCopyTargetAccess: every LU that EXTENDED COPY reads
// or writes is checked as if the nexus had sent it a READ or WRITE.
func TestExtendedCopyHonoursCopyTargetAccess(t *testing.T) {
	tg, _ := twoLUNs(t, func(c *LUNConfig) { c.Removable = true })
	n0, n1 := naaOf(t, tg, 0), naaOf(t, tg, 1)
	clearUA(t, tg, nexB)
	src := pattern(8*512, 9)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 8), src, 0))
	zero := make([]byte, 8*512)
	copy01 := xcopyList(1, 2, [][]byte{n0, n1}, 512, [][5]uint64{{0, 1, 8, 0, 0}})
	copy10 := xcopyList(1, 2, [][]byte{n1, n0}, 512, [][5]uint64{{0, 1, 8, 0, 100}})
	xcopy := func(n Nexus, lun uint64, p []byte) *Command { return run(tg, n, lun, xcopyCDB(len(p)), p, 0) }
	copyAbortedConflict := func(c *Command) {
		t.Helper()
		expect(t, c, StatusCheckCondition, SenseCopyAborted, ASCThirdPartyDeviceFailure)
	}

	// A reserves LU 1 WRITE EXCLUSIVE: B may neither WRITE it directly nor
	// through a copy sent to LU 0.
	expectGood(t, prOutLUN(tg, nexA, 1, prOutRegister, 0, 0, 0xA))
	expectGood(t, prOutLUN(tg, nexA, 1, prOutReserve, prWriteExclusive, 0xA, 0))
	expect(t, run(tg, nexB, 1, cdb10(OpWrite10, 0, 0, 8), src, 0), StatusReservationConflict, 0, 0)
	copyAbortedConflict(xcopy(nexB, 0, copy01))
	if !bytes.Equal(readBlocks(t, tg, 1, 0, 8), zero) {
		t.Fatal("EXTENDED COPY wrote a LU reserved by another initiator")
	}
	// Reading from it is allowed under WRITE EXCLUSIVE.
	expectGood(t, xcopy(nexB, 0, copy10))
	// Two segments, the second into the reserved LU: nothing is written.
	two := xcopyList(1, 2, [][]byte{n0, n1}, 512, [][5]uint64{{0, 0, 8, 0, 200}, {0, 1, 8, 0, 0}})
	copyAbortedConflict(xcopy(nexB, 0, two))
	if !bytes.Equal(readBlocks(t, tg, 0, 200, 8), zero) {
		t.Fatal("EXTENDED COPY wrote a segment before failing on a later one")
	}
	// The holder copies.
	expectGood(t, xcopy(nexA, 0, copy01))
	if !bytes.Equal(readBlocks(t, tg, 1, 0, 8), src) {
		t.Fatal("the reservation holder's copy was not written")
	}
	// EXCLUSIVE ACCESS also forbids B to read it as a copy source.
	expectGood(t, prOutLUN(tg, nexA, 1, prOutRelease, prWriteExclusive, 0xA, 0))
	expectGood(t, prOutLUN(tg, nexA, 1, prOutReserve, prExclusiveAccess, 0xA, 0))
	copyAbortedConflict(xcopy(nexB, 0, copy10))
	expectGood(t, prOutLUN(tg, nexA, 1, prOutClear, 0, 0xA, 0))
	clearUA(t, tg, nexB)

	// RESERVE(6) of A on LU 1.
	expectGood(t, run(tg, nexA, 1, []byte{OpReserve6, 0, 0, 0, 0, 0}, nil, 0))
	copyAbortedConflict(xcopy(nexB, 0, copy01))
	expectGood(t, run(tg, nexA, 1, []byte{OpRelease6, 0, 0, 0, 0, 0}, nil, 0))

	// Write protection (SWP) and a missing medium on the copy target.
	pg := controlPage(t, tg, nexA, pcCurrent)
	pg[4] |= 0x08
	c := run(tg, nexA, 1, []byte{OpModeSelect6, 0x10, 0, 0, byte(4 + len(pg)), 0}, append(make([]byte, 4), pg...), 0)
	expectGood(t, c)
	expect(t, xcopy(nexA, 0, copy01), StatusCheckCondition, SenseCopyAborted, ASCWriteProtected)
	pg[4] &^= 0x08
	expectGood(t, run(tg, nexA, 1, []byte{OpModeSelect6, 0x10, 0, 0, byte(4 + len(pg)), 0}, append(make([]byte, 4), pg...), 0))
	for i := 0; i < 8 && run(tg, nexB, 1, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0).Status != StatusGood; i++ {
	}
	expectGood(t, run(tg, nexB, 1, startStop(false, true), nil, 0))
	expect(t, xcopy(nexA, 0, copy01), StatusCheckCondition, SenseCopyAborted, ASCMediumNotPresent)
	expect(t, xcopy(nexA, 0, copy10), StatusCheckCondition, SenseCopyAborted, ASCMediumNotPresent)
	expectGood(t, run(tg, nexB, 1, startStop(true, true), nil, 0))
	expectGood(t, xcopy(nexA, 0, copy01))
}

// TestExtendedCopyMixedBlockSizes: segments of LUs with different block
// sizes in one list each copy whole blocks (the copy buffer was sized by
// the first segment, so a larger block made the copy loop spin forever).
func TestExtendedCopyMixedBlockSizes(t *testing.T) {
	b0, b1 := newProbe(t, 1<<20), newProbe(t, 1<<20)
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: b0}, {Number: 1, Backend: b1, BlockSize: 4096}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	data := pattern(4096, 3)
	expectGood(t, run(tg, nexA, 1, cdb10(OpWrite10, 0, 0, 1), data, 0))
	p := xcopyList(1, 2, [][]byte{naaOf(t, tg, 0), naaOf(t, tg, 1)}, 512, [][5]uint64{{0, 0, 1, 0, 8}, {1, 1, 1, 0, 8}})
	p[16+32+29], p[16+32+30], p[16+32+31] = 0, 0x10, 0 // LU 1's descriptor: 4096-byte blocks
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &Command{Nexus: nexA, CDB: xcopyCDB(len(p)), DataOut: p}
	tg.Execute(ctx, c)
	expectGood(t, c)
	r := run(tg, nexA, 1, cdb10(OpRead10, 0, 8, 1), nil, 4096)
	if !bytes.Equal(r.DataIn, data) {
		t.Fatal("the 4096-byte block was not copied")
	}
}

// TestPRRegistrationCap: registrations are capped per LU; over the cap
// REGISTER gets INSUFFICIENT REGISTRATION RESOURCES.
func TestPRRegistrationCap(t *testing.T) {
	tg := newTarget(t, func(c *LUNConfig) { c.MaxRegistrations = 2 })
	expectGood(t, prOut(tg, nexA, prOutRegister, 0, 0, 0xA))
	expectGood(t, prOut(tg, nexB, prOutRegisterIgnore, 0, 0, 0xB))
	expect(t, prOut(tg, nexC, prOutRegister, 0, 0, 0xC), StatusCheckCondition, SenseIllegalRequest, ASCInsufficientRegResources)
	expect(t, prOut(tg, nexC, prOutRegisterIgnore, 0, 0, 0xC), StatusCheckCondition, SenseIllegalRequest, ASCInsufficientRegResources)
	expectGood(t, prOut(tg, nexA, prOutRegister, 0, 0xA, 0xA2)) // a new key for an existing registration
	if gen, keys := readKeys(t, tg, nexA); len(keys) != 2 || gen != 3 {
		t.Fatalf("gen %d keys %x", gen, keys)
	}
	expectGood(t, prOut(tg, nexB, prOutRegister, 0, 0xB, 0)) // unregister frees a slot
	expectGood(t, prOut(tg, nexC, prOutRegister, 0, 0, 0xC))

	// The documented default.
	tg = newTarget(t, nil)
	for i := 0; i < DefaultMaxRegistrations-1; i++ {
		n := nexA
		n.InitiatorPort = n.InitiatorPort + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		expectGood(t, prOut(tg, n, prOutRegister, 0, 0, uint64(i+1)))
	}
	expectGood(t, prOut(tg, nexA, prOutRegisterIgnore, 0, 0, 0xA))
	expect(t, prOut(tg, nexB, prOutRegister, 0, 0, 0xB), StatusCheckCondition, SenseIllegalRequest, ASCInsufficientRegResources)
	// Registrant access still works with many registrations.
	expectGood(t, prOut(tg, nexA, prOutReserve, prWriteExclusiveRegOnly, 0xA, 0))
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 1), make([]byte, 512), 0))
	expect(t, run(tg, nexB, 0, cdb10(OpWrite10, 0, 0, 1), make([]byte, 512), 0), StatusReservationConflict, 0, 0)
}

// TestConflictCheckSharesTheLock: the per-command reservation check only
// reads the LU's state, so it runs beside another reader instead of
// serialising every command on the LU's exclusive lock.
func TestConflictCheckSharesTheLock(t *testing.T) {
	tg := newTarget(t, nil)
	expectGood(t, prOut(tg, nexA, prOutRegister, 0, 0, 0xA))
	expectGood(t, prOut(tg, nexA, prOutReserve, prWriteExclusive, 0xA, 0))
	run(tg, nexB, 0, cdb10(OpRead10, 0, 0, 1), nil, 512) // first contact of B
	l := tg.luns[0]
	l.mu.RLock()
	done := make(chan *Command, 1)
	go func() { done <- run(tg, nexB, 0, cdb10(OpWrite10, 0, 0, 1), make([]byte, 512), 0) }()
	select {
	case c := <-done:
		l.mu.RUnlock()
		expect(t, c, StatusReservationConflict, 0, 0)
	case <-time.After(20 * time.Second):
		l.mu.RUnlock()
		<-done
		t.Fatal("the reservation check waits for the LU's exclusive lock")
	}
}

// TestPRClearSkipsLostNexuses: CLEAR (and PREEMPT) queue unit attentions
// only for nexuses that exist; a lost nexus's state is not recreated.
func TestPRClearSkipsLostNexuses(t *testing.T) {
	tg := newTarget(t, nil)
	expectGood(t, prOut(tg, nexA, prOutRegister, 0, 0, 0xA))
	expectGood(t, prOut(tg, nexB, prOutRegister, 0, 0, 0xB))
	expectGood(t, prOut(tg, nexC, prOutRegister, 0, 0, 0xC))
	tg.NexusLost(nexB)
	tg.NexusLost(nexC)
	expectGood(t, prOut(tg, nexA, prOutPreempt, prWriteExclusive, 0xA, 0xC))
	expectGood(t, prOut(tg, nexA, prOutClear, 0, 0xA, 0))
	l := tg.luns[0]
	l.mu.RLock()
	_, b := l.nexi[nexB]
	_, c := l.nexi[nexC]
	l.mu.RUnlock()
	if b || c {
		t.Fatalf("PR OUT recreated state for lost nexuses (B %v, C %v)", b, c)
	}
}

// TestMediumChangesHoldTheWriteLock: every command that changes the medium
// holds the LU's COMPARE AND WRITE lock (shared or exclusive) while it does,
// so COMPARE AND WRITE stays atomic against all of them.
func TestMediumChangesHoldTheWriteLock(t *testing.T) {
	tg, bes := twoLUNs(t, nil)
	var unlocked atomic.Int64
	for i, be := range bes {
		l := tg.luns[uint64(i)]
		be.onChange = func() {
			if l.cawMu.TryLock() { // nobody holds it: the change is unprotected
				l.cawMu.Unlock()
				unlocked.Add(1)
			}
		}
	}
	n0, n1 := naaOf(t, tg, 0), naaOf(t, tg, 1)
	blk := pattern(512, 1)
	unmap := make([]byte, 24)
	binary.BigEndian.PutUint16(unmap[0:], 22)
	binary.BigEndian.PutUint16(unmap[2:], 16)
	binary.BigEndian.PutUint64(unmap[8:], 60)
	binary.BigEndian.PutUint32(unmap[16:], 4)
	xc := xcopyList(1, 2, [][]byte{n0, n1}, 512, [][5]uint64{{0, 1, 8, 0, 0}})
	caw := cdb16(OpCompareAndWrite, 0, 90, 0)
	caw[13] = 1
	for _, tc := range []struct {
		name string
		cdb  []byte
		out  []byte
	}{
		{"write", cdb10(OpWrite10, 0, 0, 1), blk},
		{"write same", cdb10(OpWriteSame10, 0, 10, 4), blk},
		{"write same unmap", cdb16(OpWriteSame16, 0x08, 10, 4), blk},
		{"unmap", []byte{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0}, unmap},
		{"compare and write", caw, make([]byte, 1024)},
		{"orwrite", cdb16(OpOrWrite16, 0, 20, 1), blk},
		{"write and verify", cdb10(OpWriteVerify10, 0, 21, 1), blk},
		{"extended copy", xcopyCDB(len(xc)), xc},
	} {
		unlocked.Store(0)
		expectGood(t, run(tg, nexA, 0, tc.cdb, tc.out, 0))
		if n := unlocked.Load(); n != 0 {
			t.Errorf("%s: %d medium changes without the write lock", tc.name, n)
		}
	}
}

// TestVerifyLimits: VERIFY is bounded by the MAXIMUM TRANSFER LENGTH whatever
// its BYTCHK, and stops when its context is cancelled.
func TestVerifyLimits(t *testing.T) {
	be := newProbe(t, 16384*512)
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: be}}, MaxTransferLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	zero := make([]byte, 512)
	max := uint32(64 << 10 / 512)
	expectGood(t, run(tg, nexA, 0, cdb16(OpVerify16, 0x06, 0, max), zero, 0))
	for _, b1 := range []byte{0x06, 0x02, 0x00} { // BYTCHK 3, 1, 0
		expect(t, run(tg, nexA, 0, cdb16(OpVerify16, b1, 0, 16384), make([]byte, 16384*512), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	}
	expect(t, run(tg, nexA, 0, cdb10(OpVerify10, 0x06, 0, uint16(max+1)), zero, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	// Cancellation between chunks.
	tg2, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: be}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	be.onRead = cancel
	before := be.reads.Load()
	c := &Command{Nexus: nexA, CDB: cdb16(OpVerify16, 0x06, 0, 16384), DataOut: zero}
	tg2.Execute(ctx, c)
	expect(t, c, StatusCheckCondition, SenseAbortedCommand, ASCNoAdditionalSense)
	if n := be.reads.Load() - before; n != 1 {
		t.Fatalf("%d chunk reads after cancellation, want 1", n)
	}
}

// TestExtendedCopyCrossedCopies runs copies A->B and B->A at once: the
// copy manager must not deadlock on the two LUs' locks.
func TestExtendedCopyCrossedCopies(t *testing.T) {
	tg, _ := twoLUNs(t, nil)
	n0, n1 := naaOf(t, tg, 0), naaOf(t, tg, 1)
	p01 := xcopyList(1, 2, [][]byte{n0, n1}, 512, [][5]uint64{{0, 1, 2048, 0, 0}})
	p10 := xcopyList(2, 2, [][]byte{n1, n0}, 512, [][5]uint64{{0, 1, 2048, 0, 0}})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				expectGoodAsync(t, run(tg, nexA, 0, xcopyCDB(len(p01)), p01, 0))
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				expectGoodAsync(t, run(tg, nexB, 1, xcopyCDB(len(p10)), p10, 0))
			}
		}()
	}
	wg.Wait()
}

func expectGoodAsync(t *testing.T, c *Command) {
	if c.Status != StatusGood {
		k, a, _ := SenseFields(c.Sense)
		t.Errorf("CDB % x: %v %v %v", c.CDB, c.Status, k, a)
	}
}
