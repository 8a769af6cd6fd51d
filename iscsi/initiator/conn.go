package initiator

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sync"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
)

// BHSLen is the length of the Basic Header Segment (RFC 7143 §11.2.1).
const BHSLen = pdu.BHSLen

// maxDataSegment is the largest data segment the 24-bit DataSegmentLength
// field can announce (RFC 7143 §11.2.1.5).
const maxDataSegment = 1<<24 - 1

// PDU is one iSCSI PDU as raw segments (RFC 7143 §11.1): the 48-byte Basic
// Header Segment, the additional header segments and the data segment,
// without padding or digests (Conn adds and checks those). Tests use it to
// build malformed PDUs byte by byte.
type PDU struct {
	// BHS is the Basic Header Segment. WritePDU sends it as is, except
	// that it stores len(AHS)/4 in byte 4 and len(Data) in bytes 5-7
	// unless Conn.WritePDURaw is used.
	BHS [BHSLen]byte
	// AHS holds the additional header segments; its length is a multiple
	// of 4.
	AHS []byte
	// Data is the data segment without padding.
	Data []byte
}

// Opcode returns the opcode of the PDU.
func (p *PDU) Opcode() pdu.Opcode { return pdu.BHS(p.BHS[:]).Opcode() }

// ITT returns the Initiator Task Tag (bytes 16-19).
func (p *PDU) ITT() uint32 { return binary.BigEndian.Uint32(p.BHS[16:20]) }

// U32 returns the big-endian 32-bit field at BHS offset off.
func (p *PDU) U32(off int) uint32 { return binary.BigEndian.Uint32(p.BHS[off : off+4]) }

// PutU32 stores v big-endian at BHS offset off.
func (p *PDU) PutU32(off int, v uint32) { binary.BigEndian.PutUint32(p.BHS[off:off+4], v) }

// Conn frames iSCSI PDUs on a byte stream (RFC 7143 §11.1 and §7.8): it
// writes and reads BHS, AHS, header digest, data segment, padding and data
// digest. It is the TCP Transport: a Session exchanges PDUs with it and
// never touches the stream itself; Data-In and R2T arrive as PDUs, so
// its task hooks do nothing.
//
// Writes are safe from several goroutines (they are serialized); reads
// must come from one goroutine at a time.
type Conn struct {
	// nc is the byte stream. Immutable.
	nc net.Conn
	// castagnoli is the CRC32C table (RFC 7143 §13.1). Immutable.
	castagnoli *crc32.Table

	// wmu guards w, wbuf and the digest flags for writing.
	wmu  sync.Mutex
	w    *bufio.Writer
	wbuf [BHSLen + 4]byte
	zero [4]byte // padding; never written

	// r and rbuf belong to the reading goroutine.
	r    *bufio.Reader
	rbuf [8]byte

	// Digest flags and the receive limit change only during login, before
	// any concurrent use; they are read without locks afterwards.
	headerDigest bool
	dataDigest   bool
	// maxRecv is the largest data segment ReadPDU accepts (our
	// MaxRecvDataSegmentLength); 0 means the 24-bit maximum.
	maxRecv uint32
	// writeTimeout bounds every write (a peer that stops reading must not
	// block us forever); 0 means none.
	writeTimeout time.Duration

	// Negotiated state, set by login; see Params.
	params Params
	// Sequence numbers after login (RFC 7143 §4.2.2): the CmdSN of the next
	// non-immediate command, the next StatSN we expect, and the target's
	// window. Only meaningful for a Conn returned by DialConn, until a
	// Session takes it over.
	cmdSN, expStatSN, maxCmdSN uint32
}

// NewConn wraps an established byte stream. Digests are off and the receive
// limit is the protocol maximum until login negotiates them.
func NewConn(nc net.Conn) *Conn {
	return &Conn{
		nc:         nc,
		castagnoli: crc32.MakeTable(crc32.Castagnoli),
		w:          bufio.NewWriterSize(nc, 64<<10),
		r:          bufio.NewReaderSize(nc, 64<<10),
	}
}

