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
	conn      *conn
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
	if old != nil && !sess.discovery {
		delete(s.sessions, old.key)
		delete(s.byTSIH, old.tsih)
	}
	s.mu.Unlock()
	if old != nil && !sess.discovery {
		// Session reinstatement: the old session's tasks are aborted
		// and its connection closed before the new one starts.
		c.log.Info("iscsi: reinstating session", "old_tsih", old.tsih)
		old.conn.abort()
		select {
		case <-old.conn.ended:
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
	sess.tsih = s.nextTSIH
	s.byTSIH[sess.tsih] = sess
	if !sess.discovery {
		s.sessions[sess.key] = sess
	}
	return sess, nil
}

// removeSession unregisters a session whose connection ended and reports
// the I_T nexus loss to the SCSI target.
func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	if s.byTSIH[sess.tsih] == sess {
		delete(s.byTSIH, sess.tsih)
	}
	if s.sessions[sess.key] == sess {
		delete(s.sessions, sess.key)
	}
	s.mu.Unlock()
	if sess.target != nil {
		sess.target.LUNs.NexusLost(sess.nexus)
	}
}

// sessionExists reports whether a session with this TSIH is live.
func (s *Server) sessionExists(tsih uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byTSIH[tsih]
	return ok
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
