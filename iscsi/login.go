package iscsi

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// errLoginFailed is wrapped by errors that ended a login with a Login
// Response carrying an error status.
var errLoginFailed = errors.New("login failed")

// chapStep is where the CHAP exchange (RFC 7143 §12.1.3) of a login is.
type chapStep uint8

const (
	chapIdle  chapStep = iota // AuthMethod not yet chosen, or None
	chapWaitA                 // AuthMethod=CHAP answered; waiting for CHAP_A
	chapWaitR                 // challenge sent; waiting for CHAP_N/CHAP_R
	chapDone                  // initiator (and target, for mutual) authenticated
)

// String returns the name of the step.
func (s chapStep) String() string {
	switch s {
	case chapIdle:
		return "idle"
	case chapWaitA:
		return "wait-CHAP_A"
	case chapWaitR:
		return "wait-CHAP_R"
	case chapDone:
		return "done"
	}
	return "chapStep(?)"
}

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
	text      []byte     // text of a request continued over several PDUs (C bit)
	in, out   text.Pairs // keys of the request and of the response
	reply     []byte     // encoded response keys

	chap          chapStep
	chapAlg       byte
	chapID        byte
	chapChallenge []byte

	mrdslDeclared bool // our MaxRecvDataSegmentLength went out
	done          bool // transit to full feature phase accepted
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

