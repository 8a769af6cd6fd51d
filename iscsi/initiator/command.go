package initiator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/scsi"
)

// Result is the outcome of a SCSI command (RFC 7143 §11.4, or the status
// collapsed into the last Data-In, §11.7.4).
type Result struct {
	// Status is the SCSI status (valid when Response is 0).
	Status scsi.Status
	// Response is the iSCSI response code (0: command completed at target).
	Response pdu.ResponseCode
	// Overflow and Underflow are the O and U bits; Residual the residual
	// count (RFC 7143 §11.4.5).
	Overflow, Underflow bool
	Residual            uint32
	// DataInLen is the number of bytes of the read buffer the target
	// filled (the end of the furthest Data-In).
	DataInLen int
	// SenseLen bytes of SenseBuf hold the sense data; see Sense.
	SenseLen int
	SenseBuf [senseMax]byte
}

// Sense returns the sense data (empty for none).
func (r *Result) Sense() []byte { return r.SenseBuf[:r.SenseLen] }

// Err returns nil for a command that completed with GOOD status, and a
// *SCSIError otherwise.
func (r *Result) Err() error {
	if r.Response == pdu.ResponseCompleted && (r.Status == scsi.StatusGood || r.Status == scsi.StatusConditionMet) {
		return nil
	}
	e := &SCSIError{Status: r.Status, Response: r.Response, Sense: append([]byte(nil), r.Sense()...)}
	e.Key, e.ASC, _ = scsi.SenseFields(e.Sense)
	return e
}

// SCSIError is a command that did not complete with GOOD status.
type SCSIError struct {
	Status   scsi.Status
	Response pdu.ResponseCode
	Sense    []byte
	// Key and ASC are decoded from Sense (zero when there is none).
	Key scsi.SenseKey
	ASC scsi.ASC
}

// Error implements error.
func (e *SCSIError) Error() string {
	if e.Response != pdu.ResponseCompleted {
		return fmt.Sprintf("initiator: iSCSI response %v", e.Response)
	}
	if len(e.Sense) > 0 {
		return fmt.Sprintf("initiator: SCSI status %v, sense %v %v", e.Status, e.Key, e.ASC)
	}
	return fmt.Sprintf("initiator: SCSI status %v", e.Status)
}

// Call is a SCSI command in flight, from Start to Wait. Wait must be called
// exactly once; it is not safe for concurrent use.
type Call struct {
	s       *Session
	t       *task
	itt     uint32
	cmdSN   uint32
	lun     pdu.LUN
	dataOut []byte
}

// ITT returns the Initiator Task Tag of the command (for ABORT TASK).
func (c Call) ITT() uint32 { return c.itt }

// CmdSN returns the CmdSN of the command (RefCmdSN for ABORT TASK).
func (c Call) CmdSN() uint32 { return c.cmdSN }

// Execute runs one SCSI command on lun and waits for its status. For a
// write, dataOut holds the bytes to send (its length is the Expected Data
// Transfer Length); for a read, the target fills dataIn (its length is the
// EDTL). Bidirectional commands are not supported. A command that reached
// the target returns a nil error whatever its SCSI status: check
// Result.Status or Result.Err. With the buffers reused it allocates
// nothing.
func (s *Session) Execute(ctx context.Context, lun uint64, cdb, dataOut, dataIn []byte) (Result, error) {
	c, err := s.Start(ctx, lun, cdb, dataOut, dataIn)
	if err != nil {
		return Result{}, err
	}
	return c.Wait(ctx)
}

// Start sends a SCSI command (with its immediate and unsolicited data) and
// returns without waiting for the status; Call.Wait sends the solicited
// Data-Out and collects the result. dataOut and dataIn belong to the
// session until Wait returns.
func (s *Session) Start(ctx context.Context, lun uint64, cdb, dataOut, dataIn []byte) (Call, error) {
	if s.params.Discovery {
		return Call{}, errors.New("initiator: SCSI command in a discovery session")
	}
	if len(cdb) == 0 || len(cdb) > pdu.MaxCDBLen {
		return Call{}, fmt.Errorf("initiator: CDB of %d bytes", len(cdb))
	}
	if len(dataOut) > 0 && len(dataIn) > 0 {
		return Call{}, errors.New("initiator: bidirectional commands are not supported")
	}
	if lun > pdu.MaxFlatLUN {
		return Call{}, fmt.Errorf("initiator: LUN %d beyond flat space addressing", lun)
	}
	t, err := s.acquire(ctx, kindSCSI)
	if err != nil {
		return Call{}, err
	}
	p := &s.params
	l := pdu.EncodeLUN(uint16(lun))
	cmd := &t.cmd
	*cmd = pdu.SCSICommand{Final: true, Attr: pdu.AttrSimple, LUN: l, ITT: t.itt}
	if len(dataIn) > 0 {
		cmd.Read = true
		cmd.ExpectedDataTransferLength = uint32(len(dataIn))
	}
	imm, unsol := 0, 0
	if len(dataOut) > 0 {
		cmd.Write = true
		cmd.ExpectedDataTransferLength = uint32(len(dataOut))
		if p.ImmediateData {
			imm = min(len(dataOut), int(p.FirstBurstLength), int(p.TargetMaxRecvDataSegmentLength))
		}
		unsol = imm
		if !p.InitialR2T {
			unsol = min(len(dataOut), int(p.FirstBurstLength))
		}
		cmd.Final = unsol == imm // else unsolicited Data-Out follows
		cmd.Data = dataOut[:imm]
	}
	copy(cmd.CDB[:], cdb)
	var ahs []byte
	if len(cdb) > 16 {
		// Extended CDB AHS (RFC 7143 §11.3.5). Copied so that cdb does not
		// escape (the caller's CDB array stays on its stack).
		cmd.ExtCDB = t.ext[:copy(t.ext[:], cdb[16:])]
		ahs = cmd.AppendAHS(t.ahs[:0])
	}
	// The transport learns the task's buffers before the command leaves
	// (iSER puts their STags in the command's iSER header).
	t.mu.Lock()
	t.io = TaskIO{ITT: t.itt, DataOut: dataOut, DataIn: dataIn, Immediate: imm, Unsolicited: unsol}
	t.mu.Unlock()
	if err := s.c.BeginTask(&t.io); err != nil {
		cmd.Data = nil
		return Call{}, s.sendFailed(t, fmt.Errorf("initiator: begin task: %w", err), false)
	}
	t.mu.Lock()
	t.begun = true
	t.lun = l
	t.dataIn = dataIn
	t.readEDTL = len(dataIn)
	t.mu.Unlock()
	wrote, err := s.sendCommand(ctx, t, cmd, ahs)
	cmd.Data = nil // do not keep the caller's buffer
	if err != nil {
		return Call{}, s.sendFailed(t, err, wrote)
	}
	c := Call{s: s, t: t, itt: t.itt, cmdSN: t.cmdSN, lun: l, dataOut: dataOut}
	if unsol > imm {
		// Unsolicited Data-Out: one sequence up to FirstBurstLength, TTT
		// 0xffffffff (RFC 7143 §11.7.4). A failed write ends the session,
		// which completes the task with the error.
		_ = c.sendData(reservedTag, uint32(imm), uint32(unsol-imm))
	}
	return c, nil
}

