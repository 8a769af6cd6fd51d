package tcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
)

// loginMaxDSL bounds data segments before the full feature phase (the
// login default of MaxRecvDataSegmentLength is 8192, RFC 7143 §13.12; we
// accept a little more from initiators that declare larger values early).
const loginMaxDSL = 65536

// maxR2T is the most R2Ts outstanding per task this transport tracks; the
// negotiated MaxOutstandingR2T is clamped to it.
const maxR2T = 8

// Errors of the receive path. Returned by Recv they end the connection;
// ErrProtocol also comes as the Err of an InDataDone for a Data-Out that
// broke its sequence (only that task fails).
var (
	// ErrProtocol reports a PDU that breaks RFC 7143 (bad offsets,
	// DataSN, oversized data segment, unexpected AHS...).
	ErrProtocol = errors.New("iscsi/tcp: protocol error")
	// ErrDigest reports a header or data digest mismatch.
	ErrDigest = errors.New("iscsi/tcp: digest error")
)

// r2tState tracks one outstanding R2T of a task.
type r2tState struct {
	ttt    uint32
	next   int    // next expected buffer offset
	end    int    // end of the solicited range
	dataSN uint32 // next expected DataSN
	sn     uint32 // R2TSN of this R2T
}

// xfer is the transport's per-task state (Task.Priv): the data buffer and,
// for writes, where Data-Out goes. All fields except mem, class and buf are
// guarded by conn.xmu once the xfer is registered in conn.xfers.
type xfer struct {
	mem   []byte // the pooled buffer; immutable
	class int    // pool class of mem; immutable
	buf   []byte // mem[:task data length]

	itt      uint32
	lun      uint64
	write    bool
	imm      int    // immediate data bytes
	unsolEnd int    // end of unsolicited data (imm when InitialR2T=Yes)
	unsolOff int    // next expected unsolicited offset
	unsolSN  uint32 // next expected unsolicited DataSN
	want     int    // bytes GetData asked for; 0 before GetData
	next     int    // next offset to solicit
	r2tSN    uint32 // next R2TSN (ExpDataSN of a write's response)
	r2ts     [maxR2T]r2tState
	nR2T     int
	waiting  bool // GetData returned false: report InDataDone when complete
	failed   bool // a Data-Out broke the sequence; InDataDone with Err was sent
	reading  bool // the reader is placing data into buf without xmu
	released bool // Release came while reading: the reader frees it
}

func (x *xfer) clear() {
	mem, class := x.mem, x.class
	*x = xfer{mem: mem, class: class}
}

// complete reports whether every byte below want has arrived. The offsets
// advance before a PDU's payload is copied, so a PDU still being read
// (reading) keeps the transfer incomplete. conn.xmu must be held.
func (x *xfer) completeLocked() bool {
	return !x.failed && !x.reading && x.unsolOff >= min(x.unsolEnd, x.want) && x.next >= x.want && x.nR2T == 0
}

// Config configures the TCP transport. The zero value is usable.
type Config struct {
	// Logger receives per-connection errors; nil discards.
	Logger *slog.Logger
	// MaxTaskData is the largest data buffer given to one task (bytes);
	// a command with a larger Expected Data Transfer Length gets a
	// buffer this long. Default 16 MiB.
	MaxTaskData int
	// WriteTimeout bounds every send; a peer that does not read for this
	// long loses its connection. Default 30 s.
	WriteTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxTaskData <= 0 {
		c.MaxTaskData = 16 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	return c
}

// Conn is an iSCSI connection over TCP; it implements iscsi.TransportConn.
type Conn struct {
	nc   net.Conn // immutable
	cfg  Config   // immutable
	pool *xferPool

	// Reader state, owned by the goroutine calling Recv.
	br      *bufio.Reader
	scratch [4096]byte // sink for discarded data
	dig     [4]byte

	params atomic.Pointer[iscsi.Params]
	seq    atomic.Pointer[seqHolder]

	// wmu guards writes to nc and the scratch below.
	wmu  sync.Mutex
	iov  net.Buffers
	wv   net.Buffers // consumed by WriteTo
	whdr []byte      // scratch for headers, digests and padding
	hbuf [pdu.BHSLen]byte
	zero [4]byte // padding source; never written

	// xmu guards xfers, nextTTT and every registered xfer.
	xmu     sync.Mutex
	xfers   map[uint32]*xfer // write tasks by ITT
	nextTTT uint32

	closeOnce sync.Once
	closeErr  error
}

// seqHolder boxes a SeqNumbers for atomic.Pointer.
type seqHolder struct{ s iscsi.SeqNumbers }

// NewConn wraps an accepted connection (TCP, or net.Pipe in tests).
func NewConn(nc net.Conn, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	return newConn(nc, cfg, newXferPool(cfg.MaxTaskData))
}

func newConn(nc net.Conn, cfg Config, pool *xferPool) *Conn {
	return &Conn{
		nc:    nc,
		cfg:   cfg,
		pool:  pool,
		br:    bufio.NewReaderSize(nc, 64<<10),
		xfers: make(map[uint32]*xfer),
		whdr:  make([]byte, 0, 512),
		iov:   make(net.Buffers, 0, 16),
	}
}

// RemoteAddr returns the initiator's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the address the connection arrived on.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Close closes the socket; a blocked Recv returns. Idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.nc.Close()
	})
	return c.closeErr
}

