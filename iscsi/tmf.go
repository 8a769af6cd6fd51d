package iscsi

import (
	"fmt"
	"slices"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/scsi"
)

// pendingTMF is a task management request waiting for the tasks it aborted
// to finish: RFC 7143 §4.2.3.3 wants the TMF response after the affected
// tasks are gone, and no response for them.
type pendingTMF struct {
	req   pdu.TaskMgmtRequest
	resp  pdu.TMFResponse
	tasks []*Task // aborted tasks still executing
	// others is true while other sessions of the target are still
	// aborting their tasks for this request (LOGICAL UNIT RESET, CLEAR
	// TASK SET, TARGET RESET affect every initiator: SAM-5 7.6).
	others bool
	// third is set when the request came from another session
	// (thirdParty): nothing is answered, third.done is closed instead.
	third *thirdParty
}

// prune drops the tasks that are gone from pt.tasks.
func (pt *pendingTMF) prune() {
	for i := 0; i < len(pt.tasks); {
		if t := pt.tasks[i]; t.state == taskFree || !t.aborted {
			pt.tasks = append(pt.tasks[:i], pt.tasks[i+1:]...)
			continue
		}
		i++
	}
}

// thirdParty asks a connection to abort its tasks on one LUN, or on all,
// because another session reset it or cleared its task set. Its tasks
// end with TASK ABORTED status (RFC 7143 §4.2.3.4, TAS=1 behaviour).
type thirdParty struct {
	lun  uint64 // raw LUN field; ignored when all
	all  bool
	done chan struct{} // closed by the receiving owner once its affected tasks are gone
}

// taskMgmt handles a Task Management Function Request (RFC 7143 §11.5).
func (c *conn) taskMgmt(p *pdu.TaskMgmtRequest) error {
	if !c.advance(p.Immediate, p.CmdSN) {
		return nil
	}
	c.window()
	pt := &pendingTMF{req: *p, resp: pdu.TMFComplete}
	lun := uint64(p.LUN)
	switch p.Function {
	case pdu.TMFAbortTask:
		t := c.tasks[p.ReferencedTaskTag]
		if t == nil || t.LUN != lun {
			pt.resp = pdu.TMFTaskNotExist
			break
		}
		_ = c.abortTask(t, pt)
	case pdu.TMFAbortTaskSet, pdu.TMFClearTaskSet, pdu.TMFLogicalUnitReset:
		if p.Function == pdu.TMFLogicalUnitReset && !c.lunExists(decodeLUN(lun)) {
			pt.resp = pdu.TMFLUNNotExist
			break
		}
		for _, t := range c.tasks {
			if t.LUN == lun {
				_ = c.abortTask(t, pt) // own tasks: released, nothing sent
			}
		}
		if p.Function != pdu.TMFAbortTaskSet {
			c.abortElsewhere(pt, lun, false)
		}
	case pdu.TMFTargetWarmReset, pdu.TMFTargetColdReset:
		for _, t := range c.tasks {
			_ = c.abortTask(t, pt)
		}
		c.abortElsewhere(pt, 0, true)
	case pdu.TMFTaskReassign:
		pt.resp = pdu.TMFReassignNotSupported // ERL 0 (RFC 7143 §11.6.1)
	default:
		pt.resp = pdu.TMFNotSupported // CLEAR ACA and unknown functions
	}
	c.log.Info("iscsi: task management", "function", p.Function.String(), "lun", decodeLUN(lun),
		"ref_itt", p.ReferencedTaskTag, "waiting", len(pt.tasks))
	c.tmfs = append(c.tmfs, pt)
	return c.tmfProgressErr()
}

func (c *conn) lunExists(n uint64) bool {
	if c.luns == nil {
		return false
	}
	for _, l := range c.luns.LUNs() {
		if l == n {
			return true
		}
	}
	return false
}

// abortTask aborts one task: a task waiting for data is released at once
// (answered with TASK ABORTED for a third-party abort); an executing one
// is marked and waited for.
func (c *conn) abortTask(t *Task, pt *pendingTMF) error {
	switch t.state {
	case taskExecuting:
		t.aborted = true
		t.thirdParty = pt.third != nil
		pt.tasks = append(pt.tasks, t)
	default:
		if pt.third != nil {
			return c.failTask(t, scsi.StatusTaskAborted, nil)
		}
		c.releaseTask(t)
	}
	return nil
}

