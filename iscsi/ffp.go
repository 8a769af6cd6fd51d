package iscsi

import (
	"errors"
	"fmt"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/scsi"
)

// fullFeature is the owner loop of the full feature phase.
func (c *conn) fullFeature() error {
	interval := c.srv.nopInterval()
	tick := time.Second
	if interval > 0 {
		tick = min(interval, c.srv.nopTimeout()) / 2
		tick = max(tick, 10*time.Millisecond)
	}
	if d := c.srv.limits.DataOutTimeout; d > 0 {
		tick = max(min(tick, d/2), 10*time.Millisecond)
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	c.lastRecv = time.Now()
	shutCh := c.shutCh
	var logoutDeadline <-chan time.Time
	// While events are already waiting (a burst of completions or of
	// commands run inline), the responses they produce are held by a
	// transport that batches (BatchSender) and written together once the
	// burst is over, at most maxBurst events later. The hold never lasts
	// into a blocking wait: the loop flushes whenever nothing is waiting.
	bs, _ := c.tc.(BatchSender)
	holding, burst := false, 0
	defer func() {
		if holding {
			_ = bs.Flush() // recycles the held buffers; the connection is ending
		}
	}()
	for {
		if bs != nil {
			waiting := len(c.inCh) + len(c.doneCh)
			if holding && (waiting == 0 || burst >= maxBurst) {
				holding = false
				if err := bs.Flush(); err != nil {
					return fmt.Errorf("send responses: %w", err)
				}
			}
			if !holding && waiting > 1 {
				bs.Hold()
				holding, burst = true, 0
			}
			burst++
		}
		select {
		case in := <-c.inCh:
			c.lastRecv = time.Now()
			err := c.handle(in)
			c.inFree <- in
			if err != nil {
				return err // errConnDone after a logout
			}
		case t := <-c.doneCh:
			c.busy--
			if err := c.complete(t); err != nil {
				return err
			}
		case err := <-c.readErr:
			return err
		case now := <-ticker.C:
			if err := c.nopCheck(now, interval); err != nil {
				return err
			}
		case <-shutCh:
			shutCh = nil
			if err := c.requestLogout(); err != nil {
				return err
			}
			logoutDeadline = time.After(c.srv.loginTimeout())
		case <-logoutDeadline:
			// The initiator did not log out: answer what runs and go.
			if err := c.awaitWorkers(c.complete, c.abortCh, nil); err != nil {
				return err
			}
			return errConnDone
		case tp := <-c.extCh:
			if err := c.thirdPartyAbort(tp); err != nil {
				return err
			}
		case pt := <-c.othersDone:
			pt.others = false
			if err := c.tmfProgressErr(); err != nil {
				return err
			}
		case <-c.abortCh:
			return errConnDone
		}
	}
}

// maxBurst is the most events whose responses the owner holds for one
// batched write (BatchSender).
const maxBurst = 16

// dataCheck ends the connection when a write has waited for its Data-Out
// longer than Limits.DataOutTimeout: at ErrorRecoveryLevel 0 a stalled
// data phase is recovered by a new connection (LIO does the same), and
// ending this one releases every buffer it holds.
func (c *conn) dataCheck(now time.Time) error {
	limit := c.srv.limits.DataOutTimeout
	if limit <= 0 {
		return nil
	}
	for _, t := range c.tasks {
		if t.state == taskWaitData && now.Sub(t.dataSince) > limit {
			return fmt.Errorf("Data-Out for ITT %#x (%d of %d bytes wanted) not received within %v",
				t.ITT, t.want, t.EDTL, limit)
		}
	}
	return nil
}

// nopCheck sends a NOP-In ping on an idle connection and drops the
// connection when a ping goes unanswered (RFC 7143 §11.19).
func (c *conn) nopCheck(now time.Time, interval time.Duration) error {
	if err := c.dataCheck(now); err != nil {
		return err
	}
	if interval <= 0 {
		return nil
	}
	if c.pingTTT != 0 {
		if now.Sub(c.pingSent) > c.srv.nopTimeout() {
			return fmt.Errorf("NOP-In ping unanswered for %v", now.Sub(c.pingSent).Round(time.Millisecond))
		}
		return nil
	}
	if now.Sub(c.lastRecv) < interval {
		return nil
	}
	c.nextPing++
	if c.nextPing == 0 || c.nextPing == reservedTag {
		c.nextPing = 1
	}
	c.pingTTT = c.nextPing
	c.pingSent = now
	// A ping does not advance StatSN (RFC 7143 §11.19.4).
	nop := pdu.NOPIn{LUN: 0, ITT: reservedTag, TTT: c.pingTTT, StatSN: c.statSN, ExpCmdSN: c.expCmdSN, MaxCmdSN: c.maxCmdSN}
	return c.sendPDU(&nop, nil)
}

// requestLogout asks the initiator to log out (Async Message, RFC 7143
// §11.9.1 event 1) because the server shuts down.
func (c *conn) requestLogout() error {
	if c.params.Discovery {
		return errConnDone
	}
	msg := pdu.AsyncMessage{
		LUN:        0,
		StatSN:     c.statSN,
		ExpCmdSN:   c.expCmdSN,
		MaxCmdSN:   c.maxCmdSN,
		Event:      pdu.AsyncLogoutRequested,
		Parameter3: 2, // seconds to log out in
	}
	c.statSN++
	c.publish()
	return c.sendPDU(&msg, nil)
}

// advance applies the CmdSN rules of RFC 7143 §4.2.2.1 to a
// non-immediate command: it reports false for a command outside the
// window, which is dropped silently.
func (c *conn) advance(imm bool, cmdSN uint32) bool {
	if imm {
		return true
	}
	if !seqInWindow(cmdSN, c.expCmdSN, c.maxCmdSN) {
		c.log.Warn("iscsi: CmdSN outside the window, command ignored",
			"cmdsn", cmdSN, "expcmdsn", c.expCmdSN, "maxcmdsn", c.maxCmdSN)
		return false
	}
	if cmdSN != c.expCmdSN {
		// Ahead of ExpCmdSN: with one connection per session the
		// commands in between are lost for good (rejected, or never
		// sent), so waiting for them would close the window forever.
		c.log.Debug("iscsi: CmdSN gap skipped", "cmdsn", cmdSN, "expcmdsn", c.expCmdSN)
	}
	c.expCmdSN = cmdSN + 1
	return true
}

// window recomputes MaxCmdSN for the tasks in flight.
func (c *conn) window() { c.openWindow(len(c.tasks)) }

// openWindow recomputes MaxCmdSN (RFC 7143 §4.2.2.1) with active tasks in
// flight: the window admits QueueDepth - active more commands, so the
// commands in flight and those the initiator may still send never exceed
// QueueDepth, and it closes (MaxCmdSN = ExpCmdSN - 1) when they reach it.
// While the session's task memory is scarce it admits only as many
// commands as the room left would hold at the estimated buffer size;
// with nothing in flight it always admits one, so a session never waits
// for a window that only its own completions could reopen. MaxCmdSN never
// goes backwards.
func (c *conn) openWindow(active int) {
	free := max(c.srv.queueDepth()-active, 0)
	if c.budget != nil && free > 0 {
		byMem := c.budget.Available() / int64(max(c.taskSize, minTaskSize))
		free = int(min(int64(free), byMem))
		if active == 0 {
			free = max(free, 1)
		}
	}
	m := c.expCmdSN + uint32(free) - 1
	if seqLess(c.maxCmdSN, m) {
		c.maxCmdSN = m
	}
	c.publish()
}

// minTaskSize is the least buffer size the window assumes per command.
const minTaskSize = 4096

// noteTaskSize updates the buffer size estimate with a new command's
// buffer of n bytes: a larger one takes over at once, smaller ones pull
// the estimate down slowly.
func (c *conn) noteTaskSize(n int) {
	if n >= c.taskSize {
		c.taskSize = n
	} else {
		c.taskSize -= (c.taskSize - n) / 16
	}
}

// handle processes one inbound event.
func (c *conn) handle(in *Inbound) error {
	switch in.Kind {
	case InDataDone:
		return c.dataDone(in)
	case InBufferReady:
		return c.bufferReady(in)
	}
	h := pdu.BHS(in.BHS[:])
	op := h.Opcode()
	if c.params.Discovery {
		switch op {
		case pdu.OpTextReq, pdu.OpLogoutReq, pdu.OpNOPOut:
		default:
			return c.reject(pdu.RejectProtocolError, &in.BHS, "opcode not allowed in a discovery session")
		}
	}
	p, err := c.dec.Decode(in.BHS[:])
	if err != nil {
		var uo *pdu.UnknownOpcodeError
		if errors.As(err, &uo) || !op.Initiator() {
			return c.reject(pdu.RejectCommandNotSupported, &in.BHS, err.Error())
		}
		c.releaseInbound(in)
		reason, ok := pdu.RejectReasonFor(err)
		if !ok {
			reason = pdu.RejectInvalidPDUField
		}
		return c.reject(reason, &in.BHS, err.Error())
	}
	switch p := p.(type) {
	case *pdu.SCSICommand:
		if err := p.DecodeAHS(in.AHS); err != nil {
			c.releaseInbound(in)
			return c.reject(pdu.RejectProtocolError, &in.BHS, err.Error())
		}
		return c.command(p, in)
	case *pdu.NOPOut:
		return c.nopOut(p, in)
	case *pdu.TaskMgmtRequest:
		return c.taskMgmt(p)
	case *pdu.TextRequest:
		p.Data = in.Data
		return c.textRequest(p)
	case *pdu.LogoutRequest:
		return c.logout(p)
	case *pdu.SNACKRequest:
		return c.reject(pdu.RejectProtocolError, &in.BHS, "SNACK at ErrorRecoveryLevel 0")
	case *pdu.LoginRequest:
		c.rejectQuiet(pdu.RejectProtocolError, &in.BHS)
		return fmt.Errorf("login request in the full feature phase")
	}
	return c.reject(pdu.RejectCommandNotSupported, &in.BHS, "unexpected opcode "+op.String())
}

// releaseInbound frees the task buffer of a SCSI Command that will not run.
func (c *conn) releaseInbound(in *Inbound) {
	if in.Task == nil {
		return
	}
	var t Task
	t.ITT = pdu.BHS(in.BHS[:]).InitiatorTaskTag()
	t.Data = in.Task
	t.Buf = in.Task.Buffer()
	c.tc.Release(&t)
	in.Task = nil
}

// reject sends a Reject (RFC 7143 §11.17) with the offending header and
// keeps the connection.
func (c *conn) reject(reason pdu.RejectReason, bad *[BHSLen]byte, why string) error {
	c.log.Warn("iscsi: reject", "reason", reason.String(), "opcode", pdu.BHS(bad[:]).Opcode().String(),
		"itt", fmt.Sprintf("%#x", pdu.BHS(bad[:]).InitiatorTaskTag()), "detail", why)
	return c.sendReject(reason, bad)
}

func (c *conn) rejectQuiet(reason pdu.RejectReason, bad *[BHSLen]byte) {
	_ = c.sendReject(reason, bad)
}

func (c *conn) sendReject(reason pdu.RejectReason, bad *[BHSLen]byte) error {
	r := pdu.Reject{Reason: reason, StatSN: c.statSN, ExpCmdSN: c.expCmdSN, MaxCmdSN: c.maxCmdSN}
	c.statSN++
	c.publish()
	hdr := *bad
	return c.sendPDU(&r, hdr[:])
}

// nopOut answers an initiator ping or consumes the answer to ours.
func (c *conn) nopOut(p *pdu.NOPOut, in *Inbound) error {
	if p.ITT == reservedTag {
		// Answer to a target ping (must be immediate; CmdSN unchanged).
		if p.TTT == c.pingTTT {
			c.pingTTT = 0
		}
		return nil
	}
	if !c.advance(p.Immediate, p.CmdSN) {
		return nil
	}
	c.window()
	rsp := pdu.NOPIn{LUN: p.LUN, ITT: p.ITT, TTT: reservedTag, StatSN: c.statSN, ExpCmdSN: c.expCmdSN, MaxCmdSN: c.maxCmdSN}
	c.statSN++
	c.publish()
	data := in.Data
	if len(data) > int(c.params.InitiatorMaxRecvDSL) {
		data = data[:c.params.InitiatorMaxRecvDSL]
	}
	return c.sendPDU(&rsp, data)
}

// logout handles a Logout Request (RFC 7143 §11.14).
func (c *conn) logout(p *pdu.LogoutRequest) error {
	if !c.advance(p.Immediate, p.CmdSN) {
		return nil
	}
	c.window()
	code := pdu.LogoutSuccess
	switch p.Reason {
	case pdu.LogoutCloseSession, pdu.LogoutCloseConnection:
		if p.Reason == pdu.LogoutCloseConnection && p.CID != c.cid() {
			code = pdu.LogoutCIDNotFound
		}
	default:
		code = pdu.LogoutRecoveryUnsupported
	}
	// Responses of running commands go out before the Logout Response
	// (RFC 7143 §11.14: the logout is processed after earlier commands).
	// Tasks still waiting for Data-Out cannot finish (the initiator
	// stopped sending): teardown drops them.
	if code == pdu.LogoutSuccess {
		if err := c.awaitWorkers(c.complete, c.abortCh, c.readErr); err != nil {
			return err
		}
	}
	rsp := pdu.LogoutResponse{Response: code, ITT: p.ITT, StatSN: c.statSN, ExpCmdSN: c.expCmdSN, MaxCmdSN: c.maxCmdSN,
		Time2Wait: 2}
	c.statSN++
	c.publish()
	if err := c.sendPDU(&rsp, nil); err != nil {
		return err
	}
	if code == pdu.LogoutSuccess {
		c.log.Info("iscsi: logout", "reason", p.Reason.String())
		return errConnDone
	}
	return nil
}

func (c *conn) cid() uint16 {
	if c.sess == nil {
		return 0
	}
	return c.sess.cid
}

// getTask takes a task from the free list.
func (c *conn) getTask() *Task {
	if n := len(c.free); n > 0 {
		t := c.free[n-1]
		c.free = c.free[:n-1]
		return t
	}
	return new(Task)
}

// releaseTask returns a finished task: its buffer to the transport, itself
// to the free list.
func (c *conn) releaseTask(t *Task) {
	if c.tasks[t.ITT] == t {
		delete(c.tasks, t.ITT)
	}
	if t.Data != nil {
		c.tc.Release(t)
	}
	t.reset()
	c.free = append(c.free, t)
}

// command starts a SCSI Command (RFC 7143 §11.3).
func (c *conn) command(p *pdu.SCSICommand, in *Inbound) error {
	if !c.advance(p.Immediate, p.CmdSN) {
		c.releaseInbound(in)
		return nil
	}
	if old := c.tasks[p.ITT]; old != nil {
		c.releaseInbound(in)
		return c.reject(pdu.RejectTaskInProgress, &in.BHS, "ITT already in use")
	}
	t := c.getTask()
	t.ITT, t.LUN, t.EDTL = p.ITT, uint64(p.LUN), p.ExpectedDataTransferLength
	t.Data = in.Task
	in.Task = nil
	if t.Data != nil && !in.NeedBuffer {
		t.Buf = t.Data.Buffer()
	}
	if cap(t.Buf) > 0 {
		c.noteTaskSize(cap(t.Buf))
	}
	t.dsl = pdu.BHS(in.BHS[:]).DataSegmentLength()
	t.cmdSN = p.CmdSN
	t.read, t.write = p.Read, p.Write
	t.imm = in.Imm
	n := copy(t.cdb[:], p.CDB[:])
	n += copy(t.cdb[n:], p.ExtCDB)
	cmd := &t.cmd
	cmd.Nexus = c.nexus
	cmd.LUN = decodeLUN(t.LUN)
	cmd.CDB = t.cdb[:n]
	cmd.Attr = scsi.TaskAttr(p.Attr)
	c.tasks[t.ITT] = t
	c.window()

	if len(c.tasks) > cap(c.workCh) {
		// Only immediate commands can get here (the CmdSN window
		// bounds the others): refuse rather than block the owner.
		return c.failTask(t, scsi.StatusTaskSetFull, nil)
	}
	if in.NoMemory {
		// The session or the server is out of task memory: the
		// initiator retries a TASK SET FULL (SAM-5 5.3.1) later.
		c.noteTaskSize(int(min(t.EDTL, 16<<20)))
		c.log.Debug("iscsi: no task memory", "itt", fmt.Sprintf("%#x", t.ITT), "edtl", t.EDTL,
			"session_bytes", c.budget.InUse(), "server_bytes", c.srv.memory.InUse())
		return c.failTask(t, scsi.StatusTaskSetFull, nil)
	}
	if t.read && t.write {
		return c.failCheck(t, scsi.SenseIllegalRequest, scsi.ASCInvalidFieldInCDB)
	}
	if t.EDTL > 0 && !t.read && !t.write {
		return c.failCheck(t, scsi.SenseIllegalRequest, scsi.ASCInvalidFieldInCDB)
	}
	if in.NeedBuffer {
		// The transport's pool is empty: the command waits for its
		// buffer (InBufferReady) and then goes on in start.
		t.state = taskNeedBuffer
		return nil
	}
	return c.start(t)
}

// bufferReady continues a command that waited for its buffer.
func (c *conn) bufferReady(in *Inbound) error {
	t := c.tasks[in.ITT]
	if t == nil || t.Data != in.Task || t.state != taskNeedBuffer {
		return nil // aborted meanwhile
	}
	t.Buf = t.Data.Buffer()
	if cap(t.Buf) > 0 {
		c.noteTaskSize(cap(t.Buf))
	}
	return c.start(t)
}

// start checks a command's transfer against its buffer and immediate data,
// then fetches its Data-Out or hands it to a worker.
func (c *conn) start(t *Task) error {
	cmd := &t.cmd
	if int(t.EDTL) > len(t.Buf) {
		// Larger than the transport's largest task buffer: refuse it
		// rather than move a truncated transfer.
		c.log.Warn("iscsi: transfer too large", "itt", fmt.Sprintf("%#x", t.ITT), "edtl", t.EDTL, "max", len(t.Buf))
		return c.failCheck(t, scsi.SenseIllegalRequest, scsi.ASCInvalidFieldInCDB)
	}
	if reason := c.badImmediateData(t, t.dsl); reason != "" {
		// Unsolicited data beyond what was negotiated or announced
		// cannot be placed; like a broken Data-Out sequence, it fails
		// the task (ABORTED COMMAND, DATA PHASE ERROR), not the session.
		c.log.Warn("iscsi: bad immediate data", "itt", fmt.Sprintf("%#x", t.ITT), "reason", reason)
		return c.failCheck(t, scsi.SenseAbortedCommand, scsi.ASCDataPhaseError)
	}
	if t.write {
		cmd.ExpectedDataOutLen = int(t.EDTL)
		want := len(t.Buf)
		if n, ok := c.luns.DataOutLen(cmd.LUN, cmd.CDB); ok {
			want = min(want, n)
		}
		t.want = want
		if want > t.imm {
			t.state = taskWaitData
			done, err := c.tc.GetData(t, want)
			if err != nil {
				return fmt.Errorf("get data for ITT %#x: %w", t.ITT, err)
			}
			if !done {
				t.dataSince = time.Now()
				return nil
			}
		}
	}
	return c.execute(t)
}

// badImmediateData checks a SCSI Command's data segment of dsl bytes
// against the rules for immediate data (RFC 7143 §11.3.3, §13.11, §13.14):
// only with ImmediateData=Yes, only on a write, at most FirstBurstLength
// and at most the Expected Data Transfer Length. It returns why the data is
// refused, or "".
func (c *conn) badImmediateData(t *Task, dsl uint32) string {
	switch {
	case dsl == 0:
		return ""
	case !c.params.ImmediateData:
		return fmt.Sprintf("%d bytes of immediate data with ImmediateData=No", dsl)
	case !t.write:
		return fmt.Sprintf("%d bytes of immediate data on a command without the W bit", dsl)
	case dsl > c.params.FirstBurstLength:
		return fmt.Sprintf("%d bytes of immediate data exceed FirstBurstLength %d", dsl, c.params.FirstBurstLength)
	case dsl > t.EDTL:
		return fmt.Sprintf("%d bytes of immediate data exceed the expected data transfer length %d", dsl, t.EDTL)
	}
	return ""
}

// dataDone continues a write whose Data-Out has arrived.
func (c *conn) dataDone(in *Inbound) error {
	t := c.tasks[in.ITT]
	if t == nil || t.Data != in.Task || t.state != taskWaitData {
		return nil // aborted meanwhile, or the data error came after all data
	}
	if in.Err != nil {
		// The transport could not collect the data: the command ends
		// with ABORTED COMMAND, DATA PHASE ERROR (SAM-5 5.8.1).
		c.log.Warn("iscsi: write data failed", "itt", fmt.Sprintf("%#x", t.ITT), "err", in.Err)
		return c.failCheck(t, scsi.SenseAbortedCommand, scsi.ASCDataPhaseError)
	}
	return c.execute(t)
}

// execute hands a task to a worker, starting one when all are busy. A
// small READ or WRITE on a LUN that never blocks (scsi.Target.Inline)
// runs here instead, on the owner goroutine, while no worker is busy: at
// low queue depth the two hand-offs to and from a worker cost more than
// the memory copy (each is a goroutine wake-up), and with workers busy
// the command goes to them so that copies run in parallel.
func (c *conn) execute(t *Task) error {
	t.state = taskExecuting
	cmd := &t.cmd
	if t.write {
		cmd.DataOut = t.Buf[:t.want]
	} else if t.read {
		cmd.DataIn = t.Buf
	}
	if c.busy == 0 && (cmd.Attr == scsi.TaskSimple || cmd.Attr == scsi.TaskUntagged) && c.luns.Inline(cmd.LUN, cmd.CDB) {
		c.luns.Execute(c.ctx, cmd)
		return c.complete(t)
	}
	if c.busy == c.nWorkers && c.nWorkers < c.srv.workers() {
		c.nWorkers++
		go c.worker()
	}
	c.busy++
	c.workCh <- t
	return nil
}

// worker runs SCSI commands.
func (c *conn) worker() {
	for t := range c.workCh {
		c.luns.Execute(c.ctx, &t.cmd)
		c.doneCh <- t
	}
}

// complete sends the response of an executed task (unless a TMF aborted
// it) and releases it.
func (c *conn) complete(t *Task) error {
	t.state = taskDone
	if t.aborted && t.thirdParty && c.ctx.Err() == nil {
		if err := c.failTask(t, scsi.StatusTaskAborted, nil); err != nil {
			return err
		}
		return c.tmfProgressErr()
	}
	if t.aborted || c.ctx.Err() != nil {
		c.releaseTask(t)
		return c.tmfProgressErr()
	}
	cmd := &t.cmd
	rsp := &c.rsp
	*rsp = Response{}
	rsp.Status = uint8(cmd.Status)
	rsp.Sense = cmd.Sense
	edtl := int(t.EDTL)
	switch {
	case t.read:
		rsp.DataLen = min(cmd.DataInLen, edtl)
		if cmd.Status != scsi.StatusGood && cmd.Status != scsi.StatusConditionMet {
			rsp.DataLen = 0
		}
		residuals(rsp, edtl, cmd.Want, rsp.DataLen)
	case t.write:
		residuals(rsp, edtl, cmd.Want, min(cmd.Want, edtl))
	default:
		if cmd.Want > 0 {
			residuals(rsp, edtl, cmd.Want, 0)
		}
	}
	if err := c.respond(t, rsp); err != nil {
		c.releaseTask(t)
		return err
	}
	c.releaseTask(t)
	c.window()
	return c.tmfProgressErr()
}

// residuals sets the O/U flags and residual count (RFC 7143 §11.4.5) from
// EDTL, the length the CDB asks for (want) and the bytes moved.
func residuals(rsp *Response, edtl, want, moved int) {
	switch {
	case want > edtl:
		rsp.Overflow = true
		rsp.Residual = uint32(want - edtl)
	case moved < edtl:
		rsp.Underflow = true
		rsp.Residual = uint32(edtl - moved)
	}
}

// respond sends the data and status of a task.
func (c *conn) respond(t *Task, rsp *Response) error {
	rsp.StatSN = c.statSN
	c.statSN++
	c.expMax(rsp)
	if err := c.tc.PutData(t, rsp); err != nil {
		return fmt.Errorf("send response for ITT %#x: %w", t.ITT, err)
	}
	return nil
}

// expMax stamps ExpCmdSN and MaxCmdSN, counting the task being answered
// as finished.
func (c *conn) expMax(rsp *Response) {
	c.openWindow(max(len(c.tasks)-1, 0))
	rsp.ExpCmdSN, rsp.MaxCmdSN = c.expCmdSN, c.maxCmdSN
}

// failTask answers a task at once with a status and sense data.
func (c *conn) failTask(t *Task, st scsi.Status, sense []byte) error {
	rsp := &c.rsp
	*rsp = Response{Status: uint8(st), Sense: sense}
	if t.EDTL > 0 {
		rsp.Underflow = true
		rsp.Residual = t.EDTL
	}
	err := c.respond(t, rsp)
	c.releaseTask(t)
	c.window()
	return err
}

// failCheck answers a task at once with CHECK CONDITION, its sense built
// by the SCSI target in the format the LUN asks for (D_SENSE).
func (c *conn) failCheck(t *Task, key scsi.SenseKey, asc scsi.ASC) error {
	c.luns.Fail(&t.cmd, key, asc)
	return c.failTask(t, scsi.StatusCheckCondition, t.cmd.Sense)
}