// SetParams installs the negotiated parameters. The core calls it before it
// sends the final Login Response, so the first PDU the initiator sends in
// the full feature phase is already read with them. Login Responses are
// always sent without digests.
func (c *Conn) SetParams(p iscsi.Params, seq iscsi.SeqNumbers) error {
	if p.MaxOutstandingR2T == 0 || p.MaxOutstandingR2T > maxR2T {
		p.MaxOutstandingR2T = min(max(p.MaxOutstandingR2T, 1), maxR2T)
	}
	if p.InitiatorMaxRecvDSL == 0 {
		p.InitiatorMaxRecvDSL = 8192
	}
	if p.TargetMaxRecvDSL == 0 {
		p.TargetMaxRecvDSL = 8192
	}
	if p.MaxBurstLength == 0 {
		p.MaxBurstLength = 262144
	}
	if p.FirstBurstLength == 0 {
		p.FirstBurstLength = 65536
	}
	c.seq.Store(&seqHolder{seq})
	c.params.Store(&p)
	return nil
}

func (c *Conn) numbers() (statSN, expCmdSN, maxCmdSN uint32) {
	if h := c.seq.Load(); h != nil && h.s != nil {
		return h.s.Numbers()
	}
	return 0, 0, 0
}

// Recv reads PDUs until one is for the core or a data transfer finishes.
func (c *Conn) Recv(ctx context.Context, in *iscsi.Inbound) error {
	for {
		in.Reset()
		done, err := c.recvOne(in)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("iscsi/tcp: recv from %s: %w", c.nc.RemoteAddr(), ctx.Err())
			}
			return err
		}
		if done {
			return nil
		}
	}
}

