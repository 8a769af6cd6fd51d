package pdu

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
)

// DigestLen is the length of a CRC32C header or data digest (RFC 7143 §13.1).
const DigestLen = 4

// MaxAHSLen is the largest AHS TotalAHSLength can announce: 255 words.
const MaxAHSLen = 255 * 4

// DefaultMaxRecvDataSegmentLength is the RFC default for
// MaxRecvDataSegmentLength, which also bounds every login PDU
// (RFC 7143 §13.12).
const DefaultMaxRecvDataSegmentLength = 8192

// castagnoli returns the CRC32C table; crc32 caches it, and uses the
// SSE4.2/ARMv8 instructions for it when available.
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// CRC32C returns the iSCSI digest of b: CRC32C (Castagnoli), as RFC 7143
// §13.1 and Appendix A of RFC 3720 define it.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli()) }

// UpdateCRC32C continues a CRC32C digest over b; start with 0.
func UpdateCRC32C(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli(), b) }

// AppendDigest appends a digest in wire byte order. iSCSI sends the CRC32C
// least significant byte first (RFC 3720 §B.4 examples; Linux and SCST
// store it as a little-endian 32-bit word).
func AppendDigest(b []byte, crc uint32) []byte { return binary.LittleEndian.AppendUint32(b, crc) }

