package iscsi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/scsi"
)

// inboundSlots is how many Inbound buffers circulate between a
// connection's reader and its owner: the reader fills one while the owner
// handles another.
const inboundSlots = 4

// errConnDone ends a connection without an error worth logging (logout,
// shutdown).
var errConnDone = errors.New("connection closed")

// conn is one iSCSI connection, run by three kinds of goroutine:
//
//   - the reader (reader) pumps Inbound events from TransportConn.Recv to
//     the owner;
//   - the owner (serve: login, then fullFeature) holds every piece of
//     protocol state: sequence numbers, the task table, pending TMFs,
//     keep-alive and text exchanges;
//   - workers (worker), at most Server.Workers, run SCSI commands and hand
//     them back.
//
// Its fields come in groups, one struct each, that say who owns them. The
// groups are embedded, so their fields read as c.statSN, c.tasks, ...
type conn struct {
	// srv is the server the connection arrived on. Immutable; never nil.
	srv *Server
	// tc is the transport connection. Immutable; never nil.
	tc TransportConn

	connLife            // ending the connection: any goroutine
	connPipes           // channels between the goroutines; see each for its direction
	connLogin           // set by the owner during login, read-only afterwards
	seqState            // sequence numbers: owner, published for the transport
	taskTable           // tasks and workers: owner
	keepAlive           // NOP-In pings: owner
	pduBufs             // encoding and decoding scratch: owner
	text      textState // Text exchange in progress: owner
}

// connLife ends a connection. Every field is safe from any goroutine.
type connLife struct {
	// ctx is cancelled when the connection ends (teardown, and serve
	// returning): the reader and running commands stop.
	ctx    context.Context
	cancel context.CancelFunc
	// shutCh is closed by shutdown: the owner asks the initiator to log
	// out and ends once it has (or LoginTimeout has passed).
	shutCh  chan struct{}
	shutOne sync.Once
	// abortCh is closed by abort, which also closes the transport: the
	// owner ends at once; running commands finish without a response.
	abortCh chan struct{}
	abortOn sync.Once
	// ended is closed when serve returns, once nothing of the connection
	// is left (session reinstatement and other sessions' TMFs wait on
	// it).
	ended chan struct{}
}

// connPipes are the channels the owner exchanges work on. Buffered ones
// never block their sender: inCh and inFree hold all inboundSlots
// Inbounds, workCh and doneCh more tasks than the CmdSN window admits.
type connPipes struct {
	inCh     chan *Inbound // reader -> owner: a filled Inbound
	inFree   chan *Inbound // owner -> reader: an Inbound to fill
	readErr  chan error    // reader -> owner, once: Recv failed
	readDone chan struct{} // closed by the reader when it returns
	// inbounds are the Inbounds that circulate on inCh and inFree. Each
	// belongs to whoever holds it (the reader filling it, the owner
	// handling it); teardown looks at them all once the reader is gone.
	inbounds [inboundSlots]Inbound
	workCh   chan *Task // owner -> workers: a task to execute; closed by teardown
	doneCh   chan *Task // workers -> owner: an executed task
	// extCh carries other sessions' resets to this owner (from their
	// abortElsewhere goroutines); unbuffered, the sender also watches
	// ended.
	extCh chan *thirdParty
	// othersDone reports to this owner that other sessions finished
	// aborting for one of our TMFs (from abortElsewhere's goroutine).
	othersDone chan *pendingTMF
}

// connLogin is what the login decides. The owner writes it during login;
// afterwards it does not change, and workers read luns.
type connLogin struct {
	log    *slog.Logger // grows the initiator's attributes at login
	sess   *session     // nil until the full feature phase
	params Params       // negotiated; given to the transport by SetParams
	nexus  scsi.Nexus   // the session's I_T nexus (zero for discovery)
	luns   *scsi.Target // the target's LUNs; nil for discovery
}

