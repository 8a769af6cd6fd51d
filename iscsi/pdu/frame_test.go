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

// TestReadHeaderToAHS reads a SCSI Command with an Extended CDB AHS into
// a caller's BHS array and AHS buffer, and refuses an AHS on any other
// PDU before reading it.
func TestReadHeaderToAHS(t *testing.T) {
	cmd := &SCSICommand{Final: true, Read: true, ITT: 3, ExpectedDataTransferLength: 512}
	copy(cmd.CDB[:], bytes.Repeat([]byte{0x7f}, 16))
	cmd.ExtCDB = []byte("0123456789abcdef")
	wire, err := AppendFrame(nil, cmd, true, true)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(wire))
	r.HeaderDigest, r.DataDigest = true, true
	var bhs [BHSLen]byte
	var ahs [MaxAHSLen]byte
	n, err := r.ReadHeaderTo(&bhs, ahs[:])
	if err != nil {
		t.Fatal(err)
	}
	if n != cmd.AHSLen() || !bytes.Equal(bhs[:], wire[:BHSLen]) || !bytes.Equal(ahs[:n], wire[BHSLen:BHSLen+n]) {
		t.Fatalf("AHS of %d bytes, want %d; header not placed", n, cmd.AHSLen())
	}
	if n, err := r.ReadSegment(nil); n != 0 || err != nil {
		t.Fatalf("empty segment: %d %v", n, err)
	}
	if _, err := NewReader(bytes.NewReader(wire)).ReadHeaderTo(&bhs, ahs[:n-1]); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short AHS buffer: %v", err)
	}

	nop, _ := AppendFrame(nil, &NOPOut{ITT: 1, TTT: ReservedTag}, false, false)
	nop[4] = 1 // one word of AHS that a NOP-Out cannot carry
	nop = append(nop, 1, 2, 3, 4)
	src := bytes.NewReader(nop)
	_, err = NewReader(src).ReadHeaderTo(&bhs, ahs[:])
	if reason, ok := RejectReasonFor(err); !ok || reason != RejectProtocolError {
		t.Errorf("AHS on a NOP-Out: %v", err)
	}
	if src.Len() != 4 {
		t.Errorf("the AHS of a NOP-Out was read")
	}
}

// TestHeaderDigestBeforeLength shows that a header whose digest fails is
// reported as such even when its (untrustworthy) length is too large.
func TestHeaderDigestBeforeLength(t *testing.T) {
	wire, _ := AppendFrame(nil, &NOPOut{ITT: 1, TTT: ReservedTag}, true, false)
	BHS(wire).SetDataSegmentLength(1 << 20)
	r := NewReader(bytes.NewReader(wire))
	r.HeaderDigest = true
	var bhs [BHSLen]byte
	_, err := r.ReadHeaderTo(&bhs, nil)
	var de *DigestError
	if !errors.As(err, &de) || !de.Header {
		t.Fatalf("got %v, want a header *DigestError", err)
	}
}

// TestReadSegmentShortDestination places the first bytes of a data
// segment, discards the rest, and still checks the digest over all of it.
func TestReadSegmentShortDestination(t *testing.T) {
	payload := make([]byte, 5000) // longer than the Reader's sink, not a multiple of 4
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	next := &NOPOut{ITT: 2, TTT: ReservedTag, Data: []byte("xyz")}
	for _, dd := range []bool{false, true} {
		for _, room := range []int{0, 1, 100, 4999, 5000, 6000} {
			wire, _ := AppendFrame(nil, &DataOut{ITT: 1, TTT: 5, Data: payload}, dd, dd)
			wire, _ = AppendFrame(wire, next, dd, dd)
			r := NewReader(bytes.NewReader(wire))
			r.HeaderDigest, r.DataDigest = dd, dd
			var bhs [BHSLen]byte
			if _, err := r.ReadHeaderTo(&bhs, nil); err != nil {
				t.Fatal(err)
			}
			dst := make([]byte, room)
			n, err := r.ReadSegment(dst)
			if err != nil || n != min(room, len(payload)) || !bytes.Equal(dst[:n], payload[:n]) {
				t.Fatalf("digests=%v room %d: placed %d bytes, %v", dd, room, n, err)
			}
			var f Frame
			if err := r.ReadFrame(&f, make([]byte, FrameBufferSize(0))); err != nil || string(f.Data) != "xyz" {
				t.Fatalf("digests=%v room %d: next PDU: %q %v", dd, room, f.Data, err)
			}
		}
	}
	// A corrupted byte in the discarded part still fails the digest, and
	// the stream stays in sync.
	wire, _ := AppendFrame(nil, &DataOut{ITT: 1, TTT: 5, Data: payload}, false, true)
	wire[BHSLen+4000] ^= 1
	wire, _ = AppendFrame(wire, next, false, true)
	r := NewReader(bytes.NewReader(wire))
	r.DataDigest = true
	var bhs [BHSLen]byte
	if _, err := r.ReadHeaderTo(&bhs, nil); err != nil {
		t.Fatal(err)
	}
	n, err := r.ReadSegment(make([]byte, 10))
	if reason, ok := RejectReasonFor(err); !ok || reason != RejectDataDigestError || n != 10 {
		t.Fatalf("corrupted discarded byte: %d %v", n, err)
	}
	var f Frame
	if err := r.ReadFrame(&f, make([]byte, FrameBufferSize(0))); err != nil || string(f.Data) != "xyz" {
		t.Fatalf("after a data digest error: %q %v", f.Data, err)
	}
	// Truncated inside the discarded part.
	r = NewReader(bytes.NewReader(wire[:BHSLen+3000]))
	if _, err := r.ReadHeaderTo(&bhs, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadSegment(make([]byte, 10)); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated: %v", err)
	}
}

