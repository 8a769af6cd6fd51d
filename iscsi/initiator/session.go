package initiator

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
)

// reservedTag is the reserved tag value 0xffffffff (RFC 7143 §11.2.1.8).
const reservedTag = 0xffffffff

// taskKind says what a task slot carries.
type taskKind uint8

const (
	kindSCSI   taskKind = iota + 1 // SCSI Command
	kindNOP                        // NOP-Out ping
	kindTMF                        // Task Management Function
	kindText                       // Text Request
	kindLogout                     // Logout Request
)

// r2tReq is one R2T handed from the reader to the task's goroutine.
type r2tReq struct {
	ttt         uint32
	offset, len uint32
}

// senseMax is the largest sense data a Result holds (SPC-4 §4.5.1).
const senseMax = 252

// taskState is where a task slot is in its life. Transitions, all under
// task.mu:
//
//	free      -> inFlight   acquire (caller)
//	inFlight  -> done       completeLocked (reader, or TMF/session end)
//	inFlight  -> abandoned  wait, when the caller's context ends
//	abandoned -> free       completeLocked (the reader frees the slot)
//	done      -> free       release (caller, after reading the results)
//	inFlight  -> free       sendFailed (nothing reached the target)
type taskState uint8

const (
	taskFree      taskState = iota // in a free list
	taskInFlight                   // sent (or being sent); the reader may complete it
	taskAbandoned                  // in flight, caller gone: buffers detached
	taskDone                       // completed; the caller owns the results
)

// String returns the name of the state.
func (st taskState) String() string {
	switch st {
	case taskFree:
		return "free"
	case taskInFlight:
		return "in-flight"
	case taskAbandoned:
		return "abandoned"
	case taskDone:
		return "done"
	}
	return fmt.Sprintf("taskState(%d)", uint8(st))
}

// active reports whether the target may still answer the task.
func (st taskState) active() bool { return st == taskInFlight || st == taskAbandoned }

// task is one slot of the session's task table; its index is the low 16
// bits of the ITT, a generation counter the high 16. See taskState for
// its life.
type task struct {
	idx uint16
	// done receives one value when the task completes. Capacity 1.
	done chan struct{}
	// r2t carries R2Ts from the reader to the goroutine writing Data-Out.
	r2t chan r2tReq

	// mu guards the fields below while the task is in flight: the reader
	// fills results under it; the caller reads them after <-done.
	mu     sync.Mutex
	itt    uint32
	gen    uint16
	kind   taskKind
	state  taskState
	lun    pdu.LUN
	cmdSN  uint32
	dataIn []byte // caller's buffer; nil once abandoned
	// Results.
	status   uint8
	response uint8
	flags    uint8 // o/u/O/U bits of the SCSI Response or Data-In
	residual uint32
	inLen    int
	// Sequence checks (DataPDUInOrder=Yes and DataSequenceInOrder=Yes are
	// negotiated): the next DataSN and offset of Data-In, the next R2TSN,
	// and the read EDTL for residual checks.
	nextDataSN uint32
	nextOffset int
	nextR2TSN  uint32
	readEDTL   int
	senseLen   int
	sense      [senseMax]byte
	data       []byte // response data of non-SCSI tasks (reused)
	// io is what BeginTask was given; begun says EndTask is owed.
	io        TaskIO
	begun     bool
	more      bool   // Text Response C bit
	ttt       uint32 // Text Response TTT
	err       error
	statusSet bool

	// Owned by the goroutine issuing the task: the request PDUs and the
	// buffers they are encoded into.
	cmd    pdu.SCSICommand
	dout   pdu.DataOut
	nopOut pdu.NOPOut
	tmf    pdu.TaskMgmtRequest
	text   pdu.TextRequest
	logout pdu.LogoutRequest
	hdr    [BHSLen]byte
	dohdr  [BHSLen]byte
	ahs    [pdu.MaxCDBLen]byte
	ext    [pdu.MaxCDBLen - 16]byte
}