// sendData sends dataOut[off:off+n] as one Data-Out sequence for ttt,
// in PDUs no longer than the target's MaxRecvDataSegmentLength.
func (c Call) sendData(ttt, off, n uint32) error {
	s, t := c.s, c.t
	if uint64(off)+uint64(n) > uint64(len(c.dataOut)) {
		err := fmt.Errorf("initiator: R2T for ITT %#x asks bytes %d+%d of %d", c.itt, off, n, len(c.dataOut))
		s.fail(err)
		return err
	}
	maxSeg := s.params.TargetMaxRecvDataSegmentLength
	d := &t.dout
	end := off + n
	for sn := uint32(0); off < end; sn++ {
		seg := min(end-off, maxSeg)
		*d = pdu.DataOut{
			Final: off+seg == end, LUN: c.lun, ITT: c.itt, TTT: ttt,
			ExpStatSN: s.expStatSN.Load(), DataSN: sn, BufferOffset: off,
			Data: c.dataOut[off : off+seg],
		}
		_, err := d.AppendBinary(t.dohdr[:0])
		if err == nil {
			err = s.c.Send(&t.dohdr, nil, d.Data)
		}
		d.Data = nil
		if err != nil {
			s.fail(err)
			return err
		}
		off += seg
	}
	return nil
}

// Wait answers the target's R2Ts with Data-Out and returns the command's
// result. When ctx ends first, Wait returns ctx's error and the command is
// abandoned: the session stops writing into its read buffer, sends an
// ABORT TASK for it in the background (so that a write the target still
// waits data for does not hold its slot forever), and frees the task's
// slot when the target answers either.
func (c Call) Wait(ctx context.Context) (Result, error) {
	s, t := c.s, c.t
	if t == nil {
		return Result{}, errors.New("initiator: Wait on a zero Call")
	}
	for done := false; !done; {
		// A completed task (status, or aborted by a TMF) takes priority
		// over queued R2Ts: never send Data-Out for a finished task.
		select {
		case <-t.done:
			done = true
			continue
		default:
		}
		select {
		case r := <-t.r2t:
			if ctx.Err() != nil {
				// Cancelled: send nothing more for this command.
				if err := s.wait(ctx, t); err != nil {
					return Result{}, c.abandoned(err)
				}
				done = true
				continue
			}
			_ = c.sendData(r.ttt, r.offset, r.len)
			continue
		case <-t.done:
			done = true
		case <-ctx.Done():
			if err := s.wait(ctx, t); err != nil {
				return Result{}, c.abandoned(err)
			}
			done = true
		}
	}
	var r Result
	err := t.err
	if err == nil {
		r.Status = scsi.Status(t.status)
		r.Response = pdu.ResponseCode(t.response)
		r.Overflow = t.flags&0x04 != 0
		r.Underflow = t.flags&0x02 != 0
		r.Residual = t.residual
		r.DataInLen = t.inLen
		r.SenseLen = copy(r.SenseBuf[:], t.sense[:t.senseLen])
	}
	s.release(t)
	if err != nil {
		return Result{}, fmt.Errorf("initiator: command ITT %#x: %w", c.itt, err)
	}
	return r, nil
}

// abandoned starts a best-effort ABORT TASK for a command whose caller
// gave up, and returns the error for the caller.
func (c Call) abandoned(err error) error {
	s := c.s
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := s.TaskManagement(ctx, pdu.TMFAbortTask, uint64(lunNumber(c.lun)), c)
		s.log.Debug("abort abandoned task", "itt", c.itt, "response", resp, "err", err)
	}()
	return fmt.Errorf("initiator: command ITT %#x: %w", c.itt, err)
}
