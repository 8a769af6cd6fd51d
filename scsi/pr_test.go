package scsi

import (
	"encoding/binary"
	"testing"
)

func prOut(tg *Target, n Nexus, sa, typ byte, key, saKey uint64) *Command {
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p[0:], key)
	binary.BigEndian.PutUint64(p[8:], saKey)
	cdb := []byte{OpPersistentReserveOut, sa, typ, 0, 0, 0, 0, 0, 24, 0}
	return run(tg, n, 0, cdb, p, 0)
}

func prIn(t *testing.T, tg *Target, n Nexus, sa byte) []byte {
	t.Helper()
	c := run(tg, n, 0, []byte{OpPersistentReserveIn, sa, 0, 0, 0, 0, 0, 0x10, 0, 0}, nil, 4096)
	expectGood(t, c)
	return c.DataIn[:c.DataInLen]
}

func readKeys(t *testing.T, tg *Target, n Nexus) (gen uint32, keys []uint64) {
	t.Helper()
	d := prIn(t, tg, n, 0)
	for off := 8; off < 8+int(binary.BigEndian.Uint32(d[4:])); off += 8 {
		keys = append(keys, binary.BigEndian.Uint64(d[off:]))
	}
	return binary.BigEndian.Uint32(d), keys
}

// reservation returns the key and type of the reservation, ok=false if none.
func reservation(t *testing.T, tg *Target, n Nexus) (key uint64, typ byte, ok bool) {
	t.Helper()
	d := prIn(t, tg, n, 1)
	if binary.BigEndian.Uint32(d[4:]) == 0 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(d[8:]), d[21] & 0x0F, true
}

