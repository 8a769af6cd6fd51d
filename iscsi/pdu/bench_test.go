package pdu

import (
	"io"
	"testing"
)

func BenchmarkDecodeSCSICommand(b *testing.B) {
	var d Decoder
	b.ReportAllocs()
	for b.Loop() {
		p, err := d.Decode(rfc3720ReadPDU)
		if err != nil || p.(*SCSICommand).ITT != 0x14000000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDataIn(b *testing.B) {
	data := make([]byte, 4096)
	p := &DataIn{Final: true, HasStatus: true, ITT: 1, TTT: ReservedTag, Data: data}
	buf := make([]byte, 0, FrameBufferSize(8192))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		p.StatSN++
		var err error
		buf, err = AppendHeader(buf[:0], p, true)
		if err != nil {
			b.Fatal(err)
		}
		buf = AppendTrailer(buf, data, true)
	}
}

func BenchmarkWritePDU(b *testing.B) {
	data := make([]byte, 4096)
	p := &DataIn{Final: true, HasStatus: true, ITT: 1, TTT: ReservedTag, Data: data}
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := w.WritePDU(p); err != nil {
			b.Fatal(err)
		}
	}
}

// loopReader replays the same bytes forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

func BenchmarkReadPDU(b *testing.B) {
	cmd := &SCSICommand{Final: true, Write: true, ITT: 7, ExpectedDataTransferLength: 4096,
		CDB: [16]byte{0x2a}, Data: make([]byte, 4096)}
	wire, err := AppendFrame(nil, cmd, true, true)
	if err != nil {
		b.Fatal(err)
	}
	r := NewReader(&loopReader{b: wire})
	r.HeaderDigest, r.DataDigest = true, true
	buf := make([]byte, FrameBufferSize(8192))
	var d Decoder
	var f Frame
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if err := r.ReadFrame(&f, buf); err != nil {
			b.Fatal(err)
		}
		p, err := d.DecodeFrame(&f)
		if err != nil || len(p.DataSegment()) != 4096 {
			b.Fatal(err)
		}
	}
}

func BenchmarkWritePDUv(b *testing.B) {
	segs := [][]byte{make([]byte, 4096), make([]byte, 4096), make([]byte, 4096), make([]byte, 4096)}
	p := &DataIn{Final: true, HasStatus: true, ITT: 1, TTT: ReservedTag}
	w := NewWriter(io.Discard)
	w.HeaderDigest = true
	b.ReportAllocs()
	b.SetBytes(4 * 4096)
	for b.Loop() {
		if err := w.WritePDUv(p, segs); err != nil {
			b.Fatal(err)
		}
	}
}
