package initiator

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// request sends p, one of t's non-SCSI request structs, and waits for its
// response. On success the caller reads t's results and releases t.
func (s *Session) request(ctx context.Context, t *task, p pdu.PDU) error {
	wrote, err := s.sendCommand(ctx, t, p, nil)
	p.SetDataSegment(nil)
	if err != nil {
		return s.sendFailed(t, err, wrote)
	}
	if err := s.wait(ctx, t); err != nil {
		return err
	}
	if t.err != nil {
		err := t.err
		s.release(t)
		return err
	}
	return nil
}

// Ping sends a NOP-Out with data as ping data (immediate, RFC 7143
// §11.18) and waits for the target's NOP-In, which must echo the data.
func (s *Session) Ping(ctx context.Context, data []byte) error {
	if uint32(len(data)) > s.params.TargetMaxRecvDataSegmentLength {
		return fmt.Errorf("initiator: ping data of %d bytes exceeds the target's MaxRecvDataSegmentLength", len(data))
	}
	t, err := s.acquire(ctx, kindNOP)
	if err != nil {
		return err
	}
	t.nopOut = pdu.NOPOut{Immediate: true, ITT: t.itt, TTT: reservedTag, Data: data}
	if err := s.request(ctx, t, &t.nopOut); err != nil {
		return fmt.Errorf("initiator: ping: %w", err)
	}
	ok := bytes.Equal(t.data, data)
	s.release(t)
	if !ok {
		return errors.New("initiator: ping: NOP-In did not echo the ping data")
	}
	return nil
}

// TaskManagement sends a Task Management Function Request (RFC 7143
// §11.5) as an immediate command and returns the target's response code.
// For ABORT TASK, ref is the Call to abort; it is ignored otherwise. When
// the function completes, the session ends the affected calls of its own
// with ErrAborted (their Wait returns it).
func (s *Session) TaskManagement(ctx context.Context, fn pdu.TMFunction, lun uint64, ref Call) (pdu.TMFResponse, error) {
	if lun > pdu.MaxFlatLUN {
		return 0, fmt.Errorf("initiator: LUN %d beyond flat space addressing", lun)
	}
	t, err := s.acquire(ctx, kindTMF)
	if err != nil {
		return 0, err
	}
	l := pdu.EncodeLUN(uint16(lun))
	t.tmf = pdu.TaskMgmtRequest{Immediate: true, Function: fn, ITT: t.itt, ReferencedTaskTag: reservedTag}
	if fn != pdu.TMFTargetWarmReset && fn != pdu.TMFTargetColdReset {
		t.tmf.LUN = l
	}
	if fn == pdu.TMFAbortTask {
		t.tmf.ReferencedTaskTag = ref.itt
		t.tmf.RefCmdSN = ref.cmdSN
	}
	if err := s.request(ctx, t, &t.tmf); err != nil {
		return 0, fmt.Errorf("initiator: %v: %w", fn, err)
	}
	resp := pdu.TMFResponse(t.response)
	s.release(t)
	if resp == pdu.TMFComplete || resp == pdu.TMFTaskNotExist && fn == pdu.TMFAbortTask {
		s.abortLocal(fn, l, ref.itt)
	}
	return resp, nil
}

// abortLocal completes our own in-flight SCSI calls that a task management
// function ended: they get no SCSI Response (RFC 7143 §4.2.3.4).
func (s *Session) abortLocal(fn pdu.TMFunction, l pdu.LUN, itt uint32) {
	for i := range s.tasks {
		t := &s.tasks[i]
		t.mu.Lock()
		hit := t.state.active() && t.kind == kindSCSI
		switch fn {
		case pdu.TMFAbortTask:
			hit = hit && t.itt == itt
		case pdu.TMFAbortTaskSet, pdu.TMFClearTaskSet, pdu.TMFLogicalUnitReset:
			hit = hit && t.lun == l
		case pdu.TMFTargetWarmReset, pdu.TMFTargetColdReset:
		default:
			hit = false
		}
		if hit {
			t.err = ErrAborted
			s.completeLocked(t)
		}
		t.mu.Unlock()
	}
}

// AbortTask aborts one command started with Start.
func (s *Session) AbortTask(ctx context.Context, c Call) (pdu.TMFResponse, error) {
	return s.TaskManagement(ctx, pdu.TMFAbortTask, uint64(lunNumber(c.lun)), c)
}

func lunNumber(l pdu.LUN) uint16 {
	n, _ := l.Number()
	return n
}

