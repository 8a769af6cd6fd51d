package tcp

import (
	"bufio"
	"bytes"
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

// xfer is the transport's per-task state (Task.Data): the data buffer and,
// for writes, where Data-Out goes. All fields except mem, class and buf are
// guarded by conn.xmu once the xfer is registered in conn.xfers.
type xfer struct {
	mem    []byte        // the pooled buffer; immutable
	class  int           // pool class of mem; immutable
	buf    []byte        // mem[:task data length]
	budget *iscsi.Budget // where len(mem) bytes were taken from; nil: none

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

	// Guarded by conn.wmu: c.out references buf (PutData under Hold),
	// and Release came before Flush wrote it.
	held, releaseHeld bool
}

// Buffer implements iscsi.TaskData.
func (x *xfer) Buffer() []byte { return x.buf }

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

	// Reader state, owned by the goroutine calling Recv. br is small
	// (loginReadBuf) until the full feature phase, so that connections
	// that never log in cost little memory, then ffpReadBuf.
	br    *bufio.Reader
	rd    *pdu.Reader // reads br; digests and limit are set per PDU
	grown bool        // br has its full feature phase size
	ahs   [pdu.MaxAHSLen]byte

	params atomic.Pointer[iscsi.Params]
	seq    atomic.Pointer[seqHolder]

	// wmu guards writes to nc and the fields below.
	wmu   sync.Mutex
	out   pdu.Batch // the PDUs of the next writev; empty between calls
	hbuf  [pdu.BHSLen]byte
	sense []byte // data segment of the SCSI Response being sent
	// wroteStatSN is the StatSN after the last status queued on the
	// wire (wroteValid once there is one): what an R2T carries as "the
	// next StatSN" (RFC 7143 §11.8). The core's published number runs
	// ahead of the wire while a response it numbered is still on its way
	// here, and an R2T carrying it would skip that response.
	wroteStatSN uint32
	wroteValid  bool
	// hold is set between Hold and Flush: PutData queues without
	// writing. heldX are the xfers whose buffers c.out references
	// meanwhile, heldBytes their queued data. writes counts the
	// vectored writes (for tests).
	hold      bool
	heldX     []*xfer
	heldBytes int
	writes    int

	// xmu guards xfers, nextTTT and every registered xfer.
	xmu     sync.Mutex
	xfers   map[uint32]*xfer // write tasks by ITT
	nextTTT uint32

	closeOnce sync.Once
	closeErr  error
	drained   chan struct{} // closed by Close: TCP holds nothing after it
}

// seqHolder boxes a SeqNumbers for atomic.Pointer.
type seqHolder struct{ s iscsi.SeqNumbers }

// NewConn wraps an accepted connection (TCP, or net.Pipe in tests).
func NewConn(nc net.Conn, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	return newConn(nc, cfg, newXferPool(cfg.MaxTaskData))
}

// Read buffer sizes: during login, and in the full feature phase.
const (
	loginReadBuf = 4 << 10
	ffpReadBuf   = 64 << 10
)

func newConn(nc net.Conn, cfg Config, pool *xferPool) *Conn {
	br := bufio.NewReaderSize(nc, loginReadBuf)
	return &Conn{
		nc:      nc,
		cfg:     cfg,
		pool:    pool,
		br:      br,
		rd:      pdu.NewReader(br),
		xfers:   make(map[uint32]*xfer),
		drained: make(chan struct{}),
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
		close(c.drained)
	})
	return c.closeErr
}

// Drained implements iscsi.TransportConn: TCP sends synchronously, so
// nothing is in flight once Close has run.
func (c *Conn) Drained() <-chan struct{} { return c.drained }

