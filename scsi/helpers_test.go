package scsi

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/goiser/goiser/scsi/backend"
)

var (
	nexA = Nexus{InitiatorName: "iqn.2026-01.test:a", InitiatorPort: "iqn.2026-01.test:a,i,0x400000000001", TargetPort: "iqn.2026-01.test:tgt,t,0x0001", RelativePort: 1}
	nexB = Nexus{InitiatorName: "iqn.2026-01.test:b", InitiatorPort: "iqn.2026-01.test:b,i,0x400000000002", TargetPort: "iqn.2026-01.test:tgt,t,0x0001", RelativePort: 1}
	nexC = Nexus{InitiatorName: "iqn.2026-01.test:c", InitiatorPort: "iqn.2026-01.test:c,i,0x400000000003", TargetPort: "iqn.2026-01.test:tgt,t,0x0002", RelativePort: 2}
)

const testBlocks = 2048 // 1 MiB at 512-byte blocks

// newTarget returns a target with LUN 0 on a memory backend of testBlocks
// blocks, configured by mod.
func newTarget(t testing.TB, mod func(*LUNConfig)) *Target {
	t.Helper()
	be, err := backend.NewMemory(testBlocks * 512)
	if err != nil {
		t.Fatal(err)
	}
	lc := LUNConfig{Number: 0, Backend: be, SerialNumber: "SN0001"}
	if mod != nil {
		mod(&lc)
	}
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{lc}, Name: "iqn.2026-01.test:tgt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// run executes cdb from nexus n on LUN lun with dataOut, and a Data-In
// buffer of inLen bytes.
func run(tg *Target, n Nexus, lun uint64, cdb []byte, dataOut []byte, inLen int) *Command {
	c := &Command{Nexus: n, LUN: lun, CDB: cdb, DataOut: dataOut, DataIn: make([]byte, inLen)}
	tg.Execute(context.Background(), c)
	return c
}

// expect checks status and, for CHECK CONDITION, the key and ASC.
func expect(t *testing.T, c *Command, st Status, key SenseKey, asc ASC) {
	t.Helper()
	if c.Status != st {
		k, a, _ := SenseFields(c.Sense)
		t.Fatalf("CDB % x: status %v (sense %v/%v), want %v", c.CDB, c.Status, k, a, st)
	}
	if st != StatusCheckCondition {
		if len(c.Sense) != 0 {
			t.Fatalf("CDB % x: status %v with sense % x", c.CDB, c.Status, c.Sense)
		}
		return
	}
	k, a, ok := SenseFields(c.Sense)
	if !ok || k != key || a != asc {
		t.Fatalf("CDB % x: sense %v/%v (ok=%v), want %v/%v", c.CDB, k, a, ok, key, asc)
	}
}

func expectGood(t *testing.T, c *Command) { t.Helper(); expect(t, c, StatusGood, 0, 0) }

func cdb10(op byte, b1 byte, lba uint32, n uint16) []byte {
	b := make([]byte, 10)
	b[0], b[1] = op, b1
	binary.BigEndian.PutUint32(b[2:], lba)
	binary.BigEndian.PutUint16(b[7:], n)
	return b
}

func cdb12(op byte, b1 byte, lba uint32, n uint32) []byte {
	b := make([]byte, 12)
	b[0], b[1] = op, b1
	binary.BigEndian.PutUint32(b[2:], lba)
	binary.BigEndian.PutUint32(b[6:], n)
	return b
}

func cdb16(op byte, b1 byte, lba uint64, n uint32) []byte {
	b := make([]byte, 16)
	b[0], b[1] = op, b1
	binary.BigEndian.PutUint64(b[2:], lba)
	binary.BigEndian.PutUint32(b[10:], n)
	return b
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// clearUA drains pending unit attentions of n with TEST UNIT READY.
func clearUA(t *testing.T, tg *Target, n Nexus) {
	t.Helper()
	for i := 0; i < 16; i++ {
		c := run(tg, n, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0)
		if c.Status == StatusGood {
			return
		}
	}
	t.Fatal("unit attentions do not drain")
}