// Session is a logged-in iSCSI session with one connection (RFC 7143 §4.1,
// MaxConnections=1, ErrorRecoveryLevel=0). One reader goroutine owns the
// receive side and routes every response to its task by ITT; any number
// of goroutines may issue commands concurrently, up to Config.MaxTasks in
// flight.
type Session struct {
	// c is the connection and caps what it does itself. Immutable.
	c      Transport
	caps   Caps
	cfg    Config
	params Params
	log    *slog.Logger
	tasks  []task
	// free holds the indexes of free SCSI task slots (the first
	// cfg.MaxTasks), ctlFree those of the slots reserved for NOP-Out,
	// TMF, Text and Logout, so that a full queue of commands can still
	// be aborted or logged out.
	free    chan uint16
	ctlFree chan uint16

	// seqMu orders command sending: CmdSN assignment and the write of the
	// command PDU happen under it, so commands leave in CmdSN order.
	seqMu sync.Mutex
	cmdSN uint32 // guarded by seqMu: CmdSN of the next non-immediate command
	// Updated by the reader, read by senders.
	maxCmdSN  atomic.Uint32
	expCmdSN  atomic.Uint32
	expStatSN atomic.Uint32
	// window gets a value when MaxCmdSN advances. Capacity 1.
	window chan struct{}

	// closed is closed when the reader exits; failErr says why.
	closed    chan struct{}
	failOnce  sync.Once
	failErr   error // written once before closed is closed
	loggedOut atomic.Bool
	closeOnce sync.Once

	// Reader-owned scratch.
	in    inbound
	rhdr  [BHSLen]byte
	rahs  []byte
	rdata []byte
	nop   [BHSLen]byte
}

// Dial connects to addr over TCP, logs in to cfg.TargetName and starts
// the session.
func Dial(ctx context.Context, addr string, cfg Config) (*Session, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return nil, err
	}
	c, err := dialLogin(ctx, addr, cfg, false)
	if err != nil {
		return nil, err
	}
	return newSession(c, c.params, c.seq(), cfg), nil
}

// Login logs in to cfg.TargetName over t, an established connection of
// any Transport (TCP: a *Conn from NewConn; iSER: package iser's), and
// starts the session, which owns t from now on: Close closes it, and a
// failed login closes it too. cfg.DialContext is not used.
func Login(ctx context.Context, t Transport, cfg Config) (*Session, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	p, seq, err := loginOver(ctx, t, cfg, false, "")
	if err != nil {
		return nil, err
	}
	return newSession(t, p, seq, cfg), nil
}

// NewSession starts a session on a Conn that DialConn logged in. The
// Session owns c from now on. cfg must be the Config given to DialConn.
func NewSession(c *Conn, cfg Config) (*Session, error) {
	cfg, err := cfg.withDefaults(c.params.Discovery)
	if err != nil {
		return nil, err
	}
	return newSession(c, c.params, c.seq(), cfg), nil
}

// seqNumbers are the sequence numbers a login leaves (RFC 7143 §4.2.2):
// the CmdSN of the next non-immediate command, the next StatSN expected,
// and the target's MaxCmdSN.
type seqNumbers struct{ cmdSN, expStatSN, maxCmdSN uint32 }

func newSession(c Transport, p Params, seq seqNumbers, cfg Config) *Session {
	s := &Session{
		c:       c,
		caps:    c.Caps(),
		cfg:     cfg,
		params:  p,
		log:     cfg.Logger.With("target", cfg.TargetName, "tsih", p.TSIH),
		tasks:   make([]task, cfg.MaxTasks+ctlSlots),
		free:    make(chan uint16, cfg.MaxTasks),
		ctlFree: make(chan uint16, ctlSlots),
		window:  make(chan struct{}, 1),
		closed:  make(chan struct{}),
		cmdSN:   seq.cmdSN,
		rdata:   make([]byte, 0, 8192),
	}
	s.maxCmdSN.Store(seq.maxCmdSN)
	s.expCmdSN.Store(seq.cmdSN)
	s.expStatSN.Store(seq.expStatSN)
	nr2t := int(min(p.MaxOutstandingR2T, 64)) + 1
	for i := range s.tasks {
		t := &s.tasks[i]
		t.idx = uint16(i)
		t.done = make(chan struct{}, 1)
		t.r2t = make(chan r2tReq, nr2t)
		s.freeList(t) <- uint16(i)
	}
	go s.readLoop()
	return s
}

// Params returns the negotiated parameters.
func (s *Session) Params() Params { return s.params }

// Done is closed when the session has ended (connection lost, logged out
// or closed); Err then says why.
func (s *Session) Done() <-chan struct{} { return s.closed }

