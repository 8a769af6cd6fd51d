// Package auth implements CHAP for iSCSI logins (RFC 7143 §12.1.3,
// RFC 1994), one-way and mutual, with MD5, SHA-1, SHA-256 and SHA3-256.
//
// The login layer hands the CHAP_* keys of each Login PDU in the security
// stage to a Target (or Initiator) and sends back what it appends:
//
//	t, err := auth.NewTarget(auth.TargetConfig{
//		Secret: func(user string) ([]byte, bool) { s, ok := secrets[user]; return s, ok },
//		Mutual: &auth.Credentials{User: "iqn.2026-01.example:tgt", Secret: targetSecret},
//	})
//	// per Login Request in the security stage, after AuthMethod=CHAP:
//	done, err := t.Step(&in, &out)
//	var ae *auth.Error
//	if errors.As(err, &ae) { ... answer with ae.Status: 0x0201 wrong secret, 0x0200 malformed, 0x0207 missing ... }
//	if done { ... the login may leave the security stage ... }
//
// The target picks the first algorithm of the initiator's CHAP_A list that
// it allows, sends a random identifier and a challenge at least as long as
// the digest, and checks CHAP_R in constant time. For mutual CHAP it
// answers the initiator's CHAP_I/CHAP_C, refusing a reflected challenge
// and identical secrets in both directions. Binary values are read in hex
// (0x) or base64 (0b) and written in hex unless configured otherwise.
package auth
