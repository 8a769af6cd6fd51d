package initiator

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/goiser/goiser/iscsi/auth"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// LoginError is a Login Response with a non-zero status (RFC 7143
// §11.13.5). Check the class with errors.As:
//
//	var le *initiator.LoginError
//	if errors.As(err, &le) && le.Status == pdu.LoginAuthFailed { ... }
type LoginError struct {
	Status pdu.LoginStatus
}

// Error implements error.
func (e *LoginError) Error() string { return fmt.Sprintf("login rejected: status %v", e.Status) }

// loginStep is where the initiator's login state machine stands (RFC 7143
// §6.3, §12.1.3). Each step names the request it sends next.
type loginStep uint8

const (
	stepStart       loginStep = iota // send names, SessionType and AuthMethod (SecurityNegotiation)
	stepCHAP                         // send the CHAP keys of the next exchange
	stepSecurityEnd                  // security agreed: ask to move to operational negotiation
	stepOperational                  // send operational keys and answers, ask for full feature phase
	stepFullFeature                  // login complete
)

// String returns the name of the step.
func (s loginStep) String() string {
	switch s {
	case stepStart:
		return "start"
	case stepCHAP:
		return "chap"
	case stepSecurityEnd:
		return "security-end"
	case stepOperational:
		return "operational"
	case stepFullFeature:
		return "full-feature"
	}
	return fmt.Sprintf("loginStep(%d)", uint8(s))
}

// login is the state of one login exchange. It lives only while the
// connection logs in (like crypto/tls's handshake state) and is owned by
// the goroutine running it. Key negotiation is iscsi/text's Negotiator in
// the initiator role; CHAP is iscsi/auth's Initiator.
type login struct {
	t         Transport
	caps      Caps
	cfg       Config
	log       *slog.Logger
	discovery bool
	step      loginStep
	neg       *text.Negotiator
	chap      *auth.Initiator // nil without CHAP
	chapDone  bool

	itt              uint32
	cmdSN, expStatSN uint32
	maxCmdSN         uint32
	tsih             uint16
	csg, nsg         pdu.Stage // stage of the last response and where it moves
	transit          bool      // T bit of the last response

	out, in  text.Pairs // keys to send next, keys received
	req, rsp PDU
	acc      text.Accumulator // joins a continued response, up to text.MaxTextLen
	data     []byte           // reassembled data segment of the last response
}

// DialConn connects to addr and logs in to cfg.TargetName, returning a Conn
// in the full feature phase with no goroutine reading it: the caller owns
// the byte stream and drives it with WritePDU/ReadPDU. End-to-end tests use
// it to send malformed PDUs; Dial builds a Session on top of the same
// login.
func DialConn(ctx context.Context, addr string, cfg Config) (*Conn, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return nil, err
	}
	return dialLogin(ctx, addr, cfg, false)
}

// dialLogin opens the stream and runs the login.
func dialLogin(ctx context.Context, addr string, cfg Config, discovery bool) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.LoginTimeout)
	defer cancel()
	dial := cfg.DialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("initiator: dial %s: %w", addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := NewConn(nc)
	c.SetWriteTimeout(cfg.WriteTimeout)
	_, seq, err := loginOver(ctx, c, cfg, discovery, addr)
	if err != nil {
		return nil, err
	}
	c.cmdSN, c.expStatSN, c.maxCmdSN = seq.cmdSN, seq.expStatSN, seq.maxCmdSN
	return c, nil
}

// seq returns the sequence numbers login left in c.
func (c *Conn) seq() seqNumbers { return seqNumbers{c.cmdSN, c.expStatSN, c.maxCmdSN} }

// loginOver runs the login over t (cfg has its defaults) and hands the
// outcome to t.Negotiated. On failure it closes t. addr only names the
// peer in errors and logs.
func loginOver(ctx context.Context, t Transport, cfg Config, discovery bool, addr string) (Params, seqNumbers, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.LoginTimeout)
	defer cancel()
	if c, ok := t.(*Conn); ok {
		// Login PDUs carry at most 8192 bytes of data (RFC 7143 §13.12).
		c.SetMaxRecvDataSegmentLength(text.DefaultMaxRecvDataSegmentLength)
	}
	where := cfg.TargetName
	if addr != "" {
		where += " at " + addr
	}
	l := &login{t: t, caps: t.Caps(), cfg: cfg, discovery: discovery, log: cfg.Logger.With("target", cfg.TargetName, "addr", addr)}
	p, err := l.run(ctx)
	if err == nil {
		err = t.Negotiated(p)
	}
	if err != nil {
		_ = t.Close()
		return Params{}, seqNumbers{}, fmt.Errorf("initiator: login to %s: %w", where, err)
	}
	return p, seqNumbers{l.cmdSN, l.expStatSN, l.maxCmdSN}, nil
}