// Err returns why the session ended, or nil while it runs.
func (s *Session) Err() error {
	select {
	case <-s.closed:
		return s.failErr
	default:
		return nil
	}
}

// fail ends the session: it closes the connection and completes every task
// in flight with err. The first error wins.
func (s *Session) fail(err error) {
	s.failOnce.Do(func() {
		switch {
		case s.loggedOut.Load():
			err = fmt.Errorf("%w (logged out)", ErrClosed)
		case errors.Is(err, ErrClosed):
			s.log.Debug("session closed")
		default:
			s.log.Warn("session ended", "err", err)
		}
		s.failErr = err
		_ = s.c.Close()
	})
}

// readLoop is the reader goroutine: it owns the receive side of the
// connection and completes tasks.
func (s *Session) readLoop() {
	defer func() {
		for i := range s.tasks {
			t := &s.tasks[i]
			t.mu.Lock()
			if t.state.active() {
				t.err = s.failErr
				s.completeLocked(t)
			}
			t.mu.Unlock()
		}
		close(s.closed)
	}()
	for {
		if err := s.c.RecvHeader(&s.rhdr, &s.rahs); err != nil {
			s.fail(fmt.Errorf("initiator: %w", err))
			return
		}
		if err := s.dispatch(); err != nil {
			s.fail(fmt.Errorf("initiator: %w", err))
			return
		}
	}
}

// completeLocked ends t's flight: it wakes the caller, or frees the slot
// when the caller abandoned it. t.mu must be held.
func (s *Session) completeLocked(t *task) {
	s.endTaskLocked(t)
	if t.state == taskAbandoned {
		s.releaseLocked(t)
		return
	}
	t.state = taskDone
	t.done <- struct{}{}
}

// releaseLocked returns t to the free list. t.mu must be held and the
// target must be done with t.
func (s *Session) releaseLocked(t *task) {
	s.endTaskLocked(t)
	t.gen++
	t.state = taskFree
	t.dataIn = nil
	t.err = nil
	for len(t.r2t) > 0 {
		<-t.r2t
	}
	s.freeList(t) <- t.idx
}

// endTaskLocked ends the transport's use of t's buffers (Transport.EndTask)
// if BeginTask registered them: with the Data-In length for a caller who
// waits, negative for one who abandoned the task. t.mu must be held.
func (s *Session) endTaskLocked(t *task) {
	if !t.begun {
		return
	}
	t.begun = false
	n := t.inLen
	if t.dataIn == nil && t.io.DataIn != nil {
		n = -1 // abandoned: the caller's buffer is not ours any more
	}
	s.c.EndTask(t.itt, n) // the transport may still read t.io
	t.io = TaskIO{}
}

// ctlSlots is the number of task slots reserved for non-SCSI requests.
const ctlSlots = 4

// freeList returns the free list t belongs to.
func (s *Session) freeList(t *task) chan uint16 {
	if int(t.idx) < s.cfg.MaxTasks {
		return s.free
	}
	return s.ctlFree
}

// release returns a completed task to the free list.
func (s *Session) release(t *task) {
	t.mu.Lock()
	s.releaseLocked(t)
	t.mu.Unlock()
}

// acquire takes a free task slot.
func (s *Session) acquire(ctx context.Context, kind taskKind) (*task, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-s.closed:
		return nil, s.endedErr()
	default:
	}
	free := s.free
	if kind != kindSCSI {
		free = s.ctlFree
	}
	select {
	case i := <-free:
		t := &s.tasks[i]
		t.mu.Lock()
		t.itt = uint32(t.gen)<<16 | uint32(t.idx)
		t.kind = kind
		t.state = taskInFlight
		t.status, t.response, t.flags, t.residual = 0, 0, 0, 0
		t.inLen, t.senseLen, t.statusSet, t.more = 0, 0, false, false
		t.nextDataSN, t.nextOffset, t.nextR2TSN, t.readEDTL = 0, 0, 0, 0
		t.data = t.data[:0]
		t.err = nil
		t.mu.Unlock()
		return t, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closed:
		return nil, s.endedErr()
	}
}

// endedErr is the error for calls on an ended session.
func (s *Session) endedErr() error {
	if s.failErr != nil {
		return s.failErr
	}
	return ErrClosed
}

