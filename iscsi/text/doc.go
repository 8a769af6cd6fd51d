// Package text implements iSCSI text keys (RFC 7143 §6, §13) and their
// negotiation, including the iSER keys of RFC 7145 §6.
//
// The codec turns a login or text data segment into Pairs, an ordered
// key=value list with unique keys, and back:
//
//	var in text.Pairs
//	if err := text.Parse(req.Data, &in); err != nil { ... } // syntax, duplicates
//	out, _ := resp.AppendBinary(nil)
//
// Texts that span several PDUs (C bit) are joined with an Accumulator and
// cut with Split.
//
// Lookup describes every key: its kind (list, Boolean AND/OR, numerical
// min/max, declarative), range, default, the stages where it may appear,
// who may send it, its scope, and whether it is leading-only.
//
// A Negotiator runs one login for either side. A target does, per Login
// Request:
//
//	n, _ := text.NewNegotiator(text.Config{Local: text.DefaultParams(), AuthMethods: []string{"CHAP"}})
//	var out text.Pairs
//	if err := n.Receive(req.CSG, &in, &out); err != nil { ... } // *text.Error carries the login status
//	n.Offer(req.CSG, &out) // our declarations, and offers where defaults break our limits
//	// ... CHAP_* keys go to iscsi/auth, SendTargets to the session ...
//	params := n.Params()  // typed result, RFC defaults filled in
//
// Answers follow RFC 7143 §6.2: the first common list value or Reject,
// AND/OR for Booleans, min/max for numbers, Reject for malformed or
// out-of-range values, NotUnderstood for unknown keys, Irrelevant where a
// key does not apply (FirstBurstLength with InitialR2T=Yes and
// ImmediateData=No, operational keys of a Discovery session, iSER keys on
// TCP, leading-only keys on a second connection). An initiator calls Offer
// first and Receive on the response; an answer outside its offer is an
// *Error.
package text
