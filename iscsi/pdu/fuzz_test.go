package pdu

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode checks that decoding never panics and that decode, encode,
// decode is stable for any 48 bytes.
func FuzzDecode(f *testing.F) {
	for _, p := range samples() {
		b, _ := p.AppendBinary(nil)
		f.Add(b)
	}
	f.Add(rfc3720ReadPDU)
	f.Add(make([]byte, BHSLen))
	f.Fuzz(func(t *testing.T, bhs []byte) {
		p, err := Decode(bhs)
		var d Decoder
		p2, err2 := d.Decode(bhs)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("Decode and Decoder.Decode disagree: %v vs %v", err, err2)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("Decode and Decoder.Decode differ: %+v vs %+v", p, p2)
		}
		enc, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode of decoded %v: %v", p.Opcode(), err)
		}
		q, err := Decode(enc)
		if err != nil {
			t.Fatalf("decode of re-encoded %v: %v\n%x", p.Opcode(), err, enc)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("unstable:\n%+v\n%+v", p, q)
		}
		enc2, _ := q.AppendBinary(nil)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding unstable:\n%x\n%x", enc, enc2)
		}
	})
}

// FuzzReadPDU feeds arbitrary streams to the Reader and Decoder: no panic,
// and every PDU that decodes re-encodes to a frame that reads back equal.
func FuzzReadPDU(f *testing.F) {
	for _, dg := range []bool{false, true} {
		var stream []byte
		for _, p := range samples() {
			stream, _ = AppendFrame(stream, p, dg, dg)
		}
		f.Add(stream, dg, dg)
	}
	f.Add([]byte{}, false, false)
	f.Fuzz(func(t *testing.T, stream []byte, hd, dd bool) {
		r := NewReader(bytes.NewReader(stream))
		r.HeaderDigest, r.DataDigest = hd, dd
		r.MaxDataSegmentLength = 1 << 16
		buf := make([]byte, FrameBufferSize(r.MaxDataSegmentLength))
		var d Decoder
		var fr Frame
		for range 64 {
			if err := r.ReadFrame(&fr, buf); err != nil {
				return
			}
			p, err := d.DecodeFrame(&fr)
			if err != nil {
				continue
			}
			wire, err := AppendFrame(nil, p, hd, dd)
			if err != nil {
				t.Fatalf("re-encode %v: %v", p.Opcode(), err)
			}
			r2 := NewReader(bytes.NewReader(wire))
			r2.HeaderDigest, r2.DataDigest = hd, dd
			r2.MaxDataSegmentLength = 1 << 16
			var f2 Frame
			if err := r2.ReadFrame(&f2, make([]byte, FrameBufferSize(1<<16))); err != nil {
				t.Fatalf("re-read %v: %v", p.Opcode(), err)
			}
			q, err := DecodeFrame(&f2)
			if err != nil {
				t.Fatalf("re-decode %v: %v", p.Opcode(), err)
			}
			if !reflect.DeepEqual(p, q) {
				t.Fatalf("unstable:\n%+v\n%+v", p, q)
			}
		}
	})
}