// recvOne reads one PDU; done is false for a Data-Out that completed
// nothing.
func (c *Conn) recvOne(in *iscsi.Inbound) (done bool, err error) {
	p := c.params.Load()
	if _, err := io.ReadFull(c.br, in.BHS[:]); err != nil {
		return false, fmt.Errorf("iscsi/tcp: read header from %s: %w", c.nc.RemoteAddr(), err)
	}
	h := pdu.BHS(in.BHS[:])
	if p == nil {
		// The parameters may have been set while this header was in
		// flight; the first full-feature PDU follows the last Login
		// Response, which is sent after SetParams.
		p = c.params.Load()
	}
	ahsLen := h.TotalAHSLength() * 4
	if ahsLen > 0 && h.Opcode() != pdu.OpSCSICommand {
		// Only the SCSI Command carries AHS (RFC 7143 §11.2.2); for
		// anything else the length cannot be trusted.
		c.reject(pdu.RejectProtocolError, &in.BHS)
		return false, fmt.Errorf("%w: %v with %d bytes of AHS from %s", ErrProtocol, h.Opcode(), ahsLen, c.nc.RemoteAddr())
	}
	if ahsLen > 0 {
		if _, err := io.ReadFull(c.br, in.GrowAHS(ahsLen)); err != nil {
			return false, fmt.Errorf("iscsi/tcp: read AHS from %s: %w", c.nc.RemoteAddr(), err)
		}
	}
	if p != nil && p.HeaderDigest {
		if _, err := io.ReadFull(c.br, c.dig[:]); err != nil {
			return false, fmt.Errorf("iscsi/tcp: read header digest from %s: %w", c.nc.RemoteAddr(), err)
		}
		sum := pdu.UpdateCRC32C(0, in.BHS[:])
		sum = pdu.UpdateCRC32C(sum, in.AHS)
		if sum != binary.LittleEndian.Uint32(c.dig[:]) {
			// The header cannot be trusted, not even its length: at
			// ERL 0 the connection ends (RFC 7143 §7.8).
			return false, fmt.Errorf("%w: header digest from %s", ErrDigest, c.nc.RemoteAddr())
		}
	}
	dsl := int(h.DataSegmentLength())
	limit := loginMaxDSL
	if p != nil {
		limit = int(p.TargetMaxRecvDSL)
	}
	if dsl > limit {
		c.reject(pdu.RejectProtocolError, &in.BHS)
		return false, fmt.Errorf("%w: %v data segment of %d bytes from %s exceeds MaxRecvDataSegmentLength %d",
			ErrProtocol, h.Opcode(), dsl, c.nc.RemoteAddr(), limit)
	}
	switch {
	case p != nil && !p.Discovery && h.Opcode() == pdu.OpDataOut:
		return c.recvDataOut(in, p, dsl)
	case p != nil && !p.Discovery && h.Opcode() == pdu.OpSCSICommand:
		return true, c.recvCommand(in, p, dsl)
	}
	if dsl > 0 {
		ok, err := c.readData(in.Grow(dsl), dsl, p != nil && p.DataDigest)
		if err != nil {
			return false, err
		}
		if !ok {
			c.reject(pdu.RejectDataDigestError, &in.BHS)
			return false, fmt.Errorf("%w: data digest of %v from %s", ErrDigest, h.Opcode(), c.nc.RemoteAddr())
		}
	}
	in.Kind = iscsi.InPDU
	return true, nil
}

// readData reads a data segment of n bytes plus padding and digest,
// placing the first len(dst) bytes in dst and discarding the rest. ok is
// false on a data digest mismatch.
func (c *Conn) readData(dst []byte, n int, digest bool) (ok bool, err error) {
	var sum uint32
	if _, err := io.ReadFull(c.br, dst); err != nil {
		return false, fmt.Errorf("iscsi/tcp: read data from %s: %w", c.nc.RemoteAddr(), err)
	}
	if digest {
		sum = pdu.UpdateCRC32C(0, dst)
	}
	rest := n - len(dst) + pdu.PadLen(n)
	for rest > 0 {
		k := min(rest, len(c.scratch))
		if _, err := io.ReadFull(c.br, c.scratch[:k]); err != nil {
			return false, fmt.Errorf("iscsi/tcp: read data from %s: %w", c.nc.RemoteAddr(), err)
		}
		if digest {
			sum = pdu.UpdateCRC32C(sum, c.scratch[:k])
		}
		rest -= k
	}
	if !digest {
		return true, nil
	}
	if _, err := io.ReadFull(c.br, c.dig[:]); err != nil {
		return false, fmt.Errorf("iscsi/tcp: read data digest from %s: %w", c.nc.RemoteAddr(), err)
	}
	return sum == binary.LittleEndian.Uint32(c.dig[:]), nil
}

// recvCommand reads a SCSI Command (RFC 7143 §11.3): it gives the task its
// data buffer, places the immediate data and registers a write for the
// Data-Out that follows.
func (c *Conn) recvCommand(in *iscsi.Inbound, p *iscsi.Params, dsl int) error {
	b := &in.BHS
	flags := b[1]
	write := flags&0x20 != 0
	edtl := int(binary.BigEndian.Uint32(b[20:24]))
	itt := binary.BigEndian.Uint32(b[16:20])
	in.Kind = iscsi.InPDU
	if edtl == 0 && dsl == 0 {
		return nil
	}
	n := min(edtl, c.pool.max)
	var x *xfer
	if n > 0 {
		x = c.pool.get(n)
		x.itt, x.lun, x.write = itt, binary.BigEndian.Uint64(b[8:16]), write
	}
	place := 0
	if x != nil && write {
		place = min(dsl, n)
	}
	if dsl > 0 {
		var dst []byte
		if x != nil {
			dst = x.buf[:place]
		}
		ok, err := c.readData(dst, dsl, p.DataDigest)
		if err != nil {
			if x != nil {
				c.pool.put(x)
			}
			return err
		}
		if !ok {
			if x != nil {
				c.pool.put(x)
			}
			c.reject(pdu.RejectDataDigestError, b)
			return fmt.Errorf("%w: immediate data of ITT %#x from %s", ErrDigest, itt, c.nc.RemoteAddr())
		}
	}
	if x == nil {
		return nil
	}
	in.TaskBuf, in.Imm, in.Priv = x.buf, place, x
	if write {
		x.imm = place
		x.unsolOff = place
		x.unsolEnd = place
		if !p.InitialR2T {
			x.unsolEnd = max(place, min(int(p.FirstBurstLength), edtl))
		}
		x.next = x.unsolEnd
		c.xmu.Lock()
		if _, dup := c.xfers[itt]; !dup {
			c.xfers[itt] = x
		}
		c.xmu.Unlock()
	}
	return nil
}

