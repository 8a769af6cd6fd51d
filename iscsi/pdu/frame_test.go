package pdu

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestCRC32CKnownAnswers checks the iSCSI CRC test vectors of RFC 3720
// §B.4, given there as the bytes sent on the wire.
func TestCRC32CKnownAnswers(t *testing.T) {
	inc, dec := make([]byte, 32), make([]byte, 32)
	for i := range inc {
		inc[i] = byte(i)
		dec[i] = byte(31 - i)
	}
	tests := []struct {
		name string
		in   []byte
		wire []byte
	}{
		{"32 bytes of zeroes", make([]byte, 32), []byte{0xaa, 0x36, 0x91, 0x8a}},
		{"32 bytes of ones", bytes.Repeat([]byte{0xff}, 32), []byte{0x43, 0xab, 0xa8, 0x62}},
		{"32 bytes incrementing", inc, []byte{0x4e, 0x79, 0xdd, 0x46}},
		{"32 bytes decrementing", dec, []byte{0x5c, 0xdb, 0x3f, 0x11}},
		{"iSCSI read PDU", rfc3720ReadPDU, []byte{0x56, 0x3a, 0x96, 0xd9}},
	}
	for _, tt := range tests {
		if got := AppendDigest(nil, CRC32C(tt.in)); !bytes.Equal(got, tt.wire) {
			t.Errorf("%s: digest on the wire %x, want %x", tt.name, got, tt.wire)
		}
		if got := UpdateCRC32C(CRC32C(tt.in[:7]), tt.in[7:]); got != CRC32C(tt.in) {
			t.Errorf("%s: incremental CRC differs", tt.name)
		}
	}
}

func TestReadFrameHeaderDigest(t *testing.T) {
	// The RFC 3720 read PDU with header digests on: BHS then 56 3a 96 d9.
	wire := append(append([]byte{}, rfc3720ReadPDU...), 0x56, 0x3a, 0x96, 0xd9)
	r := NewReader(bytes.NewReader(wire))
	r.HeaderDigest = true
	var f Frame
	buf := make([]byte, FrameBufferSize(0))
	if err := r.ReadFrame(&f, buf); err != nil {
		t.Fatal(err)
	}
	wire[50] ^= 1
	r = NewReader(bytes.NewReader(wire))
	r.HeaderDigest = true
	err := r.ReadFrame(&f, buf)
	var de *DigestError
	if !errors.As(err, &de) || !de.Header {
		t.Fatalf("got %v, want header *DigestError", err)
	}
	if _, ok := RejectReasonFor(err); ok {
		t.Error("a header digest error must drop the connection, not be rejected")
	}
}

func TestReadFrameDataDigest(t *testing.T) {
	p := &NOPOut{ITT: 1, TTT: ReservedTag, Data: []byte("abcde")} // 3 bytes of padding
	wire, _ := AppendFrame(nil, p, false, true)
	if len(wire) != BHSLen+8+4 {
		t.Fatalf("frame length %d", len(wire))
	}
	// Digest over data+padding, as SCST and Linux compute it.
	if want := AppendDigest(nil, CRC32C([]byte("abcde\x00\x00\x00"))); !bytes.Equal(wire[BHSLen+8:], want) {
		t.Errorf("data digest %x, want %x", wire[BHSLen+8:], want)
	}
	wire[BHSLen+1] ^= 0xff
	r := NewReader(bytes.NewReader(wire))
	r.DataDigest = true
	var f Frame
	err := r.ReadFrame(&f, make([]byte, FrameBufferSize(0)))
	if reason, ok := RejectReasonFor(err); !ok || reason != RejectDataDigestError {
		t.Errorf("got %v, want a data digest error", err)
	}
}

func TestReadFrameLimits(t *testing.T) {
	p := &DataOut{Data: make([]byte, 9000)}
	wire, _ := AppendFrame(nil, p, false, false)
	src := bytes.NewReader(wire)
	r := NewReader(src)
	var f Frame
	buf := make([]byte, FrameBufferSize(1<<20))
	err := r.ReadFrame(&f, buf)
	var tl *DataSegmentTooLongError
	if !errors.As(err, &tl) || tl.Length != 9000 || tl.Max != DefaultMaxRecvDataSegmentLength {
		t.Fatalf("got %v, want *DataSegmentTooLongError", err)
	}
	if src.Len() != len(wire)-BHSLen {
		t.Errorf("reader consumed %d bytes past the BHS", len(wire)-BHSLen-src.Len())
	}
	if reason, ok := RejectReasonFor(err); !ok || reason != RejectProtocolError {
		t.Errorf("reject reason %v", reason)
	}

	r = NewReader(bytes.NewReader(wire))
	r.MaxDataSegmentLength = 1 << 20
	if err := r.ReadFrame(&f, make([]byte, 100)); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("small buffer: got %v, want ErrShortBuffer", err)
	}
	if err := NewReader(bytes.NewReader(wire)).ReadFrame(&f, make([]byte, 10)); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("tiny buffer: got %v, want ErrShortBuffer", err)
	}
}

