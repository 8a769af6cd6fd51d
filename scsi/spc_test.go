package scsi

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/goiser/goiser/scsi/backend"
)

func inquiry(evpd bool, page byte, alloc uint16) []byte {
	b := []byte{OpInquiry, 0, page, 0, 0, 0}
	if evpd {
		b[1] = 1
	}
	binary.BigEndian.PutUint16(b[3:], alloc)
	return b
}

func TestStandardInquiry(t *testing.T) {
	tg := newTarget(t, nil)
	c := run(tg, nexA, 0, inquiry(false, 0, 260), nil, 260)
	expectGood(t, c)
	d := c.DataIn[:c.DataInLen]
	if len(d) < 36 || int(d[4])+5 != len(d) {
		t.Fatalf("length %d, additional length %d", len(d), d[4])
	}
	if d[0] != 0 || d[2] != 6 || d[3] != 0x12 || d[7]&0x02 == 0 || d[5] != 0x08 {
		t.Fatalf("header % x", d[:8])
	}
	if string(d[8:16]) != "GOISER  " || string(d[16:32]) != "goiser          " || string(d[32:36]) != "0001" {
		t.Fatalf("identification %q", d[8:36])
	}
	if binary.BigEndian.Uint16(d[58+6:]) != 0x04C0 {
		t.Fatal("no SBC-3 version descriptor")
	}
	// Allocation length truncates; Want reports what fits the allocation.
	c = run(tg, nexA, 0, inquiry(false, 0, 5), nil, 5)
	expectGood(t, c)
	if c.DataInLen != 5 || c.Want != 5 {
		t.Fatalf("alloc 5: DataInLen %d Want %d", c.DataInLen, c.Want)
	}
	expect(t, run(tg, nexA, 0, inquiry(false, 0x80, 255), nil, 255), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expect(t, run(tg, nexA, 0, []byte{OpInquiry, 0x02, 0, 0, 255, 0}, nil, 255), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
}

func TestMissingLUN(t *testing.T) {
	tg := newTarget(t, nil)
	c := run(tg, nexA, 7, inquiry(false, 0, 96), nil, 96)
	expectGood(t, c)
	if c.DataIn[0] != 0x7F {
		t.Fatalf("peripheral byte 0x%02x, want 0x7f", c.DataIn[0])
	}
	expect(t, run(tg, nexA, 7, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0), StatusCheckCondition, SenseIllegalRequest, ASCLUNNotSupported)
	expect(t, run(tg, nexA, 7, cdb10(OpRead10, 0, 0, 1), nil, 512), StatusCheckCondition, SenseIllegalRequest, ASCLUNNotSupported)
	rl := run(tg, nexA, 7, []byte{OpReportLUNs, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0}, nil, 255)
	expectGood(t, rl)
}

func TestVPDPages(t *testing.T) {
	tg := newTarget(t, nil)
	get := func(page byte) []byte {
		t.Helper()
		c := run(tg, nexA, 0, inquiry(true, page, 1024), nil, 1024)
		expectGood(t, c)
		d := c.DataIn[:c.DataInLen]
		if d[1] != page || int(binary.BigEndian.Uint16(d[2:]))+4 != len(d) {
			t.Fatalf("VPD 0x%02x header % x, len %d", page, d[:4], len(d))
		}
		return d
	}
	if d := get(0x00); !bytes.Equal(d[4:], []byte{0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2}) {
		t.Fatalf("supported pages % x", d[4:])
	}
	if d := get(0x80); string(d[4:]) != "SN0001" {
		t.Fatalf("serial %q", d[4:])
	}
	d := get(0x83)
	// First designator: NAA 6, 16 bytes, LU association.
	if d[4] != 0x01 || d[5] != 0x03 || d[7] != 16 || d[8]>>4 != 6 {
		t.Fatalf("NAA designator % x", d[4:24])
	}
	naa := append([]byte{}, d[8:24]...)
	if !bytes.Contains(d, []byte(nexA.TargetPort)) {
		t.Fatal("no target port name designator")
	}
	// Another nexus on another port sees the same LU name and its own port.
	c := run(tg, nexC, 0, inquiry(true, 0x83, 1024), nil, 1024)
	if !bytes.Equal(c.DataIn[8:24], naa) || !bytes.Contains(c.DataIn, []byte(nexC.TargetPort)) {
		t.Fatal("LU identity differs between paths or port missing")
	}
	bl := get(0xB0)
	if len(bl) != 0x40 || bl[5] != maxCompareAndWriteBlocks || binary.BigEndian.Uint32(bl[20:]) == 0 || binary.BigEndian.Uint32(bl[24:]) == 0 {
		t.Fatalf("block limits % x", bl)
	}
	if d := get(0xB1); binary.BigEndian.Uint16(d[4:]) != 1 {
		t.Fatal("B1: not non-rotating")
	}
	if d := get(0xB2); d[5]&0xE4 != 0xE4 || d[6]&0x07 != 2 {
		t.Fatalf("B2 % x", d)
	}
	expect(t, run(tg, nexA, 0, inquiry(true, 0x99, 255), nil, 255), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
}

func TestModeSense(t *testing.T) {
	tg := newTarget(t, nil)
	c := run(tg, nexA, 0, []byte{OpModeSense6, 0, 0x3F, 0, 255, 0}, nil, 255)
	expectGood(t, c)
	d := c.DataIn[:c.DataInLen]
	if int(d[0])+1 != len(d) || d[3] != 8 || d[2]&0x10 == 0 {
		t.Fatalf("header % x", d[:4])
	}
	if binary.BigEndian.Uint32(d[4:]) != testBlocks || binary.BigEndian.Uint32(d[8:])&0xFFFFFF != 512 {
		t.Fatalf("block descriptor % x", d[4:12])
	}
	pages := map[byte]bool{}
	for off := 12; off < len(d); off += int(d[off+1]) + 2 {
		pages[d[off]&0x3F] = true
	}
	if !pages[pageCaching] || !pages[pageControl] || !pages[pageInfoExcep] {
		t.Fatalf("pages %v", pages)
	}
	// MODE SENSE(10) with LLBAA.
	c = run(tg, nexA, 0, []byte{OpModeSense10, 0x10, 0x0A, 0, 0, 0, 0, 0x01, 0x00, 0}, nil, 256)
	expectGood(t, c)
	if c.DataIn[4]&1 == 0 || binary.BigEndian.Uint16(c.DataIn[6:]) != 16 || c.DataIn[24] != pageControl {
		t.Fatalf("mode sense 10 % x", c.DataIn[:26])
	}
	// Truncation: Want says what fits the allocation.
	c = run(tg, nexA, 0, []byte{OpModeSense6, 0, 0x3F, 0, 4, 0}, nil, 4)
	if c.DataInLen != 4 || c.Want != 4 {
		t.Fatalf("alloc 4: DataInLen %d Want %d", c.DataInLen, c.Want)
	}
	expect(t, run(tg, nexA, 0, []byte{OpModeSense6, 0, 0xC0 | 0x0A, 0, 255, 0}, nil, 255), StatusCheckCondition, SenseIllegalRequest, ASCSavingParamsNotSupported)
	expect(t, run(tg, nexA, 0, []byte{OpModeSense6, 0, 0x19, 0, 255, 0}, nil, 255), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expect(t, run(tg, nexA, 0, []byte{OpModeSense6, 0, 0x0A, 1, 255, 0}, nil, 255), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
}

// controlPage returns the current control page via MODE SENSE(6) DBD.
func controlPage(t *testing.T, tg *Target, n Nexus, pc byte) []byte {
	t.Helper()
	c := run(tg, n, 0, []byte{OpModeSense6, 0x08, pc<<6 | pageControl, 0, 255, 0}, nil, 255)
	expectGood(t, c)
	return append([]byte{}, c.DataIn[4:4+12]...)
}

func modeSelect6(tg *Target, n Nexus, page []byte) *Command {
	p := append([]byte{0, 0, 0, 0}, page...)
	return run(tg, n, 0, []byte{OpModeSelect6, 0x10, 0, 0, byte(len(p)), 0}, p, 0)
}

func TestModeSelectDSenseAndSWP(t *testing.T) {
	tg := newTarget(t, nil)
	if ch := controlPage(t, tg, nexA, pcChangeable); ch[2]&0x04 == 0 || ch[4]&0x08 == 0 {
		t.Fatalf("changeable control page % x", ch)
	}
	pg := controlPage(t, tg, nexA, pcCurrent)
	pg[2] |= 0x04 // D_SENSE
	expectGood(t, modeSelect6(tg, nexA, pg))
	c := run(tg, nexA, 0, cdb16(OpRead16, 0, ^uint64(0), 1), nil, 512)
	expect(t, c, StatusCheckCondition, SenseIllegalRequest, ASCLBAOutOfRange)
	if c.Sense[0] != 0x72 {
		t.Fatalf("D_SENSE=1 but sense format 0x%02x", c.Sense[0])
	}
	// The other nexus learns about the change.
	expect(t, run(tg, nexB, 0, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}, nil, 0), StatusGood, 0, 0)
	pg[2] &^= 0x04
	pg[4] |= 0x08 // SWP
	expectGood(t, modeSelect6(tg, nexA, pg))
	expect(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 1), make([]byte, 512), 0), StatusCheckCondition, SenseDataProtect, ASCWriteProtected)
	expectGood(t, run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 1), nil, 512))
	pg[4] &^= 0x08
	expectGood(t, modeSelect6(tg, nexA, pg))
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 1), make([]byte, 512), 0))
	// Unchangeable field, SP=1, no PF, truncated list.
	bad := append([]byte{}, pg...)
	bad[3] ^= 0x10
	expect(t, modeSelect6(tg, nexA, bad), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInParamList)
	expect(t, run(tg, nexA, 0, []byte{OpModeSelect6, 0x11, 0, 0, 16, 0}, make([]byte, 16), 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expect(t, run(tg, nexA, 0, []byte{OpModeSelect6, 0x10, 0, 0, 16, 0}, make([]byte, 3), 0), StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError)
	// WCE through the caching page.
	c = run(tg, nexA, 0, []byte{OpModeSense6, 0x08, pageCaching, 0, 255, 0}, nil, 255)
	cp := append([]byte{}, c.DataIn[4:24]...)
	if cp[2]&0x04 == 0 {
		t.Fatal("default WCE=0")
	}
	cp[2] &^= 0x04
	expectGood(t, modeSelect6(tg, nexA, cp))
	c = run(tg, nexA, 0, []byte{OpModeSense6, 0x08, pageCaching, 0, 255, 0}, nil, 255)
	if c.DataIn[4+2]&0x04 != 0 {
		t.Fatal("WCE still set")
	}
}

func TestReportLUNs(t *testing.T) {
	b0, _ := backend.NewMemory(1 << 20)
	b1, _ := backend.NewMemory(1 << 20)
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 300, Backend: b1}, {Number: 0, Backend: b0}}})
	if err != nil {
		t.Fatal(err)
	}
	if l := tg.LUNs(); len(l) != 2 || l[0] != 0 || l[1] != 300 {
		t.Fatalf("LUNs %v", l)
	}
	c := run(tg, nexA, 0, []byte{OpReportLUNs, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, nil, 256)
	expectGood(t, c)
	want := []byte{0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0x2C, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(c.DataIn[:c.DataInLen], want) {
		t.Fatalf("REPORT LUNS % x", c.DataIn[:c.DataInLen])
	}
	expect(t, run(tg, nexA, 0, []byte{OpReportLUNs, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}, nil, 8), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	expect(t, run(tg, nexA, 0, []byte{OpReportLUNs, 0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0}, nil, 256), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	if _, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 1, Backend: b0}, {Number: 1, Backend: b1}}}); err == nil {
		t.Fatal("duplicate LUN accepted")
	}
	if _, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 1, Backend: b0, BlockSize: 1000}}}); err == nil {
		t.Fatal("block size 1000 accepted")
	}
	if _, err := NewTarget(TargetConfig{Vendor: "much too long vendor"}); err == nil {
		t.Fatal("long vendor accepted")
	}
}

