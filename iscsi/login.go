package iscsi

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/goiser/goiser/iscsi/auth"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// errLoginFailed is wrapped by errors that ended a login with a Login
// Response carrying an error status.
var errLoginFailed = errors.New("login failed")

// loginState holds one connection's login (RFC 7143 §6) while it is in
// progress, like crypto/tls's serverHandshakeState: the owner goroutine
// feeds it Login Requests and it answers each with a Login Response. It is
// discarded once the connection reaches the full feature phase. Key
// negotiation is text.Negotiator's; the stages, names, ACLs, sessions and
// CHAP are the login's.
type loginState struct {
	srv  *Server
	c    *conn
	opts Negotiation // the server's offer, defaults applied
	iser bool        // the transport is iSER (RFC 7145 keys)
	// iserRecv is the largest data segment the iSER transport receives.
	iserRecv uint32

	started   bool // the first Login Request was seen
	stage     pdu.Stage
	isid      pdu.ISID
	tsih      uint16
	cid       uint16
	itt       uint32
	cmdSN     uint32
	initiator string
	discovery bool
	target    *Target // nil for discovery
	neg       *text.Negotiator
	text      text.Accumulator // request text continued over PDUs (C bit), up to Server.MaxTextLength
	in, out   text.Pairs       // keys of the request and of the response
	reply     []byte           // encoded response keys
	// unsent is the tail of reply still to go: a response longer than
	// the initiator receives is sent in pieces with the C bit, each
	// fetched with an empty Login Request (RFC 7143 §11.13.3, §6.1).
	unsent []byte
	// then is the stage change the response makes with its last piece.
	then struct {
		transit bool
		nsg     pdu.Stage
	}

	chapAuth *auth.Target // the CHAP exchange, once AuthMethod=CHAP; it knows when it is done

	reinstate     *session // the session whose connection this login replaces
	mrdslDeclared bool     // our MaxRecvDataSegmentLength went out
	done          bool     // transit to full feature phase accepted and its response complete
}

// loginFail returns a login error with status st.
func loginFail(st pdu.LoginStatus, format string, args ...any) error {
	return &loginError{status: st, msg: fmt.Sprintf(format, args...)}
}

// loginError ends a login with a status.
type loginError struct {
	status pdu.LoginStatus
	msg    string
}

// Error implements error.
func (e *loginError) Error() string { return fmt.Sprintf("login: %v: %s", e.status, e.msg) }

// Unwrap makes every login error match errLoginFailed.
func (e *loginError) Unwrap() error { return errLoginFailed }

// handle processes one Login Request and fills rsp. When it returns a
// *loginError, rsp must still be sent (with the error status) and the
// connection closed.
func (ls *loginState) handle(req *pdu.LoginRequest, rsp *pdu.LoginResponse) error {
	*rsp = pdu.LoginResponse{
		VersionMax: 0, VersionActive: 0,
		ISID: req.ISID, TSIH: ls.tsih, ITT: req.ITT,
		CSG: req.CSG,
	}
	if !ls.started {
		ls.started = true
		ls.isid, ls.tsih, ls.cid, ls.itt, ls.cmdSN = req.ISID, req.TSIH, req.CID, req.ITT, req.CmdSN
		rsp.TSIH = 0
		ls.stage = req.CSG
		if req.VersionMin > 0 {
			return loginFail(pdu.LoginUnsupportedVersion, "VersionMin %d, we speak version 0", req.VersionMin)
		}
	} else if req.ISID != ls.isid || req.TSIH != ls.tsih || req.CID != ls.cid {
		return loginFail(pdu.LoginInitiatorError, "ISID/TSIH/CID changed during login")
	}
	ls.cmdSN = req.CmdSN
	if req.CSG != ls.stage {
		return loginFail(pdu.LoginInitiatorError, "CSG %v, current stage %v", req.CSG, ls.stage)
	}
	if req.CSG == pdu.StageFullFeature {
		return loginFail(pdu.LoginInitiatorError, "CSG is the full feature phase")
	}
	if req.Transit && req.NSG <= req.CSG {
		return loginFail(pdu.LoginInitiatorError, "transit from %v to %v", req.CSG, req.NSG)
	}
	if ls.unsent != nil {
		// The initiator fetches the rest of our response.
		if len(req.Data) > 0 || req.Continue {
			return loginFail(pdu.LoginInitiatorError, "Login Request with text while the Login Response continues")
		}
		ls.respond(rsp)
		return nil
	}
	ls.text.Max = ls.srv.maxTextLength()
	data, done, err := ls.text.Add(req.Data, req.Continue)
	if err != nil {
		// The initiator's fault, as LIO answers it too.
		return loginFail(pdu.LoginInitiatorError, "login %v", err)
	}
	if !done {
		// The text continues in the next PDU: acknowledge with an empty
		// response (RFC 7143 §11.12.2).
		return nil
	}
	ls.in.Reset()
	if err := text.Parse(data, &ls.in); err != nil {
		return loginFail(pdu.LoginInitiatorError, "login text: %v", err)
	}
	ls.out.Reset()
	if err := ls.keys(req); err != nil {
		return err
	}
	transit := req.Transit
	if transit && req.CSG == pdu.StageSecurity && ls.needAuth() && !ls.chapDone() {
		transit = false // not authenticated yet: stay in the security stage
	}
	if transit {
		ls.neg.Offer(req.CSG, &ls.out)
		ls.declareMRDSL(req.CSG)
		if len(ls.neg.Pending()) > 0 {
			transit = false // our offers need answers before we leave the stage
		}
	}
	if transit && req.NSG == pdu.StageFullFeature {
		if err := ls.neg.CheckLogin(); err != nil {
			return textLoginError(err)
		}
	}
	ls.then.transit, ls.then.nsg = transit, req.NSG
	ls.reply, err = ls.out.AppendBinary(ls.reply[:0])
	if err != nil {
		return loginFail(pdu.LoginTargetError, "encode login text: %v", err)
	}
	ls.unsent = ls.reply
	ls.respond(rsp)
	return nil
}