// abortElsewhere asks every other session of the target to abort its
// tasks on lun (or all LUNs) and marks pt as waiting for them. A helper
// goroutine does the blocking part and reports back on c.othersDone.
func (c *conn) abortElsewhere(pt *pendingTMF, lun uint64, all bool) {
	if c.sess == nil || c.sess.target == nil {
		return
	}
	others := c.srv.otherConns(c.sess.target, c)
	if len(others) == 0 {
		return
	}
	pt.others = true
	go func() {
		var wait []*thirdParty
		var conns []*conn
		for _, o := range others {
			tp := &thirdParty{lun: lun, all: all, done: make(chan struct{})}
			select {
			case o.extCh <- tp:
				wait = append(wait, tp)
				conns = append(conns, o)
			case <-o.ended:
			}
		}
		for i, tp := range wait {
			select {
			case <-tp.done:
			case <-conns[i].ended:
			}
		}
		select {
		case c.othersDone <- pt:
		case <-c.ended:
		}
	}()
}

// thirdPartyAbort handles another session's reset or clear of a task set
// this connection has tasks in.
func (c *conn) thirdPartyAbort(tp *thirdParty) error {
	pt := &pendingTMF{third: tp}
	for _, t := range c.tasks {
		if tp.all || t.LUN == tp.lun {
			if err := c.abortTask(t, pt); err != nil {
				return err
			}
		}
	}
	c.tmfs = append(c.tmfs, pt)
	return c.tmfProgressErr()
}

// tmfProgressErr sends the responses of TMFs whose tasks are all gone. After
// a TARGET COLD RESET it ends every session of the target, this one
// included (RFC 7143 §11.5.1), and returns an error wrapping errConnDone.
func (c *conn) tmfProgressErr() error {
	// Third-party aborts finish as soon as their tasks are gone, whatever
	// our own TMFs wait for: two sessions resetting the same LUN at once
	// each wait for the other's.
	kept := c.tmfs[:0]
	for _, pt := range c.tmfs {
		pt.prune()
		if pt.third != nil && len(pt.tasks) == 0 {
			close(pt.third.done)
			continue
		}
		kept = append(kept, pt)
	}
	clear(c.tmfs[len(kept):])
	c.tmfs = kept
	for {
		i := slices.IndexFunc(c.tmfs, func(pt *pendingTMF) bool { return pt.third == nil })
		if i < 0 {
			return nil
		}
		pt := c.tmfs[i]
		if len(pt.tasks) > 0 || pt.others {
			return nil // our TMFs complete in order
		}
		c.tmfs = slices.Delete(c.tmfs, i, i+1)
		if pt.resp == pdu.TMFComplete && c.luns != nil {
			var err error
			switch pt.req.Function {
			case pdu.TMFLogicalUnitReset:
				err = c.luns.ResetLUN(c.nexus, decodeLUN(uint64(pt.req.LUN)))
			case pdu.TMFTargetWarmReset:
				err = c.luns.Reset(c.nexus, false)
			case pdu.TMFTargetColdReset:
				err = c.luns.Reset(c.nexus, true)
			}
			if err != nil {
				c.log.Warn("iscsi: reset", "function", pt.req.Function.String(), "err", err)
				pt.resp = pdu.TMFRejected
			}
		}
		c.window()
		rsp := pdu.TaskMgmtResponse{Response: pt.resp, ITT: pt.req.ITT, StatSN: c.statSN, ExpCmdSN: c.expCmdSN, MaxCmdSN: c.maxCmdSN}
		c.statSN++
		c.publish()
		if err := c.sendPDU(&rsp, nil); err != nil {
			return err
		}
		if pt.req.Function == pdu.TMFTargetColdReset && pt.resp == pdu.TMFComplete && c.sess != nil {
			c.log.Info("iscsi: target cold reset: ending every session of the target")
			c.srv.dropTarget(c.sess.target, c)
			return fmt.Errorf("%w: target cold reset", errConnDone)
		}
	}
}