// SetParams installs the negotiated parameters. The core calls it before it
// sends the final Login Response, so the first PDU the initiator sends in
// the full feature phase is already read with them. Login Responses are
// always sent without digests.
func (c *Conn) SetParams(p iscsi.Params, seq iscsi.SeqNumbers) error {
	// The core hands over negotiated values, RFC defaults included; a zero
	// length here is a caller bug that would stall R2Ts or Data-In, so it
	// is refused rather than papered over with a second copy of the
	// defaults.
	if p.InitiatorMaxRecvDSL == 0 || p.TargetMaxRecvDSL == 0 || p.MaxBurstLength == 0 ||
		p.FirstBurstLength == 0 || p.MaxOutstandingR2T == 0 {
		return fmt.Errorf("iscsi/tcp: incomplete parameters for %s: %+v", c.nc.RemoteAddr(), p)
	}
	// The transport tracks at most maxR2T R2Ts per task.
	p.MaxOutstandingR2T = min(p.MaxOutstandingR2T, maxR2T)
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
	// Wait for the next PDU before loading the parameters: SetParams runs
	// before the last Login Response is sent, so the first PDU of the
	// full feature phase is read with them.
	if _, err := c.br.Peek(1); err != nil {
		return false, fmt.Errorf("iscsi/tcp: read header from %s: %w", c.nc.RemoteAddr(), err)
	}
	p := c.params.Load()
	if p != nil && !c.grown {
		c.growReader()
	}
	c.rd.HeaderDigest = p != nil && p.HeaderDigest
	c.rd.DataDigest = p != nil && p.DataDigest
	c.rd.MaxDataSegmentLength = loginMaxDSL
	if p != nil {
		c.rd.MaxDataSegmentLength = p.TargetMaxRecvDSL
	}
	n, err := c.rd.ReadHeaderTo(&in.BHS, c.ahs[:])
	if err != nil {
		return false, c.readError(err, &in.BHS, "header")
	}
	if n > 0 {
		copy(in.GrowAHS(n), c.ahs[:n])
	}
	h := pdu.BHS(in.BHS[:])
	dsl := int(h.DataSegmentLength())
	switch {
	case p != nil && !p.Discovery && h.Opcode() == pdu.OpDataOut:
		return c.recvDataOut(in, p, dsl)
	case p != nil && !p.Discovery && h.Opcode() == pdu.OpSCSICommand:
		return true, c.recvCommand(in, p, dsl)
	}
	if dsl > 0 {
		if _, err := c.rd.ReadSegment(in.Grow(dsl)); err != nil {
			return false, c.readError(err, &in.BHS, "data segment")
		}
	}
	in.Kind = iscsi.InPDU
	return true, nil
}

// growReader gives the reader its full feature phase buffer, keeping the
// bytes the login buffer already holds (the first full feature PDU).
func (c *Conn) growReader() {
	c.grown = true
	var src io.Reader = c.nc
	if n := c.br.Buffered(); n > 0 {
		held, _ := c.br.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(held)), c.nc)
	}
	c.br = bufio.NewReaderSize(src, ffpReadBuf)
	c.rd = pdu.NewReader(c.br)
}

// readError turns an error of the PDU reader into the error that ends the
// connection (ErrorRecoveryLevel 0), after sending the Reject it calls for
// (RFC 7143 §11.17.1) with the offending header: a data digest error, an
// oversized data segment or an AHS on a PDU that carries none. A header
// digest error gets no Reject: the header cannot be trusted (§7.8).
func (c *Conn) readError(err error, bhs *[pdu.BHSLen]byte, what string) error {
	reason, reject := pdu.RejectReasonFor(err)
	if reject {
		c.reject(reason, bhs)
	}
	var de *pdu.DigestError
	switch {
	case errors.As(err, &de):
		return fmt.Errorf("%w: %s of ITT %#x from %s: %w", ErrDigest, what, pdu.BHS(bhs[:]).InitiatorTaskTag(), c.nc.RemoteAddr(), err)
	case reject:
		return fmt.Errorf("%w: %s of ITT %#x from %s: %w", ErrProtocol, what, pdu.BHS(bhs[:]).InitiatorTaskTag(), c.nc.RemoteAddr(), err)
	}
	return fmt.Errorf("iscsi/tcp: read %s from %s: %w", what, c.nc.RemoteAddr(), err)
}

// skipData reads and drops the data segment of the PDU whose header is
// bhs.
func (c *Conn) skipData(bhs *[pdu.BHSLen]byte) error {
	if _, err := c.rd.ReadSegment(nil); err != nil {
		return c.readError(err, bhs, "data segment")
	}
	return nil
}