// newNegotiator builds the initiator's text.Negotiator from cfg.
func (l *login) newNegotiator() error {
	local := text.DefaultParams()
	local.InitiatorName = l.cfg.InitiatorName
	local.InitiatorAlias = l.cfg.InitiatorAlias
	local.SessionType = "Normal"
	if l.discovery {
		local.SessionType = "Discovery"
	} else {
		local.TargetName = l.cfg.TargetName
	}
	local.HeaderDigest = l.cfg.HeaderDigest != DigestNone
	local.DataDigest = l.cfg.DataDigest != DigestNone
	local.MaxConnections = 1
	local.InitialR2T = l.cfg.InitialR2T.value(text.DefaultInitialR2T)
	local.ImmediateData = l.cfg.ImmediateData.value(text.DefaultImmediateData)
	local.MaxRecvDataSegmentLength = l.cfg.MaxRecvDataSegmentLength
	if m := l.caps.MaxRecvDataSegmentLength; m != 0 {
		local.MaxRecvDataSegmentLength = max(min(local.MaxRecvDataSegmentLength, m), 512)
	}
	// iSER (RFC 7145 §6.3, §6.4): what we receive in one SEND, and what
	// we would send; the target answers the minimum of each.
	local.InitiatorRecvDataSegmentLength = local.MaxRecvDataSegmentLength
	local.TargetRecvDataSegmentLength = l.cfg.MaxRecvDataSegmentLength
	if m := l.caps.MaxSendDataSegmentLength; m != 0 {
		local.TargetRecvDataSegmentLength = max(min(local.TargetRecvDataSegmentLength, m), 512)
	}
	local.MaxBurstLength = l.cfg.MaxBurstLength
	local.FirstBurstLength = min(l.cfg.FirstBurstLength, l.cfg.MaxBurstLength)
	local.MaxOutstandingR2T = uint16(l.cfg.MaxOutstandingR2T)
	local.DefaultTime2Wait = text.OfferedInitiatorTime2Wait
	local.DefaultTime2Retain = text.OfferedInitiatorTime2Retain
	local.ErrorRecoveryLevel = 0
	methods := []string{text.None}
	if l.cfg.CHAP != nil {
		methods = []string{"CHAP"}
		ch := l.cfg.CHAP
		ic := auth.InitiatorConfig{Credentials: auth.Credentials{User: ch.User, Secret: []byte(ch.Secret)}}
		for _, a := range ch.Algorithms {
			ic.Algorithms = append(ic.Algorithms, auth.Algorithm(a))
		}
		if ch.TargetSecret != "" {
			ic.Mutual = &auth.Credentials{User: ch.TargetUser, Secret: []byte(ch.TargetSecret)}
		}
		a, err := auth.NewInitiator(ic)
		if err != nil {
			return err
		}
		l.chap = a
	}
	if l.caps.ISER && (l.cfg.HeaderDigest == DigestRequireCRC32C || l.cfg.DataDigest == DigestRequireCRC32C) {
		return errors.New("CRC32C digests required, but iSER runs without digests (RFC 7145 §6.3)")
	}
	n, err := text.NewNegotiator(text.Config{Role: text.RoleInitiator, ISER: l.caps.ISER, Local: local, AuthMethods: methods})
	if err != nil {
		return err
	}
	l.neg = n
	return nil
}

// run drives the login from stepStart to stepFullFeature and returns the
// values in force. When ctx ends, the transport is closed (the login
// fails either way).
func (l *login) run(ctx context.Context) (Params, error) {
	stop := context.AfterFunc(ctx, func() { _ = l.t.Close() })
	defer stop()
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return Params{}, fmt.Errorf("random CmdSN: %w", err)
	}
	l.cmdSN = binary.BigEndian.Uint32(r[:]) & 0x7fffffff
	if err := l.newNegotiator(); err != nil {
		return Params{}, err
	}
	for rounds := 0; l.step != stepFullFeature; rounds++ {
		if rounds > 32 {
			return Params{}, errors.New("login did not finish in 32 exchanges")
		}
		if err := l.exchange(); err != nil {
			if ctx.Err() != nil {
				return Params{}, fmt.Errorf("login %v: %w", l.step, ctx.Err())
			}
			return Params{}, fmt.Errorf("login %v: %w", l.step, err)
		}
	}
	if !stop() {
		return Params{}, fmt.Errorf("login: %w", ctx.Err())
	}
	p, err := l.params()
	if err != nil {
		return Params{}, err
	}
	l.log.Debug("login complete", "tsih", l.tsih, "params", p)
	return p, nil
}