// sendFailed undoes acquire after the request could not be sent. When the
// write itself failed (wrote is true) the connection is out of step and
// the session ends.
func (s *Session) sendFailed(t *task, err error, wrote bool) error {
	t.mu.Lock()
	if t.state == taskInFlight {
		s.releaseLocked(t)
		t.mu.Unlock()
	} else { // done: the session ended meanwhile and completed it
		t.mu.Unlock()
		<-t.done
		s.release(t)
	}
	if wrote {
		s.fail(err)
	}
	return err
}

// wait blocks until t completes or ctx ends. On ctx's end the task is
// abandoned: its buffers are detached and the reader frees it later.
func (s *Session) wait(ctx context.Context, t *task) error {
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	if t.state == taskDone {
		t.mu.Unlock()
		<-t.done
		return nil
	}
	t.state = taskAbandoned
	t.dataIn = nil
	t.mu.Unlock()
	return ctx.Err()
}

// sendCommand assigns a CmdSN to the request p (one of t's request
// structs), encodes it into t.hdr and writes it with ahs and its data
// segment. An immediate request carries the current CmdSN without
// advancing it and needs no window (RFC 7143 §4.2.2.1). wrote reports
// whether a write was attempted.
func (s *Session) sendCommand(ctx context.Context, t *task, p pdu.PDU, ahs []byte) (wrote bool, err error) {
	immediate := isImmediate(p)
	for {
		s.seqMu.Lock()
		if immediate || !seqLess(s.maxCmdSN.Load(), s.cmdSN) {
			break
		}
		s.seqMu.Unlock()
		select {
		case <-s.window:
		case <-ctx.Done():
			return false, ctx.Err()
		case <-s.closed:
			return false, s.endedErr()
		}
	}
	t.cmdSN = s.cmdSN
	if !immediate {
		s.cmdSN++
	}
	setSN(p, t.cmdSN, s.expStatSN.Load())
	if _, err := p.AppendBinary(t.hdr[:0]); err != nil {
		s.seqMu.Unlock()
		return false, fmt.Errorf("encode %v: %w", p.Opcode(), err)
	}
	err = s.c.Send(&t.hdr, ahs, p.DataSegment())
	open := !seqLess(s.maxCmdSN.Load(), s.cmdSN)
	s.seqMu.Unlock()
	if open {
		select {
		case s.window <- struct{}{}:
		default:
		}
	}
	return true, err
}

// isImmediate reports the I bit of a request.
func isImmediate(p pdu.PDU) bool {
	switch p := p.(type) {
	case *pdu.SCSICommand:
		return p.Immediate
	case *pdu.NOPOut:
		return p.Immediate
	case *pdu.TaskMgmtRequest:
		return p.Immediate
	case *pdu.TextRequest:
		return p.Immediate
	case *pdu.LogoutRequest:
		return p.Immediate
	}
	return false
}

// setSN stores CmdSN and ExpStatSN in a request.
func setSN(p pdu.PDU, cmdSN, expStatSN uint32) {
	switch p := p.(type) {
	case *pdu.SCSICommand:
		p.CmdSN, p.ExpStatSN = cmdSN, expStatSN
	case *pdu.NOPOut:
		p.CmdSN, p.ExpStatSN = cmdSN, expStatSN
	case *pdu.TaskMgmtRequest:
		p.CmdSN, p.ExpStatSN = cmdSN, expStatSN
	case *pdu.TextRequest:
		p.CmdSN, p.ExpStatSN = cmdSN, expStatSN
	case *pdu.LogoutRequest:
		p.CmdSN, p.ExpStatSN = cmdSN, expStatSN
	}
}

// seqLess reports a < b in serial number arithmetic (RFC 1982, 32 bits).
func seqLess(a, b uint32) bool { return a != b && int32(a-b) < 0 }

// checkStatSN verifies that a PDU carries a StatSN the connection can be
// at. RFC 7143 §4.2.2.2 numbers statuses without gaps (R2T and
// unsolicited NOP-In carry the next StatSN without using it), but over
// iSER each response is a SEND of its own, and a target that builds
// responses on several CPUs delivers them out of StatSN order: LIO's
// isert does at QD32 (measured in the rxe guest; Linux's initiator does
// not check StatSN at all). So a StatSN is accepted within as many
// responses of ExpStatSN as can be outstanding (the session's task
// slots), and ExpStatSN only moves forward (updateSN); a larger jump,
// which no reordering explains, ends the session.
func (s *Session) checkStatSN(statSN uint32, what string) error {
	want := s.expStatSN.Load()
	w := uint32(s.cfg.MaxTasks + ctlSlots)
	if statSN-want <= w || want-statSN <= w {
		return nil
	}
	return fmt.Errorf("%s carries StatSN %d, ExpStatSN is %d: more than %d apart", what, statSN, want, w)
}