// seqState holds the connection's sequence numbers (RFC 7143 §4.2.2):
// StatSN, and the CmdSN window ExpCmdSN..MaxCmdSN with what sizes it. The
// owner reads and writes the plain fields; publish copies the numbers to
// pub, which the transport reads from any goroutine (Numbers) for the
// PDUs it sends on its own (R2Ts). openWindow is the one place MaxCmdSN
// is computed.
type seqState struct {
	statSN   uint32
	expCmdSN uint32
	maxCmdSN uint32
	// budget bounds the session's task buffers (nil in discovery);
	// taskSize estimates the buffer of the next command (bytes) to size
	// the window from the room left in budget.
	budget   *Budget
	taskSize int

	pub struct{ statSN, expCmdSN, maxCmdSN atomic.Uint32 }
}

// Numbers implements SeqNumbers for the transport.
func (s *seqState) Numbers() (statSN, expCmdSN, maxCmdSN uint32) {
	return s.pub.statSN.Load(), s.pub.expCmdSN.Load(), s.pub.maxCmdSN.Load()
}

// publish makes the current numbers visible to Numbers.
func (s *seqState) publish() {
	s.pub.statSN.Store(s.statSN)
	s.pub.expCmdSN.Store(s.expCmdSN)
	s.pub.maxCmdSN.Store(s.maxCmdSN)
}

// taskTable holds the connection's tasks. Owner only: a task on a worker
// (state taskExecuting) is still in tasks, and only its cmd is the
// worker's until it comes back on doneCh.
type taskTable struct {
	tasks    map[uint32]*Task // outstanding tasks by ITT
	free     []*Task          // released tasks for reuse (getTask)
	nWorkers int              // worker goroutines started (at most Server.Workers)
	busy     int              // tasks sent on workCh and not yet back on doneCh
	// tmfs are task management requests waiting for their tasks to
	// finish (ours answered in order; third-party ones as they finish).
	tmfs []*pendingTMF
}

// keepAlive is the NOP-In ping state (RFC 7143 §11.19). Owner only.
type keepAlive struct {
	lastRecv time.Time // when the last Inbound arrived
	pingTTT  uint32    // TTT of the outstanding target ping; 0 when none
	pingSent time.Time // when it was sent
	nextPing uint32    // last TTT used for a ping
}

// pduBufs is scratch for decoding and encoding PDUs. Owner only.
type pduBufs struct {
	dec    pdu.Decoder
	hdrBuf [BHSLen]byte
	encBuf []byte
	rsp    Response // scratch for complete; handed to PutData
}

// The owner hands c itself to the transport as its SeqNumbers.
var _ SeqNumbers = (*conn)(nil)

func newConn(s *Server, tc TransportConn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		srv: s,
		tc:  tc,
		connLife: connLife{
			ctx:     ctx,
			cancel:  cancel,
			shutCh:  make(chan struct{}),
			abortCh: make(chan struct{}),
			ended:   make(chan struct{}),
		},
		connPipes: connPipes{
			inCh:       make(chan *Inbound, inboundSlots),
			inFree:     make(chan *Inbound, inboundSlots),
			readErr:    make(chan error, 1),
			readDone:   make(chan struct{}),
			workCh:     make(chan *Task, s.queueDepth()+inboundSlots),
			doneCh:     make(chan *Task, s.queueDepth()+inboundSlots),
			extCh:      make(chan *thirdParty),
			othersDone: make(chan *pendingTMF),
		},
		connLogin: connLogin{log: s.logger().With("peer", tc.RemoteAddr().String())},
		taskTable: taskTable{tasks: make(map[uint32]*Task)},
		pduBufs:   pduBufs{encBuf: make([]byte, 0, BHSLen)},
	}
}

// shutdown asks the connection to end gracefully. Safe from any goroutine.
func (c *conn) shutdown() { c.shutOne.Do(func() { close(c.shutCh) }) }

// abort ends the connection at once. Safe from any goroutine.
func (c *conn) abort() {
	c.abortOn.Do(func() {
		close(c.abortCh)
		_ = c.tc.Close()
	})
}