// text runs one Text Request exchange (RFC 7143 §11.10), following the C
// bit until the target's response is complete, and returns the keys.
func (s *Session) text(ctx context.Context, data []byte) ([]kv, error) {
	var all []byte
	ttt := uint32(reservedTag)
	for range 256 {
		t, err := s.acquire(ctx, kindText)
		if err != nil {
			return nil, err
		}
		t.text = pdu.TextRequest{Final: true, ITT: t.itt, TTT: ttt, Data: data}
		if err := s.request(ctx, t, &t.text); err != nil {
			return nil, fmt.Errorf("initiator: text: %w", err)
		}
		all = append(all, t.data...)
		more, next := t.more, t.ttt
		s.release(t)
		if !more {
			return parseRepeated(all)
		}
		ttt, data = next, nil
	}
	return nil, errors.New("initiator: text response continued for more than 256 PDUs")
}

// Target is one target a SendTargets answer lists.
type Target struct {
	Name string
	// Addresses are the portals, as "host:port,tpgt" (RFC 7143 §13.8).
	Addresses []string
}

// SendTargets asks the target for its targets (RFC 7143 Appendix C):
// "All" in a discovery session, "" for the current target in a normal
// session, or a target name.
func (s *Session) SendTargets(ctx context.Context, which string) ([]Target, error) {
	data, err := text.AppendPair(nil, text.KeySendTargets, which)
	if err != nil {
		return nil, fmt.Errorf("initiator: SendTargets: %w", err)
	}
	got, err := s.text(ctx, data)
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, p := range got {
		switch p.key {
		case "TargetName":
			out = append(out, Target{Name: p.value})
		case "TargetAddress":
			if len(out) == 0 {
				return nil, fmt.Errorf("initiator: SendTargets: TargetAddress before TargetName")
			}
			out[len(out)-1].Addresses = append(out[len(out)-1].Addresses, p.value)
		case "SendTargets":
			if p.value == "Reject" || p.value == "Irrelevant" || p.value == "NotUnderstood" {
				return nil, fmt.Errorf("initiator: SendTargets answered %s", p.value)
			}
		}
	}
	return out, nil
}

// Discover logs in to addr over TCP in a discovery session, asks
// SendTargets=All, and logs out.
func Discover(ctx context.Context, addr string, cfg Config) ([]Target, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	c, err := dialLogin(ctx, addr, cfg, true)
	if err != nil {
		return nil, err
	}
	return discover(ctx, newSession(c, c.params, c.seq(), cfg))
}

// DiscoverOver is Discover over t, an established connection of any
// Transport (iSER discovery runs over RDMA like any login). It owns t and
// closes it before returning.
func DiscoverOver(ctx context.Context, t Transport, cfg Config) ([]Target, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	p, seq, err := loginOver(ctx, t, cfg, true, "")
	if err != nil {
		return nil, err
	}
	return discover(ctx, newSession(t, p, seq, cfg))
}

// discover asks SendTargets=All in the discovery session s, logs out and
// closes s.
func discover(ctx context.Context, s *Session) ([]Target, error) {
	defer s.Close()
	ts, err := s.SendTargets(ctx, "All")
	if err != nil {
		return nil, err
	}
	if err := s.Logout(ctx); err != nil {
		return ts, err
	}
	return ts, nil
}

// LogoutError is a Logout Response with a non-zero response code.
type LogoutError struct{ Response pdu.LogoutResponseCode }

// Error implements error.
func (e *LogoutError) Error() string { return "initiator: logout: " + e.Response.String() }

// Logout closes the session with a Logout Request (RFC 7143 §11.14, reason
// "close the session") and waits for the response; the target then closes
// the connection and so does the session.
func (s *Session) Logout(ctx context.Context) error {
	t, err := s.acquire(ctx, kindLogout)
	if err != nil {
		return err
	}
	t.logout = pdu.LogoutRequest{Immediate: true, Reason: pdu.LogoutCloseSession, ITT: t.itt}
	s.loggedOut.Store(true)
	if err := s.request(ctx, t, &t.logout); err != nil {
		s.loggedOut.Store(false)
		return fmt.Errorf("initiator: logout: %w", err)
	}
	resp := pdu.LogoutResponseCode(t.response)
	s.release(t)
	s.fail(ErrClosed)
	<-s.closed
	if resp != pdu.LogoutSuccess {
		return &LogoutError{Response: resp}
	}
	return nil
}
