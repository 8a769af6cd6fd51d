// Package iser implements iSER, the iSCSI Extensions for RDMA
// (RFC 7145), the way the Linux initiator (ib_iser with open-iscsi) and
// the Linux target (LIO isert) speak it.
//
// So far the package holds the wire layer only: the iSER header, the
// Hello messages, the RDMA CM private data, and the sizes a transport
// needs to lay out its buffers. The target and initiator transports,
// which implement the iscsi transport seams over package rdma, come in
// later files of this package.
//
// # iSER in one page
//
// An iSER connection is an RDMA reliable connection set up with RDMA CM
// (port space TCP, port 3260). The initiator's connect request and the
// target's accept each carry a 4-byte iSER CM header in their private
// data (CMHeader, IBTA Annex A12): 0x80 says zero-based virtual addresses
// are not supported, 0x40 that Send with Invalidate is not. See
// ParseCMPrivateData, ConnectPrivateData, AcceptPrivateData and
// RemoteInvalidation.
//
// Every iSCSI PDU then travels in one RDMA SEND, from the very first
// Login Request on (RFC 7145 §5: the login runs in iSER-assisted mode):
// the 28-byte iSER header (Header, §9.2), the 48-byte BHS, the AHS and
// the data segment, with no padding and no digests. ParseSend splits a
// received SEND; its BHS, AHS and data go to the iscsi/pdu decoder. The
// login receive holds LoginRecvLen bytes; full-feature receives follow
// RecvLayout, which keeps received data 512-byte aligned.
//
// Data never travels in SCSI Data-In, R2T or Data-Out PDUs. The target
// does all RDMA (RFC 7145 §7):
//
//   - READ: the SCSI Command's header carries R with the Read STag and
//     address of the initiator's buffer; the target RDMA WRITEs the data
//     there, then SENDs the SCSI Response (the two posted as one chain).
//   - WRITE: immediate and unsolicited data arrive in SENDs; the rest
//     the target RDMA READs from the Write STag and address (W), which
//     Linux already advances past the immediate and unsolicited bytes.
//
// The target may end a task with Send with Invalidate, which makes the
// initiator's device invalidate the STag the command advertised, when
// both sides agreed to it in the CM private data; Linux initiators fail
// the connection on an invalidation they did not agree to.
//
// Hello and HelloReply (§9.3, §9.4) are optional and unused in practice:
// Linux never sends them. ParseSend reports one as ErrNotControl, and
// Hello and HelloReply decode it for the log.
//
// # Errors
//
// Decoders are strict where the Linux peers are consistent (reserved
// bits and bytes are zero, lengths match) and return a *WireError that
// matches ErrBadHeader, ErrNotControl, ErrBadLength or
// ErrBadCMPrivateData with errors.Is. Only the CM private data is decoded
// leniently, as Linux does, because RDMA CM pads it.
//
// Encoding into a reused buffer, Header.UnmarshalBinary and ParseSend
// allocate nothing (see the benchmarks).
package iser