// updateSN applies the ExpCmdSN and MaxCmdSN of a response (RFC 7143
// §4.2.2.1) and, when advance is set, its StatSN.
func (s *Session) updateSN(statSN, expCmdSN, maxCmdSN uint32, advance bool) {
	if advance {
		if next := statSN + 1; seqLess(s.expStatSN.Load(), next) {
			s.expStatSN.Store(next)
		}
	}
	// MaxCmdSN < ExpCmdSN-1 means the numbers are to be ignored.
	if seqLess(maxCmdSN, expCmdSN-1) {
		return
	}
	if seqLess(s.expCmdSN.Load(), expCmdSN) {
		s.expCmdSN.Store(expCmdSN)
	}
	if seqLess(s.maxCmdSN.Load(), maxCmdSN) {
		s.maxCmdSN.Store(maxCmdSN)
		select {
		case s.window <- struct{}{}:
		default:
		}
	}
}

// lookup returns the in-flight task with ITT itt, locked, or nil.
func (s *Session) lookup(itt uint32, kind taskKind) *task {
	i := int(itt & 0xffff)
	if i >= len(s.tasks) {
		return nil
	}
	t := &s.tasks[i]
	t.mu.Lock()
	if !t.state.active() || t.itt != itt || t.kind != kind {
		t.mu.Unlock()
		return nil
	}
	return t
}

// inbound holds the reader's decoded PDUs, one per type the target sends
// in the full feature phase. Owned by the reader goroutine.
type inbound struct {
	dataIn pdu.DataIn
	rsp    pdu.SCSIResponse
	r2t    pdu.R2T
	nopIn  pdu.NOPIn
	tmf    pdu.TaskMgmtResponse
	text   pdu.TextResponse
	logout pdu.LogoutResponse
	rej    pdu.Reject
	async  pdu.AsyncMessage
	nopOut pdu.NOPOut
}

// dispatch decodes the PDU whose header is in s.rhdr (strictly: a target
// that sets reserved bits or sends an unknown opcode ends the session) and
// completes its task.
func (s *Session) dispatch() error {
	h := s.rhdr[:]
	bhs := pdu.BHS(h)
	op := bhs.Opcode()
	n := int(bhs.DataSegmentLength())
	in := &s.in
	var err error
	switch op {
	case pdu.OpDataIn:
		if err = in.dataIn.UnmarshalBinary(h); err == nil {
			return s.dataIn(n)
		}
	case pdu.OpSCSIResponse:
		if err = in.rsp.UnmarshalBinary(h); err == nil {
			return s.scsiResponse(n)
		}
	case pdu.OpR2T:
		if err = in.r2t.UnmarshalBinary(h); err == nil {
			return s.r2t()
		}
	case pdu.OpNOPIn:
		if err = in.nopIn.UnmarshalBinary(h); err == nil {
			return s.nopIn(n)
		}
	case pdu.OpTaskMgmtResp:
		if err = in.tmf.UnmarshalBinary(h); err == nil {
			r := &in.tmf
			return s.simpleResponse(n, r.ITT, kindTMF, uint8(r.Response), r.StatSN, r.ExpCmdSN, r.MaxCmdSN)
		}
	case pdu.OpLogoutResp:
		if err = in.logout.UnmarshalBinary(h); err == nil {
			r := &in.logout
			return s.simpleResponse(n, r.ITT, kindLogout, uint8(r.Response), r.StatSN, r.ExpCmdSN, r.MaxCmdSN)
		}
	case pdu.OpTextResp:
		if err = in.text.UnmarshalBinary(h); err == nil {
			return s.textResponse(n)
		}
	case pdu.OpReject:
		if err = in.rej.UnmarshalBinary(h); err == nil {
			return s.reject(n)
		}
	case pdu.OpAsync:
		if err = in.async.UnmarshalBinary(h); err == nil {
			a := &in.async
			s.updateSN(a.StatSN, a.ExpCmdSN, a.MaxCmdSN, true)
			if err := s.readData(n); err != nil {
				return err
			}
			s.log.Info("asynchronous message", "event", a.Event, "param1", a.Parameter1, "param2", a.Parameter2)
			return nil
		}
	default:
		return fmt.Errorf("unexpected %v from target", op)
	}
	return fmt.Errorf("bad PDU from target: %w", err)
}

