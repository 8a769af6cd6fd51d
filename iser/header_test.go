package iser

import (
	"bytes"
	"errors"
	"testing"
)

// linuxHeaders are iSER headers as Linux puts them on the wire: ib_iser
// clears the header, sets ISCSI_CTRL (0x10) and then ISER_RSV (0x04) with
// read_stag/read_va for a READ, ISER_WSV (0x08) with write_stag/write_va
// for a WRITE that the target must RDMA READ (iser_prepare_read_cmd and
// iser_prepare_write_cmd); isert sends 0x10 and zeros on every PDU.
var linuxHeaders = []struct {
	name string
	wire []byte
	want Header
}{
	{
		name: "login or response: 0x10",
		wire: []byte{0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		want: Header{},
	},
	{
		name: "READ: 0x10|0x04",
		wire: []byte{0x14, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0x00, 0x01, 0x23, 0x45, 0xff, 0xff, 0x88, 0x81, 0x2a, 0xbc, 0x10, 0x00},
		want: Header{ReadValid: true, ReadSTag: 0x00012345, ReadVA: 0xffff88812abc1000},
	},
	{
		name: "WRITE beyond immediate data: 0x10|0x08",
		wire: []byte{0x18, 0, 0, 0,
			0x00, 0x00, 0x1f, 0x07, 0xff, 0xff, 0x88, 0x81, 0x2a, 0xbd, 0x20, 0x00,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		want: Header{WriteValid: true, WriteSTag: 0x1f07, WriteVA: 0xffff88812abd2000},
	},
	{
		name: "bidirectional: 0x10|0x08|0x04",
		wire: []byte{0x1c, 0, 0, 0,
			0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
			0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00},
		want: Header{WriteValid: true, WriteSTag: 2, WriteVA: 0x1000, ReadValid: true, ReadSTag: 3, ReadVA: 0x2000},
	},
	{
		name: "valid STag of zero",
		wire: []byte{0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		want: Header{ReadValid: true},
	},
}

func TestHeaderLinuxBytes(t *testing.T) {
	for _, tc := range linuxHeaders {
		t.Run(tc.name, func(t *testing.T) {
			var h Header
			if err := h.UnmarshalBinary(tc.wire); err != nil {
				t.Fatal(err)
			}
			if h != tc.want {
				t.Fatalf("decoded %+v, want %+v", h, tc.want)
			}
			enc, err := tc.want.AppendBinary([]byte{0xee})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc[1:], tc.wire) || enc[0] != 0xee {
				t.Fatalf("encoded\n%x, want\n%x", enc[1:], tc.wire)
			}
		})
	}
}

func TestHeaderStrict(t *testing.T) {
	good := append([]byte(nil), linuxHeaders[2].wire...) // W set, R clear
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"empty", nil, ErrBadHeader},
		{"short", good[:27], ErrBadHeader},
		{"long", append(append([]byte(nil), good...), 0), ErrBadHeader},
		{"opcode 0", mut(func(b []byte) []byte { b[0] &= 0x0f; return b }), ErrBadHeader},
		{"opcode 4", mut(func(b []byte) []byte { b[0] = 0x48; return b }), ErrBadHeader},
		{"opcode 15", mut(func(b []byte) []byte { b[0] = 0xf8; return b }), ErrBadHeader},
		{"Hello", mut(func(b []byte) []byte { b[0] = 0x20; return b }), ErrNotControl},
		{"HelloReply", mut(func(b []byte) []byte { b[0] = 0x30; return b }), ErrNotControl},
		{"reserved bit 0x01", mut(func(b []byte) []byte { b[0] |= 0x01; return b }), ErrBadHeader},
		{"reserved bit 0x02", mut(func(b []byte) []byte { b[0] |= 0x02; return b }), ErrBadHeader},
		{"reserved byte 1", mut(func(b []byte) []byte { b[1] = 1; return b }), ErrBadHeader},
		{"reserved byte 3", mut(func(b []byte) []byte { b[3] = 0x80; return b }), ErrBadHeader},
		{"Read STag without R", mut(func(b []byte) []byte { b[19] = 1; return b }), ErrBadHeader},
		{"Read VA without R", mut(func(b []byte) []byte { b[27] = 1; return b }), ErrBadHeader},
		{"Write STag without W", mut(func(b []byte) []byte { b[0] = 0x10; return b }), ErrBadHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Header{ReadValid: true, ReadSTag: 9}
			before := h
			err := h.UnmarshalBinary(tc.wire)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var we *WireError
			if !errors.As(err, &we) {
				t.Fatalf("%v is not a *WireError", err)
			}
			if h != before {
				t.Fatalf("header changed on error: %+v", h)
			}
			if tc.want == ErrNotControl && errors.Is(err, ErrBadHeader) {
				t.Fatal("a Hello must not match ErrBadHeader")
			}
		})
	}
}

func TestHeaderEncodeRejectsFieldsWithoutFlag(t *testing.T) {
	for _, h := range []Header{
		{WriteSTag: 1},
		{WriteVA: 1},
		{ReadSTag: 1, WriteValid: true},
		{ReadVA: 1},
	} {
		b, err := h.AppendBinary([]byte{1, 2})
		if err == nil {
			t.Errorf("%+v encoded without error", h)
		}
		if !bytes.Equal(b, []byte{1, 2}) {
			t.Errorf("%+v: buffer changed on error: %x", h, b)
		}
	}
}

func TestPeekOpcode(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want Opcode
		err  error
	}{
		{[]byte{0x10}, OpControl, nil},
		{[]byte{0x1c, 0xff}, OpControl, nil},
		{[]byte{0x20}, OpHello, nil},
		{[]byte{0x31}, OpHelloReply, nil},
		{nil, 0, ErrBadHeader},
		{[]byte{0x00}, 0, ErrBadHeader},
		{[]byte{0x40}, 4, ErrBadHeader},
	} {
		op, err := PeekOpcode(tc.b)
		if !errors.Is(err, tc.err) || (err == nil && op != tc.want) {
			t.Errorf("PeekOpcode(%x) = %v, %v; want %v, %v", tc.b, op, err, tc.want, tc.err)
		}
	}
	if s := OpHelloReply.String(); s != "HelloReply" {
		t.Errorf("String: %q", s)
	}
	if s := Opcode(9).String(); s != "Opcode(0x9)" {
		t.Errorf("String: %q", s)
	}
}

func TestConstants(t *testing.T) {
	if HeaderLen != 28 || HeadersLen != 76 || LoginRecvLen != 8268 || RecvHeaderOffset != 436 {
		t.Fatalf("HeaderLen %d HeadersLen %d LoginRecvLen %d RecvHeaderOffset %d",
			HeaderLen, HeadersLen, LoginRecvLen, RecvHeaderOffset)
	}
	if MaxCMRequestPrivateData != 92-36 {
		t.Fatal("REQ private data: 92 bytes less the 36-byte RDMA CM header")
	}
}