// params converts the negotiated values and checks them against cfg.
func (l *login) params() (Params, error) {
	n := l.neg.Params()
	p := Params{
		Discovery:                      l.discovery,
		TSIH:                           l.tsih,
		ISID:                           l.cfg.ISID,
		TargetPortalGroupTag:           n.TargetPortalGroupTag,
		TargetAlias:                    n.TargetAlias,
		HeaderDigest:                   n.HeaderDigest,
		DataDigest:                     n.DataDigest,
		MaxRecvDataSegmentLength:       n.MaxRecvDataSegmentLength,
		TargetMaxRecvDataSegmentLength: n.PeerMaxRecvDataSegmentLength,
		FirstBurstLength:               n.FirstBurstLength,
		MaxBurstLength:                 n.MaxBurstLength,
		MaxOutstandingR2T:              uint32(n.MaxOutstandingR2T),
		ImmediateData:                  n.ImmediateData,
		InitialR2T:                     n.InitialR2T,
		ErrorRecoveryLevel:             n.ErrorRecoveryLevel,
	}
	if l.caps.ISER {
		if !n.RDMAExtensions {
			return p, errors.New("login: target did not agree to RDMAExtensions=Yes on an iSER connection")
		}
		p.RDMAExtensions = true
		p.InitiatorRecvDataSegmentLength = n.InitiatorRecvDataSegmentLength
		p.TargetRecvDataSegmentLength = n.TargetRecvDataSegmentLength
		// The iSER keys take MaxRecvDataSegmentLength's place in both
		// directions (RFC 7145 §6.3).
		p.MaxRecvDataSegmentLength = n.InitiatorRecvDataSegmentLength
		p.TargetMaxRecvDataSegmentLength = n.TargetRecvDataSegmentLength
		if p.HeaderDigest || p.DataDigest {
			return p, errors.New("login: digests negotiated on an iSER connection")
		}
	}
	if l.cfg.HeaderDigest == DigestRequireCRC32C && !p.HeaderDigest || l.cfg.DataDigest == DigestRequireCRC32C && !p.DataDigest {
		return p, errors.New("login: target refused CRC32C digests")
	}
	if p.ErrorRecoveryLevel != 0 {
		return p, fmt.Errorf("login: ErrorRecoveryLevel=%d", p.ErrorRecoveryLevel)
	}
	if p.MaxOutstandingR2T == 0 || p.TargetMaxRecvDataSegmentLength < 512 {
		return p, fmt.Errorf("login: unusable parameters %+v", p)
	}
	return p, nil
}

// exchange sends the request of the current step, reads the response and
// moves to the next step.
func (l *login) exchange() error {
	csg, nsg, transit := pdu.StageSecurity, pdu.StageOperational, false
	switch l.step {
	case stepStart:
		l.neg.Offer(pdu.StageSecurity, &l.out)
		transit = l.chap == nil
	case stepCHAP:
		transit = l.chapDone
	case stepSecurityEnd:
		transit = true
	case stepOperational:
		csg, nsg, transit = pdu.StageOperational, pdu.StageFullFeature, true
		l.neg.Offer(pdu.StageOperational, &l.out)
	}
	data, err := l.out.AppendBinary(nil)
	if err != nil {
		return err
	}
	sent := l.out.String()
	l.out.Reset()
	if err := l.send(csg, nsg, transit, data); err != nil {
		return err
	}
	if err := l.receive(); err != nil {
		return err
	}
	l.in.Reset()
	if err := text.Parse(l.data, &l.in); err != nil {
		return fmt.Errorf("login response keys: %w", err)
	}
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("login exchange", "step", l.step, "sent", sent, "got", l.in.String(),
			"transit", l.transit, "csg", l.csg, "nsg", l.nsg)
	}
	if l.csg != csg {
		return fmt.Errorf("target answered in stage %v, we are in %v", l.csg, csg)
	}
	if err := l.neg.Receive(csg, &l.in, &l.out); err != nil {
		return err
	}
	return l.next()
}

// next picks the step after a response.
func (l *login) next() error {
	switch l.step {
	case stepStart:
		if l.chap == nil {
			return l.afterSecurity()
		}
		if m := l.neg.Params().AuthMethod; m != "CHAP" {
			return fmt.Errorf("target answered AuthMethod=%q to our CHAP offer", m)
		}
		l.chap.Start(&l.out)
		l.step = stepCHAP
	case stepCHAP:
		done, err := l.chap.Step(&l.in, &l.out)
		if err != nil {
			return err
		}
		if l.chapDone {
			// Our previous request closed the exchange (one-way: it
			// carried CHAP_R; mutual: this response's CHAP_R checked out).
			if !done {
				return errors.New("CHAP exchange incomplete")
			}
			return l.afterSecurity()
		}
		// This response carried the challenge: our CHAP_R (and, for
		// mutual CHAP, our own challenge) goes out with T=1.
		l.chapDone = l.out.Has(text.KeyCHAPR)
	case stepSecurityEnd:
		return l.afterSecurity()
	case stepOperational:
		if l.transit && l.nsg == pdu.StageFullFeature && l.out.Len() == 0 {
			if pending := l.unanswered(); len(pending) > 0 {
				// RFC 7143 §6.2: the responder answers every key offered,
				// except a Boolean the offer decides (Pending leaves those out).
				return fmt.Errorf("target moved to full feature phase without answering %v (RFC 7143 §6.2 requires an answer)", pending)
			}
			if l.tsih == 0 {
				return errors.New("final login response carries TSIH 0")
			}
			l.step = stepFullFeature
		}
		// Otherwise stay: the next request carries our answers or just
		// asks again to move on.
	}
	return nil
}

