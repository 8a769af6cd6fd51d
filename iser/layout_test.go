package iser

import (
	"testing"
	"unsafe"

	"github.com/goiser/goiser/iscsi/pdu"
)

func TestRecvLayout(t *testing.T) {
	for _, tc := range []struct{ maxData, recvLen, slot int }{
		{0, 76, 512},
		{8192, 76 + 8192, 512 + 8192},
		{262144, 76 + 262144, 512 + 262144},
		{1001, 76 + 1004, 512 + 1024},
		{512, 76 + 512, 1024},
		{513, 76 + 516, 1536},
	} {
		l, err := NewRecvLayout(tc.maxData)
		if err != nil {
			t.Fatal(err)
		}
		if l.MaxData != tc.maxData || l.RecvLen != tc.recvLen || l.SlotSize != tc.slot {
			t.Errorf("NewRecvLayout(%d) = %+v, want RecvLen %d SlotSize %d", tc.maxData, l, tc.recvLen, tc.slot)
		}
		if RecvHeaderOffset+l.RecvLen > l.SlotSize {
			t.Errorf("NewRecvLayout(%d): the receive overruns its slot", tc.maxData)
		}
	}
	for _, bad := range []int{-1, pdu.MaxDataSegmentLength + 1} {
		if _, err := NewRecvLayout(bad); err == nil {
			t.Errorf("NewRecvLayout(%d) succeeded", bad)
		}
	}
}

// TestRecvLayoutAlignment receives a command with immediate data into
// every slot of a 512-byte aligned buffer and checks that ParseSend hands
// out data that starts on a 512-byte boundary.
func TestRecvLayoutAlignment(t *testing.T) {
	l, err := NewRecvLayout(DefaultRecvDataSegmentLength)
	if err != nil {
		t.Fatal(err)
	}
	const slots = 4
	raw := make([]byte, l.BufferLen(slots)+RecvDataAlign)
	skew := int(-uintptr(unsafe.Pointer(&raw[0])) & (RecvDataAlign - 1))
	buf := raw[skew : skew+l.BufferLen(slots)]
	imm := make([]byte, 8192)
	wire := send(t, Header{WriteValid: true, WriteSTag: 1, WriteVA: 0x2000}, writeCmd(imm), 0)
	for i := range slots {
		r := l.Recv(buf, i)
		if len(r) != l.RecvLen || cap(r) != l.RecvLen {
			t.Fatalf("slot %d: receive of %d/%d bytes", i, len(r), cap(r))
		}
		n := copy(r, wire) // what the device does
		f, err := ParseSend(r[:n])
		if err != nil {
			t.Fatal(err)
		}
		if a := uintptr(unsafe.Pointer(&f.Data[0])); a%RecvDataAlign != 0 {
			t.Fatalf("slot %d: data at %#x, not 512-byte aligned", i, a)
		}
	}
}