// loginMaxDSL bounds the data segment of a Login Response: the login-phase
// default of the initiator's MaxRecvDataSegmentLength (RFC 7143 §13.12).
const loginMaxDSL = 8192

// respond puts the next piece of the response into rsp: with the C bit
// and T=0 while more follows (RFC 7143 §11.13.3), else the last piece,
// which carries the stage change.
func (ls *loginState) respond(rsp *pdu.LoginResponse) {
	max := loginMaxDSL
	if ls.neg != nil && !ls.iser {
		// An initiator that declared less gets less.
		if peer := int(ls.neg.Params().PeerMaxRecvDataSegmentLength); peer >= 512 {
			max = min(max, peer)
		}
	}
	if len(ls.unsent) > max {
		cut := textCut(ls.unsent, max)
		rsp.Data, ls.unsent = ls.unsent[:cut], ls.unsent[cut:]
		rsp.Continue = true
		return
	}
	rsp.Data, ls.unsent = ls.unsent, nil
	if ls.then.transit {
		rsp.Transit = true
		rsp.NSG = ls.then.nsg
		ls.stage = ls.then.nsg
		ls.done = ls.then.nsg == pdu.StageFullFeature
	}
}

// declareMRDSL makes sure the target declares its MaxRecvDataSegmentLength
// (RFC 7143 §13.12) in the operational stage. Declarations are per side,
// but the negotiator skips ours once the initiator has declared its own;
// without ours the initiator would stay at the 8192-byte default.
func (ls *loginState) declareMRDSL(stage pdu.Stage) {
	if ls.iser || stage != pdu.StageOperational || ls.mrdslDeclared {
		return
	}
	ls.mrdslDeclared = true
	if _, ok := ls.out.Get(text.KeyMaxRecvDataSegmentLength); ok {
		return
	}
	ls.out.Set(text.KeyMaxRecvDataSegmentLength, strconv.FormatUint(uint64(ls.opts.MaxRecvDataSegmentLength), 10))
}

// textLoginError converts a negotiation failure into a login failure.
func textLoginError(err error) error {
	var te *text.Error
	if errors.As(err, &te) {
		return loginFail(te.Status, "%v", te)
	}
	return loginFail(pdu.LoginInitiatorError, "%v", err)
}

// needAuth reports whether the session must authenticate with CHAP.
func (ls *loginState) needAuth() bool {
	return ls.target != nil && ls.target.CHAP != nil
}