// readDigest reads a digest stored by AppendDigest.
func readDigest(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// Frame is one PDU as read from the wire: the BHS, the AHS and the data
// segment, all views into the buffer given to Reader.ReadFrame.
type Frame struct {
	BHS  BHS    // 48 bytes
	AHS  []byte // TotalAHSLength*4 bytes, usually empty
	Data []byte // DataSegmentLength bytes, without padding or digest
}

// FrameBufferSize returns the size of a buffer that can hold any PDU whose
// data segment is at most maxData bytes, including a maximal AHS, padding
// and digests.
func FrameBufferSize(maxData uint32) int {
	return BHSLen + MaxAHSLen + DigestLen + int(maxData) + 3 + DigestLen
}

// Reader reads PDUs from a byte stream (RFC 7143 §11.1): BHS, AHS, optional
// header digest, data segment padded to 4 bytes, optional data digest.
// The owner of the connection's receive side may change the exported
// fields between PDUs (for example once login negotiated digests); a Reader
// is not safe for concurrent use.
//
// A PDU is read either whole, with ReadFrame, or in two steps: ReadHeader
// or ReadHeaderTo, then ReadData or ReadSegment, which place the data
// segment where the caller wants it (a task's buffer, say).
type Reader struct {
	r io.Reader // immutable

	// HeaderDigest and DataDigest enable CRC32C digests (RFC 7143 §13.1).
	HeaderDigest, DataDigest bool
	// MaxDataSegmentLength is the largest data segment accepted; longer
	// ones give *DataSegmentTooLongError before the segment is read. Zero
	// means DefaultMaxRecvDataSegmentLength.
	MaxDataSegmentLength uint32

	pending int        // data segment bytes announced by the last header, not yet read
	op      Opcode     // opcode of the PDU whose data is pending
	tail    [7]byte    // header digest, or padding and data digest
	sink    [1024]byte // receives data segment bytes the caller has no room for
}

// NewReader returns a Reader for r with no digests and the default limit.
// Wrap a net.Conn in a bufio.Reader to read small PDUs with fewer syscalls.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// ReadFrame reads one PDU into buf and points f at its parts. buf must hold
// the whole PDU (FrameBufferSize of the limit always suffices). It
// allocates nothing.
//
// Errors: io.EOF if the stream ends cleanly before a PDU,
// io.ErrUnexpectedEOF inside one; *FormatError; *DataSegmentTooLongError;
// *DigestError; ErrShortBuffer. After any error but a data *DigestError
// the stream is out of sync and the connection must be closed.
func (r *Reader) ReadFrame(f *Frame, buf []byte) error {
	if err := r.ReadHeader(f, buf); err != nil {
		return err
	}
	return r.ReadData(f, buf[len(f.BHS)+len(f.AHS):])
}

// ReadHeader is ReadHeaderTo with the BHS and the AHS read into buf
// (BHSLen+MaxAHSLen bytes always suffice); it points f.BHS and f.AHS at
// them. If the PDU has a data segment, ReadData must be called next.
func (r *Reader) ReadHeader(f *Frame, buf []byte) error {
	f.BHS, f.AHS, f.Data = nil, nil, nil
	if len(buf) < BHSLen {
		return fmt.Errorf("pdu: read header: %w", ErrShortBuffer)
	}
	n, err := r.ReadHeaderTo((*[BHSLen]byte)(buf), buf[BHSLen:])
	if err != nil {
		return err
	}
	f.BHS = BHS(buf[:BHSLen])
	f.AHS = buf[BHSLen : BHSLen+n : BHSLen+n]
	return nil
}

// ReadHeaderTo reads the header of the next PDU: the BHS into bhs, the AHS
// into ahs and the header digest, and returns the length of the AHS in
// bytes (it is ahs[:n]). MaxAHSLen bytes of ahs always suffice; a nil ahs
// does for PDUs without AHS. It decodes nothing beyond the framing fields,
// and checks, in this order:
//   - only a SCSI Command carries an AHS (RFC 7143 §11.2.2): a
//     *FormatError, reason RejectProtocolError, before the AHS is read;
//   - the header digest: a *DigestError with Header set;
//   - DataSegmentLength against MaxDataSegmentLength:
//     *DataSegmentTooLongError, before the data segment is read.
//
// If the PDU has a data segment (DataSegmentLength in bhs), ReadSegment or
// ReadData must read it before the next header.
func (r *Reader) ReadHeaderTo(bhs *[BHSLen]byte, ahs []byte) (int, error) {
	if r.pending != 0 {
		return 0, fmt.Errorf("pdu: read header: %d bytes of the previous data segment not read", r.pending)
	}
	if _, err := io.ReadFull(r.r, bhs[:]); err != nil {
		return 0, err
	}
	h := BHS(bhs[:])
	op := h.Opcode()
	n := h.TotalAHSLength() * 4
	if n > 0 {
		if op != OpSCSICommand {
			return 0, protoError(op, "TotalAHSLength", fmt.Sprintf("%d words, but only a SCSI Command carries AHS", n/4))
		}
		if n > len(ahs) {
			return 0, fmt.Errorf("pdu: read %v AHS of %d bytes: %w", op, n, ErrShortBuffer)
		}
		if _, err := io.ReadFull(r.r, ahs[:n]); err != nil {
			return 0, noEOF(err)
		}
	}
	if r.HeaderDigest {
		d := r.tail[:DigestLen]
		if _, err := io.ReadFull(r.r, d); err != nil {
			return 0, noEOF(err)
		}
		want := UpdateCRC32C(CRC32C(bhs[:]), ahs[:n])
		if got := readDigest(d); got != want {
			return 0, &DigestError{Op: op, Header: true, Got: got, Want: want}
		}
	}
	limit := r.MaxDataSegmentLength
	if limit == 0 {
		limit = DefaultMaxRecvDataSegmentLength
	}
	if dsl := h.DataSegmentLength(); dsl > limit {
		return 0, &DataSegmentTooLongError{Op: op, Length: dsl, Max: limit}
	}
	r.pending, r.op = int(h.DataSegmentLength()), op
	return n, nil
}

// ReadData reads the data segment announced by the last header into dst,
// which must hold DataSegmentLength bytes, and sets f.Data (nil for an
// empty segment). Otherwise it is ReadSegment.
func (r *Reader) ReadData(f *Frame, dst []byte) error {
	f.Data = nil
	if len(dst) < r.pending {
		return fmt.Errorf("pdu: read %v data segment of %d bytes: %w", r.op, r.pending, ErrShortBuffer)
	}
	n, err := r.ReadSegment(dst[:r.pending])
	if n > 0 {
		f.Data = dst[:n:n]
	}
	return err
}

// ReadSegment reads the data segment announced by the last header: its
// first min(len(dst), DataSegmentLength) bytes land in dst and the rest is
// read and discarded; then the padding and the data digest, which covers
// the whole segment and its padding (discarded bytes included). It returns
// how many bytes it placed in dst; it reads nothing for an empty segment.
// A data *DigestError leaves the stream in sync: the PDU can be rejected
// and the connection kept. Any other error leaves it out of sync.
func (r *Reader) ReadSegment(dst []byte) (int, error) {
	n := r.pending
	if n == 0 {
		return 0, nil
	}
	r.pending = 0
	k := min(n, len(dst))
	if _, err := io.ReadFull(r.r, dst[:k]); err != nil {
		return 0, noEOF(err)
	}
	var crc uint32
	if r.DataDigest {
		crc = CRC32C(dst[:k])
	}
	for rest := n - k; rest > 0; {
		s := r.sink[:min(rest, len(r.sink))]
		if _, err := io.ReadFull(r.r, s); err != nil {
			return 0, noEOF(err)
		}
		if r.DataDigest {
			crc = UpdateCRC32C(crc, s)
		}
		rest -= len(s)
	}
	pad := PadLen(n)
	tail := r.tail[:pad]
	if r.DataDigest {
		tail = r.tail[:pad+DigestLen]
	}
	if len(tail) > 0 {
		if _, err := io.ReadFull(r.r, tail); err != nil {
			return 0, noEOF(err)
		}
	}
	if r.DataDigest {
		want := UpdateCRC32C(crc, tail[:pad])
		if got := readDigest(tail[pad:]); got != want {
			return k, &DigestError{Op: r.op, Got: got, Want: want}
		}
	}
	return k, nil
}

// noEOF turns io.EOF inside a PDU into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendHeader appends p's BHS, its AHS (if p is an AHSCarrier) and, if
// headerDigest is set, the header digest: everything that precedes the
// data segment on the wire.
func AppendHeader(b []byte, p PDU, headerDigest bool) ([]byte, error) {
	start := len(b)
	b, err := p.AppendBinary(b)
	if err != nil {
		return b, err
	}
	if a, ok := p.(AHSCarrier); ok {
		b = a.AppendAHS(b)
	}
	return appendHeaderDigest(b, start, headerDigest), nil
}

// appendHeaderDigest appends the digest of the header b[start:] if on.
func appendHeaderDigest(b []byte, start int, on bool) []byte {
	if on {
		b = AppendDigest(b, CRC32C(b[start:]))
	}
	return b
}

// AppendTrailer appends what follows a data segment on the wire: zero
// padding to 4 bytes and, if dataDigest is set, the data digest over the
// data and padding. Nothing is appended for an empty segment.
func AppendTrailer(b []byte, data []byte, dataDigest bool) []byte {
	var crc uint32
	if dataDigest {
		crc = CRC32C(data)
	}
	return appendTrailer(b, len(data), crc, dataDigest)
}

// appendTrailer appends the padding of an n-byte data segment and, if
// digest is set, the data digest: crc, the CRC32C of the segment,
// continued over the padding.
func appendTrailer(b []byte, n int, crc uint32, digest bool) []byte {
	if n == 0 {
		return b
	}
	pad := PadLen(n)
	b = append(b, make([]byte, pad)...)
	if digest {
		b = AppendDigest(b, UpdateCRC32C(crc, b[len(b)-pad:]))
	}
	return b
}

// AppendFrame appends the complete wire form of p: header, digests, data
// and padding (a copy of p's data segment).
func AppendFrame(b []byte, p PDU, headerDigest, dataDigest bool) ([]byte, error) {
	b, err := AppendHeader(b, p, headerDigest)
	if err != nil {
		return b, err
	}
	d := p.DataSegment()
	b = append(b, d...)
	return AppendTrailer(b, d, dataDigest), nil
}

// Batch queues PDUs for one vectored write (writev on a *net.TCPConn).
// Headers, header digests, padding and data digests are encoded into a
// buffer the Batch owns and reuses; data segments are referenced where
// they are, never copied: the caller keeps them unchanged until WriteTo or
// Reset returns. Once its buffers have grown to fit, a Batch allocates
// nothing. It is not safe for concurrent use.
type Batch struct {
	// HeaderDigest and DataDigest enable CRC32C digests (RFC 7143 §13.1)
	// for the PDUs added while they are set.
	HeaderDigest, DataDigest bool

	buf   []byte      // headers, digests and padding of the queued PDUs
	spans []span      // the queued pieces, in wire order
	vec   [][]byte    // the pieces as slices, rebuilt by WriteTo
	bufs  net.Buffers // consumed by WriteTo
}

// span is one queued piece: a caller's data segment, or buf[lo:hi] when
// data is nil (offsets, because buf may move while PDUs are added).
type span struct {
	data   []byte
	lo, hi int
}

// Add queues p with its data segment.
func (b *Batch) Add(p PDU) error {
	start := len(b.buf)
	buf, err := AppendHeader(b.buf, p, b.HeaderDigest)
	if err != nil {
		return err
	}
	b.buf = buf
	b.own(start)
	d := p.DataSegment()
	b.data(d)
	b.trailer(len(d), b.crc(0, d))
	return nil
}

// AddSegments queues p with a data segment made of segs, in order, instead
// of p's own data segment (which must be empty): a payload that spans
// several buffers goes out without being copied. DataSegmentLength and
// the data digest cover all of segs.
func (b *Batch) AddSegments(p PDU, segs [][]byte) error {
	if len(p.DataSegment()) != 0 {
		return fmt.Errorf("pdu: queue %v: data segment given twice", p.Opcode())
	}
	n := 0
	for _, s := range segs {
		n += len(s)
	}
	if n > MaxDataSegmentLength {
		return fmt.Errorf("pdu: queue %v: data segment of %d bytes exceeds the 24-bit DataSegmentLength", p.Opcode(), n)
	}
	start := len(b.buf)
	buf, err := p.AppendBinary(b.buf)
	if err != nil {
		return err
	}
	BHS(buf[start:]).SetDataSegmentLength(uint32(n))
	if a, ok := p.(AHSCarrier); ok {
		buf = a.AppendAHS(buf)
	}
	b.buf = appendHeaderDigest(buf, start, b.HeaderDigest)
	b.own(start)
	var crc uint32
	for _, s := range segs {
		b.data(s)
		crc = b.crc(crc, s)
	}
	b.trailer(n, crc)
	return nil
}

// AddBHS queues a PDU given as an encoded BHS without AHS, and its data
// segment. The queued copy of the BHS gets DataSegmentLength len(data);
// bhs itself is not modified.
func (b *Batch) AddBHS(bhs *[BHSLen]byte, data []byte) error {
	op := BHS(bhs[:]).Opcode()
	if bhs[4] != 0 {
		return fmt.Errorf("pdu: queue %v: TotalAHSLength %d without the AHS", op, bhs[4])
	}
	if len(data) > MaxDataSegmentLength {
		return fmt.Errorf("pdu: queue %v: data segment of %d bytes exceeds the 24-bit DataSegmentLength", op, len(data))
	}
	start := len(b.buf)
	b.buf = append(b.buf, bhs[:]...)
	BHS(b.buf[start:]).SetDataSegmentLength(uint32(len(data)))
	b.buf = appendHeaderDigest(b.buf, start, b.HeaderDigest)
	b.own(start)
	b.data(data)
	b.trailer(len(data), b.crc(0, data))
	return nil
}

// own queues buf[start:].
func (b *Batch) own(start int) {
	if len(b.buf) > start {
		b.spans = append(b.spans, span{lo: start, hi: len(b.buf)})
	}
}

// data queues a caller's data segment, or a piece of one.
func (b *Batch) data(d []byte) {
	if len(d) > 0 {
		b.spans = append(b.spans, span{data: d})
	}
}

// crc continues the data digest over d when data digests are on.
func (b *Batch) crc(crc uint32, d []byte) uint32 {
	if !b.DataDigest {
		return 0
	}
	return UpdateCRC32C(crc, d)
}

// trailer queues the padding and data digest of an n-byte data segment
// whose CRC32C is crc.
func (b *Batch) trailer(n int, crc uint32) {
	start := len(b.buf)
	b.buf = appendTrailer(b.buf, n, crc, b.DataDigest)
	b.own(start)
}

// WriteTo writes the queued PDUs to w with one vectored write (net.Buffers:
// writev when w is a *net.TCPConn) and empties the Batch, whether or not
// the write succeeds. It implements io.WriterTo.
func (b *Batch) WriteTo(w io.Writer) (int64, error) {
	for _, s := range b.spans {
		if s.data == nil {
			s.data = b.buf[s.lo:s.hi]
		}
		b.vec = append(b.vec, s.data)
	}
	b.bufs = b.vec
	n, err := b.bufs.WriteTo(w)
	b.Reset()
	return n, err
}

// Len returns the number of pieces (headers, data segments, trailers)
// queued: 0 when there is nothing to write.
func (b *Batch) Len() int { return len(b.spans) }

// Reset drops the queued PDUs (and the Batch's references to their data
// segments), keeping its buffers for reuse.
func (b *Batch) Reset() {
	clear(b.spans)
	clear(b.vec)
	b.buf, b.spans, b.vec, b.bufs = b.buf[:0], b.spans[:0], b.vec[:0], nil
}

// Writer writes PDUs to a byte stream with one vectored write per PDU
// (header, data segment, trailer; writev on a *net.TCPConn), without
// copying the data segment. The owner of the connection's send side may
// change the exported fields between PDUs; a Writer is not safe for
// concurrent use.
type Writer struct {
	w io.Writer // immutable

	// HeaderDigest and DataDigest enable CRC32C digests (RFC 7143 §13.1).
	HeaderDigest, DataDigest bool

	batch Batch // empty between calls
}

// NewWriter returns a Writer for w with no digests.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WritePDU writes p with its data segment. It allocates nothing once its
// buffers have grown to fit. p's data segment is only read during the
// call.
func (w *Writer) WritePDU(p PDU) error {
	w.batch.HeaderDigest, w.batch.DataDigest = w.HeaderDigest, w.DataDigest
	if err := w.batch.Add(p); err != nil {
		w.batch.Reset()
		return err
	}
	return w.flush(p)
}

// WritePDUv writes p with a data segment made of segs, in order, instead of
// p's own data segment (which must be empty): a Data-In whose payload
// spans several buffers goes out in one writev without being copied.
// DataSegmentLength and the data digest cover all of segs.
func (w *Writer) WritePDUv(p PDU, segs [][]byte) error {
	w.batch.HeaderDigest, w.batch.DataDigest = w.HeaderDigest, w.DataDigest
	if err := w.batch.AddSegments(p, segs); err != nil {
		w.batch.Reset()
		return err
	}
	return w.flush(p)
}

// flush writes the queued PDU p.
func (w *Writer) flush(p PDU) error {
	if _, err := w.batch.WriteTo(w.w); err != nil {
		return fmt.Errorf("pdu: write %v: %w", p.Opcode(), err)
	}
	return nil
}
