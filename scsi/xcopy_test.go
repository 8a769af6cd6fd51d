package scsi

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/goiser/goiser/scsi/backend"
)

// xcopyList builds an EXTENDED COPY parameter list: one identification
// target descriptor per designator, then block to block segments.
func xcopyList(listID, usage byte, naas [][]byte, bs int, segs [][5]uint64) []byte {
	p := make([]byte, 16)
	p[0], p[1] = listID, usage<<3
	for _, naa := range naas {
		d := make([]byte, 32)
		d[0] = xcopyTargetIdent
		d[4], d[5], d[7] = 0x01, 0x03, 16
		copy(d[8:24], naa)
		d[29], d[30], d[31] = byte(bs>>16), byte(bs>>8), byte(bs)
		p = append(p, d...)
	}
	binary.BigEndian.PutUint16(p[2:], uint16(32*len(naas)))
	for _, s := range segs { // src index, dst index, blocks, src lba, dst lba
		d := make([]byte, xcopySegBlockToBlockSz)
		d[0] = xcopySegBlockToBlock
		binary.BigEndian.PutUint16(d[2:], xcopySegBlockToBlockSz-4)
		binary.BigEndian.PutUint16(d[4:], uint16(s[0]))
		binary.BigEndian.PutUint16(d[6:], uint16(s[1]))
		binary.BigEndian.PutUint16(d[10:], uint16(s[2]))
		binary.BigEndian.PutUint64(d[12:], s[3])
		binary.BigEndian.PutUint64(d[20:], s[4])
		p = append(p, d...)
	}
	binary.BigEndian.PutUint32(p[8:], uint32(len(segs)*xcopySegBlockToBlockSz))
	return p
}

func xcopyCDB(n int) []byte {
	b := make([]byte, 16)
	b[0] = OpExtendedCopy
	binary.BigEndian.PutUint32(b[10:], uint32(n))
	return b
}

func naaOf(t *testing.T, tg *Target, lun uint64) []byte {
	t.Helper()
	c := run(tg, nexA, lun, inquiry(true, 0x83, 255), nil, 255)
	expectGood(t, c)
	return append([]byte{}, c.DataIn[8:24]...)
}

