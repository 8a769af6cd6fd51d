package text

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/goiser/goiser/iscsi/pdu"
)

// Role says which end of the negotiation the Negotiator speaks for.
type Role uint8

// Roles. The zero value is RoleTarget.
const (
	RoleTarget Role = iota
	RoleInitiator
)

// String implements fmt.Stringer.
func (r Role) String() string {
	if r == RoleInitiator {
		return "initiator"
	}
	return "target"
}

// Config is the local side of a negotiation.
type Config struct {
	// Role is RoleTarget (the zero value) or RoleInitiator.
	Role Role
	// ISER says the transport is iSER: RDMAExtensions=Yes is offered or
	// accepted, the RFC 7145 keys are negotiated, digests are forced to
	// None and MaxRecvDataSegmentLength is not used. Without it,
	// RDMAExtensions is answered No and the iSER keys Irrelevant.
	ISER bool
	// NonLeading marks a connection added to an existing session: its
	// leading-only keys are answered Irrelevant and not offered.
	NonLeading bool
	// Local holds our values: what we offer, accept or declare. Start from
	// DefaultParams(). HeaderDigest/DataDigest true means CRC32C is
	// offered (initiator, preferred over None) or accepted (target).
	Local Params
	// AuthMethods are the AuthMethod values we accept (target) or offer
	// (initiator), in order of preference; nil means {"None"}.
	AuthMethods []string
}

// Negotiator runs the key=value negotiation of one login (RFC 7143 §6),
// for either role. Per login or text PDU the owner calls Receive with the
// peer's keys, which appends our answers to out, then Offer, which appends
// our own offers and declarations for the stage. Params returns the
// agreed values. A Negotiator belongs to the goroutine that owns the
// connection's login; it is not safe for concurrent use.
type Negotiator struct {
	cfg     Config            // immutable after NewNegotiator
	params  Params            // agreed and declared values so far
	done    map[string]bool   // keys the peer offered or declared, and our answered offers
	sent    map[string]bool   // our own declarations (per direction: the peer's do not count)
	offered map[string]string // our offers awaiting an answer: key -> offered value
	firstTx bool              // our first Offer has been made
}

// NewNegotiator validates cfg and returns a Negotiator.
func NewNegotiator(cfg Config) (*Negotiator, error) {
	if err := cfg.Local.validate(); err != nil {
		return nil, err
	}
	if cfg.AuthMethods == nil {
		cfg.AuthMethods = []string{None}
	}
	ad, _ := Lookup(KeyAuthMethod)
	for _, m := range cfg.AuthMethods {
		if !slices.Contains(ad.Values, m) {
			return nil, fmt.Errorf("text: local AuthMethod %q unknown", m)
		}
	}
	cfg.Local.RDMAExtensions = cfg.ISER
	if cfg.ISER {
		cfg.Local.HeaderDigest, cfg.Local.DataDigest = false, false
	}
	n := &Negotiator{
		cfg:     cfg,
		params:  DefaultParams(),
		done:    map[string]bool{},
		sent:    map[string]bool{},
		offered: map[string]string{},
	}
	if cfg.Role == RoleInitiator {
		n.params.SessionType = cfg.Local.SessionType
	}
	return n, nil
}

// Params returns the agreed values, with RFC defaults for the rest.
// FirstBurstLength is clamped to MaxBurstLength (RFC 7143 §13.14).
func (n *Negotiator) Params() Params {
	p := n.params
	if p.FirstBurstLength > p.MaxBurstLength {
		p.FirstBurstLength = p.MaxBurstLength
	}
	return p
}