// NetConn returns the underlying byte stream, e.g. to write bytes that do
// not form a PDU at all.
func (c *Conn) NetConn() net.Conn { return c.nc }

// SetDigests turns CRC32C header and data digests on or off (RFC 7143
// §13.1). Call it only while no other goroutine uses the Conn.
func (c *Conn) SetDigests(header, data bool) { c.headerDigest, c.dataDigest = header, data }

// SetMaxRecvDataSegmentLength sets the largest data segment ReadPDU accepts
// (our declared MaxRecvDataSegmentLength, RFC 7143 §13.12); 0 means no limit
// beyond the 24-bit field. Call it only while no other goroutine uses the
// Conn.
func (c *Conn) SetMaxRecvDataSegmentLength(n uint32) { c.maxRecv = n }

// SetWriteTimeout bounds every later write: one that cannot finish within
// d fails (and leaves the stream unusable). 0 removes the bound. Call it
// only while no other goroutine uses the Conn.
func (c *Conn) SetWriteTimeout(d time.Duration) { c.writeTimeout = d }

// Params returns the parameters negotiated at login (zero before).
func (c *Conn) Params() Params { return c.params }

// SeqNumbers returns the CmdSN for the next non-immediate command, the
// StatSN expected next and the target's MaxCmdSN, as left by login (and
// updated by SetSeqNumbers). Tests crafting full feature PDUs on a Conn
// from DialConn use them.
func (c *Conn) SeqNumbers() (cmdSN, expStatSN, maxCmdSN uint32) {
	return c.cmdSN, c.expStatSN, c.maxCmdSN
}

// SetSeqNumbers replaces the sequence numbers SeqNumbers returns; tests
// that send and receive raw PDUs keep them up to date this way.
func (c *Conn) SetSeqNumbers(cmdSN, expStatSN uint32) { c.cmdSN, c.expStatSN = cmdSN, expStatSN }

// Close closes the byte stream; a blocked read returns an error.
func (c *Conn) Close() error { return c.nc.Close() }

// digest returns the CRC32C of b continuing from crc (start with 0).
func (c *Conn) digest(crc uint32, b []byte) uint32 { return crc32.Update(crc, c.castagnoli, b) }

// WritePDU sends p: it fills the TotalAHSLength and DataSegmentLength
// fields from len(p.AHS) and len(p.Data), pads, and appends the negotiated
// digests.
func (c *Conn) WritePDU(p *PDU) error {
	if len(p.AHS)%4 != 0 || len(p.AHS) > 255*4 {
		return fmt.Errorf("write PDU: AHS length %d is not a multiple of 4 up to 1020", len(p.AHS))
	}
	if len(p.Data) > maxDataSegment {
		return fmt.Errorf("write PDU: data segment of %d bytes exceeds 24 bits", len(p.Data))
	}
	p.BHS[4] = byte(len(p.AHS) / 4)
	pdu.BHS(p.BHS[:]).SetDataSegmentLength(uint32(len(p.Data)))
	return c.write(&p.BHS, p.AHS, p.Data, 0)
}

// Corrupt selects deliberate damage for WritePDURaw.
type Corrupt uint8

// Damage WritePDURaw can do.
const (
	// CorruptHeaderDigest sends a wrong header digest (when header
	// digests are on).
	CorruptHeaderDigest Corrupt = 1 << iota
	// CorruptDataDigest sends a wrong data digest (when data digests are
	// on and there is a data segment).
	CorruptDataDigest
)

// WritePDURaw sends p exactly as built: BHS bytes 4-7 are left alone, so
// they may disagree with the segments that follow. Digests are computed
// over what is sent, then damaged as corrupt says.
func (c *Conn) WritePDURaw(p *PDU, corrupt Corrupt) error {
	return c.write(&p.BHS, p.AHS, p.Data, corrupt)
}

