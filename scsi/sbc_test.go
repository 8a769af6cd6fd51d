package scsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/goiser/goiser/scsi/backend"
)

func backendMemory(t *testing.T, size int64) (*backend.Memory, error) {
	t.Helper()
	m, err := backend.NewMemory(size)
	if err != nil {
		t.Fatal(err)
	}
	return m, nil
}

func TestReadWriteRoundTrip(t *testing.T) {
	tg := newTarget(t, nil)
	cases := []struct {
		name  string
		write []byte
		read  []byte
		n     int // blocks
	}{
		{"6", []byte{OpWrite6, 0, 0, 5, 2, 0}, []byte{OpRead6, 0, 0, 5, 2, 0}, 2},
		{"10", cdb10(OpWrite10, 0, 9, 3), cdb10(OpRead10, 0, 9, 3), 3},
		{"12", cdb12(OpWrite12, 0, 20, 4), cdb12(OpRead12, 0, 20, 4), 4},
		{"16", cdb16(OpWrite16, 0, testBlocks-1, 1), cdb16(OpRead16, 0, testBlocks-1, 1), 1},
		{"10 FUA", cdb10(OpWrite10, 0x08, 30, 1), cdb10(OpRead10, 0x18, 30, 1), 1},
		{"16 FUA_NV", cdb16(OpWrite16, 0x02, 31, 1), cdb16(OpRead16, 0x02, 31, 1), 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := pattern(tc.n*512, byte(i))
			w := run(tg, nexA, 0, tc.write, data, 0)
			expectGood(t, w)
			if w.Want != len(data) {
				t.Fatalf("write Want %d, want %d", w.Want, len(data))
			}
			r := run(tg, nexA, 0, tc.read, nil, tc.n*512)
			expectGood(t, r)
			if r.DataInLen != len(data) || r.Want != len(data) || !bytes.Equal(r.DataIn, data) {
				t.Fatalf("read back %d bytes (Want %d), differ=%v", r.DataInLen, r.Want, !bytes.Equal(r.DataIn, data))
			}
		})
	}
}

func TestRead6ZeroMeans256(t *testing.T) {
	tg := newTarget(t, nil)
	c := run(tg, nexA, 0, []byte{OpRead6, 0, 0, 0, 0, 0}, nil, 256*512)
	expectGood(t, c)
	if c.Want != 256*512 || c.DataInLen != 256*512 {
		t.Fatalf("Want %d DataInLen %d, want %d", c.Want, c.DataInLen, 256*512)
	}
}