// readData reads the data segment of the current PDU into s.rdata.
func (s *Session) readData(n int) error {
	if cap(s.rdata) < n {
		s.rdata = make([]byte, n)
	}
	s.rdata = s.rdata[:n]
	return s.c.RecvData(&s.rhdr, s.rdata)
}

// dataIn places one Data-In PDU (RFC 7143 §11.7) straight into the task's
// buffer.
func (s *Session) dataIn(n int) error {
	d := &s.in.dataIn
	if d.HasStatus {
		if err := s.checkStatSN(d.StatSN, "Data-In"); err != nil {
			return err
		}
	}
	if s.caps.PlacesDataIn {
		return fmt.Errorf("data-in PDU for ITT %#x on a transport that places Data-In itself", d.ITT)
	}
	s.updateSN(d.StatSN, d.ExpCmdSN, d.MaxCmdSN, d.HasStatus)
	t := s.lookup(d.ITT, kindSCSI)
	if t == nil {
		s.log.Debug("Data-In for no task", "itt", d.ITT)
		return s.c.SkipData(&s.rhdr, n)
	}
	defer t.mu.Unlock()
	off := int(d.BufferOffset)
	// RFC 7143 §11.7.5, §13.18: DataSN counts from 0 and, with
	// DataPDUInOrder=Yes, offsets are contiguous.
	if d.DataSN != t.nextDataSN || off != t.nextOffset {
		return fmt.Errorf("data-in for ITT %#x: DataSN %d at offset %d, want DataSN %d at offset %d",
			d.ITT, d.DataSN, off, t.nextDataSN, t.nextOffset)
	}
	t.nextDataSN++
	t.nextOffset = off + n
	if t.dataIn == nil { // abandoned
		if err := s.c.SkipData(&s.rhdr, n); err != nil {
			return err
		}
	} else {
		if off+n > len(t.dataIn) {
			return fmt.Errorf("data-in for ITT %#x at offset %d+%d beyond the %d-byte buffer", d.ITT, off, n, len(t.dataIn))
		}
		if err := s.c.RecvData(&s.rhdr, t.dataIn[off:off+n]); err != nil {
			return err
		}
	}
	t.inLen = max(t.inLen, off+n)
	if d.HasStatus {
		if !d.Final {
			return fmt.Errorf("data-in for ITT %#x with S but not F", d.ITT)
		}
		t.status, t.residual, t.statusSet = d.Status, d.ResidualCount, true
		t.flags = flagBits(d.ResidualOverflow, d.ResidualUnderflow)
		t.err = checkResidual(t)
		s.completeLocked(t)
	}
	return nil
}

// checkResidual verifies, for a read that ended with GOOD status, that
// the Data-In received matches the residual (RFC 7143 §11.4.5.1): all of
// the EDTL without U, EDTL minus the residual with U. t.mu must be held.
func checkResidual(t *task) error {
	if t.readEDTL == 0 || t.status != 0 {
		return nil
	}
	want := t.readEDTL
	if t.flags&0x02 != 0 { // U
		want -= int(t.residual)
	}
	if t.inLen != want {
		return fmt.Errorf("target sent %d bytes of Data-In for EDTL %d with O=%v U=%v residual %d",
			t.inLen, t.readEDTL, t.flags&0x04 != 0, t.flags&0x02 != 0, t.residual)
	}
	return nil
}

// flagBits packs the O and U bits as the Result decoding expects them.
func flagBits(overflow, underflow bool) uint8 {
	var f uint8
	if overflow {
		f |= 0x04
	}
	if underflow {
		f |= 0x02
	}
	return f
}