// keys handles the keys of one complete request.
func (ls *loginState) keys(req *pdu.LoginRequest) error {
	if ls.neg == nil {
		if err := ls.leading(req); err != nil {
			return err
		}
	} else {
		for _, k := range []string{text.KeyInitiatorName, text.KeyTargetName, text.KeySessionType} {
			if ls.in.Has(k) {
				return loginFail(pdu.LoginInitiatorError, "%s sent again", k)
			}
		}
	}
	if err := ls.neg.Receive(req.CSG, &ls.in, &ls.out); err != nil {
		return textLoginError(err)
	}
	if ls.in.Has(text.KeyAuthMethod) {
		switch v, _ := ls.out.Get(text.KeyAuthMethod); v {
		case "CHAP":
			if err := ls.startCHAP(); err != nil {
				return err
			}
		case text.None:
		default:
			want := "None"
			if ls.needAuth() {
				want = "CHAP"
			}
			m, _ := ls.in.Get(text.KeyAuthMethod)
			return loginFail(pdu.LoginAuthFailed, "AuthMethod=%s offered, target wants %s", m, want)
		}
	}
	if ls.in.Has(text.KeyCHAPA) || ls.in.Has(text.KeyCHAPN) || ls.in.Has(text.KeyCHAPR) ||
		ls.in.Has(text.KeyCHAPI) || ls.in.Has(text.KeyCHAPC) {
		if req.CSG != pdu.StageSecurity {
			return loginFail(pdu.LoginInitiatorError, "CHAP keys outside the security stage")
		}
		return ls.chapKeys()
	}
	if req.CSG == pdu.StageSecurity && req.Transit && ls.needAuth() && ls.chapAuth == nil {
		return loginFail(pdu.LoginAuthFailed, "no CHAP exchange")
	}
	return nil
}

// leading handles the first request: names, session type, target lookup,
// ACL, TSIH and the negotiator for this session.
func (ls *loginState) leading(req *pdu.LoginRequest) error {
	ls.initiator, _ = ls.in.Get(text.KeyInitiatorName)
	if ls.initiator == "" {
		return loginFail(pdu.LoginMissingParameter, "no InitiatorName")
	}
	switch st, _ := ls.in.Get(text.KeySessionType); st {
	case text.SessionDiscovery:
		ls.discovery = true
	case text.SessionNormal, "":
	default:
		return loginFail(pdu.LoginSessionTypeUnsupported, "SessionType=%q", st)
	}
	if !ls.discovery {
		name, _ := ls.in.Get(text.KeyTargetName)
		if name == "" {
			return loginFail(pdu.LoginMissingParameter, "no TargetName in a normal session")
		}
		ls.target = ls.srv.lookupTarget(name)
		if ls.target == nil {
			return loginFail(pdu.LoginNotFound, "no target %q", name)
		}
		if !ls.allowed() {
			return loginFail(pdu.LoginAuthorizationFailed, "initiator %q may not log in to %q", ls.initiator, ls.target.Name)
		}
	}
	if ls.tsih != 0 {
		sess := ls.srv.sessionByTSIH(ls.tsih)
		if sess == nil || sess.isid != ls.isid || foldName(sess.initiator) != foldName(ls.initiator) ||
			sess.target != ls.target || sess.discovery != ls.discovery {
			return loginFail(pdu.LoginSessionNotExist, "no session with TSIH %d for this initiator and ISID", ls.tsih)
		}
		if sess.cid != ls.cid {
			return loginFail(pdu.LoginTooManyConnections, "MaxConnections=1: session %d has its connection", ls.tsih)
		}
		// Same ISID, TSIH and CID: connection reinstatement (RFC 7143
		// §6.3.4). The old connection's tasks end with it (ERL 0).
		ls.reinstate = sess
	}
	if req.CSG != pdu.StageSecurity && ls.needAuth() {
		return loginFail(pdu.LoginAuthFailed, "target %q requires CHAP; login skipped the security stage", ls.target.Name)
	}
	local := text.DefaultParams()
	o := ls.opts
	local.HeaderDigest = !o.NoDigests
	local.DataDigest = !o.NoDigests
	local.MaxConnections = 1
	local.InitialR2T = o.InitialR2T
	local.ImmediateData = !o.NoImmediateData
	local.MaxRecvDataSegmentLength = o.MaxRecvDataSegmentLength
	local.MaxBurstLength = o.MaxBurstLength
	local.FirstBurstLength = min(o.FirstBurstLength, o.MaxBurstLength)
	local.MaxOutstandingR2T = uint16(min(o.MaxOutstandingR2T, 65535))
	local.DefaultTime2Wait = uint16(min(o.DefaultTime2Wait, 3600))
	local.DefaultTime2Retain = uint16(min(o.DefaultTime2Retain, 3600))
	local.ErrorRecoveryLevel = 0
	local.TargetPortalGroupTag = ls.tpgt()
	// iSER (RFC 7145 §6.3-6.4): what we receive is bounded like
	// MaxRecvDataSegmentLength; what we send, only by the initiator.
	local.TargetRecvDataSegmentLength = o.MaxRecvDataSegmentLength
	if ls.iserRecv > 0 {
		local.TargetRecvDataSegmentLength = min(local.TargetRecvDataSegmentLength, max(ls.iserRecv, 512))
	}
	local.InitiatorRecvDataSegmentLength = 16777215
	if ls.target != nil {
		local.TargetName = ls.target.Name
		local.TargetAlias = ls.target.Alias
	}
	methods := []string{text.None}
	if ls.needAuth() {
		methods = []string{"CHAP"}
	}
	n, err := text.NewNegotiator(text.Config{Role: text.RoleTarget, ISER: ls.iser, Local: local, AuthMethods: methods})
	if err != nil {
		return loginFail(pdu.LoginTargetError, "negotiator: %v", err)
	}
	ls.neg = n
	return nil
}

