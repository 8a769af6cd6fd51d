package iser

import (
	"bytes"
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
)

// FuzzHeader: decoding never panics; what decodes re-encodes to the same
// bytes and decodes equal.
func FuzzHeader(f *testing.F) {
	for _, tc := range linuxHeaders {
		f.Add(tc.wire)
	}
	f.Add([]byte{0x20, 0xaa, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(make([]byte, HeaderLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		if err := h.UnmarshalBinary(b); err != nil {
			return
		}
		enc, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", h, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoded\n%x, decoded from\n%x", enc, b)
		}
		var h2 Header
		if err := h2.UnmarshalBinary(enc); err != nil || h2 != h {
			t.Fatalf("unstable: %+v, %+v, %v", h, h2, err)
		}
	})
}

// FuzzParseSend: ParseSend never panics and its views stay inside the
// buffer; a frame that parses, rebuilt from its parts, parses equal.
func FuzzParseSend(f *testing.F) {
	f.Add(send(f, Header{WriteValid: true, WriteSTag: 7, WriteVA: 0x1000}, writeCmd([]byte("immediate")), 0))
	f.Add(send(f, Header{}, &pdu.NOPOut{Immediate: true, ITT: 1, TTT: pdu.ReservedTag, Data: []byte("ping!")}, 3))
	f.Add(send(f, Header{ReadValid: true, ReadSTag: 1, ReadVA: 2}, &pdu.SCSICommand{Read: true, Final: true,
		ExtCDB: make([]byte, 16), ExpectedDataTransferLength: 512}, 0))
	f.Add([]byte{0x20, 0xaa, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseSend(b)
		if err != nil {
			return
		}
		if len(fr.BHS) != pdu.BHSLen {
			t.Fatalf("BHS of %d bytes", len(fr.BHS))
		}
		n := HeadersLen + len(fr.AHS) + len(fr.Data)
		if n > len(b) || len(b)-n > 3 {
			t.Fatalf("parts of %d bytes from a SEND of %d", n, len(b))
		}
		re, err := fr.Header.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", fr.Header, err)
		}
		re = append(append(append(re, fr.BHS...), fr.AHS...), fr.Data...)
		if !bytes.Equal(re, b[:n]) {
			t.Fatalf("rebuilt SEND differs:\n%x\n%x", re, b[:n])
		}
		fr2, err := ParseSend(re)
		if err != nil {
			t.Fatalf("rebuilt SEND: %v", err)
		}
		if fr2.Header != fr.Header || !bytes.Equal(fr2.BHS, fr.BHS) ||
			!bytes.Equal(fr2.AHS, fr.AHS) || !bytes.Equal(fr2.Data, fr.Data) {
			t.Fatalf("unstable:\n%+v\n%+v", fr, fr2)
		}
	})
}

// FuzzCMPrivateData: the lenient decoder never panics, and what it
// decodes round-trips through AppendBinary and the strict decoder.
func FuzzCMPrivateData(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x80, 0, 0, 0})
	f.Add([]byte{0xc0, 0, 0, 0})
	f.Add([]byte{0x80})
	f.Add(append([]byte{0xff, 1, 2, 3}, make([]byte, MaxCMRequestPrivateData-4)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseCMPrivateData(b)
		if err != nil {
			return
		}
		enc, err := h.AppendBinary(nil)
		if err != nil || len(enc) != CMHeaderLen {
			t.Fatalf("encode %+v: %x, %v", h, enc, err)
		}
		var strict CMHeader
		if err := strict.UnmarshalBinary(enc); err != nil || strict != h {
			t.Fatalf("strict decode of %x: %+v, %v", enc, strict, err)
		}
		if again, err := ParseCMPrivateData(enc); err != nil || again != h {
			t.Fatalf("unstable: %+v, %+v, %v", h, again, err)
		}
		reply, inv := AcceptPrivateData(h, true)
		if inv == reply.SendWithInvNotSupported || !reply.ZBVANotSupported {
			t.Fatalf("AcceptPrivateData(%+v) = %+v, %v", h, reply, inv)
		}
	})
}

// FuzzHello: Hello and HelloReply decoding never panics and round-trips.
func FuzzHello(f *testing.F) {
	f.Add([]byte{0x20, 0xaa, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x31, 0xaa, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(make([]byte, HeaderLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Hello
		if h.UnmarshalBinary(b) == nil {
			enc, err := h.AppendBinary(nil)
			var h2 Hello
			if err != nil || h2.UnmarshalBinary(enc) != nil || h2 != h || !bytes.Equal(enc, b[:HelloLen]) {
				t.Fatalf("Hello %x: %+v -> %x, %+v, %v", b, h, enc, h2, err)
			}
		}
		var r HelloReply
		if r.UnmarshalBinary(b) == nil {
			enc, err := r.AppendBinary(nil)
			var r2 HelloReply
			if err != nil || r2.UnmarshalBinary(enc) != nil || r2 != r || !bytes.Equal(enc, b[:HelloLen]) {
				t.Fatalf("HelloReply %x: %+v -> %x, %+v, %v", b, r, enc, r2, err)
			}
		}
	})
}