// scsiResponse completes a SCSI task (RFC 7143 §11.4).
func (s *Session) scsiResponse(n int) error {
	r := &s.in.rsp
	if err := s.checkStatSN(r.StatSN, "SCSI Response"); err != nil {
		return err
	}
	s.updateSN(r.StatSN, r.ExpCmdSN, r.MaxCmdSN, true)
	if err := s.readData(n); err != nil {
		return err
	}
	t := s.lookup(r.ITT, kindSCSI)
	if t == nil {
		s.log.Debug("SCSI Response for no task", "itt", r.ITT)
		return nil
	}
	t.response, t.status, t.residual = uint8(r.Response), r.Status, r.ResidualCount
	t.flags = flagBits(r.ResidualOverflow, r.ResidualUnderflow)
	t.statusSet = true
	if s.caps.PlacesDataIn && t.readEDTL > 0 && r.Response == pdu.ResponseCompleted {
		// The target wrote the data (RDMA WRITE) before this response:
		// all of the EDTL, less the residual on underflow (RFC 7143
		// §11.4.5.1).
		t.inLen = t.readEDTL
		if r.ResidualUnderflow {
			t.inLen -= int(min(r.ResidualCount, uint32(t.readEDTL)))
		}
	}
	if r.Response == pdu.ResponseCompleted && r.Status == 0 {
		t.err = checkResidual(t)
	}
	if len(s.rdata) >= 2 {
		// Sense data: a 2-byte SenseLength, then the sense bytes (§11.4.7.2).
		sl := int(binary.BigEndian.Uint16(s.rdata[:2]))
		sl = min(sl, len(s.rdata)-2, senseMax)
		t.senseLen = copy(t.sense[:], s.rdata[2:2+sl])
	}
	s.completeLocked(t)
	t.mu.Unlock()
	return nil
}

// r2t hands an R2T (RFC 7143 §11.8) to the goroutine sending the task's
// data.
func (s *Session) r2t() error {
	r := &s.in.r2t
	if s.caps.NoR2T {
		return fmt.Errorf("R2T for ITT %#x on a transport where the target fetches data itself", r.ITT)
	}
	if err := s.checkStatSN(r.StatSN, "R2T"); err != nil {
		return err
	}
	s.updateSN(0, r.ExpCmdSN, r.MaxCmdSN, false)
	t := s.lookup(r.ITT, kindSCSI)
	if t == nil {
		s.log.Debug("R2T for no task", "itt", r.ITT)
		return nil
	}
	defer t.mu.Unlock()
	// RFC 7143 §11.8: R2TSN counts from 0 per task; a burst is at most
	// MaxBurstLength and never empty.
	if r.R2TSN != t.nextR2TSN || r.DesiredDataTransferLength == 0 || r.DesiredDataTransferLength > s.params.MaxBurstLength {
		return fmt.Errorf("R2T for ITT %#x: R2TSN %d (want %d), %d bytes (MaxBurstLength %d)",
			r.ITT, r.R2TSN, t.nextR2TSN, r.DesiredDataTransferLength, s.params.MaxBurstLength)
	}
	t.nextR2TSN++
	if t.state == taskAbandoned {
		return nil
	}
	select {
	case t.r2t <- r2tReq{ttt: r.TTT, offset: r.BufferOffset, len: r.DesiredDataTransferLength}:
		return nil
	default:
		return fmt.Errorf("more than %d R2Ts outstanding for ITT %#x", cap(t.r2t), r.ITT)
	}
}

// nopIn answers a target's ping or completes ours (RFC 7143 §11.19).
func (s *Session) nopIn(n int) error {
	r := &s.in.nopIn
	if err := s.readData(n); err != nil {
		return err
	}
	// A NOP-In with ITT 0xffffffff does not advance StatSN.
	if err := s.checkStatSN(r.StatSN, "NOP-In"); err != nil {
		return err
	}
	s.updateSN(r.StatSN, r.ExpCmdSN, r.MaxCmdSN, r.ITT != reservedTag)
	if r.ITT == reservedTag {
		if r.TTT != reservedTag {
			return s.answerNOPIn(r.TTT, r.LUN)
		}
		return nil
	}
	t := s.lookup(r.ITT, kindNOP)
	if t == nil {
		return nil
	}
	t.data = append(t.data[:0], s.rdata...)
	s.completeLocked(t)
	t.mu.Unlock()
	return nil
}