// recvDataOut places one Data-Out PDU (RFC 7143 §11.7) into its task's
// buffer after checking TTT, DataSN and offset (DataPDUInOrder=Yes).
func (c *Conn) recvDataOut(in *iscsi.Inbound, p *iscsi.Params, dsl int) (bool, error) {
	b := &in.BHS
	itt := binary.BigEndian.Uint32(b[16:20])
	ttt := binary.BigEndian.Uint32(b[20:24])
	dataSN := binary.BigEndian.Uint32(b[36:40])
	off := int(binary.BigEndian.Uint32(b[40:44]))

	c.xmu.Lock()
	x := c.xfers[itt]
	if x == nil || x.failed {
		// The task is gone (aborted, or failed before its data came),
		// or its data sequence broke: discard what is still in flight.
		c.xmu.Unlock()
		ok, err := c.readData(nil, dsl, p.DataDigest)
		if err != nil {
			return false, err
		}
		if !ok {
			c.reject(pdu.RejectDataDigestError, b)
			return false, fmt.Errorf("%w: Data-Out for ITT %#x from %s", ErrDigest, itt, c.nc.RemoteAddr())
		}
		return false, nil
	}
	var r *r2tState
	var bad string
	if ttt == 0xffffffff {
		switch {
		case off != x.unsolOff:
			bad = fmt.Sprintf("unsolicited offset %d, want %d", off, x.unsolOff)
		case off+dsl > x.unsolEnd:
			bad = fmt.Sprintf("unsolicited data past FirstBurstLength (%d+%d > %d)", off, dsl, x.unsolEnd)
		case dataSN != x.unsolSN:
			bad = fmt.Sprintf("unsolicited DataSN %d, want %d", dataSN, x.unsolSN)
		}
		if bad == "" {
			x.unsolOff += dsl
			x.unsolSN++
		}
	} else {
		for i := 0; i < x.nR2T; i++ {
			if x.r2ts[i].ttt == ttt {
				r = &x.r2ts[i]
				break
			}
		}
		switch {
		case r == nil:
			bad = fmt.Sprintf("unknown TTT %#x", ttt)
		case off != r.next:
			bad = fmt.Sprintf("offset %d, want %d", off, r.next)
		case off+dsl > r.end:
			bad = fmt.Sprintf("data past the R2T (%d+%d > %d)", off, dsl, r.end)
		case dataSN != r.dataSN:
			bad = fmt.Sprintf("DataSN %d, want %d", dataSN, r.dataSN)
		}
		if bad == "" {
			r.next += dsl
			r.dataSN++
		}
	}
	if bad != "" {
		// A broken Data-Out sequence fails the task, not the
		// connection: the core answers it with CHECK CONDITION and the
		// rest of its data is discarded. (Dropping the connection
		// makes initiators reconnect and silently retry.)
		x.failed = true
		c.xmu.Unlock()
		ok, err := c.readData(nil, dsl, p.DataDigest)
		if err != nil {
			return false, err
		}
		if !ok {
			c.reject(pdu.RejectDataDigestError, b)
			return false, fmt.Errorf("%w: Data-Out for ITT %#x from %s", ErrDigest, itt, c.nc.RemoteAddr())
		}
		in.Kind = iscsi.InDataDone
		in.ITT = itt
		in.Priv = x
		in.Err = fmt.Errorf("%w: Data-Out ITT %#x: %s", ErrProtocol, itt, bad)
		return true, nil
	}
	x.reading = true
	c.xmu.Unlock()

	var dst []byte
	if off < len(x.buf) {
		dst = x.buf[off:min(off+dsl, len(x.buf))]
	}
	ok, err := c.readData(dst, dsl, p.DataDigest)

	c.xmu.Lock()
	x.reading = false
	if x.released {
		c.pool.put(x)
		c.xmu.Unlock()
		return false, err
	}
	if err != nil || !ok {
		c.xmu.Unlock()
		if err != nil {
			return false, err
		}
		c.reject(pdu.RejectDataDigestError, b)
		return false, fmt.Errorf("%w: Data-Out ITT %#x from %s", ErrDigest, itt, c.nc.RemoteAddr())
	}
	if r != nil && r.next == r.end {
		// Sequence complete: drop the R2T, keeping the array packed.
		i := 0
		for x.r2ts[i].ttt != ttt {
			i++
		}
		copy(x.r2ts[i:x.nR2T], x.r2ts[i+1:x.nR2T])
		x.nR2T--
	}
	var nNew int
	if x.waiting {
		nNew = c.solicitLocked(x, p)
	}
	done := x.waiting && x.completeLocked()
	if done {
		x.waiting = false
	}
	newR2T := x.r2ts
	first := x.nR2T - nNew
	c.xmu.Unlock()
	if nNew > 0 {
		if err := c.sendR2Ts(x, newR2T[first:first+nNew]); err != nil {
			return false, err
		}
	}
	if done {
		in.Kind = iscsi.InDataDone
		in.ITT = itt
		in.Priv = x
		return true, nil
	}
	return false, nil
}