// reader pumps events from the transport to the owner. Every Inbound it
// fills goes to the owner, even once the connection is ending (inCh holds
// them all, so the send never blocks): the task buffer of a SCSI Command
// in it is the owner's to release.
func (c *conn) reader() {
	defer close(c.readDone)
	for {
		var in *Inbound
		select {
		case in = <-c.inFree:
		case <-c.ctx.Done():
			return
		}
		if err := c.tc.Recv(c.ctx, in); err != nil {
			c.readErr <- err
			return
		}
		c.inCh <- in
	}
}

// serve runs the connection: login, then the full feature phase.
func (c *conn) serve() {
	defer close(c.ended)
	defer c.cancel()
	defer func() { _ = c.tc.Close() }()
	for i := range c.inbounds {
		c.inFree <- &c.inbounds[i]
	}
	go c.reader()
	err := c.login()
	if err == nil {
		err = c.fullFeature()
	}
	c.teardown()
	c.awaitDrained()
	switch {
	case err == nil, errors.Is(err, errConnDone):
		c.log.Debug("iscsi: connection closed")
	case errors.Is(err, errLoginFailed):
		c.log.Warn("iscsi: login failed", "err", err)
	case errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled):
		c.log.Debug("iscsi: connection closed", "err", err)
	default:
		c.log.Info("iscsi: connection lost", "err", err)
	}
}

// next waits for the next event during login.
func (c *conn) nextLogin(deadline <-chan time.Time) (*Inbound, error) {
	select {
	case in := <-c.inCh:
		return in, nil
	case err := <-c.readErr:
		return nil, err
	case <-deadline:
		return nil, fmt.Errorf("%w: login timeout after %v", errLoginFailed, c.srv.loginTimeout())
	case <-c.shutCh:
		return nil, errConnDone
	case <-c.abortCh:
		return nil, errConnDone
	}
}

// login runs the login phase (RFC 7143 §6) until the full feature phase or
// a failure.
func (c *conn) login() error {
	timer := time.NewTimer(c.srv.loginTimeout())
	defer timer.Stop()
	ls := &loginState{srv: c.srv, c: c, opts: c.srv.Negotiation.withDefaults()}
	if ic, ok := c.tc.(ISERConn); ok && ic.ISER() {
		ls.iser = true
		ls.iserRecv = ic.TargetRecvDataSegmentLength()
	}
	var rsp pdu.LoginResponse
	var req pdu.LoginRequest
	for {
		in, err := c.nextLogin(timer.C)
		if err != nil {
			return err
		}
		h := pdu.BHS(in.BHS[:])
		if h.Opcode() != pdu.OpLoginReq {
			c.inFree <- in
			return fmt.Errorf("%w: %v during login", errLoginFailed, h.Opcode())
		}
		if err := req.UnmarshalBinary(in.BHS[:]); err != nil {
			c.inFree <- in
			ls.itt = h.InitiatorTaskTag()
			c.sendLoginError(ls, &rsp, pdu.LoginInitiatorError)
			return fmt.Errorf("%w: %v", errLoginFailed, err)
		}
		req.Data = in.Data
		if !ls.started {
			c.statSN = req.ExpStatSN
		}
		herr := ls.handle(&req, &rsp)
		c.inFree <- in
		c.expCmdSN = req.CmdSN
		c.maxCmdSN = req.CmdSN
		var le *loginError
		if errors.As(herr, &le) {
			c.sendLoginError(ls, &rsp, le.status)
			c.log.Warn("iscsi: login rejected", "initiator", ls.initiator, "isid", fmt.Sprintf("%x", ls.isid[:]),
				"status", le.status.String(), "reason", le.msg)
			return herr
		}
		if ls.done {
			if err := c.enterFullFeature(ls, &rsp); err != nil {
				st := pdu.LoginTargetError
				if errors.As(err, &le) {
					st = le.status
					c.log.Warn("iscsi: login rejected", "initiator", ls.initiator, "isid", fmt.Sprintf("%x", ls.isid[:]),
						"status", le.status.String(), "reason", le.msg)
				}
				c.sendLoginError(ls, &rsp, st)
				return err
			}
		}
		rsp.StatSN = c.statSN
		c.statSN++
		rsp.ExpCmdSN = c.expCmdSN
		rsp.MaxCmdSN = c.maxCmdSN
		if err := c.sendPDU(&rsp, rsp.Data); err != nil {
			return err
		}
		if ls.done {
			return nil
		}
	}
}

