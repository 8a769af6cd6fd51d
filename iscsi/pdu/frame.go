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
type Reader struct {
	r io.Reader // immutable

	// HeaderDigest and DataDigest enable CRC32C digests (RFC 7143 §13.1).
	HeaderDigest, DataDigest bool
	// MaxDataSegmentLength is the largest data segment accepted; longer
	// ones give *DataSegmentTooLongError before the segment is read. Zero
	// means DefaultMaxRecvDataSegmentLength.
	MaxDataSegmentLength uint32

	pending int     // data segment bytes announced by ReadHeader, not yet read
	op      Opcode  // opcode of the PDU whose data is pending
	tail    [7]byte // padding and data digest
}

// NewReader returns a Reader for r with no digests and the default limit.
// Wrap a net.Conn in a bufio.Reader to read small PDUs with fewer syscalls.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// ReadFrame reads one PDU into buf and points f at its parts. buf must hold
// the whole PDU (FrameBufferSize of the limit always suffices). It
// allocates nothing.
//
// Errors: io.EOF if the stream ends cleanly before a PDU,
// io.ErrUnexpectedEOF inside one; *DataSegmentTooLongError; *DigestError;
// ErrShortBuffer. After any error but a data *DigestError the stream is
// out of sync and the connection must be closed.
func (r *Reader) ReadFrame(f *Frame, buf []byte) error {
	if err := r.ReadHeader(f, buf); err != nil {
		return err
	}
	if r.pending == 0 {
		return nil
	}
	off := len(f.BHS) + len(f.AHS)
	if r.HeaderDigest {
		off += DigestLen
	}
	return r.ReadData(f, buf[off:])
}

// ReadHeader reads the BHS, the AHS and the header digest of the next PDU
// into buf (BHSLen+MaxAHSLen+DigestLen bytes always suffice) and points
// f.BHS and f.AHS at them. If the PDU has a data segment, ReadData must
// be called next: it lets the caller place the segment (a Data-Out's
// payload, say) straight into its own buffer.
func (r *Reader) ReadHeader(f *Frame, buf []byte) error {
	if r.pending != 0 {
		return fmt.Errorf("pdu: read header: %d bytes of the previous data segment not read", r.pending)
	}
	f.BHS, f.AHS, f.Data = nil, nil, nil
	if len(buf) < BHSLen {
		return fmt.Errorf("pdu: read frame: %w", ErrShortBuffer)
	}
	if _, err := io.ReadFull(r.r, buf[:BHSLen]); err != nil {
		return err
	}
	h := BHS(buf[:BHSLen])
	op := h.Opcode()
	ahsLen := h.TotalAHSLength() * 4
	dsl := h.DataSegmentLength()
	limit := r.MaxDataSegmentLength
	if limit == 0 {
		limit = DefaultMaxRecvDataSegmentLength
	}
	if dsl > limit {
		return &DataSegmentTooLongError{Op: op, Length: dsl, Max: limit}
	}
	off := BHSLen
	hd := 0
	if r.HeaderDigest {
		hd = DigestLen
	}
	if off+ahsLen+hd > len(buf) {
		return fmt.Errorf("pdu: read %v AHS: %w", op, ErrShortBuffer)
	}
	if ahsLen+hd > 0 {
		if _, err := io.ReadFull(r.r, buf[off:off+ahsLen+hd]); err != nil {
			return noEOF(err)
		}
	}
	if r.HeaderDigest {
		want := CRC32C(buf[:off+ahsLen])
		if got := readDigest(buf[off+ahsLen:]); got != want {
			return &DigestError{Op: op, Header: true, Got: got, Want: want}
		}
	}
	f.BHS = h
	f.AHS = buf[off : off+ahsLen : off+ahsLen]
	r.pending, r.op = int(dsl), op
	return nil
}

// ReadData reads the data segment announced by the last ReadHeader into
// dst, which must hold DataSegmentLength bytes, then the padding and the
// data digest, and sets f.Data. A data *DigestError leaves the stream in
// sync: the PDU can be rejected and the connection kept.
func (r *Reader) ReadData(f *Frame, dst []byte) error {
	n := r.pending
	if n == 0 {
		f.Data = nil
		return nil
	}
	if len(dst) < n {
		return fmt.Errorf("pdu: read %v data segment of %d bytes: %w", r.op, n, ErrShortBuffer)
	}
	r.pending = 0
	if _, err := io.ReadFull(r.r, dst[:n]); err != nil {
		return noEOF(err)
	}
	pad := PadLen(n)
	dd := 0
	if r.DataDigest {
		dd = DigestLen
	}
	tail := r.tail[:pad+dd]
	if len(tail) > 0 {
		if _, err := io.ReadFull(r.r, tail); err != nil {
			return noEOF(err)
		}
	}
	f.Data = dst[:n:n]
	if r.DataDigest {
		want := UpdateCRC32C(CRC32C(f.Data), tail[:pad])
		if got := readDigest(tail[pad:]); got != want {
			return &DigestError{Op: r.op, Got: got, Want: want}
		}
	}
	return nil
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
	if headerDigest {
		b = AppendDigest(b, CRC32C(b[start:]))
	}
	return b, nil
}