func TestReadFrameTruncated(t *testing.T) {
	wire, _ := AppendFrame(nil, &NOPOut{Data: []byte("12345678")}, true, true)
	for n := 1; n < len(wire); n++ {
		r := NewReader(bytes.NewReader(wire[:n]))
		r.HeaderDigest, r.DataDigest = true, true
		var f Frame
		err := r.ReadFrame(&f, make([]byte, FrameBufferSize(0)))
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("truncated at %d: got %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
	var f Frame
	if err := NewReader(bytes.NewReader(nil)).ReadFrame(&f, make([]byte, FrameBufferSize(0))); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriterError(t *testing.T) {
	w := NewWriter(failWriter{})
	if err := w.WritePDU(&NOPIn{}); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("got %v", err)
	}
	if err := w.WritePDU(&DataIn{Data: make([]byte, MaxDataSegmentLength+1)}); err == nil {
		t.Error("oversized PDU written")
	}
}

// TestReadHeaderThenData places data segments in caller buffers, and shows
// that a data digest error leaves the stream usable.
func TestReadHeaderThenData(t *testing.T) {
	first := &DataOut{Final: true, ITT: 1, TTT: 2, Data: []byte("payload-1")}
	second := &NOPOut{ITT: 3, TTT: ReservedTag}
	third := &DataOut{ITT: 4, TTT: 5, Data: []byte("payload-3!")}
	var wire []byte
	for _, p := range []PDU{first, second, third} {
		wire, _ = AppendFrame(wire, p, true, true)
	}
	wire[BHSLen+DigestLen] ^= 0x20 // corrupt the first payload: data digest error
	r := NewReader(bytes.NewReader(wire))
	r.HeaderDigest, r.DataDigest = true, true
	hdr := make([]byte, BHSLen+MaxAHSLen+DigestLen)
	var f Frame
	if err := r.ReadHeader(&f, hdr); err != nil {
		t.Fatal(err)
	}
	if f.BHS.DataSegmentLength() != 9 {
		t.Fatalf("DataSegmentLength %d", f.BHS.DataSegmentLength())
	}
	if err := r.ReadHeader(&f, hdr); err == nil {
		t.Fatal("ReadHeader with data pending succeeded")
	}
	if err := r.ReadData(&f, make([]byte, 4)); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short destination: %v", err)
	}
	task := make([]byte, 64)
	err := r.ReadData(&f, task[10:])
	if reason, ok := RejectReasonFor(err); !ok || reason != RejectDataDigestError {
		t.Fatalf("corrupted payload: %v", err)
	}
	// The stream is still in sync.
	if err := r.ReadHeader(&f, hdr); err != nil {
		t.Fatal(err)
	}
	if f.BHS.Opcode() != OpNOPOut {
		t.Fatalf("got %v", f.BHS.Opcode())
	}
	if err := r.ReadData(&f, nil); err != nil || f.Data != nil {
		t.Fatalf("empty data segment: %v %v", err, f.Data)
	}
	if err := r.ReadHeader(&f, hdr); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadData(&f, task[20:]); err != nil {
		t.Fatal(err)
	}
	if string(task[20:30]) != "payload-3!" || &f.Data[0] != &task[20] {
		t.Errorf("data %q not placed in the caller's buffer", f.Data)
	}
}

func TestWritePDUvMatchesContiguous(t *testing.T) {
	segs := [][]byte{[]byte("abc"), nil, []byte("defgh"), bytes.Repeat([]byte{7}, 1000)}
	whole := bytes.Join(segs, nil)
	for _, dg := range []bool{false, true} {
		want, _ := AppendFrame(nil, &DataIn{Final: true, ITT: 9, Data: whole}, dg, dg)
		var out bytes.Buffer
		w := NewWriter(&out)
		w.HeaderDigest, w.DataDigest = dg, dg
		if err := w.WritePDUv(&DataIn{Final: true, ITT: 9}, segs); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("digests=%v: vectored write differs from AppendFrame", dg)
		}
		out.Reset()
		if err := w.WritePDUv(&NOPIn{ITT: 1}, nil); err != nil {
			t.Fatal(err)
		}
		if want, _ := AppendFrame(nil, &NOPIn{ITT: 1}, dg, dg); !bytes.Equal(out.Bytes(), want) {
			t.Errorf("digests=%v: empty vectored write differs", dg)
		}
	}
	w := NewWriter(io.Discard)
	if err := w.WritePDUv(&DataIn{Data: []byte{1}}, segs); err == nil {
		t.Error("data given twice accepted")
	}
	if err := w.WritePDUv(&DataIn{}, [][]byte{make([]byte, MaxDataSegmentLength), {1}}); err == nil {
		t.Error("oversized vectored segment accepted")
	}
	if err := NewWriter(failWriter{}).WritePDUv(&DataIn{}, segs); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write error: %v", err)
	}
}