func TestBlockCommandErrors(t *testing.T) {
	tg := newTarget(t, nil)
	blk := make([]byte, 512)
	const (
		ill = SenseIllegalRequest
		cc  = StatusCheckCondition
	)
	cases := []struct {
		name string
		cdb  []byte
		out  []byte
		st   Status
		key  SenseKey
		asc  ASC
	}{
		{"read10 0 blocks", cdb10(OpRead10, 0, 0, 0), nil, StatusGood, 0, 0},
		{"write10 0 blocks", cdb10(OpWrite10, 0, 0, 0), nil, StatusGood, 0, 0},
		{"read10 0 blocks beyond end", cdb10(OpRead10, 0, testBlocks+1, 0), nil, cc, ill, ASCLBAOutOfRange},
		{"read10 at end", cdb10(OpRead10, 0, testBlocks, 1), nil, cc, ill, ASCLBAOutOfRange},
		{"read10 past end", cdb10(OpRead10, 0, testBlocks-1, 2), nil, cc, ill, ASCLBAOutOfRange},
		{"read10 lba -1", cdb10(OpRead10, 0, 0xFFFFFFFF, 1), nil, cc, ill, ASCLBAOutOfRange},
		{"read16 lba 2^64-1", cdb16(OpRead16, 0, ^uint64(0), 1), nil, cc, ill, ASCLBAOutOfRange},
		{"read16 overflow", cdb16(OpRead16, 0, ^uint64(0)-1, 4), nil, cc, ill, ASCLBAOutOfRange},
		{"write12 past end", cdb12(OpWrite12, 0, testBlocks-1, 2), make([]byte, 1024), cc, ill, ASCLBAOutOfRange},
		{"read6 past end", []byte{OpRead6, 0, 0x07, 0xFF, 2, 0}, nil, cc, ill, ASCLBAOutOfRange},
		{"read10 rdprotect", cdb10(OpRead10, 0x20, 0, 1), nil, cc, ill, ASCInvalidFieldInCDB},
		{"write10 wrprotect", cdb10(OpWrite10, 0xE0, 0, 1), blk, cc, ill, ASCInvalidFieldInCDB},
		{"write10 reserved bit 2", cdb10(OpWrite10, 0x04, 0, 1), blk, cc, ill, ASCInvalidFieldInCDB},
		{"read10 group bits 7-5", append(cdb10(OpRead10, 0, 0, 1)[:6], 0x20, 0, 1, 0), nil, cc, ill, ASCInvalidFieldInCDB},
		{"read10 NACA", append(cdb10(OpRead10, 0, 0, 1)[:9], 0x04), nil, cc, ill, ASCInvalidFieldInCDB},
		{"read10 LINK", append(cdb10(OpRead10, 0, 0, 1)[:9], 0x01), nil, cc, ill, ASCInvalidFieldInCDB},
		{"read6 reserved bits", []byte{OpRead6, 0x20, 0, 0, 1, 0}, nil, cc, ill, ASCInvalidFieldInCDB},
		{"short CDB", []byte{OpRead10, 0, 0, 0}, nil, cc, ill, ASCInvalidFieldInCDB},
		{"empty CDB", []byte{}, nil, cc, ill, ASCInvalidFieldInCDB},
		{"unknown opcode", []byte{0xC5, 0, 0, 0, 0, 0}, nil, cc, ill, ASCInvalidOpcode},
		{"unknown opcode 0x02", []byte{0x02, 0, 0, 0, 0, 0}, nil, cc, ill, ASCInvalidOpcode},
		{"unknown service action in", cdb16(OpServiceActionIn16, 0x11, 0, 0), nil, cc, ill, ASCInvalidFieldInCDB},
		{"verify10 bytchk 2", cdb10(OpVerify10, 0x04, 0, 1), blk, cc, ill, ASCInvalidFieldInCDB},
		{"verify10 vrprotect", cdb10(OpVerify10, 0x20, 0, 1), nil, cc, ill, ASCInvalidFieldInCDB},
		{"verify16 past end", cdb16(OpVerify16, 0, testBlocks, 1), nil, cc, ill, ASCLBAOutOfRange},
		{"verify10 no bytchk", cdb10(OpVerify10, 0, 0, 8), nil, StatusGood, 0, 0},
		{"prefetch10", cdb10(OpPrefetch10, 0, 0, 8), nil, StatusConditionMet, 0, 0},
		{"prefetch16 past end", cdb16(OpPrefetch16, 0, testBlocks, 1), nil, cc, ill, ASCLBAOutOfRange},
		{"prefetch10 immed", cdb10(OpPrefetch10, 0x02, 0, 0), nil, StatusConditionMet, 0, 0},
		{"sync cache 10", cdb10(OpSyncCache10, 0, 0, 0), nil, StatusGood, 0, 0},
		{"sync cache 16 past end", cdb16(OpSyncCache16, 0, testBlocks+1, 0), nil, cc, ill, ASCLBAOutOfRange},
		{"readcap10 PMI=0 with LBA", []byte{OpReadCapacity10, 0, 0, 0, 0, 1, 0, 0, 0, 0}, nil, cc, ill, ASCInvalidFieldInCDB},
		{"write and verify 10", cdb10(OpWriteVerify10, 0x02, 0, 1), blk, StatusGood, 0, 0},
		{"write and verify 12 bytchk 3", cdb12(OpWriteVerify12, 0x06, 0, 1), blk, cc, ill, ASCInvalidFieldInCDB},
		{"orwrite past end", cdb16(OpOrWrite16, 0, testBlocks, 1), blk, cc, ill, ASCLBAOutOfRange},
		{"orwrite 0 blocks", cdb16(OpOrWrite16, 0, 0, 0), nil, StatusGood, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := run(tg, nexA, 0, tc.cdb, tc.out, 4096)
			expect(t, c, tc.st, tc.key, tc.asc)
		})
	}
}