// solicitLocked adds R2Ts for x until MaxOutstandingR2T are outstanding or
// everything up to want is solicited; it returns how many it added (the
// last ones of x.r2ts). c.xmu must be held.
func (c *Conn) solicitLocked(x *xfer, p *iscsi.Params) int {
	n := 0
	for x.nR2T < int(p.MaxOutstandingR2T) && x.next < x.want {
		l := min(x.want-x.next, int(p.MaxBurstLength))
		c.nextTTT++
		if c.nextTTT == 0xffffffff {
			c.nextTTT = 0
		}
		x.r2ts[x.nR2T] = r2tState{ttt: c.nextTTT, next: x.next, end: x.next + l, sn: x.r2tSN}
		x.r2tSN++
		x.nR2T++
		x.next += l
		n++
	}
	return n
}

// sendR2Ts sends R2T PDUs (RFC 7143 §11.8) for rs; R2TSN comes from x.
func (c *Conn) sendR2Ts(x *xfer, rs []r2tState) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	statSN, expCmdSN, maxCmdSN := c.numbers()
	for _, r := range rs {
		r2t := pdu.R2T{LUN: pdu.LUN(x.lun), ITT: x.itt, TTT: r.ttt, StatSN: statSN, ExpCmdSN: expCmdSN, MaxCmdSN: maxCmdSN,
			R2TSN: r.sn, BufferOffset: uint32(r.next), DesiredDataTransferLength: uint32(r.end - r.next)}
		h, err := c.encodeLocked(r2t.AppendBinary(c.hbuf[:0]))
		if err != nil {
			return err
		}
		if err := c.writePDULocked(h, nil); err != nil {
			return err
		}
	}
	return nil
}

// GetData starts soliciting the data of a write task (see
// iscsi.TransportConn). done is true when everything is already there.
func (c *Conn) GetData(t *iscsi.Task, want int) (done bool, err error) {
	x, _ := t.Priv.(*xfer)
	p := c.params.Load()
	if x == nil || p == nil {
		return false, fmt.Errorf("iscsi/tcp: GetData for ITT %#x without a data buffer", t.ITT)
	}
	want = min(want, len(x.buf))
	c.xmu.Lock()
	x.want = want
	if x.completeLocked() {
		c.xmu.Unlock()
		return true, nil
	}
	nNew := c.solicitLocked(x, p)
	x.waiting = true
	rs := x.r2ts
	first := x.nR2T - nNew
	c.xmu.Unlock()
	if nNew > 0 {
		return false, c.sendR2Ts(x, rs[first:first+nNew])
	}
	return false, nil
}

