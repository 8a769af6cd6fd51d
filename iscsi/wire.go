package iscsi

import "github.com/goiser/goiser/iscsi/pdu"

// reservedTag is the "no task" tag value (RFC 7143 §11.18.2).
const reservedTag = pdu.ReservedTag

// seqLess reports a < b in serial number arithmetic (RFC 1982, 32 bits),
// as RFC 7143 §4.2.2.1 requires for CmdSN comparisons.
func seqLess(a, b uint32) bool { return a != b && int32(a-b) < 0 }

// seqInWindow reports lo <= x <= hi in serial number arithmetic.
func seqInWindow(x, lo, hi uint32) bool { return !seqLess(x, lo) && !seqLess(hi, x) }

// decodeLUN returns the LUN number of a SAM-5 8-byte LUN field, or a
// number no Target serves when the addressing is not supported.
func decodeLUN(raw uint64) uint64 {
	n, ok := pdu.LUN(raw).Number()
	if !ok {
		return 1 << 63
	}
	return uint64(n)
}