// sendLoginError sends a Login Response with an error status.
func (c *conn) sendLoginError(ls *loginState, rsp *pdu.LoginResponse, st pdu.LoginStatus) {
	*rsp = pdu.LoginResponse{ISID: ls.isid, ITT: ls.itt, Status: st, StatSN: c.statSN, ExpCmdSN: c.expCmdSN, MaxCmdSN: c.maxCmdSN, CSG: ls.stage}
	c.statSN++
	if err := c.sendPDU(rsp, nil); err != nil {
		c.log.Debug("iscsi: send login response", "err", err)
	}
}

// enterFullFeature registers the session and switches the transport to
// the negotiated parameters, before the final Login Response goes out.
func (c *conn) enterFullFeature(ls *loginState, rsp *pdu.LoginResponse) error {
	c.params = ls.params()
	var sess *session
	var err error
	if ls.reinstate != nil {
		sess, err = c.srv.replaceConn(ls.reinstate, c)
	} else {
		sess, err = c.srv.addSession(ls, c)
	}
	if err != nil {
		return err
	}
	c.sess = sess
	rsp.TSIH = sess.tsih
	c.params.CmdWindow = c.srv.queueDepth()
	if !ls.discovery {
		c.budget = NewBudget(c.srv.limits.MaxSessionTaskMemory, c.srv.memory)
		c.params.Budget = c.budget
	}
	// The login's window (MaxCmdSN = CmdSN) is no floor for the full
	// feature phase's: start closed and let openWindow size it.
	c.maxCmdSN = c.expCmdSN - 1
	c.openWindow(0)
	if ls.target != nil {
		c.luns = ls.target.LUNs
		c.nexus = sess.nexus
	}
	c.log = c.log.With("initiator", ls.initiator, "isid", fmt.Sprintf("%012x", ls.isid[:]), "tsih", sess.tsih)
	c.publish()
	if err := c.tc.SetParams(c.params, c); err != nil {
		return fmt.Errorf("set transport parameters: %w", err)
	}
	kind := "normal"
	if ls.discovery {
		kind = "discovery"
	}
	target := ""
	if ls.target != nil {
		target = ls.target.Name
	}
	c.log.Info("iscsi: login", "session", kind, "target", target,
		"header_digest", c.params.HeaderDigest, "data_digest", c.params.DataDigest,
		"mrdsl", c.params.InitiatorMaxRecvDSL, "max_burst", c.params.MaxBurstLength,
		"first_burst", c.params.FirstBurstLength, "immediate_data", c.params.ImmediateData,
		"initial_r2t", c.params.InitialR2T)
	return nil
}

// sendPDU encodes p's header and sends it with data.
func (c *conn) sendPDU(p pdu.PDU, data []byte) error {
	p.SetDataSegment(data)
	b, err := p.AppendBinary(c.encBuf[:0])
	if err != nil {
		return fmt.Errorf("encode %v: %w", p.Opcode(), err)
	}
	copy(c.hdrBuf[:], b)
	c.encBuf = b[:0]
	if err := c.tc.Send(&c.hdrBuf, data); err != nil {
		return fmt.Errorf("send %v: %w", p.Opcode(), err)
	}
	return nil
}