func TestUnitAttentionsAndRequestSense(t *testing.T) {
	tg := newTarget(t, nil)
	tur := []byte{OpTestUnitReady, 0, 0, 0, 0, 0}
	expectGood(t, run(tg, nexA, 0, tur, nil, 0))
	expectGood(t, run(tg, nexB, 0, tur, nil, 0))
	if err := tg.ResetLUN(nexA, 0); err != nil {
		t.Fatal(err)
	}
	if err := tg.ResetLUN(nexA, 9); err == nil {
		t.Fatal("reset of a missing LUN succeeded")
	}
	// Every nexus gets the unit attention, the one that reset included.
	expect(t, run(tg, nexA, 0, tur, nil, 0), StatusCheckCondition, SenseUnitAttention, ASCBusDeviceResetOccurred)
	expectGood(t, run(tg, nexA, 0, tur, nil, 0))
	// INQUIRY and REPORT LUNS do not report the unit attention.
	expectGood(t, run(tg, nexB, 0, inquiry(false, 0, 96), nil, 96))
	// REQUEST SENSE returns and clears it.
	c := run(tg, nexB, 0, []byte{OpRequestSense, 0, 0, 0, 252, 0}, nil, 252)
	expectGood(t, c)
	if k, a, _ := SenseFields(c.DataIn[:c.DataInLen]); k != SenseUnitAttention || a != ASCBusDeviceResetOccurred {
		t.Fatalf("REQUEST SENSE %v %v", k, a)
	}
	expectGood(t, run(tg, nexB, 0, tur, nil, 0))
	c = run(tg, nexB, 0, []byte{OpRequestSense, 1, 0, 0, 252, 0}, nil, 252)
	if k, a, _ := SenseFields(c.DataIn[:c.DataInLen]); c.DataIn[0] != 0x72 || k != SenseNoSense || a != ASCNoAdditionalSense {
		t.Fatalf("REQUEST SENSE DESC % x", c.DataIn[:8])
	}
	// Cold reset: POWER ON OCCURRED, before an unknown opcode's error.
	if err := tg.Reset(nexA, true); err != nil {
		t.Fatal(err)
	}
	expect(t, run(tg, nexB, 0, []byte{0xC1, 0, 0, 0, 0, 0}, nil, 0), StatusCheckCondition, SenseUnitAttention, ASCPowerOnOccurred)
	expect(t, run(tg, nexB, 0, []byte{0xC1, 0, 0, 0, 0, 0}, nil, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidOpcode)
	// A lost nexus forgets its unit attentions.
	if err := tg.Reset(nexA, false); err != nil {
		t.Fatal(err)
	}
	tg.NexusLost(nexB)
	expectGood(t, run(tg, nexB, 0, tur, nil, 0))
}

func TestReportSupportedOpcodes(t *testing.T) {
	tg := newTarget(t, nil)
	rsoc := func(rctd bool, opt, op byte, sa uint16) *Command {
		b := []byte{OpMaintenanceIn, SAReportSupportedOpcodes, opt, op, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0}
		if rctd {
			b[2] |= 0x80
		}
		binary.BigEndian.PutUint16(b[4:], sa)
		return run(tg, nexA, 0, b, nil, 65535)
	}
	for _, rctd := range []bool{false, true} {
		c := rsoc(rctd, 0, 0, 0)
		expectGood(t, c)
		d := c.DataIn[:c.DataInLen]
		if int(binary.BigEndian.Uint32(d))+4 != len(d) {
			t.Fatalf("length %d vs %d", binary.BigEndian.Uint32(d), len(d))
		}
		count := 0
		for off := 4; off < len(d); count++ {
			op, sa, flags := d[off], binary.BigEndian.Uint16(d[off+2:]), d[off+5]
			if (flags&0x02 != 0) != rctd {
				t.Fatalf("CTDP %v with RCTD %v", flags&2 != 0, rctd)
			}
			if flags&0x01 == 0 && sa != 0 {
				t.Fatal("service action without SERVACTV")
			}
			// Each descriptor also answers as one command.
			opt := byte(1)
			if flags&1 != 0 {
				opt = 2
			}
			one := rsoc(false, opt, op, sa)
			expectGood(t, one)
			if one.DataIn[1]&0x07 != 3 || one.DataIn[4] != op {
				t.Fatalf("one command 0x%02x/%d: % x", op, sa, one.DataIn[:8])
			}
			if flags&1 != 0 {
				expect(t, rsoc(false, 1, op, sa), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
			} else {
				expect(t, rsoc(false, 2, op, sa), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
			}
			off += 8
			if rctd {
				if binary.BigEndian.Uint16(d[off:]) != 0x0A {
					t.Fatal("timeouts descriptor length")
				}
				off += 12
			}
		}
		if count < 40 {
			t.Fatalf("only %d commands reported", count)
		}
	}
	// READ(10) usage data has DPO and FUA.
	c := rsoc(false, 1, OpRead10, 0)
	if c.DataIn[5]&0x18 != 0x18 || binary.BigEndian.Uint16(c.DataIn[2:]) != 10 {
		t.Fatalf("READ(10) usage % x", c.DataIn[:14])
	}
	c = rsoc(true, 1, 0xC7, 0)
	expectGood(t, c)
	if c.DataIn[1]&0x07 != 1 {
		t.Fatal("unknown opcode reported supported")
	}
	expect(t, rsoc(false, 5, 0, 0), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	tmf := run(tg, nexA, 0, []byte{OpMaintenanceIn, SAReportSupportedTMFunctions, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0}, nil, 4)
	expectGood(t, tmf)
	if tmf.DataIn[0]&0x80 == 0 || tmf.DataIn[0]&0x08 == 0 {
		t.Fatalf("TMFs % x", tmf.DataIn[:4])
	}
}

func TestReserveRelease6(t *testing.T) {
	tg := newTarget(t, nil)
	res, rel := []byte{OpReserve6, 0, 0, 0, 0, 0}, []byte{OpRelease6, 0, 0, 0, 0, 0}
	ms := []byte{OpModeSense6, 0, 0x3F, 0, 255, 0}
	expectGood(t, run(tg, nexA, 0, res, nil, 0))
	expectGood(t, run(tg, nexA, 0, res, nil, 0))
	expect(t, run(tg, nexB, 0, res, nil, 0), StatusReservationConflict, 0, 0)
	expectGood(t, run(tg, nexB, 0, rel, nil, 0)) // no effect
	expectGood(t, run(tg, nexA, 0, ms, nil, 255))
	expect(t, run(tg, nexB, 0, ms, nil, 255), StatusReservationConflict, 0, 0)
	expect(t, run(tg, nexB, 0, cdb10(OpRead10, 0, 0, 1), nil, 512), StatusReservationConflict, 0, 0)
	expectGood(t, run(tg, nexB, 0, inquiry(false, 0, 96), nil, 96))
	expectGood(t, run(tg, nexB, 0, []byte{OpReportLUNs, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0}, nil, 255))
	expectGood(t, run(tg, nexA, 0, rel, nil, 0))
	expectGood(t, run(tg, nexB, 0, []byte{OpReserve10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, 0))
	// Nexus loss releases; so does LU reset.
	tg.NexusLost(nexB)
	expectGood(t, run(tg, nexA, 0, res, nil, 0))
	if err := tg.ResetLUN(nexB, 0); err != nil {
		t.Fatal(err)
	}
	clearUA(t, tg, nexA)
	expectGood(t, run(tg, nexB, 0, res, nil, 0))
}