func (e *loginError) Error() string { return fmt.Sprintf("login: %v: %s", e.status, e.msg) }
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
	if len(ls.text)+len(req.Data) > 64<<10 {
		return loginFail(pdu.LoginOutOfResources, "login text longer than 64 KiB")
	}
	ls.text = append(ls.text, req.Data...)
	if req.Continue {
		// The text continues in the next PDU: acknowledge with an empty
		// response (RFC 7143 §11.12.2).
		return nil
	}
	ls.in.Reset()
	err := text.Parse(ls.text, &ls.in)
	ls.text = ls.text[:0]
	if err != nil {
		return loginFail(pdu.LoginInitiatorError, "login text: %v", err)
	}
	ls.out.Reset()
	if err := ls.keys(req); err != nil {
		return err
	}
	transit := req.Transit
	if transit && req.CSG == pdu.StageSecurity && ls.needAuth() && ls.chap != chapDone {
		transit = false // not authenticated yet: stay in the security stage
	}
	if transit {
		ls.neg.Offer(req.CSG, &ls.out)
		ls.declareMRDSL(req.CSG)
		if len(ls.neg.Pending()) > 0 {
			transit = false // our offers need answers before we leave the stage
		}
	}
	if transit {
		if req.NSG == pdu.StageFullFeature {
			if err := ls.neg.CheckLogin(); err != nil {
				return textLoginError(err)
			}
			ls.done = true
		}
		rsp.Transit = true
		rsp.NSG = req.NSG
		ls.stage = req.NSG
	}
	ls.reply, err = ls.out.AppendBinary(ls.reply[:0])
	if err != nil {
		return loginFail(pdu.LoginTargetError, "encode login text: %v", err)
	}
	rsp.Data = ls.reply
	return nil
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
			ls.chap = chapWaitA
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
	if req.CSG == pdu.StageSecurity && req.Transit && ls.needAuth() && ls.chap == chapIdle {
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
		if !ls.srv.sessionExists(ls.tsih) {
			return loginFail(pdu.LoginSessionNotExist, "no session with TSIH %d", ls.tsih)
		}
		return loginFail(pdu.LoginTooManyConnections, "MaxConnections=1: session %d has its connection", ls.tsih)
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
	ours := p.MaxRecvDataSegmentLength
	if ls.mrdslDeclared {
		ours = ls.opts.MaxRecvDataSegmentLength
	}
	return Params{
		HeaderDigest:        p.HeaderDigest,
		DataDigest:          p.DataDigest,
		TargetMaxRecvDSL:    ours,
		InitiatorMaxRecvDSL: p.PeerMaxRecvDataSegmentLength,
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

// chapHash returns the hash of CHAP algorithm a (RFC 7143 §12.1.3, RFC
// 1994 numbering: 5 MD5, 6 SHA-1, 7 SHA-256).
func chapHash(a byte) hash.Hash {
	switch a {
	case 5:
		return md5.New()
	case 6:
		return sha1.New()
	case 7:
		return sha256.New()
	}
	return nil
}

// chapKeys runs the CHAP exchange (RFC 7143 §12.1.3).
func (ls *loginState) chapKeys() error {
	get := ls.in.Get
	switch ls.chap {
	case chapWaitA:
		list, ok := get("CHAP_A")
		if !ok {
			return loginFail(pdu.LoginAuthFailed, "CHAP: expected CHAP_A")
		}
		for _, a := range strings.Split(list, ",") {
			n, err := strconv.ParseUint(a, 10, 8)
			if err != nil || chapHash(byte(n)) == nil {
				continue
			}
			ls.chapAlg = byte(n)
			break
		}
		if ls.chapAlg == 0 {
			ls.out.Set(text.KeyCHAPA, text.Reject)
			return loginFail(pdu.LoginAuthFailed, "CHAP: no supported algorithm in CHAP_A=%s", list)
		}
		var id [1]byte
		_, _ = rand.Read(id[:])
		ls.chapID = id[0]
		ls.chapChallenge = make([]byte, 16)
		_, _ = rand.Read(ls.chapChallenge)
		ls.out.Set(text.KeyCHAPA, strconv.Itoa(int(ls.chapAlg)))
		ls.out.Set(text.KeyCHAPI, strconv.Itoa(int(ls.chapID)))
		ls.out.Set(text.KeyCHAPC, "0x"+hex.EncodeToString(ls.chapChallenge))
		ls.chap = chapWaitR
		return nil
	case chapWaitR:
		cfg := ls.target.CHAP
		name, okN := get("CHAP_N")
		r, okR := get("CHAP_R")
		if !okN || !okR {
			return loginFail(pdu.LoginAuthFailed, "CHAP: expected CHAP_N and CHAP_R")
		}
		resp, err := decodeBinary(r)
		if err != nil {
			return loginFail(pdu.LoginAuthFailed, "CHAP_R: %v", err)
		}
		want := chapResponse(ls.chapAlg, ls.chapID, []byte(cfg.Secret), ls.chapChallenge)
		if name != cfg.User || subtle.ConstantTimeCompare(resp, want) != 1 {
			return loginFail(pdu.LoginAuthFailed, "CHAP: wrong user name or secret for %q", name)
		}
		iStr, okI := get("CHAP_I")
		cStr, okC := get("CHAP_C")
		if okI || okC {
			// Mutual CHAP: the initiator challenges the target.
			if !okI || !okC || cfg.MutualUser == "" {
				return loginFail(pdu.LoginAuthFailed, "CHAP: mutual authentication requested but not configured")
			}
			id, err := strconv.ParseUint(iStr, 0, 8)
			if err != nil {
				return loginFail(pdu.LoginAuthFailed, "CHAP_I=%q", iStr)
			}
			ch, err := decodeBinary(cStr)
			if err != nil || len(ch) == 0 {
				return loginFail(pdu.LoginAuthFailed, "CHAP_C: bad value")
			}
			if bytes.Equal(ch, ls.chapChallenge) {
				return loginFail(pdu.LoginAuthFailed, "CHAP: initiator reflected our challenge")
			}
			mr := chapResponse(ls.chapAlg, byte(id), []byte(cfg.MutualSecret), ch)
			ls.out.Set(text.KeyCHAPN, cfg.MutualUser)
			ls.out.Set(text.KeyCHAPR, "0x"+hex.EncodeToString(mr))
		}
		ls.chap = chapDone
		return nil
	}
	return loginFail(pdu.LoginAuthFailed, "CHAP keys out of sequence (%v)", ls.chap)
}

// chapResponse computes H(id || secret || challenge) (RFC 1994 §4.1).
func chapResponse(alg, id byte, secret, challenge []byte) []byte {
	h := chapHash(alg)
	h.Write([]byte{id})
	h.Write(secret)
	h.Write(challenge)
	return h.Sum(nil)
}

// decodeBinary decodes a binary value: 0x hex or 0b base64 (RFC 7143
// §6.1).
func decodeBinary(v string) ([]byte, error) {
	if len(v) < 2 {
		return nil, fmt.Errorf("binary value %q too short", v)
	}
	switch v[:2] {
	case "0x", "0X":
		s := v[2:]
		if len(s)%2 == 1 {
			s = "0" + s
		}
		return hex.DecodeString(s)
	case "0b", "0B":
		return base64.StdEncoding.DecodeString(v[2:])
	}
	return nil, fmt.Errorf("binary value %q lacks 0x or 0b", v)
}