func TestWriteShortDataOut(t *testing.T) {
	tg := newTarget(t, nil)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 2), bytes.Repeat([]byte{'a'}, 1024), 0))
	// The initiator sent only 200 bytes of the 1024 the CDB asks: refuse
	// the command without writing any of it (no torn sector), and report
	// Want so the transport sets the overflow residual.
	c := run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 2), bytes.Repeat([]byte{'b'}, 200), 0)
	expect(t, c, StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCommandIU)
	if c.Want != 1024 {
		t.Fatalf("Want %d, want 1024", c.Want)
	}
	r := run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 2), nil, 1024)
	if !bytes.Equal(r.DataIn, bytes.Repeat([]byte{'a'}, 1024)) {
		t.Fatal("a short write changed the medium")
	}
}

func TestReadShortDataIn(t *testing.T) {
	tg := newTarget(t, nil)
	c := run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 4), nil, 1000)
	expectGood(t, c)
	if c.Want != 2048 || c.DataInLen != 1000 {
		t.Fatalf("Want %d DataInLen %d", c.Want, c.DataInLen)
	}
}

func TestReadOnlyLUN(t *testing.T) {
	tg := newTarget(t, func(c *LUNConfig) { c.ReadOnly = true })
	blk := make([]byte, 512)
	for _, cdb := range [][]byte{
		cdb10(OpWrite10, 0, 0, 1), cdb16(OpWrite16, 0, 0, 1), cdb10(OpWriteVerify10, 0, 0, 1),
		cdb10(OpWriteSame10, 0, 0, 1), cdb16(OpOrWrite16, 0, 0, 1), {OpWrite6, 0, 0, 0, 1, 0},
	} {
		expect(t, run(tg, nexA, 0, cdb, blk, 0), StatusCheckCondition, SenseDataProtect, ASCWriteProtected)
	}
	caw := cdb16(OpCompareAndWrite, 0, 0, 0)
	caw[13] = 1
	expect(t, run(tg, nexA, 0, caw, make([]byte, 1024), 0), StatusCheckCondition, SenseDataProtect, ASCWriteProtected)
	expect(t, run(tg, nexA, 0, cdb16(OpWriteSame16, 0x08, 0, 1), blk, 0), StatusCheckCondition, SenseDataProtect, ASCWriteProtected)
	expect(t, run(tg, nexA, 0, cdb10(OpWriteSame10, 0x08, 0, 1), blk, 0), StatusCheckCondition, SenseDataProtect, ASCWriteProtected)
	unmapParam := []byte{0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}
	expect(t, run(tg, nexA, 0, []byte{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0}, unmapParam, 0), StatusCheckCondition, SenseDataProtect, ASCWriteProtected)
	expectGood(t, run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 1), nil, 512))
	ms := run(tg, nexA, 0, []byte{OpModeSense6, 0x08, 0x3F, 0, 255, 0}, nil, 255)
	expectGood(t, ms)
	if ms.DataIn[2]&0x80 == 0 {
		t.Fatal("MODE SENSE does not report WP")
	}
	// No thin provisioning on a read-only LUN.
	rc := run(tg, nexA, 0, cdb16(OpServiceActionIn16, SAReadCapacity16, 0, 32), nil, 32)
	if rc.DataIn[14]&0x80 != 0 {
		t.Fatal("read-only LUN reports LBPME")
	}
}