// params returns the negotiated values for the transport.
func (ls *loginState) params() Params {
	p := ls.neg.Params()
	first := p.FirstBurstLength
	ours, theirs := p.MaxRecvDataSegmentLength, p.PeerMaxRecvDataSegmentLength
	if ls.mrdslDeclared {
		ours = ls.opts.MaxRecvDataSegmentLength
	}
	if p.RDMAExtensions || ls.iser {
		// On an iSER connection the iSER lengths apply even when a
		// discovery login left RDMAExtensions unsaid (open-iscsi does):
		// the RFC 7145 defaults then.
		ours, theirs = p.TargetRecvDataSegmentLength, p.InitiatorRecvDataSegmentLength
	}
	return Params{
		RDMAExtensions:      p.RDMAExtensions || ls.iser,
		HeaderDigest:        p.HeaderDigest,
		DataDigest:          p.DataDigest,
		TargetMaxRecvDSL:    ours,
		InitiatorMaxRecvDSL: theirs,
		MaxBurstLength:      p.MaxBurstLength,
		FirstBurstLength:    first,
		MaxOutstandingR2T:   uint32(p.MaxOutstandingR2T),
		ImmediateData:       p.ImmediateData,
		InitialR2T:          p.InitialR2T,
		Discovery:           ls.discovery,
	}
}

func (ls *loginState) tpgt() uint16 {
	if ls.target == nil || ls.target.PortalGroupTag == 0 {
		return 1
	}
	return ls.target.PortalGroupTag
}

// allowed applies the target's initiator ACL.
func (ls *loginState) allowed() bool {
	if len(ls.target.Initiators) == 0 {
		return true
	}
	me := foldName(ls.initiator)
	return slices.ContainsFunc(ls.target.Initiators, func(n string) bool { return foldName(n) == me })
}

// startCHAP prepares the target side of the CHAP exchange
// (RFC 7143 §12.1.3) with the target's secrets.
func (ls *loginState) startCHAP() error {
	cfg := ls.target.CHAP
	tc := auth.TargetConfig{
		Secret: func(user string) ([]byte, bool) {
			if user != cfg.User {
				return nil, false
			}
			return []byte(cfg.Secret), true
		},
	}
	if cfg.MutualUser != "" {
		tc.Mutual = &auth.Credentials{User: cfg.MutualUser, Secret: []byte(cfg.MutualSecret)}
	}
	a, err := auth.NewTarget(tc)
	if err != nil {
		return loginFail(pdu.LoginTargetError, "CHAP: %v", err)
	}
	ls.chapAuth = a
	return nil
}

// chapKeys runs one step of the CHAP exchange.
func (ls *loginState) chapKeys() error {
	if ls.chapAuth == nil {
		return loginFail(pdu.LoginInitiatorError, "CHAP keys before AuthMethod=CHAP")
	}
	if _, err := ls.chapAuth.Step(&ls.in, &ls.out); err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			return loginFail(ae.Status, "%v", err)
		}
		return loginFail(pdu.LoginAuthFailed, "%v", err)
	}
	return nil
}

// chapDone reports whether the initiator (and, for mutual CHAP, the target)
// has been authenticated.
func (ls *loginState) chapDone() bool { return ls.chapAuth != nil && ls.chapAuth.Done() }
