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
// discarded once the connection reaches the full feature phase.
type loginState struct {
	srv *Server
	c   *conn
	neg Negotiation // the server's offer, defaults applied

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
	params    sessionParams
	text      []byte // text of a request continued over several PDUs (C bit)
	reply     []byte // keys of the response being built

	authMethodDone bool // AuthMethod answered
	chap           chapStep
	chapAlg        byte
	chapID         byte
	chapChallenge  []byte

	tpgtSent bool
	done     bool // transit to full feature phase accepted
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
	pairs, ok := parseKeys(ls.text)
	ls.text = ls.text[:0]
	if !ok {
		return loginFail(pdu.LoginInitiatorError, "malformed login text")
	}
	ls.reply = ls.reply[:0]
	if err := ls.keys(req, pairs); err != nil {
		return err
	}
	if req.Transit {
		switch {
		case req.CSG == pdu.StageSecurity && ls.needAuth() && ls.chap != chapDone:
			// Not authenticated yet: stay in the security stage.
		default:
			rsp.Transit = true
			rsp.NSG = req.NSG
			ls.stage = req.NSG
			if req.NSG == pdu.StageFullFeature {
				ls.finishKeys()
				ls.done = true
			}
		}
	}
	rsp.Data = ls.reply
	return nil
}

// needAuth reports whether the session must authenticate with CHAP.
func (ls *loginState) needAuth() bool {
	return ls.target != nil && ls.target.CHAP != nil
}

// keys handles the keys of one complete request.
func (ls *loginState) keys(req *pdu.LoginRequest, pairs []kv) error {
	first := ls.initiator == ""
	if first {
		for _, p := range pairs {
			switch p.key {
			case "InitiatorName":
				ls.initiator = p.value
			case "SessionType":
				switch p.value {
				case "Discovery":
					ls.discovery = true
				case "Normal":
				default:
					return loginFail(pdu.LoginSessionTypeUnsupported, "SessionType=%q", p.value)
				}
			}
		}
		if ls.initiator == "" {
			return loginFail(pdu.LoginMissingParameter, "no InitiatorName")
		}
		if !ls.discovery {
			name := ""
			for _, p := range pairs {
				if p.key == "TargetName" {
					name = p.value
				}
			}
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
		if ls.target != nil {
			ls.reply = appendKey(ls.reply, "TargetPortalGroupTag", strconv.Itoa(int(ls.tpgt())))
			if ls.target.Alias != "" {
				ls.reply = appendKey(ls.reply, "TargetAlias", ls.target.Alias)
			}
			ls.tpgtSent = true
		}
	}
	var chapKeys []kv
	for _, p := range pairs {
		switch p.key {
		case "InitiatorName", "SessionType", "TargetName":
			if !first {
				return loginFail(pdu.LoginInitiatorError, "%s sent again", p.key)
			}
		case "AuthMethod":
			if req.CSG != pdu.StageSecurity {
				return loginFail(pdu.LoginInitiatorError, "AuthMethod outside the security stage")
			}
			if err := ls.authMethod(p.value); err != nil {
				return err
			}
		case "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R":
			if req.CSG != pdu.StageSecurity {
				return loginFail(pdu.LoginInitiatorError, "%s outside the security stage", p.key)
			}
			chapKeys = append(chapKeys, p)
		case "TargetAlias", "TargetAddress", "TargetPortalGroupTag":
			ls.reply = appendKey(ls.reply, p.key, valReject)
		default:
			ans, ok := ls.params.negotiate(ls.neg, p.key, p.value)
			if !ok {
				ans = valNotUnderstood
			}
			if ls.discovery && ok && ans != valReject && !discoveryKey(p.key) {
				ans = valIrrelevant
			}
			if ans != "" {
				ls.reply = appendKey(ls.reply, p.key, ans)
			}
		}
	}
	if len(chapKeys) > 0 {
		return ls.chapKeys(chapKeys)
	}
	if req.CSG == pdu.StageSecurity && req.Transit && ls.needAuth() && ls.chap != chapDone && ls.chap != chapWaitA && ls.chap != chapWaitR {
		return loginFail(pdu.LoginAuthFailed, "no CHAP exchange")
	}
	return nil
}

// discoveryKey reports keys that matter in a discovery session.
func discoveryKey(k string) bool {
	switch k {
	case "HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength", "DefaultTime2Wait", "DefaultTime2Retain",
		"ErrorRecoveryLevel", "IFMarker", "OFMarker", "iSCSIProtocolLevel", "TaskReporting", "InitiatorAlias":
		return true
	}
	return false
}

// finishKeys adds the declarations the target owes before the full feature
// phase.
func (ls *loginState) finishKeys() {
	if !ls.params.mrdslDeclared {
		ls.reply = appendKey(ls.reply, "MaxRecvDataSegmentLength", strconv.FormatUint(uint64(ls.params.targetMRDSL), 10))
		ls.params.mrdslDeclared = true
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

// authMethod answers AuthMethod (RFC 7143 §12.1).
func (ls *loginState) authMethod(list string) error {
	want := "None"
	if ls.needAuth() {
		want = "CHAP"
	}
	for _, m := range strings.Split(list, ",") {
		if m == want {
			ls.reply = appendKey(ls.reply, "AuthMethod", want)
			ls.authMethodDone = true
			if want == "CHAP" {
				ls.chap = chapWaitA
			}
			return nil
		}
	}
	ls.reply = appendKey(ls.reply, "AuthMethod", valReject)
	return loginFail(pdu.LoginAuthFailed, "AuthMethod=%s offered, target wants %s", list, want)
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

// chapKeys runs the CHAP exchange.
func (ls *loginState) chapKeys(keys []kv) error {
	get := func(k string) (string, bool) {
		for _, p := range keys {
			if p.key == k {
				return p.value, true
			}
		}
		return "", false
	}
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
			ls.reply = appendKey(ls.reply, "CHAP_A", valReject)
			return loginFail(pdu.LoginAuthFailed, "CHAP: no supported algorithm in CHAP_A=%s", list)
		}
		var id [1]byte
		_, _ = rand.Read(id[:])
		ls.chapID = id[0]
		ls.chapChallenge = make([]byte, 16)
		_, _ = rand.Read(ls.chapChallenge)
		ls.reply = appendKey(ls.reply, "CHAP_A", strconv.Itoa(int(ls.chapAlg)))
		ls.reply = appendKey(ls.reply, "CHAP_I", strconv.Itoa(int(ls.chapID)))
		ls.reply = appendKey(ls.reply, "CHAP_C", "0x"+hex.EncodeToString(ls.chapChallenge))
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
			ls.reply = appendKey(ls.reply, "CHAP_N", cfg.MutualUser)
			ls.reply = appendKey(ls.reply, "CHAP_R", "0x"+hex.EncodeToString(mr))
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
