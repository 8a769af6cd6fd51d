package iser

import (
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
)

// LoginDataLen is the largest data segment of a login PDU (the RFC 7143
// §13.12 default MaxRecvDataSegmentLength, which bounds every login PDU
// whatever is negotiated); both Linux ends size their login buffers for
// it (ISCSI_DEF_MAX_RECV_SEG_LEN).
const LoginDataLen = pdu.DefaultMaxRecvDataSegmentLength

// LoginRecvLen is the size of a receive that can hold any login PDU:
// 76 + 8192 bytes, Linux ib_iser's ISER_RX_LOGIN_SIZE and LIO isert's
// ISER_RX_PAYLOAD_SIZE. The target posts one such receive before it
// accepts the connection, and reposts it for every Login Request.
const LoginRecvLen = HeadersLen + LoginDataLen

// LinuxInitiatorRecvDataLen is how many data segment bytes Linux ib_iser
// can take in one SEND once the login is over: its full-feature receive
// buffers hold ISER_HEADERS_LEN + ISER_RECV_DATA_SEG_LEN (128) bytes
// (drivers/infiniband/ulp/iser/iscsi_iser.h). open-iscsi does not declare
// that: it sends InitiatorRecvDataSegmentLength = the node's
// MaxRecvDataSegmentLength (262144 in the shipped iscsid.conf, 131072
// compiled in; add_params_transport_specific in usr/login.c). A longer
// SEND ends in a receive error on the initiator and the connection fails,
// so a target talking to Linux keeps every full-feature control PDU
// (sense data, NOP-In ping data, Text and Reject data) within
// min(InitiatorRecvDataSegmentLength, 128).
const LinuxInitiatorRecvDataLen = 128

// DefaultRecvDataSegmentLength is the RFC 7145 default of both
// InitiatorRecvDataSegmentLength and TargetRecvDataSegmentLength, the
// largest data segment of a control-type PDU (immediate or unsolicited
// data included) the receiver takes in one SEND.
const DefaultRecvDataSegmentLength = 8192

// LIOInitiatorRecvDataSegmentLength and LIOTargetRecvDataSegmentLength
// are the values LIO starts negotiating from
// (INITIAL_INITIATORRECVDATASEGMENTLENGTH and
// INITIAL_TARGETRECVDATASEGMENTLENGTH in
// drivers/target/iscsi/iscsi_target_parameters.h).
const (
	LIOInitiatorRecvDataSegmentLength = 262144
	LIOTargetRecvDataSegmentLength    = 8192
)

// RecvDataAlign is the alignment of the data segment in a full-feature
// receive slot. LIO isert places the iSER header so that the data that
// follows it starts on a 512-byte boundary (isert_get_iser_hdr in
// ib_isert.h) and then uses immediate data in place; 512 bytes is also
// what O_DIRECT asks of buffers.
const RecvDataAlign = 512

// RecvHeaderOffset is where the iSER header sits in a receive slot so
// that the data segment of a PDU without AHS starts at RecvDataAlign:
// 512 - 76 = 436. A receive is posted from here.
const RecvHeaderOffset = RecvDataAlign - HeadersLen

// RecvLayout places full-feature receive slots in one registered buffer,
// each slot laid out as
//
//	[0, 436)          unused
//	[436, 464)        iSER header   (RecvHeaderOffset)
//	[464, 512)        BHS
//	[512, 512+data)   data segment  (RecvDataAlign)
//
// so that, with the buffer itself 512-byte aligned (rdma.AllocBuffer
// returns page-aligned memory), every slot's data segment is 512-byte
// aligned and immediate data can go to an O_DIRECT backend in place. A
// PDU with an AHS (rare: extended CDBs) has its data after the AHS, off
// the boundary. A layout is immutable; build it with NewRecvLayout.
type RecvLayout struct {
	// MaxData is the largest data segment a slot holds: the
	// TargetRecvDataSegmentLength (target) or
	// InitiatorRecvDataSegmentLength (initiator) declared at login.
	MaxData int
	// RecvLen is the length of the receive to post for a slot, from
	// RecvHeaderOffset: HeadersLen plus MaxData rounded up to a multiple
	// of 4, so that a sender that pads is received whole.
	RecvLen int
	// SlotSize is the distance between two slots, a multiple of
	// RecvDataAlign.
	SlotSize int
}

// NewRecvLayout returns the layout of slots for data segments of up to
// maxData bytes (0 to pdu.MaxDataSegmentLength).
func NewRecvLayout(maxData int) (RecvLayout, error) {
	if maxData < 0 || maxData > pdu.MaxDataSegmentLength {
		return RecvLayout{}, fmt.Errorf("iser: receive layout: data segment of %d bytes out of range 0-%d", maxData, pdu.MaxDataSegmentLength)
	}
	padded := maxData + pdu.PadLen(maxData)
	return RecvLayout{
		MaxData:  maxData,
		RecvLen:  HeadersLen + padded,
		SlotSize: RecvDataAlign + (padded+RecvDataAlign-1)/RecvDataAlign*RecvDataAlign,
	}, nil
}

// BufferLen returns the size of a buffer holding n slots.
func (l RecvLayout) BufferLen(n int) int { return n * l.SlotSize }

// Recv returns the part of slot i of buf to post as a receive: RecvLen
// bytes from the slot's RecvHeaderOffset. The received SEND is its first
// n bytes (n from the completion), ready for ParseSend. It panics if buf
// holds no slot i, like a slice expression.
func (l RecvLayout) Recv(buf []byte, i int) []byte {
	off := i*l.SlotSize + RecvHeaderOffset
	return buf[off : off+l.RecvLen : off+l.RecvLen]
}
