package scsi

import "testing"

func startStop(start, loej bool) []byte {
	b := []byte{OpStartStopUnit, 0, 0, 0, 0, 0}
	if start {
		b[4] |= 1
	}
	if loej {
		b[4] |= 2
	}
	return b
}

func preventAllow(prevent bool) []byte {
	b := []byte{OpPreventAllow, 0, 0, 0, 0, 0}
	if prevent {
		b[4] = 1
	}
	return b
}

func TestRemovableMedium(t *testing.T) {
	tg := newTarget(t, func(c *LUNConfig) { c.Removable = true })
	tur := []byte{OpTestUnitReady, 0, 0, 0, 0, 0}
	if c := run(tg, nexA, 0, inquiry(false, 0, 96), nil, 96); c.DataIn[1]&0x80 == 0 {
		t.Fatal("RMB not set")
	}
	// Prevented by A: neither A nor B may eject.
	expectGood(t, run(tg, nexA, 0, preventAllow(true), nil, 0))
	expect(t, run(tg, nexA, 0, startStop(false, true), nil, 0), StatusCheckCondition, SenseIllegalRequest, ASCMediumRemovalPrevented)
	expect(t, run(tg, nexB, 0, startStop(false, true), nil, 0), StatusCheckCondition, SenseIllegalRequest, ASCMediumRemovalPrevented)
	expectGood(t, run(tg, nexA, 0, tur, nil, 0))
	expectGood(t, run(tg, nexA, 0, preventAllow(false), nil, 0))
	expectGood(t, run(tg, nexA, 0, startStop(false, true), nil, 0))
	// Ejected: medium commands are NOT READY, the rest works.
	for _, cdb := range [][]byte{
		tur, cdb10(OpRead10, 0, 0, 1), cdb16(OpWrite16, 0, 0, 1), {OpReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		cdb16(OpServiceActionIn16, SAReadCapacity16, 0, 32), cdb10(OpSyncCache10, 0, 0, 0), cdb16(OpServiceActionIn16, SAGetLBAStatus, 0, 24),
		cdb10(OpWriteSame10, 0, 0, 1), {OpUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0}, cdb10(OpPrefetch10, 0, 0, 1),
	} {
		expect(t, run(tg, nexB, 0, cdb, make([]byte, 512), 512), StatusCheckCondition, SenseNotReady, ASCMediumNotPresent)
	}
	expectGood(t, run(tg, nexB, 0, inquiry(false, 0, 96), nil, 96))
	expectGood(t, run(tg, nexB, 0, []byte{OpModeSense6, 0, 0x3F, 0, 255, 0}, nil, 255))
	// Loading is refused too while a nexus prevents removal.
	expectGood(t, run(tg, nexA, 0, preventAllow(true), nil, 0))
	expect(t, run(tg, nexB, 0, startStop(true, true), nil, 0), StatusCheckCondition, SenseIllegalRequest, ASCMediumRemovalPrevented)
	expectGood(t, run(tg, nexA, 0, preventAllow(false), nil, 0))
	expectGood(t, run(tg, nexB, 0, startStop(true, true), nil, 0))
	expectGood(t, run(tg, nexB, 0, tur, nil, 0))
	// Power conditions and START without LOEJ change nothing.
	expectGood(t, run(tg, nexA, 0, startStop(false, false), nil, 0))
	expectGood(t, run(tg, nexA, 0, tur, nil, 0))
	// Prevention ends with the nexus and with a LU reset.
	expectGood(t, run(tg, nexA, 0, preventAllow(true), nil, 0))
	tg.NexusLost(nexA)
	expectGood(t, run(tg, nexB, 0, startStop(false, true), nil, 0))
	expectGood(t, run(tg, nexB, 0, startStop(true, true), nil, 0))
	expectGood(t, run(tg, nexB, 0, preventAllow(true), nil, 0))
	if err := tg.ResetLUN(nexB, 0); err != nil {
		t.Fatal(err)
	}
	clearUA(t, tg, nexB)
	expectGood(t, run(tg, nexB, 0, startStop(false, true), nil, 0))
	expect(t, run(tg, nexB, 0, []byte{OpPreventAllow, 0, 0, 0, 2, 0}, nil, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
}

func TestFixedMediumIgnoresEject(t *testing.T) {
	tg := newTarget(t, nil)
	expectGood(t, run(tg, nexA, 0, preventAllow(true), nil, 0))
	expectGood(t, run(tg, nexA, 0, startStop(false, true), nil, 0))
	expectGood(t, run(tg, nexA, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0))
	if c := run(tg, nexA, 0, inquiry(false, 0, 96), nil, 96); c.DataIn[1]&0x80 != 0 {
		t.Fatal("RMB set on a fixed LU")
	}
}
