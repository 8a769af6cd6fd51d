package initiator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
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
	stepStart        loginStep = iota // send names, SessionType and AuthMethod (SecurityNegotiation)
	stepCHAPAlg                       // send CHAP_A
	stepCHAPResponse                  // send CHAP_N/CHAP_R (and our challenge for mutual CHAP)
	stepSecurityEnd                   // security agreed: ask to move to operational negotiation
	stepOperational                   // send operational keys and ask for full feature phase
	stepFullFeature                   // login complete
)

// String returns the name of the step.
func (s loginStep) String() string {
	switch s {
	case stepStart:
		return "start"
	case stepCHAPAlg:
		return "chap-algorithm"
	case stepCHAPResponse:
		return "chap-response"
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
// the goroutine running it.
type login struct {
	c         *Conn
	cfg       Config
	log       *slog.Logger
	discovery bool
	step      loginStep

	itt              uint32
	cmdSN, expStatSN uint32
	maxCmdSN         uint32
	tsih             uint16
	csg, nsg         pdu.Stage // stage of the last response and where it moves
	transit          bool      // T bit of the last response
	params           Params
	offered          keyList // keys sent in the last request
	pending          keyList // answers owed to keys the target offered
	opSent           bool    // operational offers sent
	// CHAP state: the target's algorithm, identifier and challenge, and
	// ours for mutual CHAP.
	chapAlg         int
	chapID          byte
	chapIDSet       bool
	chapC           []byte
	mutualID        byte
	mutualChallenge []byte

	req, rsp PDU
	data     []byte // reassembled data segment of the last response
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
	// Login PDUs carry at most 8192 bytes of data (RFC 7143 §13.12).
	c.SetMaxRecvDataSegmentLength(8192)
	l := &login{c: c, cfg: cfg, discovery: discovery, log: cfg.Logger.With("target", cfg.TargetName, "addr", addr)}
	if err := l.run(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("initiator: login to %s at %s: %w", cfg.TargetName, addr, err)
	}
	return c, nil
}

// run drives the login from stepStart to stepFullFeature.
func (l *login) run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = l.c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return fmt.Errorf("random CmdSN: %w", err)
	}
	l.cmdSN = binary.BigEndian.Uint32(r[:]) & 0x7fffffff
	l.params = Params{
		Discovery:                      l.discovery,
		ISID:                           l.cfg.ISID,
		MaxRecvDataSegmentLength:       l.cfg.MaxRecvDataSegmentLength,
		TargetMaxRecvDataSegmentLength: 8192,
		FirstBurstLength:               65536,
		MaxBurstLength:                 262144,
		MaxOutstandingR2T:              1,
		ImmediateData:                  true,
		InitialR2T:                     true,
	}
	for rounds := 0; l.step != stepFullFeature; rounds++ {
		if rounds > 32 {
			return errors.New("login did not finish in 32 exchanges")
		}
		if err := l.exchange(); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("login %v: %w", l.step, ctx.Err())
			}
			return fmt.Errorf("login %v: %w", l.step, err)
		}
	}
	l.params.TSIH = l.tsih
	c := l.c
	c.params = l.params
	c.cmdSN, c.expStatSN, c.maxCmdSN = l.cmdSN, l.expStatSN, l.maxCmdSN
	c.SetDigests(l.params.HeaderDigest, l.params.DataDigest)
	c.SetMaxRecvDataSegmentLength(l.params.MaxRecvDataSegmentLength)
	l.log.Debug("login complete", "tsih", l.tsih, "params", l.params)
	return nil
}