// TestBatchMatchesAppendFrame queues PDUs every way a Batch takes them,
// with and without digests, and compares the single vectored write with
// AppendFrame of the same PDUs.
func TestBatchMatchesAppendFrame(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 101) // 1010 bytes: 2 of padding
	r2t := &R2T{ITT: 1, TTT: 2, R2TSN: 3, BufferOffset: 4096, DesiredDataTransferLength: 8192}
	din := &DataIn{Final: true, HasStatus: true, ITT: 9, TTT: ReservedTag, Data: data}
	rsp := &SCSIResponse{Status: 2, ITT: 9, Data: []byte{0, 3, 0x70, 0, 5}}
	rspBHS, err := rsp.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	BHS(rspBHS).SetDataSegmentLength(0) // AddBHS sets it from the data
	var b Batch
	for round := 0; round < 3; round++ { // buffers are reused across rounds
		for _, dg := range []bool{false, true} {
			var want []byte
			for _, p := range []PDU{r2t, din, din, rsp, r2t} {
				want, _ = AppendFrame(want, p, dg, dg)
			}
			b.HeaderDigest, b.DataDigest = dg, dg
			if err := b.Add(r2t); err != nil {
				t.Fatal(err)
			}
			if err := b.Add(din); err != nil {
				t.Fatal(err)
			}
			if err := b.AddSegments(&DataIn{Final: true, HasStatus: true, ITT: 9, TTT: ReservedTag},
				[][]byte{data[:3], nil, data[3:1000], data[1000:]}); err != nil {
				t.Fatal(err)
			}
			if err := b.AddBHS((*[BHSLen]byte)(rspBHS), rsp.Data); err != nil {
				t.Fatal(err)
			}
			if err := b.Add(r2t); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			n, err := b.WriteTo(&out)
			if err != nil || n != int64(len(want)) || !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("round %d digests=%v: wrote %d bytes (%v), differs from AppendFrame (%d bytes)", round, dg, n, err, len(want))
			}
			if BHS(rspBHS).DataSegmentLength() != 0 {
				t.Fatal("AddBHS modified the caller's BHS")
			}
			out.Reset()
			if _, err := b.WriteTo(&out); err != nil || out.Len() != 0 {
				t.Fatalf("WriteTo did not empty the batch: %d bytes", out.Len())
			}
		}
	}
	bad := [BHSLen]byte{byte(OpSCSIResponse) | 0x20, 4: 1}
	if err := b.AddBHS(&bad, nil); err == nil {
		t.Error("BHS announcing an AHS accepted")
	}
	if err := b.AddBHS(&[BHSLen]byte{}, make([]byte, MaxDataSegmentLength+1)); err == nil {
		t.Error("oversized data segment accepted")
	}
	if err := b.Add(r2t); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if n, err := b.WriteTo(failWriter{}); n != 0 || err != nil {
		t.Errorf("Reset left PDUs queued: %d %v", n, err)
	}
}

func BenchmarkBatch(b *testing.B) {
	data := make([]byte, 8192)
	din := &DataIn{ITT: 1, TTT: ReservedTag}
	var bhs [BHSLen]byte
	var batch Batch
	batch.HeaderDigest = true
	b.ReportAllocs()
	b.SetBytes(16 * 8192)
	for b.Loop() {
		for i := 0; i < 16; i++ {
			din.Data = data
			din.DataSN = uint32(i)
			if _, err := din.AppendBinary(bhs[:0]); err != nil {
				b.Fatal(err)
			}
			if err := batch.AddBHS(&bhs, data); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := batch.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSegmentDiscard(b *testing.B) {
	wire, err := AppendFrame(nil, &DataOut{ITT: 7, TTT: 1, Data: make([]byte, 8192)}, true, true)
	if err != nil {
		b.Fatal(err)
	}
	r := NewReader(&loopReader{b: wire})
	r.HeaderDigest, r.DataDigest = true, true
	r.MaxDataSegmentLength = 8192
	var bhs [BHSLen]byte
	dst := make([]byte, 4096) // half lands here, half is discarded
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := r.ReadHeaderTo(&bhs, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadSegment(dst); err != nil {
			b.Fatal(err)
		}
	}
}