func TestCompareAndWrite(t *testing.T) {
	tg := newTarget(t, nil)
	old := pattern(1024, 1)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 100, 2), old, 0))
	caw := func(n byte) []byte {
		b := cdb16(OpCompareAndWrite, 0, 100, 0)
		b[13] = n
		return b
	}
	next := pattern(1024, 9)
	c := run(tg, nexA, 0, caw(2), append(append([]byte{}, old...), next...), 0)
	expectGood(t, c)
	if c.Want != 2048 {
		t.Fatalf("Want %d", c.Want)
	}
	r := run(tg, nexA, 0, cdb10(OpRead10, 0, 100, 2), nil, 1024)
	if !bytes.Equal(r.DataIn, next) {
		t.Fatal("COMPARE AND WRITE did not write")
	}
	// Miscompare at byte 700: INFORMATION holds the offset.
	bad := append([]byte{}, next...)
	bad[700] ^= 0xFF
	c = run(tg, nexA, 0, caw(2), append(bad, old...), 0)
	expect(t, c, StatusCheckCondition, SenseMiscompare, ASCMiscompareDuringVerify)
	if c.Sense[0]&0x80 == 0 || binary.BigEndian.Uint32(c.Sense[3:7]) != 700 {
		t.Fatalf("miscompare sense % x: want VALID and INFORMATION 700", c.Sense)
	}
	r = run(tg, nexA, 0, cdb10(OpRead10, 0, 100, 2), nil, 1024)
	if !bytes.Equal(r.DataIn, next) {
		t.Fatal("miscompare modified the medium")
	}
	expectGood(t, run(tg, nexA, 0, caw(0), nil, 0))
	expect(t, run(tg, nexA, 0, caw(2), next, 0), StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError)
	// More data than the CDB describes (also: 256 blocks wrapped to 0).
	expect(t, run(tg, nexA, 0, caw(1), make([]byte, 2048), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expect(t, run(tg, nexA, 0, caw(0), make([]byte, 1024), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	c = run(tg, nexA, 0, cdb16(OpCompareAndWrite, 0, testBlocks-1, 0), nil, 0)
	c = run(tg, nexA, 0, append(c.CDB[:13:13], 2, 0, 0), make([]byte, 2048), 0)
	expect(t, c, StatusCheckCondition, SenseIllegalRequest, ASCLBAOutOfRange)
}

func TestVerifyBytchk(t *testing.T) {
	tg := newTarget(t, nil)
	data := pattern(1024, 3)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 8, 2), data, 0))
	expectGood(t, run(tg, nexA, 0, cdb10(OpVerify10, 0x02, 8, 2), data, 0))
	bad := append([]byte{}, data...)
	bad[600] ^= 1
	c := run(tg, nexA, 0, cdb12(OpVerify12, 0x02, 8, 2), bad, 0)
	expect(t, c, StatusCheckCondition, SenseMiscompare, ASCMiscompareDuringVerify)
	// BYTCHK=11b: one block compared with each block.
	same := pattern(512, 5)
	expectGood(t, run(tg, nexA, 0, cdb16(OpWriteSame16, 0, 40, 3), same, 0))
	expectGood(t, run(tg, nexA, 0, cdb16(OpVerify16, 0x06, 40, 3), same, 0))
	expect(t, run(tg, nexA, 0, cdb16(OpVerify16, 0x06, 39, 3), same, 0), StatusCheckCondition, SenseMiscompare, ASCMiscompareDuringVerify)
}

func TestOrWrite(t *testing.T) {
	tg := newTarget(t, nil)
	a := bytes.Repeat([]byte{0x0F}, 512)
	b := bytes.Repeat([]byte{0xA0}, 512)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 3, 1), a, 0))
	expectGood(t, run(tg, nexA, 0, cdb16(OpOrWrite16, 0x08, 3, 1), b, 0))
	r := run(tg, nexA, 0, cdb10(OpRead10, 0, 3, 1), nil, 512)
	if !bytes.Equal(r.DataIn, bytes.Repeat([]byte{0xAF}, 512)) {
		t.Fatal("ORWRITE result wrong")
	}
}

