package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/goiser/goiser/iscsi/text"
)

// InitiatorConfig is the initiator's CHAP setup.
type InitiatorConfig struct {
	// Credentials answer the target's challenge (CHAP_N, secret). Required.
	Credentials
	// Mutual, if set, makes the initiator challenge the target and expect
	// it to answer as Mutual.User with Mutual.Secret.
	Mutual *Credentials
	// Algorithms offered in CHAP_A, in order of preference.
	// Nil: DefaultAlgorithms().
	Algorithms []Algorithm
	// ChallengeLen for mutual CHAP; 0 means the digest size (at least 16).
	ChallengeLen int
	// RequireStrongSecrets refuses secrets shorter than MinSecretLen.
	RequireStrongSecrets bool
	// Encoding of CHAP_R and CHAP_C we send; the zero value is Hex.
	Encoding Encoding
	// Rand is the source of challenges; nil means crypto/rand.
	Rand io.Reader
}

// initiatorState is where an initiator-side CHAP exchange stands.
type initiatorState uint8

const (
	isStart         initiatorState = iota // CHAP_A not sent yet
	isWaitChallenge                       // sent CHAP_A, expecting CHAP_A/CHAP_I/CHAP_C
	isWaitMutual                          // sent CHAP_R and our challenge, expecting CHAP_N/CHAP_R
	isDone                                // authenticated (both ways if mutual)
	isFailed                              // a step failed
)

// String names the state for logs and test failures.
func (s initiatorState) String() string {
	switch s {
	case isStart:
		return "start"
	case isWaitChallenge:
		return "wait-challenge"
	case isWaitMutual:
		return "wait-mutual"
	case isDone:
		return "done"
	case isFailed:
		return "failed"
	}
	return fmt.Sprintf("initiatorState(%d)", uint8(s))
}

// Initiator runs the initiator side of one CHAP exchange. Call Start once
// AuthMethod=CHAP is agreed, then Step with each Login Response.
type Initiator struct {
	cfg       InitiatorConfig // immutable
	state     initiatorState
	alg       Algorithm
	id        byte
	challenge []byte // ours, for mutual CHAP
}

// NewInitiator validates cfg and returns the state for one login.
func NewInitiator(cfg InitiatorConfig) (*Initiator, error) {
	if cfg.User == "" || len(cfg.Secret) == 0 {
		return nil, errors.New("auth: InitiatorConfig needs a user and a secret")
	}
	if cfg.Algorithms == nil {
		cfg.Algorithms = DefaultAlgorithms()
	}
	if len(cfg.Algorithms) == 0 {
		return nil, errors.New("auth: no CHAP algorithm")
	}
	if err := checkAlgorithms(cfg.Algorithms); err != nil {
		return nil, err
	}
	if cfg.RequireStrongSecrets && (WeakSecret(cfg.Secret) || cfg.Mutual != nil && WeakSecret(cfg.Mutual.Secret)) {
		return nil, fmt.Errorf("auth: secret shorter than %d bytes", MinSecretLen)
	}
	if cfg.Mutual != nil && equal(cfg.Secret, cfg.Mutual.Secret) {
		return nil, errors.New("auth: initiator and target secrets must differ (RFC 7143 §12.1.3)")
	}
	if cfg.ChallengeLen < 0 || cfg.ChallengeLen > MaxChallengeLen {
		return nil, fmt.Errorf("auth: challenge length %d out of range", cfg.ChallengeLen)
	}
	return &Initiator{cfg: cfg}, nil
}

// Done reports whether the exchange completed.
func (c *Initiator) Done() bool { return c.state == isDone }

// Start appends CHAP_A with our algorithms.
func (c *Initiator) Start(out *text.Pairs) {
	out.Set(text.KeyCHAPA, formatAlgorithms(c.cfg.Algorithms))
	c.state = isWaitChallenge
}

// Step consumes the CHAP keys of one Login Response and appends our keys
// to out. done is true when authentication is complete: one-way, right
// after sending CHAP_R; mutual, once the target's CHAP_R checked out.
func (c *Initiator) Step(in *text.Pairs, out *text.Pairs) (done bool, err error) {
	switch c.state {
	case isWaitChallenge:
		err = c.answer(in, out)
	case isWaitMutual:
		err = c.verifyTarget(in)
	case isStart:
		err = malformed("Step before Start")
	case isDone:
		if hasCHAP(in) {
			err = malformed("CHAP keys after authentication completed")
		}
	default:
		err = failed("exchange already failed")
	}
	if err != nil {
		c.state = isFailed
		return false, err
	}
	return c.state == isDone, nil
}

func (c *Initiator) answer(in *text.Pairs, out *text.Pairs) error {
	a, okA := in.Get(text.KeyCHAPA)
	i, okI := in.Get(text.KeyCHAPI)
	ch, okC := in.Get(text.KeyCHAPC)
	if !okA && !okI && !okC {
		return nil // not yet
	}
	if a == text.Reject {
		return failed("target rejected CHAP_A=%s", formatAlgorithms(c.cfg.Algorithms))
	}
	if !okA || !okI || !okC {
		return missing("CHAP_A, CHAP_I and CHAP_C")
	}
	n, err := strconv.ParseUint(a, 10, 8)
	if err != nil || !slices.Contains(c.cfg.Algorithms, Algorithm(n)) {
		return malformed("target chose CHAP_A=%q, which we did not offer", a)
	}
	c.alg = Algorithm(n)
	id, err := parseID(i)
	if err != nil {
		return err
	}
	chal, err := decodeValue(text.KeyCHAPC, ch)
	if err != nil {
		return err
	}
	if len(chal) == 0 || len(chal) > MaxChallengeLen {
		return malformed("CHAP_C of %d bytes", len(chal))
	}
	out.Set(text.KeyCHAPN, c.cfg.User)
	out.Set(text.KeyCHAPR, c.cfg.Encoding.encode(c.alg.Response(id, c.cfg.Secret, chal)))
	if c.cfg.Mutual == nil {
		c.state = isDone
		return nil
	}
	n2 := c.cfg.ChallengeLen
	if n2 == 0 {
		n2 = max(c.alg.Size(), 16)
	}
	for {
		buf, err := randomBytes(c.cfg.Rand, n2+1)
		if err != nil {
			return err
		}
		c.id, c.challenge = buf[0], buf[1:]
		if !bytes.Equal(c.challenge, chal) {
			break // never send the target its own challenge back
		}
	}
	out.Set(text.KeyCHAPI, strconv.Itoa(int(c.id)))
	out.Set(text.KeyCHAPC, c.cfg.Encoding.encode(c.challenge))
	c.state = isWaitMutual
	return nil
}

func (c *Initiator) verifyTarget(in *text.Pairs) error {
	name, okN := in.Get(text.KeyCHAPN)
	resp, okR := in.Get(text.KeyCHAPR)
	if !okN || !okR {
		return missing("target CHAP_N and CHAP_R")
	}
	r, err := decodeValue(text.KeyCHAPR, resp)
	if err != nil {
		return err
	}
	if name != c.cfg.Mutual.User {
		return failed("target answered as %q, want %q", name, c.cfg.Mutual.User)
	}
	if !equal(r, c.alg.Response(c.id, c.cfg.Mutual.Secret, c.challenge)) {
		return failed("wrong target CHAP_R")
	}
	c.state = isDone
	return nil
}