// WriteBytes sends raw bytes with no framing at all.
func (c *Conn) WriteBytes(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	if _, err := c.w.Write(b); err != nil {
		return fmt.Errorf("write bytes: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("write bytes: %w", err)
	}
	return nil
}

// Send sends one PDU whose BHS already carries the segment lengths
// (Transport). It allocates nothing.
func (c *Conn) Send(bhs *[BHSLen]byte, ahs, data []byte) error {
	return c.write(bhs, ahs, data, 0)
}

// Caps reports what TCP does: nothing itself (Transport).
func (c *Conn) Caps() Caps { return Caps{} }

// Negotiated applies the login's outcome (Transport): digests, the receive
// limit, and Params for Conn.Params.
func (c *Conn) Negotiated(p Params) error {
	c.params = p
	c.SetDigests(p.HeaderDigest, p.DataDigest)
	c.SetMaxRecvDataSegmentLength(p.MaxRecvDataSegmentLength)
	return nil
}

// BeginTask does nothing: over TCP, SCSI data travels in Data-In and
// Data-Out PDUs (Transport).
func (c *Conn) BeginTask(*TaskIO) error { return nil }

// EndTask does nothing (Transport).
func (c *Conn) EndTask(uint32, int) {}

var _ Transport = (*Conn)(nil)

// write sends one PDU with the data segment data (which must match the
// length already stored in bhs). It allocates nothing.
func (c *Conn) write(bhs *[BHSLen]byte, ahs, data []byte, corrupt Corrupt) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	if err := c.writeLocked(bhs, ahs, data, corrupt); err != nil {
		return fmt.Errorf("write %v: %w", pdu.BHS(bhs[:]).Opcode(), err)
	}
	return nil
}

// c.wmu must be held.
func (c *Conn) writeLocked(bhs *[BHSLen]byte, ahs, data []byte, corrupt Corrupt) error {
	c.wbuf = [BHSLen + 4]byte{}
	copy(c.wbuf[:], bhs[:])
	if _, err := c.w.Write(c.wbuf[:BHSLen]); err != nil {
		return err
	}
	if len(ahs) > 0 {
		if _, err := c.w.Write(ahs); err != nil {
			return err
		}
	}
	if c.headerDigest {
		crc := c.digest(c.digest(0, bhs[:]), ahs)
		if corrupt&CorruptHeaderDigest != 0 {
			crc = ^crc
		}
		binary.LittleEndian.PutUint32(c.wbuf[BHSLen:], crc)
		if _, err := c.w.Write(c.wbuf[BHSLen:]); err != nil {
			return err
		}
	}
	if len(data) > 0 {
		if _, err := c.w.Write(data); err != nil {
			return err
		}
		pad := c.zero[:pdu.PadLen(len(data))]
		if _, err := c.w.Write(pad); err != nil {
			return err
		}
		if c.dataDigest {
			crc := c.digest(c.digest(0, data), pad)
			if corrupt&CorruptDataDigest != 0 {
				crc = ^crc
			}
			binary.LittleEndian.PutUint32(c.wbuf[BHSLen:], crc)
			if _, err := c.w.Write(c.wbuf[BHSLen:]); err != nil {
				return err
			}
		}
	}
	return c.w.Flush()
}

// ReadPDU reads the next PDU into p, reusing p.AHS and p.Data capacity. It
// checks digests and the receive limit. A *pdu.DigestError or
// *pdu.DataSegmentTooLongError leaves the stream out of step: close the
// Conn.
func (c *Conn) ReadPDU(p *PDU) error {
	if err := c.RecvHeader(&p.BHS, &p.AHS); err != nil {
		return err
	}
	n := int(pdu.BHS(p.BHS[:]).DataSegmentLength())
	if cap(p.Data) < n {
		p.Data = make([]byte, n)
	}
	p.Data = p.Data[:n]
	return c.RecvData(&p.BHS, p.Data)
}

