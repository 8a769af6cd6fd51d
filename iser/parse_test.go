package iser

import (
	"bytes"
	"errors"
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
)

// send builds a SEND as a peer puts it on the wire: iSER header, BHS,
// AHS, data segment, and pad extra bytes.
func send(t testing.TB, h Header, p pdu.PDU, pad int) []byte {
	t.Helper()
	b, err := h.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = pdu.AppendHeader(b, p, false); err != nil {
		t.Fatal(err)
	}
	b = append(b, p.DataSegment()...)
	return append(b, make([]byte, pad)...)
}

func writeCmd(data []byte) *pdu.SCSICommand {
	return &pdu.SCSICommand{Final: true, Write: true, ITT: 0x11, CmdSN: 5,
		ExpectedDataTransferLength: 65536, CDB: [16]byte{0x2a}, Data: data}
}

func TestParseSendSCSICommand(t *testing.T) {
	imm := bytes.Repeat([]byte{0xab}, 4096)
	h := Header{WriteValid: true, WriteSTag: 0x77, WriteVA: 0x10000 + 4096}
	wire := send(t, h, writeCmd(imm), 0)
	f, err := ParseSend(wire)
	if err != nil {
		t.Fatal(err)
	}
	if f.Header != h {
		t.Fatalf("header %+v, want %+v", f.Header, h)
	}
	if len(f.BHS) != pdu.BHSLen || &f.BHS[0] != &wire[HeaderLen] || cap(f.BHS) != pdu.BHSLen {
		t.Fatalf("BHS is not the 48-byte view at offset 28")
	}
	if len(f.AHS) != 0 || cap(f.AHS) != 0 {
		t.Fatalf("AHS %d/%d bytes, want none", len(f.AHS), cap(f.AHS))
	}
	if !bytes.Equal(f.Data, imm) || &f.Data[0] != &wire[HeadersLen] || cap(f.Data) != len(imm) {
		t.Fatal("Data is not the capped view of the immediate data")
	}
	var d pdu.Decoder
	p, err := d.DecodeFrame(&f.Frame)
	if err != nil {
		t.Fatal(err)
	}
	cmd := p.(*pdu.SCSICommand)
	if cmd.ITT != 0x11 || !cmd.Write || len(cmd.Data) != 4096 {
		t.Fatalf("decoded %+v", cmd)
	}
}

func TestParseSendAHS(t *testing.T) {
	cmd := &pdu.SCSICommand{Final: true, Read: true, ITT: 3, ExpectedDataTransferLength: 512,
		CDB: [16]byte{0x7f}, ExtCDB: bytes.Repeat([]byte{1}, 16)}
	wire := send(t, Header{ReadValid: true, ReadSTag: 1, ReadVA: 0x1000}, cmd, 0)
	f, err := ParseSend(wire)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.AHS) != cmd.AHSLen() || f.Data != nil {
		t.Fatalf("AHS %d bytes (want %d), data %d", len(f.AHS), cmd.AHSLen(), len(f.Data))
	}
	if _, err := pdu.DecodeFrame(&f.Frame); err != nil {
		t.Fatal(err)
	}
}

func TestParseSendLogin(t *testing.T) {
	keys := []byte("InitiatorName=iqn.2004-10.com.ubuntu:01:abc\x00SessionType=Normal\x00") // 63 bytes: pad 1
	login := &pdu.LoginRequest{Transit: true, CSG: pdu.StageOperational, NSG: pdu.StageFullFeature,
		ITT: 0, CmdSN: 1, Data: keys}
	for pad := 0; pad <= pdu.PadLen(len(keys)); pad++ {
		f, err := ParseSend(send(t, Header{}, login, pad))
		if err != nil {
			t.Fatalf("pad %d: %v", pad, err)
		}
		if !bytes.Equal(f.Data, keys) {
			t.Fatalf("pad %d: data %q", pad, f.Data)
		}
	}
}

func TestParseSendErrors(t *testing.T) {
	keys := make([]byte, 13) // padding of 3 tolerated, 4 not
	nop := &pdu.NOPOut{Immediate: true, ITT: 1, TTT: pdu.ReservedTag, Data: keys}
	good := send(t, Header{}, nop, 0)
	hello, _ := (&Hello{MaxVersion: Version, MinVersion: Version, IRD: 4}).AppendBinary(nil)
	withAHS := send(t, Header{}, nop, 0)
	withAHS[HeaderLen+4] = 1 // announces 4 bytes of AHS that are not there
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"empty", nil, ErrBadLength},
		{"Hello", hello, ErrNotControl},
		{"unknown opcode", append([]byte{0x50}, good[1:]...), ErrBadHeader},
		{"header only", good[:HeaderLen], ErrBadLength},
		{"one short of the BHS", good[:HeadersLen-1], ErrBadLength},
		{"data cut short", good[:len(good)-1], ErrBadLength},
		{"pad of 4", append(append([]byte(nil), good...), 0, 0, 0, 0), ErrBadLength},
		{"AHS missing", withAHS, ErrBadLength},
		{"reserved header byte", append([]byte{0x10, 1}, good[2:]...), ErrBadHeader},
		{"STags on a NOP-Out", send(t, Header{ReadValid: true, ReadSTag: 1}, nop, 0), ErrBadHeader},
		{"STags on a Login", send(t, Header{WriteValid: true}, &pdu.LoginRequest{}, 0), ErrBadHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseSend(tc.wire)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if f.BHS != nil || f.Data != nil || f.Header != (Header{}) {
				t.Fatalf("frame filled on error: %+v", f)
			}
		})
	}
	if _, err := ParseSend(append(append([]byte(nil), good...), 0, 0, 0)); err != nil {
		t.Fatalf("pad of 3 after 13 bytes: %v", err)
	}
}

func TestParseSendDataSegmentLengthHuge(t *testing.T) {
	wire := send(t, Header{}, &pdu.NOPOut{ITT: 1, TTT: pdu.ReservedTag}, 0)
	pdu.BHS(wire[HeaderLen:]).SetDataSegmentLength(pdu.MaxDataSegmentLength)
	if _, err := ParseSend(wire); !errors.Is(err, ErrBadLength) {
		t.Fatalf("got %v", err)
	}
}
