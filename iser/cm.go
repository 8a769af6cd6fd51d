package iser

import "fmt"

// CMHeaderLen is the length of the iSER CM header that the initiator
// puts in the private data of its RDMA CM connect request and the target
// in that of its accept: a flags byte and three reserved bytes (struct
// iser_cm_hdr in Linux include/scsi/iser.h, "from iSER Annex A12").
const CMHeaderLen = 4

// Flag bits of the CM header byte 0 (Linux ISER_ZBVA_NOT_SUP and
// ISER_SEND_W_INV_NOT_SUP, ISERT_ZBVA_NOT_USED and
// ISERT_SEND_W_INV_NOT_USED: the same bits in both directions).
const (
	cmZBVANotSupported        = 0x80
	cmSendWithInvNotSupported = 0x40
)

// MaxCMRequestPrivateData and MaxCMReplyPrivateData are the private data
// lengths RDMA CM delivers on InfiniBand and RoCE (Soft-RoCE included),
// whatever the peer sent: the IB CM REQ carries 92 bytes of private data
// of which the RDMA CM IP header takes 36 (IB_CM_REQ_PRIVATE_DATA_SIZE
// minus the offset, cma_set_req_event_data in Linux
// drivers/infiniband/core/cma.c), the REP 196 (cma_set_rep_event_data).
// The bytes past the sender's private data are padding. On iWARP the
// length is what the peer sent.
const (
	MaxCMRequestPrivateData = 56
	MaxCMReplyPrivateData   = 196
)

// CMHeader is the iSER CM header (IBTA Annex A12, as Linux uses it). In
// the connect request it says what the initiator cannot do; in the accept
// it says what the target will not use.
type CMHeader struct {
	// ZBVANotSupported (0x80): zero-based virtual addresses are not
	// supported (initiator) or not used (target). Linux always sets it
	// and always sends non-zero-based addresses; so does goiser.
	ZBVANotSupported bool
	// SendWithInvNotSupported (0x40): the initiator cannot take Send
	// with Invalidate (its device lacks memory management extensions),
	// or the target will not send it.
	SendWithInvNotSupported bool
}

// AppendBinary appends the 4-byte CM header; the reserved bytes are zero.
func (h *CMHeader) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if h.ZBVANotSupported {
		flags |= cmZBVANotSupported
	}
	if h.SendWithInvNotSupported {
		flags |= cmSendWithInvNotSupported
	}
	return append(b, flags, 0, 0, 0), nil
}

// UnmarshalBinary decodes exactly CMHeaderLen bytes, strictly: the six
// low bits of the flags byte and the three reserved bytes must be zero,
// else ErrBadCMPrivateData. It is for checking what an encoder produced;
// a transport decodes a peer's private data with ParseCMPrivateData,
// which is lenient where Linux is.
func (h *CMHeader) UnmarshalBinary(b []byte) error {
	if len(b) != CMHeaderLen {
		return wireErr(ErrBadCMPrivateData, "CM header", "length", fmt.Sprintf("%d bytes, want %d", len(b), CMHeaderLen))
	}
	if b[0]&^(cmZBVANotSupported|cmSendWithInvNotSupported) != 0 || b[1]|b[2]|b[3] != 0 {
		return wireErr(ErrBadCMPrivateData, "CM header", "Reserved", "must be zero")
	}
	*h = cmFlags(b[0])
	return nil
}

// cmFlags decodes the flags byte, ignoring the reserved bits.
func cmFlags(f byte) CMHeader {
	return CMHeader{
		ZBVANotSupported:        f&cmZBVANotSupported != 0,
		SendWithInvNotSupported: f&cmSendWithInvNotSupported != 0,
	}
}

// ParseCMPrivateData decodes the iSER CM header from the private data of
// an RDMA CM connect request (target side) or of the accept
// (ESTABLISHED event, initiator side), with the leniency Linux shows, so
// that every peer Linux talks to can talk to goiser:
//
//   - No private data at all: no error, and the result says ZBVA and
//     Send with Invalidate are both unavailable. tgt accepts without
//     private data, and both ends of Linux treat absent private data as
//     "no Send with Invalidate" (isert_set_nego_params and
//     iser_connected_handler read the flags only when there is private
//     data, and their snd_w_inv starts false).
//   - 4 bytes or more: the flags come from byte 0; its six low bits, the
//     three reserved bytes and anything after them are ignored. RDMA CM
//     on InfiniBand and RoCE delivers the private data padded to
//     MaxCMRequestPrivateData or MaxCMReplyPrivateData bytes, and Linux
//     reads only the flags byte.
//   - 1 to 3 bytes: ErrBadCMPrivateData. Linux would read the flags byte
//     of these; only a broken iWARP peer could send them (the IB CM pads),
//     so goiser refuses rather than guess.
func ParseCMPrivateData(b []byte) (CMHeader, error) {
	switch {
	case len(b) == 0:
		return CMHeader{ZBVANotSupported: true, SendWithInvNotSupported: true}, nil
	case len(b) < CMHeaderLen:
		return CMHeader{}, wireErr(ErrBadCMPrivateData, "CM private data", "length",
			fmt.Sprintf("%d bytes, want none or at least %d", len(b), CMHeaderLen))
	}
	return cmFlags(b[0]), nil
}

// ConnectPrivateData returns the CM header an initiator sends with its
// connect request: ZBVA not supported, always; Send with Invalidate not
// supported unless its device supports remote invalidation (memory
// management extensions), as iser_route_handler in Linux iser_verbs.c
// does.
func ConnectPrivateData(devSupportsInv bool) CMHeader {
	return CMHeader{ZBVANotSupported: true, SendWithInvNotSupported: !devSupportsInv}
}

// AcceptPrivateData decides, from the initiator's CM header req (as
// ParseCMPrivateData returns it), whether the target answers with Send
// with Invalidate, and returns the CM header for its accept. The rule is
// LIO isert's (isert_set_nego_params, isert_rdma_accept): use Send with
// Invalidate only when the initiator did not set 0x40 and the target's
// device supports it (devSupportsInv: memory management extensions); the
// reply always carries 0x80, and 0x40 when Send with Invalidate is not
// used. A target that uses it invalidates exactly the STag the command
// advertised (the Read STag, else the Write STag).
func AcceptPrivateData(req CMHeader, devSupportsInv bool) (reply CMHeader, sendWithInv bool) {
	sendWithInv = !req.SendWithInvNotSupported && devSupportsInv
	return CMHeader{ZBVANotSupported: true, SendWithInvNotSupported: !sendWithInv}, sendWithInv
}

// RemoteInvalidation tells an initiator, from the CM header it offered
// and the one in the target's accept (as ParseCMPrivateData returns it),
// whether to expect the target to invalidate its STags with Send with
// Invalidate. Linux decides from the accept alone
// (iser_connected_handler); goiser also requires its own offer, so that
// a target that ignores a 0x40 cannot turn invalidation on.
func RemoteInvalidation(offered, accepted CMHeader) bool {
	return !offered.SendWithInvNotSupported && !accepted.SendWithInvNotSupported
}