func TestWriteSame(t *testing.T) {
	tg := newTarget(t, nil)
	blk := pattern(512, 4)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWriteSame10, 0, 10, 5), blk, 0))
	r := run(tg, nexA, 0, cdb10(OpRead10, 0, 10, 5), nil, 5*512)
	if !bytes.Equal(r.DataIn, bytes.Repeat(blk, 5)) {
		t.Fatal("WRITE SAME wrote wrong data")
	}
	// 0 blocks: up to the end of the LU (the LU is below the limit).
	expectGood(t, run(tg, nexA, 0, cdb16(OpWriteSame16, 0, testBlocks-3, 0), blk, 0))
	r = run(tg, nexA, 0, cdb16(OpRead16, 0, testBlocks-3, 3), nil, 3*512)
	if !bytes.Equal(r.DataIn, bytes.Repeat(blk, 3)) {
		t.Fatal("WRITE SAME to the end wrote wrong data")
	}
	expect(t, run(tg, nexA, 0, cdb10(OpWriteSame10, 0, testBlocks, 1), blk, 0), StatusCheckCondition, SenseIllegalRequest, ASCLBAOutOfRange)
	expect(t, run(tg, nexA, 0, cdb10(OpWriteSame10, 0, testBlocks+1, 0), blk, 0), StatusCheckCondition, SenseIllegalRequest, ASCLBAOutOfRange)
	expect(t, run(tg, nexA, 0, cdb10(OpWriteSame10, 0x10, 0, 1), blk, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB) // ANCHOR
	expect(t, run(tg, nexA, 0, cdb10(OpWriteSame10, 0, 0, 1), blk[:100], 0), StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError)
	expect(t, run(tg, nexA, 0, cdb10(OpWriteSame10, 0, 0, 1), make([]byte, 1024), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
}

func TestThinProvisioning(t *testing.T) {
	tg := newTarget(t, nil)
	// READ CAPACITY(16): LBPME and LBPRZ.
	rc := run(tg, nexA, 0, cdb16(OpServiceActionIn16, SAReadCapacity16, 0, 32), nil, 32)
	expectGood(t, rc)
	if binary.BigEndian.Uint64(rc.DataIn) != testBlocks-1 || binary.BigEndian.Uint32(rc.DataIn[8:]) != 512 || rc.DataIn[14]&0xC0 != 0xC0 || rc.DataIn[13] != 0 {
		t.Fatalf("READ CAPACITY(16) % x", rc.DataIn[:16])
	}
	// Map 256 blocks (128 KiB: two chunks), then unmap them.
	data := pattern(256*512, 1)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 256), data, 0))
	status := func(lba uint64) (uint64, uint32, byte) {
		c := run(tg, nexA, 0, cdb16(OpServiceActionIn16, SAGetLBAStatus, lba, 24), nil, 24)
		expectGood(t, c)
		return binary.BigEndian.Uint64(c.DataIn[8:]), binary.BigEndian.Uint32(c.DataIn[16:]), c.DataIn[20] & 0x0F
	}
	if lba, n, st := status(0); lba != 0 || n != 256 || st != 0 {
		t.Fatalf("GET LBA STATUS after write: lba %d n %d status %d", lba, n, st)
	}
	unmap := func(lba uint64, n uint32) *Command {
		p := make([]byte, 24)
		binary.BigEndian.PutUint16(p[0:], 22)
		binary.BigEndian.PutUint16(p[2:], 16)
		binary.BigEndian.PutUint64(p[8:], lba)
		binary.BigEndian.PutUint32(p[16:], n)
		cdb := []byte{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0}
		return run(tg, nexA, 0, cdb, p, 0)
	}
	expectGood(t, unmap(0, 128))
	if lba, n, st := status(0); lba != 0 || n != 128 || st != 1 {
		t.Fatalf("GET LBA STATUS after unmap: lba %d n %d status %d", lba, n, st)
	}
	r := run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 256), nil, 256*512)
	if !bytes.Equal(r.DataIn[:128*512], make([]byte, 128*512)) || !bytes.Equal(r.DataIn[128*512:], data[128*512:]) {
		t.Fatal("unmapped blocks do not read as zeros, or others changed")
	}
	expect(t, unmap(testBlocks-1, 2), StatusCheckCondition, SenseIllegalRequest, ASCLBAOutOfRange)
	expectGood(t, run(tg, nexA, 0, []byte{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, 0))
	expect(t, run(tg, nexA, 0, []byte{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 4, 0}, make([]byte, 4), 0), StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError)
	expect(t, run(tg, nexA, 0, []byte{OpUnmap, 1, 0, 0, 0, 0, 0, 0, 24, 0}, make([]byte, 24), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	// WRITE SAME with UNMAP deallocates, whatever the data block holds.
	expectGood(t, run(tg, nexA, 0, cdb16(OpWriteSame16, 0x08, 128, 128), bytes.Repeat([]byte{0xFF}, 512), 0))
	if _, n, st := status(0); n != testBlocks || st != 1 {
		t.Fatalf("after WRITE SAME UNMAP: n %d status %d", n, st)
	}
	// NDOB: no data out buffer.
	expectGood(t, run(tg, nexA, 0, cdb16(OpWriteSame16, 0x09, 512, 128), nil, 0))
	expect(t, run(tg, nexA, 0, cdb16(OpServiceActionIn16, SAGetLBAStatus, testBlocks, 24), nil, 24), StatusCheckCondition, SenseIllegalRequest, ASCLBAOutOfRange)
}

func TestNoThinProvisioning(t *testing.T) {
	tg := newTarget(t, func(c *LUNConfig) { c.NoThinProvisioning = true })
	expect(t, run(tg, nexA, 0, []byte{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0}, make([]byte, 24), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidOpcode)
	expect(t, run(tg, nexA, 0, cdb16(OpWriteSame16, 0x08, 0, 1), make([]byte, 512), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
}

func TestReadCapacity10(t *testing.T) {
	tg := newTarget(t, func(c *LUNConfig) { c.BlockSize = 4096 })
	c := run(tg, nexA, 0, []byte{OpReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, 8)
	expectGood(t, c)
	if binary.BigEndian.Uint32(c.DataIn) != testBlocks/8-1 || binary.BigEndian.Uint32(c.DataIn[4:]) != 4096 {
		t.Fatalf("READ CAPACITY(10) % x", c.DataIn)
	}
}

func TestDataOutLen(t *testing.T) {
	tg := newTarget(t, nil)
	caw := cdb16(OpCompareAndWrite, 0, 0, 0)
	caw[13] = 3
	cases := []struct {
		cdb []byte
		n   int
		ok  bool
	}{
		{cdb10(OpWrite10, 0, 0, 8), 4096, true},
		{[]byte{OpWrite6, 0, 0, 0, 0, 0}, 256 * 512, true},
		{cdb16(OpWrite16, 0, 0, 2), 1024, true},
		{cdb10(OpRead10, 0, 0, 8), 0, true},
		{caw, 3 * 1024, true},
		{cdb16(OpCompareAndWrite, 0, 0, 0), 0, false},
		{cdb10(OpWriteSame10, 0, 0, 100), 512, true},
		{cdb16(OpWriteSame16, 1, 0, 100), 0, true},
		{cdb10(OpVerify10, 0x02, 0, 4), 2048, true},
		{cdb10(OpVerify10, 0x06, 0, 4), 512, true},
		{[]byte{OpUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0}, 24, true},
		{[]byte{OpPersistentReserveOut, 0, 0, 0, 0, 0, 0, 0, 24, 0}, 24, true},
		{[]byte{0xC0, 0, 0, 0, 0, 0}, 0, false},
		{[]byte{OpWrite10, 0}, 0, false},
		{nil, 0, false},
	}
	for _, tc := range cases {
		n, ok := tg.DataOutLen(0, tc.cdb)
		if n != tc.n || ok != tc.ok {
			t.Errorf("DataOutLen(% x) = %d, %v; want %d, %v", tc.cdb, n, ok, tc.n, tc.ok)
		}
	}
}

func TestMaxTransferLength(t *testing.T) {
	be, _ := backendMemory(t, 64<<20)
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: be}}, MaxTransferLength: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	bl := run(tg, nexA, 0, inquiry(true, 0xB0, 64), nil, 64)
	if binary.BigEndian.Uint32(bl.DataIn[8:]) != 2048 {
		t.Fatalf("MAXIMUM TRANSFER LENGTH %d", binary.BigEndian.Uint32(bl.DataIn[8:]))
	}
	expectGood(t, run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 2048), nil, 1<<20))
	expect(t, run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 2049), nil, 1<<20), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expect(t, run(tg, nexA, 0, cdb16(OpWrite16, 0, 0, 2049), make([]byte, 2049*512), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	if _, err := NewTarget(TargetConfig{MaxTransferLength: 100}); err == nil {
		t.Fatal("tiny MaxTransferLength accepted")
	}
}

func TestPhysicalBlockSize(t *testing.T) {
	tg := newTarget(t, func(c *LUNConfig) { c.PhysicalBlockSize = 4096 })
	rc := run(tg, nexA, 0, cdb16(OpServiceActionIn16, SAReadCapacity16, 0, 32), nil, 32)
	if rc.DataIn[13] != 3 {
		t.Fatalf("LBPPBE %d, want 3", rc.DataIn[13])
	}
	be, _ := backendMemory(t, 1<<20)
	if _, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Backend: be, PhysicalBlockSize: 3000}}}); err == nil {
		t.Fatal("physical block size 3000 accepted")
	}
}