// exchange sends the request of the current step, reads the response and
// moves to the next step.
func (l *login) exchange() error {
	var keys keyList
	csg, nsg, transit := pdu.StageSecurity, pdu.StageOperational, false
	switch l.step {
	case stepStart:
		keys.add("InitiatorName", l.cfg.InitiatorName)
		if l.cfg.InitiatorAlias != "" {
			keys.add("InitiatorAlias", l.cfg.InitiatorAlias)
		}
		if l.discovery {
			keys.add("SessionType", "Discovery")
		} else {
			keys.add("SessionType", "Normal")
			keys.add("TargetName", l.cfg.TargetName)
		}
		if l.cfg.CHAP != nil {
			keys.add("AuthMethod", "CHAP")
		} else {
			keys.add("AuthMethod", "None")
			transit = true
		}
	case stepCHAPAlg:
		algs := make([]string, len(l.cfg.CHAP.Algorithms))
		for i, a := range l.cfg.CHAP.Algorithms {
			algs[i] = strconv.Itoa(a)
		}
		keys.add("CHAP_A", strings.Join(algs, ","))
	case stepCHAPResponse:
		if err := l.chapAnswer(&keys); err != nil {
			return err
		}
		transit = true
	case stepSecurityEnd:
		transit = true
	case stepOperational:
		csg, nsg, transit = pdu.StageOperational, pdu.StageFullFeature, true
		if !l.opSent {
			l.operationalKeys(&keys)
			l.opSent = true
		}
	}
	keys = append(keys, l.pending...)
	l.pending = nil
	l.offered = keys
	if err := l.send(csg, nsg, transit, keys.encode(nil)); err != nil {
		return err
	}
	if err := l.receive(); err != nil {
		return err
	}
	got, err := parseKeys(l.data)
	if err != nil {
		return err
	}
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("login exchange", "step", l.step, "sent", keys, "got", got,
			"transit", l.transit, "csg", l.csg, "nsg", l.nsg)
	}
	return l.process(got)
}

// operationalKeys adds our offers for LoginOperationalNegotiation
// (RFC 7143 §13).
func (l *login) operationalKeys(keys *keyList) {
	keys.add("HeaderDigest", l.cfg.HeaderDigest.String())
	keys.add("DataDigest", l.cfg.DataDigest.String())
	keys.add("MaxRecvDataSegmentLength", strconv.FormatUint(uint64(l.cfg.MaxRecvDataSegmentLength), 10))
	if l.discovery {
		return
	}
	keys.add("ErrorRecoveryLevel", "0")
	keys.add("MaxConnections", "1")
	keys.add("InitialR2T", yesNo(l.cfg.InitialR2T.value(true)))
	keys.add("ImmediateData", yesNo(l.cfg.ImmediateData.value(true)))
	keys.add("MaxBurstLength", strconv.FormatUint(uint64(l.cfg.MaxBurstLength), 10))
	keys.add("FirstBurstLength", strconv.FormatUint(uint64(l.cfg.FirstBurstLength), 10))
	keys.add("MaxOutstandingR2T", strconv.FormatUint(uint64(l.cfg.MaxOutstandingR2T), 10))
	keys.add("DataPDUInOrder", "Yes")
	keys.add("DataSequenceInOrder", "Yes")
	keys.add("DefaultTime2Wait", "0")
	keys.add("DefaultTime2Retain", "0")
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
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
	return l.c.WritePDU(p)
}

