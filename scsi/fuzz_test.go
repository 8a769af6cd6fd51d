package scsi

import (
	"context"
	"testing"
)

// FuzzExecute runs random CDBs and data against a LUN: Execute must never
// panic, and Status, Sense, DataInLen must agree.
func FuzzExecute(f *testing.F) {
	seeds := [][]byte{
		cdb10(OpRead10, 0, 0, 1), cdb10(OpWrite10, 0x08, 5, 2), cdb16(OpRead16, 0, 1<<40, 1),
		{OpInquiry, 1, 0x83, 0, 255, 0}, {OpModeSense6, 0, 0x3F, 0, 255, 0},
		{OpModeSelect6, 0x10, 0, 0, 16, 0}, {OpRequestSense, 0, 0, 0, 18, 0},
		{OpReportLUNs, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0},
		{OpMaintenanceIn, SAReportSupportedOpcodes, 0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0},
		{OpPersistentReserveOut, 6, 0, 0, 0, 0, 0, 0, 24, 0},
		{OpPersistentReserveIn, 3, 0, 0, 0, 0, 0, 0x10, 0, 0},
		{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0},
		cdb16(OpCompareAndWrite, 0, 0, 0), cdb16(OpWriteSame16, 0x09, 0, 0),
		cdb16(OpServiceActionIn16, SAGetLBAStatus, 0, 64), {OpModeSelect10, 0x10, 0, 0, 0, 0, 0, 0, 40, 0},
	}
	for _, s := range seeds {
		f.Add(s, make([]byte, 64), uint16(512), uint8(0))
	}
	tg := newTarget(f, nil)
	nexi := []Nexus{nexA, nexB, nexC}
	f.Fuzz(func(t *testing.T, cdb, out []byte, inLen uint16, who uint8) {
		c := &Command{Nexus: nexi[int(who)%len(nexi)], LUN: uint64(who >> 6), CDB: cdb, DataOut: out, DataIn: make([]byte, int(inLen)%8192)}
		tg.Execute(context.Background(), c)
		if (c.Status == StatusCheckCondition) != (len(c.Sense) > 0) {
			t.Fatalf("status %v with %d bytes of sense", c.Status, len(c.Sense))
		}
		if len(c.Sense) > 0 {
			if _, _, ok := SenseFields(c.Sense); !ok {
				t.Fatalf("undecodable sense % x", c.Sense)
			}
		}
		if c.DataInLen < 0 || c.DataInLen > len(c.DataIn) || c.Want < 0 {
			t.Fatalf("DataInLen %d of %d, Want %d", c.DataInLen, len(c.DataIn), c.Want)
		}
		if c.Status != StatusGood && c.Status != StatusConditionMet && c.DataInLen > 0 && c.Status != StatusCheckCondition {
			t.Fatalf("status %v with data", c.Status)
		}
		n, ok := tg.DataOutLen(c.LUN, cdb)
		if n < 0 || (!ok && n != 0) {
			t.Fatalf("DataOutLen %d %v", n, ok)
		}
	})
}

// FuzzDecodeLBA checks the block-command decoder on any CDB of a legal size.
func FuzzDecodeLBA(f *testing.F) {
	f.Add(cdb16(OpRead16, 0, 1, 2))
	f.Add([]byte{OpRead6, 0xFF, 0xFF, 0xFF, 0, 0})
	f.Fuzz(func(t *testing.T, cdb []byte) {
		if len(cdb) == 0 || cdbLen(cdb[0]) == 0 || len(cdb) < cdbLen(cdb[0]) {
			return
		}
		d := decodeLBA(cdb)
		if cdbLen(cdb[0]) == 6 && (d.lba > 0x1FFFFF || d.blocks > 256) {
			t.Fatalf("6-byte CDB decoded to lba %d blocks %d", d.lba, d.blocks)
		}
	})
}