// recvCommand reads a SCSI Command (RFC 7143 §11.3): it gives the task its
// data buffer, places the immediate data and registers a write for the
// Data-Out that follows.
func (c *Conn) recvCommand(in *iscsi.Inbound, p *iscsi.Params, dsl int) error {
	b := &in.BHS
	flags := b[1]
	write := flags&0x20 != 0
	read := flags&0x40 != 0
	edtl := int(binary.BigEndian.Uint32(b[20:24]))
	itt := binary.BigEndian.Uint32(b[16:20])
	in.Kind = iscsi.InPDU
	if edtl == 0 && dsl == 0 {
		return nil
	}
	n := min(edtl, c.pool.max)
	if !read && !write || !c.inWindow(b) {
		// The core refuses a transfer with neither R nor W and drops a
		// command outside the CmdSN window: no buffer for either, so an
		// initiator ignoring MaxCmdSN cannot make us allocate.
		n = 0
	}
	var x *xfer
	if n > 0 {
		if x = c.pool.get(n, p.Budget); x == nil {
			in.NoMemory = true
		} else {
			x.itt, x.lun, x.write = itt, binary.BigEndian.Uint64(b[8:16]), write
		}
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
		if _, err := c.rd.ReadSegment(dst); err != nil {
			if x != nil {
				c.pool.put(x)
			}
			return c.readError(err, b, "immediate data")
		}
	}
	if x == nil {
		return nil
	}
	in.Task, in.Imm = x, place
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

// inWindow reports whether the SCSI Command in b may be accepted by the
// core's CmdSN rules (RFC 7143 §4.2.2.1): immediate, or with CmdSN between
// the ExpCmdSN and MaxCmdSN last published. The published ExpCmdSN may lag
// the core's, never lead it, so this never refuses what the core accepts.
func (c *Conn) inWindow(b *[pdu.BHSLen]byte) bool {
	if b[0]&0x40 != 0 {
		return true
	}
	_, exp, maxSN := c.numbers()
	sn := binary.BigEndian.Uint32(b[24:28])
	return int32(sn-exp) >= 0 && int32(maxSN-sn) >= 0
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
		return false, c.skipData(b)
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
		if err := c.skipData(b); err != nil {
			return false, err
		}
		in.Kind = iscsi.InDataDone
		in.ITT = itt
		in.Task = x
		in.Err = fmt.Errorf("%w: Data-Out ITT %#x: %s", ErrProtocol, itt, bad)
		return true, nil
	}
	x.reading = true
	c.xmu.Unlock()

	var dst []byte
	if off < len(x.buf) {
		dst = x.buf[off:min(off+dsl, len(x.buf))]
	}
	_, err := c.rd.ReadSegment(dst)

	c.xmu.Lock()
	x.reading = false
	if x.released || err != nil {
		if x.released {
			c.pool.put(x)
		}
		c.xmu.Unlock()
		if err != nil {
			return false, c.readError(err, b, "Data-Out")
		}
		return false, nil
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
		in.Task = x
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
	if c.wroteValid {
		statSN = c.wroteStatSN
	}
	for _, r := range rs {
		r2t := pdu.R2T{LUN: pdu.LUN(x.lun), ITT: x.itt, TTT: r.ttt, StatSN: statSN, ExpCmdSN: expCmdSN, MaxCmdSN: maxCmdSN,
			R2TSN: r.sn, BufferOffset: uint32(r.next), DesiredDataTransferLength: uint32(r.end - r.next)}
		h, err := c.encodeLocked(r2t.AppendBinary(c.hbuf[:0]))
		if err == nil {
			err = c.queueLocked(h, nil)
		}
		if err != nil {
			return err
		}
	}
	return c.flushLocked()
}

// GetData starts soliciting the data of a write task (see
// iscsi.TransportConn). done is true when everything is already there.
func (c *Conn) GetData(t *iscsi.Task, want int) (done bool, err error) {
	x, _ := t.Data.(*xfer)
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
	x, _ := t.Data.(*xfer)
	if x == nil {
		return
	}
	t.Data, t.Buf = nil, nil
	c.wmu.Lock()
	if x.held {
		// PutData queued the buffer under Hold: Flush recycles it
		// once it is written.
		x.releaseHeld = true
		c.wmu.Unlock()
		return
	}
	c.wmu.Unlock()
	c.release(x)
}

// release drops x from the write table and returns its buffer to the
// pool, or leaves that to the reader while it places data into it.
func (c *Conn) release(x *xfer) {
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
	if err := c.queueLocked(bhs, data); err != nil {
		return err
	}
	return c.flushLocked()
}

// queueLocked adds one PDU to c.out with digests as negotiated (never on a
// Login Response); DataSegmentLength is set from data. On error c.out is
// emptied. c.wmu must be held.
func (c *Conn) queueLocked(bhs *[pdu.BHSLen]byte, data []byte) error {
	p := c.params.Load()
	op := pdu.BHS(bhs[:]).Opcode()
	digests := p != nil && op != pdu.OpLoginResp
	c.out.HeaderDigest = digests && p.HeaderDigest
	c.out.DataDigest = digests && p.DataDigest
	if err := c.out.AddBHS(bhs, data); err != nil {
		c.out.Reset()
		return fmt.Errorf("iscsi/tcp: send %v to %s: %w", op, c.nc.RemoteAddr(), err)
	}
	if usesStatSN(pdu.BHS(bhs[:])) {
		c.wroteStatSN, c.wroteValid = binary.BigEndian.Uint32(bhs[24:28])+1, true
	}
	return nil
}

// usesStatSN reports whether a PDU the target sends takes a StatSN of
// its own (a status), rather than carrying the next one without using
// it (R2T, an unsolicited NOP-In, a Data-In without status).
func usesStatSN(h pdu.BHS) bool {
	switch h.Opcode() {
	case pdu.OpSCSIResponse, pdu.OpTaskMgmtResp, pdu.OpLoginResp, pdu.OpTextResp, pdu.OpLogoutResp, pdu.OpAsync, pdu.OpReject:
		return true
	case pdu.OpDataIn:
		return h[1]&0x01 != 0 // S bit
	case pdu.OpNOPIn:
		return h.InitiatorTaskTag() != pdu.ReservedTag
	}
	return false
}

// encodeLocked checks the result of encoding a BHS into c.hbuf; on error
// c.out is emptied. c.wmu must be held.
func (c *Conn) encodeLocked(b []byte, err error) (*[pdu.BHSLen]byte, error) {
	if err == nil && (len(b) != pdu.BHSLen || &b[0] != &c.hbuf[0]) {
		err = fmt.Errorf("encoded header of %d bytes", len(b))
	}
	if err != nil {
		c.out.Reset()
		return nil, fmt.Errorf("iscsi/tcp: encode header for %s: %w", c.nc.RemoteAddr(), err)
	}
	return &c.hbuf, nil
}

// flushLocked writes c.out with one writev and empties it. c.wmu must be
// held.
func (c *Conn) flushLocked() error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		c.out.Reset()
		return fmt.Errorf("iscsi/tcp: set write deadline for %s: %w", c.nc.RemoteAddr(), err)
	}
	c.writes++
	if _, err := c.out.WriteTo(c.nc); err != nil {
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
	if err := c.Send(&h, bad[:]); err != nil {
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
	collapse := n > 0 && len(rsp.Sense) == 0 && (rsp.Status == 0x00 || rsp.Status == 0x04)

	c.wmu.Lock()
	defer c.wmu.Unlock()
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
		if err == nil {
			err = c.queueLocked(h, t.Buf[off:off+l])
		}
		if err != nil {
			return err
		}
		dataSN++
		off += l
	}
	if !collapse {
		expDataSN := dataSN
		if x, _ := t.Data.(*xfer); x != nil && x.write {
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
			// (RFC 7143 §11.4.7.2).
			c.sense = binary.BigEndian.AppendUint16(c.sense[:0], uint16(len(rsp.Sense)))
			c.sense = append(c.sense, rsp.Sense...)
			data = c.sense
		}
		sr.Data = data
		h, err := c.encodeLocked(sr.AppendBinary(c.hbuf[:0]))
		if err == nil {
			err = c.queueLocked(h, data)
		}
		if err != nil {
			return err
		}
	}
	// Under Hold the PDUs wait for Flush, unless they reference c.sense
	// (reused by the next response) or enough data is queued.
	if c.hold && len(rsp.Sense) == 0 && c.heldBytes+n <= maxHeldBytes {
		if x, _ := t.Data.(*xfer); x != nil && n > 0 {
			x.held = true
			c.heldX = append(c.heldX, x)
		}
		c.heldBytes += n
		return nil
	}
	return c.flushLocked()
}

// maxHeldBytes bounds the Data-In payload queued under Hold: past it the
// batch is written at once, so that the first response of a burst does
// not wait for many large ones.
const maxHeldBytes = 512 << 10

// Hold implements iscsi.BatchSender: PutData queues its PDUs until Flush.
func (c *Conn) Hold() {
	c.wmu.Lock()
	c.hold = true
	c.wmu.Unlock()
}

// Flush implements iscsi.BatchSender: it writes what PutData queued since
// Hold with one writev, ends the hold and recycles the buffers of tasks
// released meanwhile, whether or not the write succeeds.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	c.hold = false
	var err error
	if c.out.Len() > 0 {
		err = c.flushLocked()
	}
	c.out.Reset()
	// Compact the xfers released meanwhile to the front of heldX; only
	// the owner goroutine (the caller) appends to heldX.
	free := c.heldX[:0]
	for _, x := range c.heldX {
		x.held = false
		if x.releaseHeld {
			x.releaseHeld = false
			free = append(free, x)
		}
	}
	clear(c.heldX[len(free):])
	c.heldX = c.heldX[:0]
	c.heldBytes = 0
	c.wmu.Unlock()
	for i, x := range free {
		c.release(x)
		free[i] = nil
	}
	return err
}
