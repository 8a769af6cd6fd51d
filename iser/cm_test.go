package iser

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseCMPrivateData(t *testing.T) {
	padded := func(flags byte, junk byte) []byte {
		b := make([]byte, MaxCMRequestPrivateData)
		b[0] = flags
		for i := 1; i < len(b); i++ {
			b[i] = junk
		}
		return b
	}
	none := CMHeader{ZBVANotSupported: true, SendWithInvNotSupported: true}
	for _, tc := range []struct {
		name string
		b    []byte
		want CMHeader
		err  error
	}{
		{"absent (tgt accept)", nil, none, nil},
		{"empty", []byte{}, none, nil},
		{"ib_iser, device with invalidation", []byte{0x80, 0, 0, 0}, CMHeader{ZBVANotSupported: true}, nil},
		{"ib_iser without, libiscsi", []byte{0xc0, 0, 0, 0}, none, nil},
		{"padded by the IB CM", padded(0x80, 0), CMHeader{ZBVANotSupported: true}, nil},
		{"REP padded", append([]byte{0xc0, 0, 0, 0}, make([]byte, MaxCMReplyPrivateData-4)...), none, nil},
		{"junk in reserved bits and bytes", padded(0x80|0x3f, 0xff), CMHeader{ZBVANotSupported: true}, nil},
		{"no flags", []byte{0, 0, 0, 0}, CMHeader{}, nil},
		{"1 byte", []byte{0x80}, CMHeader{}, ErrBadCMPrivateData},
		{"3 bytes", []byte{0x80, 0, 0}, CMHeader{}, ErrBadCMPrivateData},
	} {
		got, err := ParseCMPrivateData(tc.b)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestCMHeaderStrict(t *testing.T) {
	for _, h := range []CMHeader{{}, {ZBVANotSupported: true}, {SendWithInvNotSupported: true}, {true, true}} {
		wire, _ := h.AppendBinary(nil)
		var got CMHeader
		if err := got.UnmarshalBinary(wire); err != nil || got != h {
			t.Fatalf("%+v: %x -> %+v, %v", h, wire, got, err)
		}
	}
	for _, b := range [][]byte{nil, {0x80}, {0x80, 0, 0, 0, 0}, {0x81, 0, 0, 0}, {0x80, 0, 1, 0}} {
		var h CMHeader
		if err := h.UnmarshalBinary(b); !errors.Is(err, ErrBadCMPrivateData) {
			t.Errorf("%x: %v", b, err)
		}
	}
}

func TestConnectPrivateData(t *testing.T) {
	for _, tc := range []struct {
		inv  bool
		want []byte
	}{{true, []byte{0x80, 0, 0, 0}}, {false, []byte{0xc0, 0, 0, 0}}} {
		h := ConnectPrivateData(tc.inv)
		wire, _ := h.AppendBinary(nil)
		if !bytes.Equal(wire, tc.want) {
			t.Errorf("device invalidation %v: %x, want %x", tc.inv, wire, tc.want)
		}
	}
}

// TestAcceptPrivateData is isert's rule: Send with Invalidate only when
// the initiator did not refuse it (0x40 clear) and the device has it;
// the reply says 0x80 always and 0x40 unless it is used.
func TestAcceptPrivateData(t *testing.T) {
	for _, tc := range []struct {
		req       []byte
		devInv    bool
		wantInv   bool
		wantReply byte
	}{
		{[]byte{0x80, 0, 0, 0}, true, true, 0x80},
		{[]byte{0x80, 0, 0, 0}, false, false, 0xc0},
		{[]byte{0xc0, 0, 0, 0}, true, false, 0xc0},
		{[]byte{0xc0, 0, 0, 0}, false, false, 0xc0},
		{nil, true, false, 0xc0}, // no private data: isert leaves snd_w_inv false
		{[]byte{0x00, 0, 0, 0}, true, true, 0x80},
	} {
		req, err := ParseCMPrivateData(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		reply, inv := AcceptPrivateData(req, tc.devInv)
		wire, _ := reply.AppendBinary(nil)
		if inv != tc.wantInv || !bytes.Equal(wire, []byte{tc.wantReply, 0, 0, 0}) {
			t.Errorf("req %x dev %v: inv %v reply %x; want %v %#x", tc.req, tc.devInv, inv, wire, tc.wantInv, tc.wantReply)
		}
		// The initiator's view of the same exchange agrees.
		if got := RemoteInvalidation(req, reply); got != inv {
			t.Errorf("req %x dev %v: initiator expects invalidation %v, target uses %v", tc.req, tc.devInv, got, inv)
		}
	}
}

func TestRemoteInvalidation(t *testing.T) {
	offer := ConnectPrivateData(true)
	tgtAccept, _ := ParseCMPrivateData(nil) // tgt sends no private data
	if RemoteInvalidation(offer, tgtAccept) {
		t.Error("tgt's empty accept turned invalidation on")
	}
	lio, _ := ParseCMPrivateData([]byte{0x80, 0, 0, 0})
	if !RemoteInvalidation(offer, lio) {
		t.Error("LIO's 0x80 accept did not turn invalidation on")
	}
	if RemoteInvalidation(ConnectPrivateData(false), lio) {
		t.Error("a target ignoring our 0x40 turned invalidation on")
	}
}