// simpleResponse completes a TMF or Logout task with its response code.
func (s *Session) simpleResponse(n int, itt uint32, kind taskKind, resp uint8, statSN, expCmdSN, maxCmdSN uint32) error {
	if err := s.checkStatSN(statSN, "response"); err != nil {
		return err
	}
	s.updateSN(statSN, expCmdSN, maxCmdSN, true)
	if err := s.readData(n); err != nil {
		return err
	}
	if t := s.lookup(itt, kind); t != nil {
		t.response = resp
		s.completeLocked(t)
		t.mu.Unlock()
	}
	return nil
}

// textResponse completes a Text task (RFC 7143 §11.11).
func (s *Session) textResponse(n int) error {
	r := &s.in.text
	if err := s.checkStatSN(r.StatSN, "Text Response"); err != nil {
		return err
	}
	s.updateSN(r.StatSN, r.ExpCmdSN, r.MaxCmdSN, true)
	if err := s.readData(n); err != nil {
		return err
	}
	if t := s.lookup(r.ITT, kindText); t != nil {
		t.more = r.Continue
		t.ttt = r.TTT
		t.data = append(t.data[:0], s.rdata...)
		s.completeLocked(t)
		t.mu.Unlock()
	}
	return nil
}

// reject fails the task whose PDU the target rejected (RFC 7143 §11.17).
func (s *Session) reject(n int) error {
	r := &s.in.rej
	s.updateSN(r.StatSN, r.ExpCmdSN, r.MaxCmdSN, true)
	if err := s.readData(n); err != nil {
		return err
	}
	if len(s.rdata) < BHSLen {
		return fmt.Errorf("reject (%v) without the rejected header", r.Reason)
	}
	rej := pdu.BHS(s.rdata[:BHSLen])
	ritt := rej.InitiatorTaskTag()
	s.log.Warn("target rejected a PDU", "reason", r.Reason, "opcode", rej.Opcode(), "itt", ritt)
	var kind taskKind
	switch rej.Opcode() {
	case pdu.OpSCSICommand, pdu.OpDataOut:
		kind = kindSCSI
	case pdu.OpNOPOut:
		kind = kindNOP
	case pdu.OpTaskMgmtReq:
		kind = kindTMF
	case pdu.OpTextReq:
		kind = kindText
	case pdu.OpLogoutReq:
		kind = kindLogout
	}
	if t := s.lookup(ritt, kind); t != nil {
		t.err = &RejectError{Reason: r.Reason, Opcode: rej.Opcode()}
		s.completeLocked(t)
		t.mu.Unlock()
	}
	return nil
}

// answerNOPIn answers a target's ping (RFC 7143 §11.18): a NOP-Out with
// the target's TTT, ITT 0xffffffff, immediate, echoing the data.
func (s *Session) answerNOPIn(ttt uint32, lun pdu.LUN) error {
	s.seqMu.Lock()
	cmdSN := s.cmdSN
	s.seqMu.Unlock()
	s.in.nopOut = pdu.NOPOut{
		Immediate: true, LUN: lun, ITT: reservedTag, TTT: ttt,
		CmdSN: cmdSN, ExpStatSN: s.expStatSN.Load(), Data: s.rdata,
	}
	if _, err := s.in.nopOut.AppendBinary(s.nop[:0]); err != nil {
		return fmt.Errorf("encode NOP-Out: %w", err)
	}
	return s.c.Send(&s.nop, nil, s.rdata)
}

// RejectError reports a request the target answered with a Reject PDU
// (RFC 7143 §11.17).
type RejectError struct {
	Reason pdu.RejectReason
	Opcode pdu.Opcode // opcode of the rejected PDU
}

// Error implements error.
func (e *RejectError) Error() string {
	return fmt.Sprintf("initiator: target rejected %v: %v", e.Opcode, e.Reason)
}

// ErrAborted is the error of a command that a task management function
// aborted.
var ErrAborted = errors.New("initiator: task aborted")

// Close ends the session: a Logout (bounded to two seconds) when the
// session is still up, then the connection is closed and the reader
// stopped. It is safe to call more than once and always returns nil (a
// failed Logout is only logged: the connection is gone either way).
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		if s.Err() == nil && !s.loggedOut.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			// A write blocked by a target that stopped reading ignores
			// ctx: closing the connection unblocks it.
			stop := context.AfterFunc(ctx, func() { _ = s.c.Close() })
			if err := s.Logout(ctx); err != nil {
				s.log.Debug("logout on close", "err", err)
			}
			stop()
			cancel()
		}
		s.fail(ErrClosed)
		<-s.closed
	})
	return nil
}