// RecvHeader reads a BHS, its AHS (into *ahs, grown as needed) and the
// header digest, and checks the announced data segment length
// (Transport).
func (c *Conn) RecvHeader(bhs *[BHSLen]byte, ahs *[]byte) error {
	if _, err := io.ReadFull(c.r, bhs[:]); err != nil {
		return fmt.Errorf("read BHS: %w", err)
	}
	h := pdu.BHS(bhs[:])
	op := h.Opcode()
	na := h.TotalAHSLength() * 4
	if cap(*ahs) < na {
		*ahs = make([]byte, na)
	}
	*ahs = (*ahs)[:na]
	if na > 0 {
		if _, err := io.ReadFull(c.r, *ahs); err != nil {
			return fmt.Errorf("read %v AHS: %w", op, err)
		}
	}
	if c.headerDigest {
		if _, err := io.ReadFull(c.r, c.rbuf[:4]); err != nil {
			return fmt.Errorf("read %v header digest: %w", op, err)
		}
		got := binary.LittleEndian.Uint32(c.rbuf[:4])
		want := c.digest(c.digest(0, bhs[:]), *ahs)
		if got != want {
			return &pdu.DigestError{Op: op, Header: true, Got: got, Want: want}
		}
	}
	if n := h.DataSegmentLength(); c.maxRecv != 0 && n > c.maxRecv {
		return &pdu.DataSegmentTooLongError{Op: op, Length: n, Max: c.maxRecv}
	}
	return nil
}

// RecvData reads the data segment announced by bhs into dst (len(dst) must
// equal the announced length), then the padding and the data digest
// (Transport).
func (c *Conn) RecvData(bhs *[BHSLen]byte, dst []byte) error {
	if len(dst) == 0 {
		return nil
	}
	op := pdu.BHS(bhs[:]).Opcode()
	if _, err := io.ReadFull(c.r, dst); err != nil {
		return fmt.Errorf("read %v data: %w", op, err)
	}
	np := pdu.PadLen(len(dst))
	if np > 0 {
		if _, err := io.ReadFull(c.r, c.rbuf[:np]); err != nil {
			return fmt.Errorf("read %v padding: %w", op, err)
		}
	}
	if c.dataDigest {
		if _, err := io.ReadFull(c.r, c.rbuf[4:8]); err != nil {
			return fmt.Errorf("read %v data digest: %w", op, err)
		}
		got := binary.LittleEndian.Uint32(c.rbuf[4:8])
		want := c.digest(c.digest(0, dst), c.rbuf[:np])
		if got != want {
			return &pdu.DigestError{Op: op, Header: false, Got: got, Want: want}
		}
	}
	return nil
}

// SkipData skips a data segment of n bytes with its padding and digest
// (Transport).
func (c *Conn) SkipData(bhs *[BHSLen]byte, n int) error {
	if n == 0 {
		return nil
	}
	skip := n + pdu.PadLen(n)
	if c.dataDigest {
		skip += 4
	}
	if _, err := c.r.Discard(skip); err != nil {
		return fmt.Errorf("skip %v data: %w", pdu.BHS(bhs[:]).Opcode(), err)
	}
	return nil
}

// ReadPDUContext is ReadPDU bounded by ctx. When ctx ends before the
// first byte of a PDU arrives, it returns ctx's error and the Conn stays
// usable; when it ends in the middle of a PDU, the Conn is out of step and
// must be closed.
func (c *Conn) ReadPDUContext(ctx context.Context, p *PDU) error {
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetReadDeadline(time.Unix(1, 0)) })
	_, err := c.r.Peek(1)
	if err == nil {
		err = c.ReadPDU(p)
	} else {
		err = fmt.Errorf("read BHS: %w", err)
	}
	if !stop() {
		// ctx ended and set the deadline: clear it for later reads.
		_ = c.nc.SetReadDeadline(time.Time{})
		if err != nil {
			return fmt.Errorf("read PDU: %w", ctx.Err())
		}
	}
	return err
}

// ErrClosed is the error of calls on a session that was closed or logged
// out.
var ErrClosed = errors.New("initiator: session closed")
