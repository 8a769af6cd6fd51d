package iser

import (
	"bytes"
	"errors"
	"testing"
)

func TestHelloRoundTrip(t *testing.T) {
	h := Hello{MaxVersion: Version, MinVersion: Version, IRD: 16}
	wire, err := h.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x20, 0xaa, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(wire, want) {
		t.Fatalf("encoded %x, want %x", wire, want)
	}
	for _, b := range [][]byte{wire, append(wire, make([]byte, HeaderLen-HelloLen)...)} {
		var got Hello
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%d bytes: %v", len(b), err)
		}
		if got != h {
			t.Fatalf("decoded %+v", got)
		}
	}
	if op, _ := PeekOpcode(wire); op != OpHello {
		t.Fatalf("PeekOpcode: %v", op)
	}
}

func TestHelloReplyRoundTrip(t *testing.T) {
	for _, h := range []HelloReply{
		{MaxVersion: Version, CurrentVersion: Version, ORD: 4},
		{Reject: true, MaxVersion: Version, CurrentVersion: Version},
	} {
		wire, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(wire) != HelloLen || wire[0]&0xf0 != 0x30 || (wire[0]&1 != 0) != h.Reject {
			t.Fatalf("encoded %x", wire)
		}
		var got HelloReply
		if err := got.UnmarshalBinary(wire); err != nil || got != h {
			t.Fatalf("decoded %+v, %v", got, err)
		}
	}
}

func TestHelloStrict(t *testing.T) {
	hello, _ := (&Hello{MaxVersion: Version, MinVersion: Version}).AppendBinary(nil)
	reply, _ := (&HelloReply{MaxVersion: Version, CurrentVersion: Version}).AppendBinary(nil)
	set := func(b []byte, i int, v byte) []byte { b = append([]byte(nil), b...); b[i] = v; return b }
	for _, tc := range []struct {
		name  string
		wire  []byte
		reply bool
	}{
		{"short Hello", hello[:HelloLen-1], false},
		{"long Hello", make([]byte, HeaderLen+1), false},
		{"Hello reserved nibble", set(hello, 0, 0x21), false},
		{"Hello reserved byte 4", set(hello, 4, 1), false},
		{"Hello reserved byte 11", set(hello, 11, 1), false},
		{"Hello padded with junk", append(append([]byte(nil), hello...), 0, 0, 1), false},
		{"HelloReply as Hello", reply, false},
		{"control PDU as Hello", append([]byte{0x10}, make([]byte, 27)...), false},
		{"HelloReply reserved bits", set(reply, 0, 0x32), true},
		{"HelloReply reserved 0x08", set(reply, 0, 0x38), true},
		{"HelloReply reserved byte 8", set(reply, 8, 1), true},
		{"Hello as HelloReply", hello, true},
		{"empty HelloReply", nil, true},
	} {
		var err error
		if tc.reply {
			var h HelloReply
			err = h.UnmarshalBinary(tc.wire)
		} else {
			var h Hello
			err = h.UnmarshalBinary(tc.wire)
		}
		if !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: got %v, want ErrBadHeader", tc.name, err)
		}
	}
	if _, err := (&Hello{MaxVersion: 16}).AppendBinary(nil); err == nil {
		t.Error("Hello with version 16 encoded")
	}
	if _, err := (&HelloReply{CurrentVersion: 16}).AppendBinary(nil); err == nil {
		t.Error("HelloReply with version 16 encoded")
	}
}

// TestParseSendHello is what a target does with a Hello: ParseSend says
// it is not a PDU, Hello decodes it for the log.
func TestParseSendHello(t *testing.T) {
	wire := []byte{0x20, 0xaa, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0}
	_, err := ParseSend(wire)
	if !errors.Is(err, ErrNotControl) {
		t.Fatalf("ParseSend: %v", err)
	}
	var h Hello
	if err := h.UnmarshalBinary(wire); err != nil || h.IRD != 4 || h.MaxVersion != Version {
		t.Fatalf("%+v, %v", h, err)
	}
}