// Ending a connection.
//
// What the owner handed out comes back on four paths, and each has one
// place that waits for it:
//
//   - tasks on workers come back on doneCh: awaitWorkers, the only loop
//     that waits for them (at logout, at a shutdown the initiator did
//     not answer, and in teardown);
//   - tasks waiting for a buffer or for Data-Out are in the task table
//     and wait for nothing: teardown releases them (at logout they are
//     dropped the same way, once the Logout Response is out);
//   - SCSI Commands the reader received but the owner never handled hold
//     task buffers in their Inbounds: releaseUnread waits for the reader
//     to stop and releases them;
//   - what the transport still has in flight (work requests, buffers it
//     keeps until their sends complete) comes back after Close:
//     awaitDrained.
//
// Aborted tasks a TMF waits for are not waited for in a loop: the owner
// loop passes them to complete, and tmfProgressErr answers the TMF once
// they are gone. Waits on other connections (a reset reaching other
// sessions, a reinstatement replacing a connection) watch that
// connection's ended, which serve closes last.

// teardown releases everything the connection holds: it closes the
// transport, waits for running commands (their responses are not sent),
// releases task buffers (of tasks, and of commands never handled), stops
// the workers and unregisters the session.
func (c *conn) teardown() {
	_ = c.tc.Close()
	c.cancel()
	_ = c.awaitWorkers(c.discard, nil, nil) // never fails: discard does not, and nothing is watched
	for _, t := range c.tasks {
		c.releaseTask(t)
	}
	c.releaseUnread()
	close(c.workCh)
	if c.sess != nil {
		c.srv.removeSession(c.sess, c)
	}
}

// awaitWorkers waits until every task handed to a worker has come back
// on doneCh (busy == 0) and passes each to finish. It returns nil then,
// or earlier: finish's error; errConnDone once abort is closed; the error
// readErr delivers. A nil abort or readErr is not watched.
//
// Its callers differ for real reasons:
//
//   - logout (finish: complete; watches abort and readErr): running
//     commands are answered before the Logout Response, which RFC 7143
//     §11.14 orders after them. The connection would go on to send that
//     response, so a read error ends it here as it would anywhere in the
//     full feature phase.
//   - shutdown when the initiator did not log out within LoginTimeout
//     (complete; abort only): Server.Shutdown answers the commands
//     already received; the connection ends after the wait anyway, so
//     what the reader reports does not matter.
//   - teardown (discard; nothing watched): the transport is closed and
//     ctx cancelled, so no response can go out and complete must not run
//     (it would also answer and execute pending TMFs). It cannot give up:
//     a task on a worker holds a transport buffer that must be released
//     before the connection drains. Workers see ctx cancelled.
func (c *conn) awaitWorkers(finish func(*Task) error, abort <-chan struct{}, readErr <-chan error) error {
	for c.busy > 0 {
		select {
		case t := <-c.doneCh:
			c.busy--
			if err := finish(t); err != nil {
				return err
			}
		case <-abort:
			return errConnDone
		case err := <-readErr:
			return err
		}
	}
	return nil
}

// releaseUnread waits for the reader to return (teardown has closed the
// transport and cancelled ctx, so Recv returns) and releases the task
// buffers of SCSI Commands the owner never handled: those still queued on
// inCh when the owner stopped, and one a failing Recv may have left. The
// owner takes the buffer out of every command it handles (in.Task is nil
// after handle), and InDataDone and InBufferReady name tasks of the task
// table, so nothing is released twice.
func (c *conn) releaseUnread() {
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
		c.log.Error("iscsi: transport Recv did not return after close; buffers of unread commands are leaked", "after", drainTimeout)
		return
	}
	for i := range c.inbounds {
		if in := &c.inbounds[i]; in.Kind == InPDU {
			c.releaseInbound(in)
		}
	}
}

// discard releases a task without answering it (awaitWorkers in
// teardown).
func (c *conn) discard(t *Task) error {
	c.releaseTask(t)
	return nil
}

// drainTimeout bounds how long a connection waits for its transport to
// reap what it still has in flight after Close.
const drainTimeout = 30 * time.Second

// awaitDrained waits until the transport has reaped every work request and
// returned every buffer of the connection (TransportConn.Drained), so that
// a connection counts as gone, and Server.Shutdown returns, only when
// nothing of it is left.
func (c *conn) awaitDrained() {
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-c.tc.Drained():
	case <-t.C:
		c.log.Error("iscsi: transport did not drain after close; its resources are leaked", "after", drainTimeout)
	}
}