// Pending returns the keys we offered that the peer must still answer,
// sorted. A side must not leave a stage while offers are pending.
//
// An offer whose outcome the offer alone decides needs no answer (RFC
// 7143 §6.2: a Boolean AND key offered No, a Boolean OR key offered Yes;
// LIO, for one, leaves them out): it is settled to the offered value when
// made and is never pending, though an answer that does come is still
// checked. Every other offer (lists, numbers, an AND key offered Yes, an
// OR key offered No) must be answered. Declarations are not offers and
// are never pending.
func (n *Negotiator) Pending() []string {
	keys := make([]string, 0, len(n.offered))
	for k, v := range n.offered {
		if d, _ := Lookup(k); !answerOptional(&d, v) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// answerOptional reports whether the offer key=v decides the outcome by
// itself, so that the responder may omit its answer (RFC 7143 §6.2).
func answerOptional(d *KeyDef, v string) bool {
	return d.Kind == KindBoolAnd && v == No || d.Kind == KindBoolOr && v == Yes
}

// NewExchange starts a new Text exchange in full feature phase, where keys
// that allow it (MaxRecvDataSegmentLength, for example) may be negotiated
// again.
func (n *Negotiator) NewExchange() {
	clear(n.done)
	clear(n.sent)
	clear(n.offered)
}

// CheckLogin reports what must hold before a target lets the login reach
// full feature phase (RFC 7143 §13.4, §13.5; RFC 7145 §6.2): InitiatorName
// declared, TargetName declared for a Normal session, and RDMAExtensions=Yes
// on iSER (for a Normal session). The *Error carries the Login status to answer.
func (n *Negotiator) CheckLogin() error {
	p := &n.params
	if p.InitiatorName == "" {
		return &Error{Key: KeyInitiatorName, Status: pdu.LoginMissingParameter, Msg: "not declared"}
	}
	if !p.Discovery() && p.TargetName == "" {
		return &Error{Key: KeyTargetName, Status: pdu.LoginMissingParameter, Msg: "not declared for a Normal session"}
	}
	if n.cfg.ISER && !p.RDMAExtensions && !p.Discovery() {
		// A discovery session is let through: open-iscsi's discovery
		// over iSER does not offer RDMAExtensions, and LIO accepts it
		// (the connection is iSER whatever the key says).
		return &Error{Key: KeyRDMAExtensions, Status: pdu.LoginInitiatorError, Msg: "iSER requires RDMAExtensions=Yes"}
	}
	return nil
}

// useFor maps a stage to its Use bit.
func useFor(stage pdu.Stage) Use {
	switch stage {
	case pdu.StageSecurity:
		return UseSecurity
	case pdu.StageOperational:
		return UseOperational
	}
	return UseFFP
}

// peerSender is the Sender bit of the other side.
func (n *Negotiator) peerSender() Sender {
	if n.cfg.Role == RoleTarget {
		return SenderInitiator
	}
	return SenderTarget
}

// Receive processes the peer's keys for one login or text PDU sequence in
// stage (pdu.StageFullFeature for Text requests). Answers to the peer's
// offers are appended to out; answers to our pending offers are checked
// and settle them. KindAuth keys (CHAP_*) and SendTargets are left to the
// caller. An *Error fails the login: a key sent twice, a key not allowed
// in this stage or from this sender, an answer outside what we offered,
// more than MaxUnknownKeys keys we do not know.
func (n *Negotiator) Receive(stage pdu.Stage, in *Pairs, out *Pairs) error {
	// Each unknown key costs an answer: bound them before answering any
	// (RFC 7143 §6.2 wants every key answered, so a text with too many
	// fails instead of being answered in part).
	unknown := 0
	for _, kv := range in.All() {
		if _, known := Lookup(kv.Key); !known {
			if _, ours := n.offered[kv.Key]; !ours {
				unknown++
			}
		}
	}
	if unknown > MaxUnknownKeys {
		return negErr("", "%d keys not understood, more than %d", unknown, MaxUnknownKeys)
	}
	// SessionType first: it decides which keys are relevant. FirstBurstLength
	// last: it depends on InitialR2T and ImmediateData.
	for _, kv := range in.All() {
		if kv.Key == KeySessionType {
			if err := n.receiveOne(stage, kv, out); err != nil {
				return err
			}
		}
	}
	for _, kv := range in.All() {
		if kv.Key == KeySessionType || kv.Key == KeyFirstBurstLength {
			continue
		}
		if err := n.receiveOne(stage, kv, out); err != nil {
			return err
		}
	}
	if v, ok := in.Get(KeyFirstBurstLength); ok {
		return n.receiveOne(stage, Pair{KeyFirstBurstLength, v}, out)
	}
	return nil
}

func isAnswer(v string) bool { return v == NotUnderstood || v == Irrelevant || v == Reject }

func (n *Negotiator) receiveOne(stage pdu.Stage, kv Pair, out *Pairs) error {
	key, v := kv.Key, kv.Value
	d, known := Lookup(key)
	if offered, ok := n.offered[key]; ok {
		delete(n.offered, key)
		n.done[key] = true
		return n.checkAnswer(&d, offered, v)
	}
	if !known {
		if !isAnswer(v) {
			out.Set(key, NotUnderstood)
		}
		return nil
	}
	if d.Use&useFor(stage) == 0 {
		return negErr(key, "not allowed in %v", stage)
	}
	if d.Senders&n.peerSender() == 0 {
		return negErr(key, "may not be sent by the %v", otherRole(n.cfg.Role))
	}
	if d.Kind == KindAuth || d.Kind == KindSendTargets {
		return nil // the caller's: iscsi/auth and the session's target list
	}
	if isAnswer(v) {
		return nil // an answer to nothing we asked: ignore
	}
	if n.done[key] {
		return negErr(key, "negotiated twice")
	}
	n.done[key] = true

	if d.LeadingOnly && n.cfg.NonLeading && d.Kind == KindDeclarative {
		return nil // SessionType again on a second connection: nothing to answer
	}
	// Keys that do not apply here.
	irrelevant := (d.ISER && !n.cfg.ISER) ||
		(d.LeadingOnly && n.cfg.NonLeading) ||
		(d.DiscoveryIrrelevant && n.params.Discovery()) ||
		key == KeyIFMarkInt || key == KeyOFMarkInt ||
		(key == KeyFirstBurstLength && !n.params.FirstBurstRelevant())
	if irrelevant {
		out.Set(key, Irrelevant)
		return nil
	}
	if d.NotISER && n.cfg.ISER && d.Kind == KindDeclarative {
		return nil // MaxRecvDataSegmentLength is replaced by the iSER keys
	}

	if d.Kind == KindList {
		return n.answerList(&d, v, out)
	}
	if err := d.checkValue(v); err != nil {
		if key == KeySessionType {
			return &Error{Key: key, Status: pdu.LoginSessionTypeUnsupported, Msg: err.Error()}
		}
		out.Set(key, Reject)
		return nil
	}
	if d.Kind == KindDeclarative {
		return n.params.set(key, v, true)
	}
	local, _ := n.cfg.Local.value(key)
	res := result(&d, v, local)
	if key == KeyFirstBurstLength {
		res = minNum(res, strconv.FormatUint(uint64(n.params.MaxBurstLength), 10))
	}
	out.Set(key, res)
	return n.params.set(key, res, false)
}

func otherRole(r Role) Role {
	if r == RoleTarget {
		return RoleInitiator
	}
	return RoleTarget
}

// answerList answers a list offer with the first offered value we support
// (RFC 7143 §6.2), or Reject.
func (n *Negotiator) answerList(d *KeyDef, v string, out *Pairs) error {
	items, err := SplitList(v)
	if err != nil {
		out.Set(d.Name, Reject)
		return nil
	}
	ours := n.supported(d.Name)
	for _, it := range items {
		if slices.Contains(ours, it) {
			out.Set(d.Name, it)
			return n.params.set(d.Name, it, false)
		}
	}
	out.Set(d.Name, Reject)
	return nil
}

// supported returns the values we accept for a list key, in our order of
// preference.
func (n *Negotiator) supported(key string) []string {
	switch key {
	case KeyAuthMethod:
		return n.cfg.AuthMethods
	case KeyHeaderDigest:
		return digestList(n.cfg.Local.HeaderDigest)
	case KeyDataDigest:
		return digestList(n.cfg.Local.DataDigest)
	case KeyTaskReporting:
		return []string{n.cfg.Local.TaskReporting}
	}
	return nil
}

func digestList(crc bool) []string {
	if crc {
		return []string{DigestCRC32C, None}
	}
	return []string{None}
}

// result computes the outcome of a valid offer v against our local value.
func result(d *KeyDef, v, local string) string {
	switch d.Kind {
	case KindBoolAnd:
		return FormatBool(v == Yes && local == Yes)
	case KindBoolOr:
		return FormatBool(v == Yes || local == Yes)
	case KindMin:
		if d.Name == KeyMaxOutstandingUnexpectedPDUs { // 0 means no limit
			if v == "0" {
				return local
			}
			if local == "0" {
				return v
			}
		}
		return minNum(v, local)
	case KindMax:
		a, _ := ParseNumber(v)
		b, _ := ParseNumber(local)
		return strconv.FormatUint(max(a, b), 10)
	}
	return v
}

func minNum(x, y string) string {
	a, _ := ParseNumber(x)
	b, _ := ParseNumber(y)
	return strconv.FormatUint(min(a, b), 10)
}

// checkAnswer settles one of our offers with the peer's answer.
func (n *Negotiator) checkAnswer(d *KeyDef, offered, v string) error {
	key := d.Name
	if isAnswer(v) {
		// NotUnderstood, Irrelevant, Reject: the default stays (or
		// returns: offer settled an optional answer to the offered value).
		if answerOptional(d, offered) {
			return n.params.set(key, d.Default, false)
		}
		return nil
	}
	bad := func() error { return negErr(key, "answer %q is outside our offer %q", v, offered) }
	switch d.Kind {
	case KindList:
		items, _ := SplitList(offered)
		if !slices.Contains(items, v) {
			return bad()
		}
	case KindBoolAnd, KindBoolOr:
		if _, err := ParseBool(v); err != nil {
			return bad()
		}
		if d.Kind == KindBoolAnd && offered == No && v == Yes || d.Kind == KindBoolOr && offered == Yes && v == No {
			return bad()
		}
	case KindMin, KindMax:
		if err := d.checkValue(v); err != nil {
			return bad()
		}
		a, _ := ParseNumber(v)
		o, _ := ParseNumber(offered)
		unlimited := key == KeyMaxOutstandingUnexpectedPDUs && o == 0
		if d.Kind == KindMin && a > o && !unlimited || d.Kind == KindMax && a < o {
			return bad()
		}
	default:
		return nil
	}
	return n.params.set(key, v, false)
}

// Offer appends our offers and declarations for stage to out, each at most
// once per login: for an initiator the names, SessionType and AuthMethod in
// the security stage and the operational keys in the operational stage;
// for a target its declarations (TargetPortalGroupTag and TargetAlias in
// the first answer of a Normal session, MaxRecvDataSegmentLength in the
// operational stage) and offers only for keys whose RFC default would break
// our local limits (ImmediateData=No, a smaller MaxBurstLength, ...).
//
// MaxRecvDataSegmentLength is never declared in the security stage:
// open-iscsi fails a login on operational keys there. A login that goes
// from security straight to full feature phase therefore keeps the default
// 8192 for both directions, and Params says so.
func (n *Negotiator) Offer(stage pdu.Stage, out *Pairs) {
	first := !n.firstTx
	n.firstTx = true
	local := &n.cfg.Local
	// Declarations are per direction (RFC 7143 §6.2): the peer declaring
	// MaxRecvDataSegmentLength does not stand for ours.
	declare := func(key string) {
		if n.sent[key] || out.Has(key) {
			return
		}
		v, ok := local.value(key)
		if !ok {
			return
		}
		n.sent[key] = true
		out.Set(key, v)
		_ = n.params.set(key, v, false)
	}
	if n.cfg.Role == RoleInitiator {
		if stage == pdu.StageFullFeature {
			return
		}
		declare(KeyInitiatorName)
		declare(KeyInitiatorAlias)
		if !local.Discovery() {
			declare(KeyTargetName)
		}
		declare(KeySessionType)
		if stage == pdu.StageSecurity {
			n.offer(KeyAuthMethod, joinList(n.cfg.AuthMethods), out)
			return
		}
	} else if first && !n.params.Discovery() && stage != pdu.StageFullFeature {
		declare(KeyTargetPortalGroupTag)
		declare(KeyTargetAlias)
	}
	if stage != pdu.StageOperational {
		return
	}
	if !n.cfg.ISER {
		declare(KeyMaxRecvDataSegmentLength)
	}
	for _, key := range KeyNames() {
		d, _ := Lookup(key)
		if d.Kind == KindDeclarative || d.Kind == KindAuth || d.Kind == KindSendTargets || key == KeyAuthMethod ||
			d.Use&UseOperational == 0 || n.done[key] || out.Has(key) ||
			(d.ISER && !n.cfg.ISER) || (d.NotISER && n.cfg.ISER) ||
			(d.LeadingOnly && n.cfg.NonLeading) || (d.DiscoveryIrrelevant && n.params.Discovery()) ||
			key == KeyIFMarker || key == KeyOFMarker {
			continue
		}
		// RDMAExtensions=No is the TCP default and common initiators never
		// send it; some targets (tgt 1.0.85) answer it and then drop the
		// digests they negotiated. Offer it only on iSER.
		if key == KeyRDMAExtensions && !n.cfg.ISER {
			continue
		}
		if key == KeyFirstBurstLength && !local.FirstBurstRelevant() {
			continue
		}
		var v string
		if d.Kind == KindList {
			v = joinList(n.supported(key))
		} else {
			v, _ = local.value(key)
		}
		always := n.cfg.Role == RoleInitiator && initiatorAlwaysOffers(key)
		if always || d.Kind != KindList && result(&d, d.Default, v) != d.Default {
			n.offer(key, v, out)
		}
	}
}

// offer appends key=v as an offer awaiting an answer, once per login (or
// Text exchange). An offer that decides its own outcome (see Pending)
// takes effect now.
func (n *Negotiator) offer(key, v string, out *Pairs) {
	if _, again := n.offered[key]; again || n.done[key] || out.Has(key) {
		return
	}
	n.offered[key] = v
	out.Set(key, v)
	if d, _ := Lookup(key); answerOptional(&d, v) {
		_ = n.params.set(key, v, false)
	}
}

// initiatorAlwaysOffers lists the keys an initiator offers even at their
// defaults, as common initiators do, so targets answer with their limits.
func initiatorAlwaysOffers(key string) bool {
	switch key {
	case KeyHeaderDigest, KeyDataDigest, KeyMaxConnections, KeyInitialR2T, KeyImmediateData,
		KeyMaxBurstLength, KeyFirstBurstLength, KeyDefaultTime2Wait, KeyDefaultTime2Retain,
		KeyMaxOutstandingR2T, KeyDataPDUInOrder, KeyDataSequenceInOrder, KeyErrorRecoveryLevel,
		KeyRDMAExtensions, KeyInitiatorRecvDataSegmentLength, KeyTargetRecvDataSegmentLength:
		return true
	}
	return false
}

func joinList(items []string) string {
	s := ""
	for i, it := range items {
		if i > 0 {
			s += ","
		}
		s += it
	}
	return s
}
