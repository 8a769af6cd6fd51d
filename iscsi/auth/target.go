package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// TargetConfig is the target's CHAP policy, shared by all logins of a
// target. Zero values give the documented defaults.
type TargetConfig struct {
	// Secret returns the secret of the initiator user named in CHAP_N;
	// ok false fails the login with "authentication failure". Required.
	Secret func(user string) (secret []byte, ok bool)
	// Mutual holds the name and secret the target answers with when the
	// initiator asks for mutual CHAP (sends CHAP_I and CHAP_C). Nil: mutual
	// CHAP is refused.
	Mutual *Credentials
	// RequireMutual fails logins that do not ask for mutual CHAP.
	RequireMutual bool
	// Algorithms we accept; the initiator's order decides among them.
	// Nil: DefaultAlgorithms().
	Algorithms []Algorithm
	// ChallengeLen is the length of our challenge; 0 means the digest size
	// of the chosen algorithm (at least 16).
	ChallengeLen int
	// RequireStrongSecrets fails logins whose secrets are shorter than
	// MinSecretLen bytes (RFC 7143 §12.1.3); otherwise callers may warn
	// with WeakSecret.
	RequireStrongSecrets bool
	// Encoding of CHAP_C and CHAP_R we send; the zero value is Hex.
	Encoding Encoding
	// Rand is the source of challenges; nil means crypto/rand.
	Rand io.Reader
}

// targetState is where a target-side CHAP exchange stands.
type targetState uint8

const (
	tsWaitAlgorithm targetState = iota // expecting CHAP_A
	tsWaitResponse                     // sent CHAP_A/CHAP_I/CHAP_C, expecting CHAP_N/CHAP_R
	tsDone                             // initiator authenticated (and answered if mutual)
	tsFailed                           // a step failed; the login must end
)

// String names the state for logs and test failures.
func (s targetState) String() string {
	switch s {
	case tsWaitAlgorithm:
		return "wait-algorithm"
	case tsWaitResponse:
		return "wait-response"
	case tsDone:
		return "done"
	case tsFailed:
		return "failed"
	}
	return fmt.Sprintf("targetState(%d)", uint8(s))
}

// Target runs the target side of one CHAP exchange (RFC 7143 §12.1.3):
//
//	I -> T: CHAP_A=<A1,A2,...>
//	T -> I: CHAP_A=<A> CHAP_I=<I> CHAP_C=<C>
//	I -> T: CHAP_N=<N> CHAP_R=<R> [CHAP_I=<I'> CHAP_C=<C'>]
//	T -> I: [CHAP_N=<N'> CHAP_R=<R'>]
//
// It belongs to the goroutine running the login.
type Target struct {
	cfg       TargetConfig // immutable
	state     targetState
	alg       Algorithm
	id        byte
	challenge []byte
	user      string // authenticated CHAP_N
}

// NewTarget validates cfg and returns the state for one login.
func NewTarget(cfg TargetConfig) (*Target, error) {
	if cfg.Secret == nil {
		return nil, errors.New("auth: TargetConfig.Secret is required")
	}
	if cfg.Algorithms == nil {
		cfg.Algorithms = DefaultAlgorithms()
	}
	if err := checkAlgorithms(cfg.Algorithms); err != nil {
		return nil, err
	}
	if cfg.RequireMutual && cfg.Mutual == nil {
		return nil, errors.New("auth: RequireMutual without Mutual credentials")
	}
	if cfg.Mutual != nil && cfg.RequireStrongSecrets && WeakSecret(cfg.Mutual.Secret) {
		return nil, fmt.Errorf("auth: target secret shorter than %d bytes", MinSecretLen)
	}
	if cfg.ChallengeLen < 0 || cfg.ChallengeLen > MaxChallengeLen {
		return nil, fmt.Errorf("auth: challenge length %d out of range", cfg.ChallengeLen)
	}
	return &Target{cfg: cfg}, nil
}

// Done reports whether the initiator has been authenticated.
func (t *Target) Done() bool { return t.state == tsDone }

// User returns the authenticated CHAP name, once Done.
func (t *Target) User() string { return t.user }

// Algorithm returns the chosen algorithm (0 before CHAP_A).
func (t *Target) Algorithm() Algorithm { return t.alg }

// Step consumes the CHAP keys of one Login Request and appends the
// target's keys to out. done is true once the initiator is authenticated:
// the login may then leave the security stage. Any error ends the login
// with the *Error's status; after an error Step keeps failing.
func (t *Target) Step(in *text.Pairs, out *text.Pairs) (done bool, err error) {
	switch t.state {
	case tsWaitAlgorithm:
		err = t.chooseAlgorithm(in, out)
	case tsWaitResponse:
		err = t.verify(in, out)
	case tsDone:
		if hasCHAP(in) {
			err = malformed("CHAP keys after authentication completed")
		}
	default:
		err = failed("exchange already failed")
	}
	if err != nil {
		t.state = tsFailed
		return false, err
	}
	return t.state == tsDone, nil
}