// Release returns the task's buffer; Data-Out still arriving for it is
// discarded.
func (c *Conn) Release(t *iscsi.Task) {
	x, _ := t.Priv.(*xfer)
	if x == nil {
		return
	}
	t.Priv, t.Buf = nil, nil
	c.xmu.Lock()
	if c.xfers[x.itt] == x {
		delete(c.xfers, x.itt)
	}
	if x.reading {
		x.released = true
		c.xmu.Unlock()
		return
	}
	c.xmu.Unlock()
	c.pool.put(x)
}

// Send writes one control PDU.
func (c *Conn) Send(bhs *[pdu.BHSLen]byte, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writePDULocked(bhs, data)
}

// writePDULocked writes one PDU with digests as negotiated (never on a
// Login Response). c.wmu must be held.
func (c *Conn) writePDULocked(bhs *[pdu.BHSLen]byte, data []byte) error {
	c.iov = c.iov[:0]
	c.whdr = c.whdr[:0]
	c.appendPDULocked(bhs, data)
	return c.flushLocked()
}

// appendPDULocked queues one PDU in c.iov; c.whdr must have room (it is
// grown before the first append of a batch, so earlier iov entries stay
// valid).
func (c *Conn) appendPDULocked(bhs *[pdu.BHSLen]byte, data []byte) {
	p := c.params.Load()
	digests := p != nil && pdu.Opcode(bhs[0]&0x3f) != pdu.OpLoginResp
	hd := digests && p.HeaderDigest
	dd := digests && p.DataDigest
	pdu.BHS(bhs[:]).SetDataSegmentLength(uint32(len(data)))
	start := len(c.whdr)
	c.whdr = append(c.whdr, bhs[:]...)
	if hd {
		c.whdr = binary.LittleEndian.AppendUint32(c.whdr, pdu.UpdateCRC32C(0, bhs[:]))
	}
	c.iov = append(c.iov, c.whdr[start:len(c.whdr):len(c.whdr)])
	if len(data) == 0 {
		return
	}
	c.iov = append(c.iov, data)
	start = len(c.whdr)
	pad := pdu.PadLen(len(data))
	c.whdr = append(c.whdr, c.zero[:pad]...)
	if dd {
		sum := pdu.UpdateCRC32C(0, data)
		sum = pdu.UpdateCRC32C(sum, c.zero[:pad])
		c.whdr = binary.LittleEndian.AppendUint32(c.whdr, sum)
	}
	if len(c.whdr) > start {
		c.iov = append(c.iov, c.whdr[start:len(c.whdr):len(c.whdr)])
	}
}

// encodeLocked checks the result of encoding a BHS into c.hbuf.
// c.wmu must be held.
func (c *Conn) encodeLocked(b []byte, err error) (*[pdu.BHSLen]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("iscsi/tcp: encode header for %s: %w", c.nc.RemoteAddr(), err)
	}
	if len(b) != pdu.BHSLen || &b[0] != &c.hbuf[0] {
		return nil, fmt.Errorf("iscsi/tcp: encoded header of %d bytes", len(b))
	}
	return &c.hbuf, nil
}

// perPDUScratch is the most whdr bytes one PDU needs.
const perPDUScratch = pdu.BHSLen + 4 + 3 + 4

// flushLocked writes c.iov with one writev. c.wmu must be held.
func (c *Conn) flushLocked() error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("iscsi/tcp: set write deadline for %s: %w", c.nc.RemoteAddr(), err)
	}
	c.wv = c.iov
	_, err := c.wv.WriteTo(c.nc)
	c.wv = nil
	clear(c.iov[:cap(c.iov)])
	c.iov = c.iov[:0]
	if err != nil {
		return fmt.Errorf("iscsi/tcp: write to %s: %w", c.nc.RemoteAddr(), err)
	}
	return nil
}