// receive reads one Login Response, and more while the target sets the C
// bit, into l.data.
func (l *login) receive() error {
	l.data = l.data[:0]
	for range 64 {
		p := &l.rsp
		if err := l.c.ReadPDU(p); err != nil {
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
		l.data = append(l.data, p.Data...)
		if !r.Continue {
			return nil
		}
		// Continue: an empty request with the same stages, T clear.
		if err := l.send(l.csg, l.nsg, false, nil); err != nil {
			return err
		}
	}
	return errors.New("login response continued for more than 64 PDUs")
}

// process applies the keys of a response and picks the next step.
func (l *login) process(got keyList) error {
	for _, p := range got {
		if err := l.apply(p); err != nil {
			return err
		}
	}
	switch l.step {
	case stepStart:
		if l.cfg.CHAP == nil {
			return l.afterSecurity()
		}
		m, _ := got.get("AuthMethod")
		if m != "CHAP" {
			return fmt.Errorf("target answered AuthMethod=%q to our CHAP offer", m)
		}
		l.step = stepCHAPAlg
	case stepCHAPAlg:
		if l.chapAlg == 0 || !l.chapIDSet || l.chapC == nil {
			return errors.New("target sent no CHAP_A/CHAP_I/CHAP_C challenge")
		}
		l.step = stepCHAPResponse
	case stepCHAPResponse:
		if l.cfg.CHAP.TargetSecret != "" {
			if err := l.chapCheckTarget(got); err != nil {
				return err
			}
		}
		return l.afterSecurity()
	case stepSecurityEnd:
		return l.afterSecurity()
	case stepOperational:
		if l.transit && l.nsg == pdu.StageFullFeature && len(l.pending) == 0 {
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

// apply records one key of a response, and queues an answer when the key
// is the target's own offer (RFC 7143 §6.2).
func (l *login) apply(p kv) error {
	_, ours := l.offered.get(p.key)
	switch p.value {
	case "Reject", "Irrelevant", "NotUnderstood":
		if ours {
			l.log.Debug("login key refused", "key", p.key, "answer", p.value)
			if p.key == "HeaderDigest" && l.cfg.HeaderDigest == DigestRequireCRC32C ||
				p.key == "DataDigest" && l.cfg.DataDigest == DigestRequireCRC32C {
				return fmt.Errorf("target refused %s=CRC32C: %s", p.key, p.value)
			}
		}
		return nil
	}
	pr := &l.params
	switch p.key {
	case "TargetAlias":
		pr.TargetAlias = p.value
	case "TargetPortalGroupTag":
		n, err := parseNumber(p.value)
		if err != nil || n > 65535 {
			return fmt.Errorf("bad TargetPortalGroupTag %q", p.value)
		}
		pr.TargetPortalGroupTag = uint16(n)
	case "TargetAddress":
	case "AuthMethod":
	case "CHAP_A", "CHAP_I", "CHAP_C":
		return l.chapChallenge(p)
	case "CHAP_N", "CHAP_R":
		// Checked in chapCheckTarget.
	case "MaxRecvDataSegmentLength":
		n, err := parseNumber(p.value)
		if err != nil || n < 512 || n > maxDataSegment {
			return fmt.Errorf("bad MaxRecvDataSegmentLength %q", p.value)
		}
		pr.TargetMaxRecvDataSegmentLength = uint32(n)
	case "HeaderDigest", "DataDigest":
		want := l.cfg.HeaderDigest
		if p.key == "DataDigest" {
			want = l.cfg.DataDigest
		}
		on, err := l.digestAnswer(p, want, ours)
		if err != nil {
			return err
		}
		if p.key == "HeaderDigest" {
			pr.HeaderDigest = on
		} else {
			pr.DataDigest = on
		}
	case "InitialR2T", "ImmediateData", "DataPDUInOrder", "DataSequenceInOrder":
		v := p.value == "Yes"
		if p.value != "Yes" && p.value != "No" {
			return fmt.Errorf("bad %s %q", p.key, p.value)
		}
		if !ours {
			// Result functions: InitialR2T and the InOrder keys are OR,
			// ImmediateData is AND (RFC 7143 §13.10, §13.11).
			switch p.key {
			case "InitialR2T":
				v = v || l.cfg.InitialR2T.value(true)
			case "ImmediateData":
				v = v && l.cfg.ImmediateData.value(true)
			default:
				v = true
			}
			l.pending.add(p.key, yesNo(v))
		}
		switch p.key {
		case "InitialR2T":
			pr.InitialR2T = v
		case "ImmediateData":
			pr.ImmediateData = v
		}
	case "MaxBurstLength", "FirstBurstLength", "MaxOutstandingR2T", "MaxConnections",
		"DefaultTime2Retain", "ErrorRecoveryLevel", "DefaultTime2Wait":
		n, err := parseNumber(p.value)
		if err != nil || n > maxDataSegment {
			return fmt.Errorf("bad %s %q", p.key, p.value)
		}
		var mine uint64
		switch p.key {
		case "MaxBurstLength":
			mine = uint64(l.cfg.MaxBurstLength)
		case "FirstBurstLength":
			mine = uint64(l.cfg.FirstBurstLength)
		case "MaxOutstandingR2T":
			mine = uint64(l.cfg.MaxOutstandingR2T)
		case "MaxConnections":
			mine = 1
		case "DefaultTime2Wait", "DefaultTime2Retain", "ErrorRecoveryLevel":
			mine = 0
		}
		v := min(n, mine) // every one of these is a minimum function except Time2Wait
		if p.key == "DefaultTime2Wait" {
			v = n
		}
		if ours && v != n && p.key != "DefaultTime2Wait" {
			return fmt.Errorf("target answered %s=%d above our offer %d", p.key, n, mine)
		}
		if !ours {
			l.pending.add(p.key, strconv.FormatUint(v, 10))
		}
		switch p.key {
		case "MaxBurstLength":
			pr.MaxBurstLength = uint32(v)
		case "FirstBurstLength":
			pr.FirstBurstLength = uint32(v)
		case "MaxOutstandingR2T":
			if v == 0 {
				return errors.New("MaxOutstandingR2T=0")
			}
			pr.MaxOutstandingR2T = uint32(v)
		case "ErrorRecoveryLevel":
			if v != 0 {
				return fmt.Errorf("ErrorRecoveryLevel=%d", v)
			}
		}
	default:
		if !ours {
			l.pending.add(p.key, "NotUnderstood")
		}
	}
	return nil
}

// digestAnswer decides a digest key: the answer to our offer, or the
// answer we owe to the target's own offer.
func (l *login) digestAnswer(p kv, want Digest, ours bool) (bool, error) {
	if ours {
		switch p.value {
		case "CRC32C":
			if want == DigestNone {
				return false, fmt.Errorf("target chose %s=CRC32C, not offered", p.key)
			}
			return true, nil
		case "None":
			if want == DigestRequireCRC32C {
				return false, fmt.Errorf("target refused %s=CRC32C", p.key)
			}
			return false, nil
		}
		return false, fmt.Errorf("bad %s answer %q", p.key, p.value)
	}
	offers := strings.Split(p.value, ",")
	for _, choice := range []string{"CRC32C", "None"} {
		if choice == "CRC32C" && want == DigestNone || choice == "None" && want == DigestRequireCRC32C {
			continue
		}
		if slices.Contains(offers, choice) {
			l.pending.add(p.key, choice)
			return choice == "CRC32C", nil
		}
	}
	l.pending.add(p.key, "Reject")
	return false, nil
}

// chapChallenge records CHAP_A, CHAP_I and CHAP_C from the target.
func (l *login) chapChallenge(p kv) error {
	if l.cfg.CHAP == nil {
		return fmt.Errorf("target sent %s without CHAP", p.key)
	}
	switch p.key {
	case "CHAP_A":
		n, err := strconv.Atoi(p.value)
		if err != nil || !slices.Contains(l.cfg.CHAP.Algorithms, n) {
			return fmt.Errorf("target chose CHAP_A=%q, not offered", p.value)
		}
		l.chapAlg = n
	case "CHAP_I":
		n, err := parseNumber(p.value)
		if err != nil || n > 255 {
			return fmt.Errorf("bad CHAP_I %q", p.value)
		}
		l.chapIDSet = true
		l.chapID = byte(n)
	case "CHAP_C":
		c, err := decodeBinary(p.value)
		if err != nil || len(c) == 0 {
			return fmt.Errorf("bad CHAP_C: %v", err)
		}
		l.chapC = c
	}
	return nil
}

// chapAnswer adds CHAP_N and CHAP_R, and for mutual CHAP our own CHAP_I
// and CHAP_C (RFC 7143 §12.1.3).
func (l *login) chapAnswer(keys *keyList) error {
	ch := l.cfg.CHAP
	r, err := chapResponse(l.chapAlg, l.chapID, ch.Secret, l.chapC)
	if err != nil {
		return err
	}
	keys.add("CHAP_N", ch.User)
	keys.add("CHAP_R", "0x"+hex.EncodeToString(r))
	if ch.TargetSecret == "" {
		return nil
	}
	var b [17]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("chap challenge: %w", err)
	}
	l.mutualID = b[0]
	l.mutualChallenge = b[1:]
	if bytes.Equal(l.mutualChallenge, l.chapC) {
		return errors.New("chap: target's challenge equals ours")
	}
	keys.add("CHAP_I", strconv.Itoa(int(l.mutualID)))
	keys.add("CHAP_C", "0x"+hex.EncodeToString(l.mutualChallenge))
	return nil
}

// chapCheckTarget verifies the target's answer to our challenge.
func (l *login) chapCheckTarget(got keyList) error {
	ch := l.cfg.CHAP
	n, okN := got.get("CHAP_N")
	r, okR := got.get("CHAP_R")
	if !okN || !okR {
		return errors.New("mutual chap: target sent no CHAP_N/CHAP_R")
	}
	if ch.TargetUser != "" && n != ch.TargetUser {
		return fmt.Errorf("mutual chap: target name %q, want %q", n, ch.TargetUser)
	}
	resp, err := decodeBinary(r)
	if err != nil {
		return fmt.Errorf("mutual chap: bad CHAP_R: %w", err)
	}
	if !chapVerify(l.chapAlg, l.mutualID, ch.TargetSecret, l.mutualChallenge, resp) {
		return errors.New("mutual chap: target failed authentication")
	}
	return nil
}
