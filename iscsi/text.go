package iscsi

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// defaultMaxTextLength is Server.MaxTextLength's default.
const defaultMaxTextLength = 64 << 10

// textState holds a text exchange (RFC 7143 §6.1, §11.10) in progress:
// request text continued over several PDUs, or a response too long for
// one PDU that the initiator fetches piece by piece. Between exchanges it
// holds no buffer.
type textState struct {
	req     text.Accumulator // request text continued over PDUs (C bit), up to Server.MaxTextLength
	pending []byte           // response text not yet sent
	ttt     uint32           // TTT of the continued exchange; 0 when none
	nextTTT uint32
}

// end drops the exchange in progress.
func (ts *textState) end() {
	ts.req.Reset()
	ts.pending, ts.ttt = nil, 0
}

// textRequest handles a Text Request in the full feature phase: SendTargets
// (discovery), and long-text continuation.
func (c *conn) textRequest(p *pdu.TextRequest) error {
	if !c.advance(p.Immediate, p.CmdSN) {
		return nil
	}
	c.window()
	ts := &c.text
	rsp := pdu.TextResponse{ITT: p.ITT, TTT: reservedTag}
	switch {
	case p.TTT != reservedTag && p.TTT == ts.ttt && len(ts.pending) > 0:
		// The initiator asks for the next piece of a long response.
	case p.TTT != reservedTag && p.TTT != ts.ttt:
		ts.end()
		return c.reject(pdu.RejectProtocolError, c.bhsOf(p), "Text Request with an unknown TTT")
	default:
		ts.req.Max = c.srv.maxTextLength()
		data, done, err := ts.req.Add(p.Data, p.Continue)
		if err != nil {
			// Too long: end the exchange, free what it buffered (LIO
			// rejects an oversized text as a protocol error too).
			ts.end()
			return c.reject(pdu.RejectProtocolError, c.bhsOf(p), err.Error())
		}
		if !done {
			// Acknowledge and wait for the rest (RFC 7143 §11.10.2).
			ts.ttt = c.newTextTTT()
			rsp.TTT = ts.ttt
			return c.sendText(&rsp, nil)
		}
		var pairs text.Pairs
		if err := text.Parse(data, &pairs); err != nil {
			ts.end()
			return c.reject(pdu.RejectProtocolError, c.bhsOf(p), err.Error())
		}
		// Every key but SendTargets is answered Reject: bound the answers
		// as the login bounds NotUnderstood ones.
		if n := pairs.Len() - btoi(pairs.Has(text.KeySendTargets)); n > text.MaxUnknownKeys {
			ts.end()
			return c.reject(pdu.RejectProtocolError, c.bhsOf(p),
				fmt.Sprintf("%d keys to answer Reject, more than %d", n, text.MaxUnknownKeys))
		}
		var out []byte
		for _, kv := range pairs.All() {
			if kv.Key == text.KeySendTargets {
				out = c.sendTargets(out, kv.Value)
				continue
			}
			// Renegotiation in the full feature phase is not
			// supported (RFC 7143 §6.2 lets us decline).
			out = appendKey(out, kv.Key, text.Reject)
		}
		ts.pending = out
		ts.ttt = 0
	}
	max := int(c.params.InitiatorMaxRecvDSL)
	if len(ts.pending) > max {
		cut := textCut(ts.pending, max)
		if ts.ttt == 0 {
			ts.ttt = c.newTextTTT()
		}
		rsp.TTT = ts.ttt
		rsp.Continue = true
		data := ts.pending[:cut]
		ts.pending = ts.pending[cut:]
		return c.sendText(&rsp, data)
	}
	data := ts.pending
	ts.pending, ts.ttt = nil, 0
	rsp.Final = true
	return c.sendText(&rsp, data)
}

// textCut returns where to end the first piece of a text longer than
// max: after the last whole key=value that fits, or at max (RFC 7143
// §6.1: the text may break anywhere, but whole keys read better).
func textCut(b []byte, max int) int {
	for i := max - 1; i > 0; i-- {
		if b[i] == 0 {
			return i + 1
		}
	}
	return max
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *conn) bhsOf(p *pdu.TextRequest) *[BHSLen]byte {
	var h [BHSLen]byte
	b, _ := p.AppendBinary(nil)
	copy(h[:], b)
	return &h
}

func (c *conn) newTextTTT() uint32 {
	c.text.nextTTT++
	if c.text.nextTTT == 0 || c.text.nextTTT == reservedTag {
		c.text.nextTTT = 1
	}
	return c.text.nextTTT
}

func (c *conn) sendText(rsp *pdu.TextResponse, data []byte) error {
	rsp.StatSN, rsp.ExpCmdSN, rsp.MaxCmdSN = c.statSN, c.expCmdSN, c.maxCmdSN
	c.statSN++
	c.publish()
	return c.sendPDU(rsp, data)
}

// sendTargets appends the SendTargets answer (RFC 7143 Appendix C):
// TargetName and TargetAddress=<ip:port>,<tpgt> for each target and portal.
// "All" lists every target the initiator may see; a name lists that
// target; an empty value lists the session's own target.
func (c *conn) sendTargets(out []byte, value string) []byte {
	var list []*Target
	switch value {
	case "All":
		list = c.srv.Targets
	case "":
		if c.sess != nil && c.sess.target != nil {
			list = []*Target{c.sess.target}
		}
	default:
		if t := c.srv.lookupTarget(value); t != nil {
			list = []*Target{t}
		}
	}
	addrs := c.srv.portals(c.tc.LocalAddr())
	for _, t := range list {
		if !(&loginState{target: t, initiator: c.initiatorName()}).allowed() {
			continue
		}
		out = appendKey(out, "TargetName", t.Name)
		tpgt := t.PortalGroupTag
		if tpgt == 0 {
			tpgt = 1
		}
		for _, a := range addrs {
			out = appendKey(out, "TargetAddress", a+","+strconv.Itoa(int(tpgt)))
		}
	}
	return out
}

func (c *conn) initiatorName() string {
	if c.sess == nil {
		return ""
	}
	return c.sess.initiator
}

// portals lists the addresses the server listens on, "ip:port"; a
// wildcard listener is reported with the address the connection arrived
// on.
func (s *Server) portals(local net.Addr) []string {
	localIP := ""
	if ta, ok := local.(*net.TCPAddr); ok {
		localIP = ta.IP.String()
	} else if local != nil {
		if h, _, err := net.SplitHostPort(local.String()); err == nil {
			localIP = h
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.trans {
		a := t.Addr()
		host, port, err := net.SplitHostPort(a.String())
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = localIP
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	if len(out) == 0 && local != nil {
		out = append(out, local.String())
	}
	// A TCP and an iSER portal on the same address and port are one
	// TargetAddress (SendTargets does not name transports); a stable
	// order keeps discovery output reproducible.
	slices.Sort(out)
	return slices.Compact(out)
}