func TestPRRegister(t *testing.T) {
	tg := newTarget(t, nil)
	expectGood(t, prOut(tg, nexA, prOutRegister, 0, 0, 0xA1))
	expect(t, prOut(tg, nexB, prOutRegister, 0, 0x55, 0xB1), StatusReservationConflict, 0, 0) // unregistered with a key
	expectGood(t, prOut(tg, nexB, prOutRegisterIgnore, 0, 0x55, 0xB1))
	gen, keys := readKeys(t, tg, nexA)
	if gen != 2 || len(keys) != 2 || keys[0] != 0xA1 || keys[1] != 0xB1 {
		t.Fatalf("gen %d keys %x", gen, keys)
	}
	expect(t, prOut(tg, nexA, prOutRegister, 0, 0xFF, 0xA2), StatusReservationConflict, 0, 0) // wrong key
	expectGood(t, prOut(tg, nexA, prOutRegister, 0, 0xA1, 0xA2))
	expectGood(t, prOut(tg, nexB, prOutRegister, 0, 0xB1, 0)) // unregister
	_, keys = readKeys(t, tg, nexA)
	if len(keys) != 1 || keys[0] != 0xA2 {
		t.Fatalf("keys %x", keys)
	}
	// Bad parameter list length, unsupported flags, bad service action.
	c := run(tg, nexA, 0, []byte{OpPersistentReserveOut, 0, 0, 0, 0, 0, 0, 0, 20, 0}, make([]byte, 20), 0)
	expect(t, c, StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError)
	p := make([]byte, 24)
	p[20] = 0x01 // APTPL
	c = run(tg, nexA, 0, []byte{OpPersistentReserveOut, 6, 0, 0, 0, 0, 0, 0, 24, 0}, p, 0)
	expect(t, c, StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInParamList)
	expect(t, prOut(tg, nexA, 0x09, 0, 0xA2, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	for sa := byte(4); sa < 0x20; sa++ {
		c := run(tg, nexA, 0, []byte{OpPersistentReserveIn, sa, 0, 0, 0, 0, 0, 0x10, 0, 0}, nil, 4096)
		expect(t, c, StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	}
	caps := prIn(t, tg, nexA, 2)
	if binary.BigEndian.Uint16(caps) != 8 || caps[4] != 0xEA || caps[5] != 0x01 || caps[3]&0x80 == 0 {
		t.Fatalf("REPORT CAPABILITIES % x", caps)
	}
}

// TestPRAccess checks who may read and write under each reservation type,
// as libiscsi's ProutReserve.Access tests do.
func TestPRAccess(t *testing.T) {
	cases := []struct {
		typ                                byte
		regRead, regWrite, unRead, unWrite bool
	}{
		{prExclusiveAccess, false, false, false, false},
		{prWriteExclusive, true, false, true, false},
		{prExclusiveAccessRegOnly, true, true, false, false},
		{prWriteExclusiveRegOnly, true, true, true, false},
		{prExclusiveAccessAllRegs, true, true, false, false},
		{prWriteExclusiveAllRegs, true, true, true, false},
	}
	blk := make([]byte, 512)
	check := func(t *testing.T, tg *Target, n Nexus, read, write bool) {
		t.Helper()
		r := run(tg, n, 0, cdb10(OpRead10, 0, 0, 1), nil, 512)
		if (r.Status == StatusGood) != read || (!read && r.Status != StatusReservationConflict) {
			t.Fatalf("read: %v, want allowed=%v", r.Status, read)
		}
		w := run(tg, n, 0, cdb10(OpWrite10, 0, 0, 1), blk, 0)
		if (w.Status == StatusGood) != write || (!write && w.Status != StatusReservationConflict) {
			t.Fatalf("write: %v, want allowed=%v", w.Status, write)
		}
	}
	for _, tc := range cases {
		t.Run(string('0'+tc.typ), func(t *testing.T) {
			tg := newTarget(t, nil)
			expectGood(t, prOut(tg, nexA, prOutRegisterIgnore, 0, 0, 1))
			expectGood(t, prOut(tg, nexB, prOutRegisterIgnore, 0, 0, 2))
			expectGood(t, prOut(tg, nexA, prOutReserve, tc.typ, 1, 0))
			key, typ, ok := reservation(t, tg, nexB)
			wantKey := uint64(1)
			if prAllRegistrants(tc.typ) {
				wantKey = 0
			}
			if !ok || typ != tc.typ || key != wantKey {
				t.Fatalf("reservation key %x type %d ok %v", key, typ, ok)
			}
			check(t, tg, nexA, true, true)
			check(t, tg, nexB, tc.regRead, tc.regWrite)
			expectGood(t, run(tg, nexB, 0, inquiry(false, 0, 96), nil, 96))
			expectGood(t, run(tg, nexB, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0))
			expectGood(t, prOut(tg, nexB, prOutRegister, 0, 2, 0))
			if tc.typ == prExclusiveAccessAllRegs || tc.typ == prWriteExclusiveAllRegs {
				clearUA(t, tg, nexB)
			}
			check(t, tg, nexB, tc.unRead, tc.unWrite)
			check(t, tg, nexC, tc.unRead, tc.unWrite)
			// RESERVE(6) conflicts while a persistent reservation exists.
			expect(t, run(tg, nexA, 0, []byte{OpReserve6, 0, 0, 0, 0, 0}, nil, 0), StatusReservationConflict, 0, 0)
			// Release with the wrong type is an error; the right one works.
			other := byte(prWriteExclusive)
			if tc.typ == prWriteExclusive {
				other = prExclusiveAccess
			}
			expect(t, prOut(tg, nexA, prOutRelease, other, 1, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidReleaseOfPR)
			expectGood(t, prOut(tg, nexA, prOutRelease, tc.typ, 1, 0))
			if _, _, ok := reservation(t, tg, nexA); ok {
				t.Fatal("still reserved")
			}
			check(t, tg, nexB, true, true)
		})
	}
}

func TestPRReserveRules(t *testing.T) {
	tg := newTarget(t, nil)
	expect(t, prOut(tg, nexA, prOutReserve, prExclusiveAccess, 1, 0), StatusReservationConflict, 0, 0) // not registered
	expectGood(t, prOut(tg, nexA, prOutRegisterIgnore, 0, 0, 1))
	expectGood(t, prOut(tg, nexB, prOutRegisterIgnore, 0, 0, 2))
	expect(t, prOut(tg, nexA, prOutReserve, 2, 1, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)    // bad type
	expect(t, prOut(tg, nexA, prOutReserve, 0x13, 1, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB) // bad scope
	expect(t, prOut(tg, nexA, prOutReserve, prExclusiveAccess, 9, 0), StatusReservationConflict, 0, 0)                    // wrong key
	expectGood(t, prOut(tg, nexA, prOutReserve, prWriteExclusive, 1, 0))
	expectGood(t, prOut(tg, nexA, prOutReserve, prWriteExclusive, 1, 0)) // same again
	expect(t, prOut(tg, nexA, prOutReserve, prExclusiveAccess, 1, 0), StatusReservationConflict, 0, 0)
	expect(t, prOut(tg, nexB, prOutReserve, prWriteExclusive, 2, 0), StatusReservationConflict, 0, 0)
	expectGood(t, prOut(tg, nexB, prOutRelease, prWriteExclusive, 2, 0)) // not the holder: no effect
	if _, _, ok := reservation(t, tg, nexA); !ok {
		t.Fatal("release by a non-holder released")
	}
	// The holder unregistering releases a WRITE EXCLUSIVE reservation, with
	// no unit attention (libiscsi's ProutReserve.Ownership).
	expectGood(t, prOut(tg, nexA, prOutRegister, 0, 1, 0))
	if _, _, ok := reservation(t, tg, nexB); !ok {
		expectGood(t, run(tg, nexB, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0))
	} else {
		t.Fatal("holder unregistered but reservation remains")
	}
	// All-registrants: the reservation survives its creator's unregistration.
	expectGood(t, prOut(tg, nexA, prOutRegisterIgnore, 0, 0, 1))
	expectGood(t, prOut(tg, nexA, prOutReserve, prWriteExclusiveAllRegs, 1, 0))
	expectGood(t, prOut(tg, nexA, prOutRegister, 0, 1, 0))
	if _, typ, ok := reservation(t, tg, nexB); !ok || typ != prWriteExclusiveAllRegs {
		t.Fatal("all-registrants reservation gone with one registrant")
	}
	expectGood(t, prOut(tg, nexB, prOutRelease, prWriteExclusiveAllRegs, 2, 0))
	if _, _, ok := reservation(t, tg, nexB); ok {
		t.Fatal("all-registrants reservation not released")
	}
}

func TestPRPreemptAndClear(t *testing.T) {
	tg := newTarget(t, nil)
	for i, n := range []Nexus{nexA, nexB, nexC} {
		expectGood(t, prOut(tg, n, prOutRegisterIgnore, 0, 0, uint64(i+1)))
		expectGood(t, run(tg, n, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0))
	}
	// No reservation: preempt removes the registrations of a key.
	gen0, _ := readKeys(t, tg, nexA)
	expectGood(t, prOut(tg, nexB, prOutPreempt, prExclusiveAccess, 2, 1))
	gen1, keys := readKeys(t, tg, nexB)
	if gen1 != gen0+1 || len(keys) != 2 || keys[0] != 2 || keys[1] != 3 {
		t.Fatalf("after preempt gen %d->%d keys %x", gen0, gen1, keys)
	}
	expect(t, run(tg, nexA, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0), StatusCheckCondition, SenseUnitAttention, ASCRegistrationsPreempted)
	expect(t, prOut(tg, nexB, prOutPreempt, prExclusiveAccess, 2, 0x99), StatusReservationConflict, 0, 0) // nobody has that key
	expect(t, prOut(tg, nexB, prOutPreempt, prExclusiveAccess, 2, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInParamList)
	// C reserves; B preempts C's reservation and takes it with a new type.
	expectGood(t, prOut(tg, nexC, prOutReserve, prWriteExclusive, 3, 0))
	expectGood(t, prOut(tg, nexB, prOutPreemptAbort, prExclusiveAccess, 2, 3))
	if key, typ, ok := reservation(t, tg, nexB); !ok || key != 2 || typ != prExclusiveAccess {
		t.Fatalf("after preempt: key %x type %d ok %v", key, typ, ok)
	}
	expect(t, run(tg, nexC, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0), StatusCheckCondition, SenseUnitAttention, ASCRegistrationsPreempted)
	expect(t, run(tg, nexC, 0, cdb10(OpRead10, 0, 0, 1), nil, 512), StatusReservationConflict, 0, 0)
	// Unregistered nexuses cannot clear; B clears everything.
	expect(t, prOut(tg, nexA, prOutClear, 0, 1, 0), StatusReservationConflict, 0, 0)
	expectGood(t, prOut(tg, nexA, prOutRegisterIgnore, 0, 0, 1))
	expectGood(t, prOut(tg, nexB, prOutClear, 0, 2, 0))
	if _, keys := readKeys(t, tg, nexB); len(keys) != 0 {
		t.Fatalf("keys after clear %x", keys)
	}
	expect(t, run(tg, nexA, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0), StatusCheckCondition, SenseUnitAttention, ASCReservationsPreempted)
	expectGood(t, run(tg, nexC, 0, cdb10(OpRead10, 0, 0, 1), nil, 512))
}

func TestPRReadFullStatus(t *testing.T) {
	tg := newTarget(t, nil)
	expectGood(t, prOut(tg, nexA, prOutRegisterIgnore, 0, 0, 0x11))
	expectGood(t, prOut(tg, nexC, prOutRegisterIgnore, 0, 0, 0x33))
	expectGood(t, prOut(tg, nexA, prOutReserve, prExclusiveAccessRegOnly, 0x11, 0))
	d := prIn(t, tg, nexA, 3)
	if int(binary.BigEndian.Uint32(d[4:]))+8 != len(d) {
		t.Fatal("additional length")
	}
	off, seen := 8, 0
	for off < len(d) {
		key := binary.BigEndian.Uint64(d[off:])
		holder := d[off+12]&1 != 0
		rtp := binary.BigEndian.Uint16(d[off+18:])
		tidLen := int(binary.BigEndian.Uint32(d[off+20:]))
		tid := d[off+24 : off+24+tidLen]
		switch key {
		case 0x11:
			if !holder || d[off+13] != prExclusiveAccessRegOnly || rtp != 1 || tid[0] != 0x45 {
				t.Fatalf("A descriptor % x", d[off:off+24])
			}
		case 0x33:
			if holder || rtp != 2 {
				t.Fatalf("C descriptor % x", d[off:off+24])
			}
		}
		if tidLen%4 != 0 || string(tid[4:4+len(nexA.InitiatorPort)]) != nexA.InitiatorPort && key == 0x11 {
			t.Fatalf("TransportID %q", tid)
		}
		off += 24 + tidLen
		seen++
	}
	if seen != 2 {
		t.Fatalf("%d descriptors", seen)
	}
	// Releasing a registrants-only reservation tells the other registrants.
	expectGood(t, run(tg, nexC, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0))
	expectGood(t, prOut(tg, nexA, prOutRelease, prExclusiveAccessRegOnly, 0x11, 0))
	expect(t, run(tg, nexC, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0), StatusCheckCondition, SenseUnitAttention, ASCReservationsReleased)
}

func registerAndMove(tg *Target, n Nexus, typ byte, key, saKey uint64, unreg bool, dst Nexus) *Command {
	tid := transportID(dst)
	p := make([]byte, 24, 24+len(tid))
	binary.BigEndian.PutUint64(p[0:], key)
	binary.BigEndian.PutUint64(p[8:], saKey)
	if unreg {
		p[17] = 0x02
	}
	binary.BigEndian.PutUint16(p[18:], dst.RelativePort)
	binary.BigEndian.PutUint32(p[20:], uint32(len(tid)))
	p = append(p, tid...)
	cdb := []byte{OpPersistentReserveOut, prOutRegisterMove, typ, 0, 0, 0, 0, 0, byte(len(p)), 0}
	return run(tg, n, 0, cdb, p, 0)
}

func TestPRRegisterAndMove(t *testing.T) {
	tg := newTarget(t, nil)
	expectGood(t, run(tg, nexC, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0)) // C is known to the LU
	expectGood(t, prOut(tg, nexA, prOutRegisterIgnore, 0, 0, 0xA))
	// Not the holder yet: conflict.
	expect(t, registerAndMove(tg, nexA, prExclusiveAccess, 0xA, 0xC, false, nexC), StatusReservationConflict, 0, 0)
	expectGood(t, prOut(tg, nexA, prOutReserve, prExclusiveAccess, 0xA, 0))
	expect(t, registerAndMove(tg, nexA, prExclusiveAccess, 0xB, 0xC, false, nexC), StatusReservationConflict, 0, 0)
	expect(t, registerAndMove(tg, nexA, prExclusiveAccess, 0xA, 0, false, nexC), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInParamList)
	expect(t, registerAndMove(tg, nexA, prExclusiveAccess, 0xA, 0xC, false, nexA), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInParamList)
	expect(t, registerAndMove(tg, nexA, prExclusiveAccess, 0xA, 0xC, false, nexB), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInParamList) // B unknown
	expect(t, registerAndMove(tg, nexA, prWriteExclusive, 0xA, 0xC, false, nexC), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expectGood(t, registerAndMove(tg, nexA, prExclusiveAccess, 0xA, 0xC, true, nexC))
	if key, typ, ok := reservation(t, tg, nexC); !ok || key != 0xC || typ != prExclusiveAccess {
		t.Fatalf("after move: key %x type %d ok %v", key, typ, ok)
	}
	if _, keys := readKeys(t, tg, nexC); len(keys) != 1 || keys[0] != 0xC {
		t.Fatalf("keys after move with UNREG %x", keys)
	}
	expect(t, run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 1), nil, 512), StatusReservationConflict, 0, 0)
	expectGood(t, run(tg, nexC, 0, cdb10(OpRead10, 0, 0, 1), nil, 512))
}