// AppendTrailer appends what follows a data segment on the wire: zero
// padding to 4 bytes and, if dataDigest is set, the data digest over the
// data and padding. Nothing is appended for an empty segment.
func AppendTrailer(b []byte, data []byte, dataDigest bool) []byte {
	if len(data) == 0 {
		return b
	}
	n := PadLen(len(data))
	b = append(b, make([]byte, n)...)
	if dataDigest {
		b = AppendDigest(b, UpdateCRC32C(CRC32C(data), b[len(b)-n:]))
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

// Writer writes PDUs to a byte stream with one vectored write per PDU
// (header, data segment, trailer; writev on a *net.TCPConn), without
// copying the data segment. The owner of the connection's send side may
// change the exported fields between PDUs; a Writer is not safe for
// concurrent use.
type Writer struct {
	w io.Writer // immutable

	// HeaderDigest and DataDigest enable CRC32C digests (RFC 7143 §13.1).
	HeaderDigest, DataDigest bool

	hdr  []byte      // reused header buffer
	tail [7]byte     // padding and data digest
	vec  [3][]byte   // backing array for bufs
	vecs [][]byte    // backing array for WritePDUv, grown as needed
	bufs net.Buffers // consumed by WriteTo; rebuilt from vec per PDU
}

// NewWriter returns a Writer for w with no digests.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, hdr: make([]byte, 0, BHSLen+MaxAHSLen+DigestLen)}
}

// WritePDU writes p with its data segment. It allocates nothing once the
// header buffer has grown to fit. p's data segment is only read during
// the call.
func (w *Writer) WritePDU(p PDU) error {
	hdr, err := AppendHeader(w.hdr[:0], p, w.HeaderDigest)
	if err != nil {
		return err
	}
	w.hdr = hdr
	d := p.DataSegment()
	w.vec[0] = hdr
	w.vec[1] = d
	w.vec[2] = AppendTrailer(w.tail[:0], d, w.DataDigest)
	w.bufs = w.vec[:]
	_, err = w.bufs.WriteTo(w.w)
	w.vec[1] = nil // do not keep the caller's data alive
	if err != nil {
		return fmt.Errorf("pdu: write %v: %w", p.Opcode(), err)
	}
	return nil
}

// WritePDUv writes p with a data segment made of segs, in order, instead of
// p's own data segment (which must be empty): a Data-In whose payload
// spans several buffers goes out in one writev without being copied.
// DataSegmentLength and the data digest cover all of segs.
func (w *Writer) WritePDUv(p PDU, segs [][]byte) error {
	if len(p.DataSegment()) != 0 {
		return fmt.Errorf("pdu: write %v: data segment given twice", p.Opcode())
	}
	n := 0
	for _, s := range segs {
		n += len(s)
	}
	if n > MaxDataSegmentLength {
		return fmt.Errorf("pdu: write %v: data segment of %d bytes exceeds the 24-bit DataSegmentLength", p.Opcode(), n)
	}
	hdr, err := p.AppendBinary(w.hdr[:0])
	if err != nil {
		return err
	}
	BHS(hdr).SetDataSegmentLength(uint32(n))
	if a, ok := p.(AHSCarrier); ok {
		hdr = a.AppendAHS(hdr)
	}
	if w.HeaderDigest {
		hdr = AppendDigest(hdr, CRC32C(hdr))
	}
	w.hdr = hdr
	tail := w.tail[:0]
	if n > 0 {
		pad := PadLen(n)
		tail = append(tail, make([]byte, pad)...)
		if w.DataDigest {
			var crc uint32
			for _, s := range segs {
				crc = UpdateCRC32C(crc, s)
			}
			tail = AppendDigest(tail, UpdateCRC32C(crc, tail[:pad]))
		}
	}
	w.vecs = append(w.vecs[:0], hdr)
	w.vecs = append(w.vecs, segs...)
	w.vecs = append(w.vecs, tail)
	w.bufs = w.vecs
	_, err = w.bufs.WriteTo(w.w)
	clear(w.vecs) // do not keep the caller's buffers alive
	if err != nil {
		return fmt.Errorf("pdu: write %v: %w", p.Opcode(), err)
	}
	return nil
}
