package iscsi

import (
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
)

// pendingTMF is a task management request waiting for the tasks it aborted
// to finish: RFC 7143 §4.2.3.3 wants the TMF response after the affected
// tasks are gone, and no response for them.
type pendingTMF struct {
	req   pdu.TaskMgmtRequest
	resp  pdu.TMFResponse
	tasks []*Task // aborted tasks still executing
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
		c.abortTask(t, pt)
	case pdu.TMFAbortTaskSet, pdu.TMFClearTaskSet, pdu.TMFLogicalUnitReset:
		if p.Function == pdu.TMFLogicalUnitReset && !c.lunExists(decodeLUN(lun)) {
			pt.resp = pdu.TMFLUNNotExist
			break
		}
		for _, t := range c.tasks {
			if t.LUN == lun {
				c.abortTask(t, pt)
			}
		}
	case pdu.TMFTargetWarmReset, pdu.TMFTargetColdReset:
		for _, t := range c.tasks {
			c.abortTask(t, pt)
		}
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

// abortTask aborts one task: a task waiting for data is released at once;
// an executing one is marked and waited for.
func (c *conn) abortTask(t *Task, pt *pendingTMF) {
	switch t.state {
	case taskExecuting:
		t.aborted = true
		pt.tasks = append(pt.tasks, t)
	default:
		c.releaseTask(t)
	}
}

// tmfProgressErr sends the responses of TMFs whose tasks are all gone. After
// a TARGET COLD RESET it ends every session of the target, this one
// included (RFC 7143 §11.5.1), and returns an error wrapping errConnDone.
func (c *conn) tmfProgressErr() error {
	for len(c.tmfs) > 0 {
		pt := c.tmfs[0]
		for i := 0; i < len(pt.tasks); {
			if t := pt.tasks[i]; t.state == taskFree || !t.aborted {
				pt.tasks = append(pt.tasks[:i], pt.tasks[i+1:]...)
				continue
			}
			i++
		}
		if len(pt.tasks) > 0 {
			return nil // TMFs complete in order
		}
		c.tmfs = c.tmfs[1:]
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
	return nil
}