// reject sends a Reject PDU (RFC 7143 §11.17) carrying the offending
// header, best effort: the connection is about to end.
func (c *Conn) reject(reason pdu.RejectReason, bad *[pdu.BHSLen]byte) {
	var h [pdu.BHSLen]byte
	h[0] = byte(pdu.OpReject)
	h[1] = 0x80
	h[2] = byte(reason)
	binary.BigEndian.PutUint32(h[16:20], 0xffffffff)
	statSN, expCmdSN, maxCmdSN := c.numbers()
	binary.BigEndian.PutUint32(h[24:28], statSN)
	binary.BigEndian.PutUint32(h[28:32], expCmdSN)
	binary.BigEndian.PutUint32(h[32:36], maxCmdSN)
	cp := *bad
	if err := c.Send(&h, cp[:]); err != nil {
		c.cfg.Logger.Debug("iscsi/tcp: send reject", "peer", c.nc.RemoteAddr(), "err", err)
	}
}

// PutData sends rsp.DataLen bytes of t.Buf as Data-In PDUs (RFC 7143
// §11.7) and the status: in the last Data-In when the command ended without
// an exception, otherwise in a SCSI Response (§11.4) carrying the sense
// data. Everything goes out in one writev without copying t.Buf.
func (c *Conn) PutData(t *iscsi.Task, rsp *iscsi.Response) error {
	p := c.params.Load()
	if p == nil {
		return fmt.Errorf("iscsi/tcp: PutData for ITT %#x before the full feature phase", t.ITT)
	}
	n := min(rsp.DataLen, len(t.Buf))
	seg := int(min(p.InitiatorMaxRecvDSL, p.MaxBurstLength))
	burst := int(p.MaxBurstLength)
	npdu := (n + seg - 1) / seg
	collapse := n > 0 && len(rsp.Sense) == 0 && (rsp.Status == 0x00 || rsp.Status == 0x04)

	c.wmu.Lock()
	defer c.wmu.Unlock()
	need := (npdu+1)*perPDUScratch + 2 + len(rsp.Sense)
	if cap(c.whdr) < need {
		c.whdr = make([]byte, 0, need)
	}
	c.whdr = c.whdr[:0]
	c.iov = c.iov[:0]
	var dataSN uint32
	for off := 0; off < n; {
		l := min(seg, n-off, burst-off%burst)
		last := off+l == n
		din := pdu.DataIn{Final: last || (off+l)%burst == 0, ITT: t.ITT, TTT: pdu.ReservedTag, ExpCmdSN: rsp.ExpCmdSN,
			MaxCmdSN: rsp.MaxCmdSN, DataSN: dataSN, BufferOffset: uint32(off), Data: t.Buf[off : off+l]}
		if last && collapse {
			din.HasStatus = true
			din.Status = rsp.Status
			din.ResidualOverflow, din.ResidualUnderflow = rsp.Overflow, rsp.Underflow
			din.StatSN = rsp.StatSN
			if rsp.Overflow || rsp.Underflow {
				din.ResidualCount = rsp.Residual
			}
		}
		h, err := c.encodeLocked(din.AppendBinary(c.hbuf[:0]))
		if err != nil {
			return err
		}
		c.appendPDULocked(h, t.Buf[off:off+l])
		dataSN++
		off += l
	}
	if !collapse {
		expDataSN := dataSN
		if x, _ := t.Priv.(*xfer); x != nil && x.write {
			expDataSN = x.r2tSN
		}
		sr := pdu.SCSIResponse{ResidualOverflow: rsp.Overflow, ResidualUnderflow: rsp.Underflow, Response: pdu.ResponseCompleted,
			Status: rsp.Status, ITT: t.ITT, StatSN: rsp.StatSN, ExpCmdSN: rsp.ExpCmdSN, MaxCmdSN: rsp.MaxCmdSN, ExpDataSN: expDataSN}
		if rsp.Overflow || rsp.Underflow {
			sr.ResidualCount = rsp.Residual
		}
		var data []byte
		if len(rsp.Sense) > 0 {
			// The data segment is SenseLength (2 bytes) + sense data
			// (RFC 7143 §11.4.7.2); it lives in the scratch buffer.
			start := len(c.whdr)
			c.whdr = binary.BigEndian.AppendUint16(c.whdr, uint16(len(rsp.Sense)))
			c.whdr = append(c.whdr, rsp.Sense...)
			data = c.whdr[start:len(c.whdr):len(c.whdr)]
		}
		sr.Data = data
		h, err := c.encodeLocked(sr.AppendBinary(c.hbuf[:0]))
		if err != nil {
			return err
		}
		c.appendPDULocked(h, data)
	}
	return c.flushLocked()
}