// afterSecurity moves on once the target has ended SecurityNegotiation,
// or asks it to.
func (l *login) afterSecurity() error {
	if l.transit && l.csg == pdu.StageSecurity && l.nsg == pdu.StageOperational {
		l.step = stepOperational
		return nil
	}
	if l.transit && l.nsg == pdu.StageFullFeature {
		return errors.New("target jumped to full feature phase without operational negotiation")
	}
	l.step = stepSecurityEnd
	return nil
}

// send writes one Login Request (RFC 7143 §11.12).
func (l *login) send(csg, nsg pdu.Stage, transit bool, data []byte) error {
	req := pdu.LoginRequest{
		Transit: transit, CSG: csg, ISID: l.cfg.ISID, TSIH: l.tsih,
		ITT: l.itt, CmdSN: l.cmdSN, ExpStatSN: l.expStatSN, Data: data,
	}
	if transit {
		req.NSG = nsg
	}
	p := &l.req
	b, err := req.AppendBinary(p.BHS[:0])
	if err != nil {
		return fmt.Errorf("encode login request: %w", err)
	}
	if len(b) != BHSLen {
		return fmt.Errorf("encode login request: %d bytes", len(b))
	}
	p.AHS, p.Data = nil, data
	pdu.BHS(p.BHS[:]).SetDataSegmentLength(uint32(len(data)))
	return l.t.Send(&p.BHS, nil, data)
}

// receive reads one Login Response, and more while the target sets the C
// bit, into l.data; a text longer than text.MaxTextLen fails.
func (l *login) receive() error {
	l.acc.Reset()
	for range 64 {
		p := &l.rsp
		if err := l.t.RecvHeader(&p.BHS, &p.AHS); err != nil {
			return err
		}
		n := int(pdu.BHS(p.BHS[:]).DataSegmentLength())
		if n > text.DefaultMaxRecvDataSegmentLength {
			// RFC 7143 §13.12: 8192 bytes at most during login.
			return fmt.Errorf("login response data segment of %d bytes, more than %d", n, text.DefaultMaxRecvDataSegmentLength)
		}
		if cap(p.Data) < n {
			p.Data = make([]byte, n)
		}
		p.Data = p.Data[:n]
		if err := l.t.RecvData(&p.BHS, p.Data); err != nil {
			return err
		}
		if op := p.Opcode(); op != pdu.OpLoginResp {
			return fmt.Errorf("got %v, want Login Response", op)
		}
		var r pdu.LoginResponse
		if err := r.UnmarshalBinary(p.BHS[:]); err != nil {
			return fmt.Errorf("bad login response: %w", err)
		}
		if r.ITT != l.itt {
			return fmt.Errorf("login response ITT %#x, want %#x", r.ITT, l.itt)
		}
		l.expStatSN = r.StatSN + 1
		l.maxCmdSN = r.MaxCmdSN
		if r.Status != pdu.LoginSuccess {
			return &LoginError{Status: r.Status}
		}
		if r.VersionActive != 0 {
			return fmt.Errorf("target chose version %d", r.VersionActive)
		}
		if r.ISID != l.cfg.ISID {
			return fmt.Errorf("login response ISID %v, want %v", r.ISID, l.cfg.ISID)
		}
		l.transit, l.csg, l.nsg, l.tsih = r.Transit, r.CSG, r.NSG, r.TSIH
		data, done, err := l.acc.Add(p.Data, r.Continue)
		if err != nil {
			return fmt.Errorf("login response: %w", err)
		}
		if done {
			l.data = data
			return nil
		}
		// Continue: an empty request with the same stages, T clear.
		if err := l.send(l.csg, l.nsg, false, nil); err != nil {
			return err
		}
	}
	return errors.New("login response continued for more than 64 PDUs")
}

// unanswered returns the keys we offered that the target has not answered
// and had to: an omitted answer to a Boolean offer that decides its own
// outcome (InitialR2T=Yes, DataPDUInOrder=Yes, ImmediateData=No, ...) is
// allowed and the offered value holds (RFC 7143 §6.2).
func (l *login) unanswered() []string {
	return l.neg.Pending()
}