func hasCHAP(in *text.Pairs) bool {
	for _, k := range []string{text.KeyCHAPA, text.KeyCHAPI, text.KeyCHAPC, text.KeyCHAPN, text.KeyCHAPR} {
		if in.Has(k) {
			return true
		}
	}
	return false
}

func (t *Target) chooseAlgorithm(in *text.Pairs, out *text.Pairs) error {
	v, ok := in.Get(text.KeyCHAPA)
	if !ok {
		if hasCHAP(in) {
			return malformed("CHAP keys before CHAP_A")
		}
		return nil // AuthMethod only: wait for CHAP_A in the next PDU
	}
	if in.Has(text.KeyCHAPN) || in.Has(text.KeyCHAPR) {
		return malformed("CHAP_N/CHAP_R sent with CHAP_A")
	}
	offered, err := parseAlgorithms(v)
	if err != nil {
		return err
	}
	for _, a := range offered {
		if slices.Contains(t.cfg.Algorithms, a) {
			t.alg = a
			break
		}
	}
	if t.alg == 0 {
		out.Set(text.KeyCHAPA, text.Reject)
		return failed("no acceptable algorithm in CHAP_A=%s", v)
	}
	n := t.cfg.ChallengeLen
	if n == 0 {
		n = max(t.alg.Size(), 16)
	}
	buf, err := randomBytes(t.cfg.Rand, n+1)
	if err != nil {
		return &Error{Status: pdu.LoginTargetError, Err: ErrAuthFailed, Msg: err.Error()}
	}
	t.id, t.challenge = buf[0], buf[1:]
	out.Set(text.KeyCHAPA, strconv.Itoa(int(t.alg)))
	out.Set(text.KeyCHAPI, strconv.Itoa(int(t.id)))
	out.Set(text.KeyCHAPC, t.cfg.Encoding.encode(t.challenge))
	t.state = tsWaitResponse
	return nil
}

func (t *Target) verify(in *text.Pairs, out *text.Pairs) error {
	if in.Has(text.KeyCHAPA) {
		return malformed("CHAP_A sent twice")
	}
	name, okN := in.Get(text.KeyCHAPN)
	resp, okR := in.Get(text.KeyCHAPR)
	switch {
	case !okN && !okR:
		return missing("CHAP_N and CHAP_R")
	case !okN:
		return missing(text.KeyCHAPN)
	case !okR:
		return missing(text.KeyCHAPR)
	}
	r, err := decodeValue(text.KeyCHAPR, resp)
	if err != nil {
		return err
	}
	if len(r) != t.alg.Size() {
		return malformed("CHAP_R of %d bytes, want %d for %v", len(r), t.alg.Size(), t.alg)
	}
	// Mutual keys: parse before verifying so malformed ones are reported.
	mi, okI := in.Get(text.KeyCHAPI)
	mc, okC := in.Get(text.KeyCHAPC)
	if okI != okC {
		if okI {
			return missing(text.KeyCHAPC)
		}
		return missing(text.KeyCHAPI)
	}
	var mid byte
	var mchal []byte
	if okI {
		if mid, err = parseID(mi); err != nil {
			return err
		}
		if mchal, err = decodeValue(text.KeyCHAPC, mc); err != nil {
			return err
		}
		if len(mchal) > MaxChallengeLen {
			return malformed("CHAP_C of %d bytes exceeds %d", len(mchal), MaxChallengeLen)
		}
	}

	secret, ok := t.cfg.Secret(name)
	if !ok {
		return failed("unknown CHAP user %q", name)
	}
	if t.cfg.RequireStrongSecrets && WeakSecret(secret) {
		return failed("secret of %q shorter than %d bytes", name, MinSecretLen)
	}
	want := t.alg.Response(t.id, secret, t.challenge)
	if !equal(r, want) {
		return failed("wrong CHAP_R for user %q", name)
	}

	if !okI {
		if t.cfg.RequireMutual {
			return failed("mutual CHAP required")
		}
		t.user, t.state = name, tsDone
		return nil
	}
	if t.cfg.Mutual == nil {
		return failed("mutual CHAP requested but not configured")
	}
	if bytes.Equal(mchal, t.challenge) {
		return failed("initiator reflected our challenge")
	}
	if equal(secret, t.cfg.Mutual.Secret) {
		return failed("initiator and target secrets are identical")
	}
	out.Set(text.KeyCHAPN, t.cfg.Mutual.User)
	out.Set(text.KeyCHAPR, t.cfg.Encoding.encode(t.alg.Response(mid, t.cfg.Mutual.Secret, mchal)))
	t.user, t.state = name, tsDone
	return nil
}
