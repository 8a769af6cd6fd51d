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

// conn is one iSCSI connection: the reader goroutine pumps Inbound events
// from the transport, the owner goroutine (serve) holds every piece of
// ordering state, and workers run SCSI commands.
type conn struct {
	// srv is the server the connection arrived on. Immutable; never nil.
	srv *Server
	// tc is the transport connection. Immutable; never nil.
	tc  TransportConn
	log *slog.Logger // owner goroutine; grows attributes after login

	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc

	inCh    chan *Inbound // reader -> owner
	inFree  chan *Inbound // owner -> reader
	readErr chan error    // reader -> owner, once
	workCh  chan *Task    // owner -> workers
	doneCh  chan *Task    // workers -> owner
	shutCh  chan struct{} // closed by shutdown
	shutOne sync.Once
	abortCh chan struct{} // closed by abort
	abortOn sync.Once
	ended   chan struct{} // closed when serve returns
	// extCh carries other sessions' resets to this owner; othersDone
	// reports that other sessions finished aborting for one of our TMFs.
	extCh      chan *thirdParty
	othersDone chan *pendingTMF

	// Owner-goroutine state.
	sess     *session
	params   Params
	nexus    scsi.Nexus
	luns     *scsi.Target
	statSN   uint32
	expCmdSN uint32
	maxCmdSN uint32
	tasks    map[uint32]*Task // outstanding tasks by ITT
	free     []*Task
	nWorkers int
	busy     int
	tmfs     []*pendingTMF
	dec      pdu.Decoder
	hdrBuf   [BHSLen]byte
	rsp      Response // scratch for complete; handed to PutData
	encBuf   []byte
	text     textState
	lastRecv time.Time
	pingTTT  uint32 // TTT of the outstanding target ping; 0 when none
	pingSent time.Time
	nextPing uint32
	// budget bounds the session's task buffers (nil in discovery);
	// taskSize estimates the buffer of the next command (bytes) to size
	// the CmdSN window from the room left in budget.
	budget   *Budget
	taskSize int

	// seq publishes StatSN/ExpCmdSN/MaxCmdSN to the transport (R2Ts).
	seqStatSN, seqExpCmdSN, seqMaxCmdSN atomic.Uint32
}

// Numbers implements SeqNumbers for the transport.
func (c *conn) Numbers() (statSN, expCmdSN, maxCmdSN uint32) {
	return c.seqStatSN.Load(), c.seqExpCmdSN.Load(), c.seqMaxCmdSN.Load()
}

func (c *conn) publish() {
	c.seqStatSN.Store(c.statSN)
	c.seqExpCmdSN.Store(c.expCmdSN)
	c.seqMaxCmdSN.Store(c.maxCmdSN)
}

func newConn(s *Server, tc TransportConn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		srv:        s,
		tc:         tc,
		log:        s.logger().With("peer", tc.RemoteAddr().String()),
		ctx:        ctx,
		cancel:     cancel,
		inCh:       make(chan *Inbound, inboundSlots),
		inFree:     make(chan *Inbound, inboundSlots),
		readErr:    make(chan error, 1),
		doneCh:     make(chan *Task, s.queueDepth()+inboundSlots),
		workCh:     make(chan *Task, s.queueDepth()+inboundSlots),
		shutCh:     make(chan struct{}),
		abortCh:    make(chan struct{}),
		ended:      make(chan struct{}),
		extCh:      make(chan *thirdParty),
		othersDone: make(chan *pendingTMF),
		tasks:      make(map[uint32]*Task),
		encBuf:     make([]byte, 0, BHSLen),
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

// reader pumps events from the transport to the owner.
func (c *conn) reader() {
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
		select {
		case c.inCh <- in:
		case <-c.ctx.Done():
			return
		}
	}
}

// serve runs the connection: login, then the full feature phase.
func (c *conn) serve() {
	defer close(c.ended)
	defer c.cancel()
	defer func() { _ = c.tc.Close() }()
	for range inboundSlots {
		c.inFree <- new(Inbound)
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

// teardown releases everything the connection holds: it waits for
// running commands (their responses are not sent), releases task buffers,
// and unregisters the session.
func (c *conn) teardown() {
	_ = c.tc.Close()
	c.cancel()
	for c.busy > 0 {
		t := <-c.doneCh
		c.busy--
		c.releaseTask(t)
	}
	for _, t := range c.tasks {
		c.releaseTask(t)
	}
	close(c.workCh)
	if c.sess != nil {
		c.srv.removeSession(c.sess, c)
	}
}
