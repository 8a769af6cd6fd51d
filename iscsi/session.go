package iscsi

import (
	"fmt"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/scsi"
)

// session is an iSCSI session (RFC 7143 §3.4): one I_T nexus with (at
// MaxConnections=1) exactly one connection. Fields are immutable after
// addSession.
type session struct {
	key       sessionKey
	tsih      uint16
	cid       uint16
	isid      pdu.ISID
	initiator string
	target    *Target // nil for discovery
	discovery bool
	nexus     scsi.Nexus
	// conn is the session's connection; guarded by Server.mu (a
	// connection reinstatement replaces it).
	conn *conn
}

// addSession registers the session of a login that reaches the full
// feature phase, reinstating (closing) an older session with the same
// initiator name, ISID and target (RFC 7143 §6.3.5, ERL 0).
func (s *Server) addSession(ls *loginState, c *conn) (*session, error) {
	sess := &session{
		isid:      ls.isid,
		cid:       ls.cid,
		initiator: ls.initiator,
		target:    ls.target,
		discovery: ls.discovery,
		conn:      c,
	}
	tname := ""
	if ls.target != nil {
		tname = foldName(ls.target.Name)
		sess.nexus = scsi.Nexus{
			InitiatorName: ls.initiator,
			InitiatorPort: fmt.Sprintf("%s,i,0x%012x", ls.initiator, ls.isid[:]),
			TargetPort:    fmt.Sprintf("%s,t,0x%04x", ls.target.Name, ls.tpgt()),
			RelativePort:  ls.tpgt(),
		}
	}
	sess.key = sessionKey{initiator: foldName(ls.initiator), isid: ls.isid, target: tname}

	s.mu.Lock()
	if s.inShut {
		s.mu.Unlock()
		return nil, fmt.Errorf("add session: %w", ErrServerClosed)
	}
	old := s.sessions[sess.key]
	var oldConn *conn
	if !sess.discovery && old == nil && s.sessPerT[sess.target] >= s.limits.MaxSessionsPerTarget {
		s.mu.Unlock()
		return nil, loginFail(pdu.LoginOutOfResources, "target %s has MaxSessionsPerTarget (%d) sessions", sess.target.Name, s.limits.MaxSessionsPerTarget)
	}
	if old != nil && !sess.discovery {
		s.forgetSessionLocked(old)
		oldConn = old.conn
	}
	s.mu.Unlock()
	if oldConn != nil {
		// Session reinstatement: the old session's tasks are aborted
		// and its connection closed before the new one starts.
		c.log.Info("iscsi: reinstating session", "old_tsih", old.tsih)
		oldConn.abort()
		select {
		case <-oldConn.ended:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("reinstate session %d: old connection did not end", old.tsih)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.nextTSIH++
		if s.nextTSIH == 0 {
			continue
		}
		if _, used := s.byTSIH[s.nextTSIH]; !used {
			break
		}
	}
	if !sess.discovery && s.sessPerT[sess.target] >= s.limits.MaxSessionsPerTarget {
		return nil, loginFail(pdu.LoginOutOfResources, "target %s has MaxSessionsPerTarget (%d) sessions", sess.target.Name, s.limits.MaxSessionsPerTarget)
	}
	sess.tsih = s.nextTSIH
	s.byTSIH[sess.tsih] = sess
	if !sess.discovery {
		s.sessions[sess.key] = sess
		s.sessPerT[sess.target]++
	}
	return sess, nil
}

// removeSession unregisters the session of connection c when c ends, and
// reports the I_T nexus loss to the SCSI target. A session whose
// connection was replaced by a reinstatement is left alone.
func (s *Server) removeSession(sess *session, c *conn) {
	s.mu.Lock()
	if sess.conn != c {
		s.mu.Unlock()
		return
	}
	s.forgetSessionLocked(sess)
	s.mu.Unlock()
	if sess.target != nil {
		sess.target.LUNs.NexusLost(sess.nexus)
	}
}

// forgetSessionLocked removes sess from the session tables (if it is
// still there). s.mu must be held.
func (s *Server) forgetSessionLocked(sess *session) {
	if s.byTSIH[sess.tsih] == sess {
		delete(s.byTSIH, sess.tsih)
	}
	if s.sessions[sess.key] == sess {
		delete(s.sessions, sess.key)
		if s.sessPerT[sess.target]--; s.sessPerT[sess.target] <= 0 {
			delete(s.sessPerT, sess.target)
		}
	}
}

// sessionByTSIH returns the live session with this TSIH, or nil.
func (s *Server) sessionByTSIH(tsih uint16) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byTSIH[tsih]
}

// replaceConn gives sess a new connection (connection reinstatement, RFC
// 7143 §6.3.4): the old one is closed, its tasks end without responses
// (ERL 0), and the session, its TSIH and its I_T nexus carry on.
func (s *Server) replaceConn(sess *session, c *conn) (*session, error) {
	s.mu.Lock()
	if s.inShut {
		s.mu.Unlock()
		return nil, fmt.Errorf("reinstate connection: %w", ErrServerClosed)
	}
	if s.byTSIH[sess.tsih] != sess {
		s.mu.Unlock()
		return nil, fmt.Errorf("reinstate connection: session %d ended meanwhile", sess.tsih)
	}
	old := sess.conn
	sess.conn = c
	s.mu.Unlock()
	c.log.Info("iscsi: reinstating connection", "tsih", sess.tsih, "cid", sess.cid)
	old.abort()
	select {
	case <-old.ended:
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("reinstate connection of session %d: old connection did not end", sess.tsih)
	}
	return sess, nil
}

// dropTarget closes every connection of every session logged in to t,
// except the caller's own (which ends by itself).
func (s *Server) dropTarget(t *Target, except *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.byTSIH {
		if sess.target == t && sess.conn != except {
			sess.conn.abort()
		}
	}
}

// otherConns returns the connections of the other sessions logged in to t.
func (s *Server) otherConns(t *Target, except *conn) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*conn
	for _, sess := range s.byTSIH {
		if sess.target == t && sess.conn != except {
			out = append(out, sess.conn)
		}
	}
	return out
}