func TestExtendedCopy(t *testing.T) {
	b0, _ := backend.NewMemory(1 << 20)
	b1, _ := backend.NewMemory(1 << 20)
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: b0}, {Number: 1, Backend: b1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	data := pattern(64*512, 3)
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 10, 64), data, 0))
	n0, n1 := naaOf(t, tg, 0), naaOf(t, tg, 1)
	// Within LU 0 and from LU 0 to LU 1, in one command.
	p := xcopyList(7, 0, [][]byte{n0, n1}, 512, [][5]uint64{{0, 0, 64, 10, 500}, {0, 1, 32, 10, 0}})
	expectGood(t, run(tg, nexA, 0, xcopyCDB(len(p)), p, 0))
	r := run(tg, nexA, 0, cdb10(OpRead10, 0, 500, 64), nil, 64*512)
	if !bytes.Equal(r.DataIn, data) {
		t.Fatal("copy within the LU differs")
	}
	r = run(tg, nexA, 1, cdb10(OpRead10, 0, 0, 32), nil, 32*512)
	if !bytes.Equal(r.DataIn, data[:32*512]) {
		t.Fatal("copy to LU 1 differs")
	}
	// COPY STATUS of the held list.
	rcr := func(sa, list byte) *Command {
		b := make([]byte, 16)
		b[0], b[1], b[2] = OpReceiveCopyResults, sa, list
		binary.BigEndian.PutUint32(b[10:], 1024)
		return run(tg, nexA, 0, b, nil, 1024)
	}
	c := rcr(SACopyStatus, 7)
	expectGood(t, c)
	if c.DataIn[4] != 0 || binary.BigEndian.Uint16(c.DataIn[5:]) != 2 || binary.BigEndian.Uint32(c.DataIn[8:]) != 96 {
		t.Fatalf("COPY STATUS % x", c.DataIn[:12])
	}
	expect(t, rcr(SACopyStatus, 8), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	op := rcr(SAOperatingParameters, 0)
	expectGood(t, op)
	if binary.BigEndian.Uint16(op.DataIn[8:]) != xcopyMaxTargets || op.DataIn[43] != 2 || int(binary.BigEndian.Uint32(op.DataIn))+4 != op.DataInLen {
		t.Fatalf("OPERATING PARAMETERS % x", op.DataIn[:op.DataInLen])
	}
	tg.NexusLost(nexA)
	expect(t, rcr(SACopyStatus, 7), StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)

	cases := []struct {
		name string
		p    []byte
		plen int
		st   Status
		key  SenseKey
		asc  ASC
	}{
		{"empty", nil, 0, StatusGood, 0, 0},
		{"short header", make([]byte, 8), 8, StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError},
		{"truncated", p, len(p) - 1, StatusCheckCondition, SenseIllegalRequest, ASCParameterListLengthError},
		{"bad index", xcopyList(1, 2, [][]byte{n0}, 512, [][5]uint64{{0, 1, 8, 0, 0}}), -1, StatusCheckCondition, SenseCopyAborted, ASCCopyTargetDeviceNotReachable},
		{"unknown LU", xcopyList(1, 2, [][]byte{make([]byte, 16)}, 512, [][5]uint64{{0, 0, 8, 0, 0}}), -1, StatusCheckCondition, SenseCopyAborted, ASCCopyTargetDeviceNotReachable},
		{"block size", xcopyList(1, 2, [][]byte{n0}, 4096, [][5]uint64{{0, 0, 8, 0, 0}}), -1, StatusCheckCondition, SenseCopyAborted, ASCCopyTargetDeviceNotReachable},
		{"beyond end", xcopyList(1, 2, [][]byte{n0}, 512, [][5]uint64{{0, 0, 8, 0, 2047}}), -1, StatusCheckCondition, SenseCopyAborted, ASCNoAdditionalSense},
		{"too many targets", xcopyList(1, 2, [][]byte{n0, n0, n0, n0, n0, n0, n0, n0, n0}, 512, [][5]uint64{{0, 0, 1, 0, 1}}), -1, StatusCheckCondition, SenseIllegalRequest, ASCTooManyTargetDescriptors},
		{"list id usage 01b", xcopyList(1, 1, [][]byte{n0}, 512, [][5]uint64{{0, 0, 1, 0, 1}}), -1, StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInParamList},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.plen
			if n < 0 {
				n = len(tc.p)
			}
			expect(t, run(tg, nexA, 0, xcopyCDB(n), tc.p, 0), tc.st, tc.key, tc.asc)
		})
	}
	// Unsupported descriptor type codes.
	bad := xcopyList(1, 2, [][]byte{n0}, 512, [][5]uint64{{0, 0, 1, 0, 1}})
	bad[16] = 0xE0
	expect(t, run(tg, nexA, 0, xcopyCDB(len(bad)), bad, 0), StatusCheckCondition, SenseIllegalRequest, ASCUnsupportedTargetDescriptor)
	bad = xcopyList(1, 2, [][]byte{n0}, 512, [][5]uint64{{0, 0, 1, 0, 1}})
	bad[48] = 0x03
	expect(t, run(tg, nexA, 0, xcopyCDB(len(bad)), bad, 0), StatusCheckCondition, SenseIllegalRequest, ASCUnsupportedSegmentDescriptor)
	// A read-only destination refuses: the copy manager reports the copy
	// target's WRITE PROTECTED under COPY ABORTED.
	ro, _ := backend.NewMemory(1 << 20)
	tro, _ := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: ro, ReadOnly: true}}})
	pro := xcopyList(1, 2, [][]byte{naaOf(t, tro, 0)}, 512, [][5]uint64{{0, 0, 1, 0, 1}})
	expect(t, run(tro, nexA, 0, xcopyCDB(len(pro)), pro, 0), StatusCheckCondition, SenseCopyAborted, ASCWriteProtected)
}