func TestExpectedDataOutLen(t *testing.T) {
	tg := newTarget(t, nil)
	exec := func(cdb []byte, out []byte, edtl int) *Command {
		c := &Command{Nexus: nexA, CDB: cdb, DataOut: out, ExpectedDataOutLen: edtl}
		tg.Execute(context.Background(), c)
		return c
	}
	caw := cdb16(OpCompareAndWrite, 0, 0, 0)
	caw[13] = 1
	// The transport fetched the 2 blocks the CDB asks, but the initiator
	// announced 4: a mismatch.
	expect(t, exec(caw, make([]byte, 1024), 2048), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expectGood(t, exec(caw, make([]byte, 1024), 1024))
	ws := cdb10(OpWriteSame10, 0, 0, 1)
	expect(t, exec(ws, make([]byte, 512), 1024), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expect(t, exec(ws, make([]byte, 512), 256), StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError)
	expectGood(t, exec(ws, make([]byte, 512), 512))
}

func TestWriteAtomic16(t *testing.T) {
	tg := newTarget(t, nil)
	wa := func(lba uint64, n uint16) []byte {
		b := cdb16(OpWriteAtomic16, 0, lba, 0)
		binary.BigEndian.PutUint16(b[12:], n)
		return b
	}
	data := pattern(3*512, 7)
	c := run(tg, nexA, 0, wa(4, 3), data, 0)
	expectGood(t, c)
	if c.Want != 3*512 {
		t.Fatalf("Want %d", c.Want)
	}
	r := run(tg, nexA, 0, cdb10(OpRead10, 0, 4, 3), nil, 3*512)
	if !bytes.Equal(r.DataIn, data) {
		t.Fatal("WRITE ATOMIC data not read back")
	}
	expectGood(t, run(tg, nexA, 0, wa(0, 0), nil, 0))
	expect(t, run(tg, nexA, 0, wa(testBlocks, 1), data[:512], 0), StatusCheckCondition, SenseIllegalRequest, ASCLBAOutOfRange)
	expect(t, run(tg, nexA, 0, wa(testBlocks+1, 0), nil, 0), StatusCheckCondition, SenseIllegalRequest, ASCLBAOutOfRange)
	bound := wa(0, 1)
	bound[11] = 1 // ATOMIC BOUNDARY: not supported (maximum boundary size 0)
	expect(t, run(tg, nexA, 0, bound, data[:512], 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	bl := run(tg, nexA, 0, inquiry(true, 0xB0, 64), nil, 64)
	if binary.BigEndian.Uint32(bl.DataIn[44:]) == 0 || binary.BigEndian.Uint32(bl.DataIn[44:]) > binary.BigEndian.Uint32(bl.DataIn[8:]) {
		t.Fatalf("MAXIMUM ATOMIC TRANSFER LENGTH %d", binary.BigEndian.Uint32(bl.DataIn[44:]))
	}
	if n, ok := tg.DataOutLen(0, wa(0, 5)); n != 5*512 || !ok {
		t.Fatalf("DataOutLen %d %v", n, ok)
	}
}

func TestReadDefectData(t *testing.T) {
	tg := newTarget(t, nil)
	c := run(tg, nexA, 0, []byte{OpReadDefectData10, 0, 0x18 | 3, 0, 0, 0, 0, 0, 32, 0}, nil, 32)
	expectGood(t, c)
	if c.DataInLen != 4 || c.DataIn[1] != 0x1B || c.DataIn[2] != 0 || c.DataIn[3] != 0 {
		t.Fatalf("READ DEFECT DATA(10) % x", c.DataIn[:c.DataInLen])
	}
	c = run(tg, nexA, 0, []byte{OpReadDefectData12, 0x05, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, nil, 32)
	expectGood(t, c)
	if c.DataInLen != 8 || c.DataIn[1] != 0x05 {
		t.Fatalf("READ DEFECT DATA(12) % x", c.DataIn[:c.DataInLen])
	}
	expect(t, run(tg, nexA, 0, []byte{OpReadDefectData10, 1, 0, 0, 0, 0, 0, 0, 32, 0}, nil, 32), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
}
