package iser_test

import (
	"errors"
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iser"
)

// Example receives a SEND as a target does: a SCSI READ command from the
// initiator, whose iSER header names the buffer to RDMA WRITE the data
// into.
func Example() {
	// What the initiator sent: iSER header, then the BHS.
	hdr := iser.Header{ReadValid: true, ReadSTag: 0x1234, ReadVA: 0x7f0000001000}
	wire, _ := hdr.AppendBinary(nil)
	cmd := &pdu.SCSICommand{Final: true, Read: true, ITT: 9, ExpectedDataTransferLength: 4096,
		CDB: [16]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0}}
	wire, _ = pdu.AppendHeader(wire, cmd, false)

	// The target's receive completion: n bytes in the receive buffer.
	f, err := iser.ParseSend(wire)
	if err != nil {
		panic(err)
	}
	var d pdu.Decoder
	p, err := d.DecodeFrame(&f.Frame)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v ITT=%d: RDMA WRITE %d bytes to rkey %#x at %#x\n", p.Opcode(),
		p.(*pdu.SCSICommand).ITT, p.(*pdu.SCSICommand).ExpectedDataTransferLength, f.Header.ReadSTag, f.Header.ReadVA)

	// A Hello is not a PDU: log it and drop it.
	_, err = iser.ParseSend([]byte{0x20, 0xaa, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0})
	fmt.Println(errors.Is(err, iser.ErrNotControl))
	// Output:
	// SCSI Command ITT=9: RDMA WRITE 4096 bytes to rkey 0x1234 at 0x7f0000001000
	// true
}

// ExampleAcceptPrivateData shows the CM exchange of a Linux initiator
// whose device supports remote invalidation with a target whose device
// does too.
func ExampleAcceptPrivateData() {
	offer := iser.ConnectPrivateData(true)
	req, _ := offer.AppendBinary(nil)
	req = append(req, make([]byte, iser.MaxCMRequestPrivateData-len(req))...) // as RDMA CM delivers it

	got, err := iser.ParseCMPrivateData(req)
	if err != nil {
		panic(err)
	}
	reply, sendWithInv := iser.AcceptPrivateData(got, true)
	acc, _ := reply.AppendBinary(nil)
	fmt.Printf("request %#x, accept %#x, Send with Invalidate %v\n", req[0], acc[0], sendWithInv)

	// tgt accepts without private data: no remote invalidation.
	none, _ := iser.ParseCMPrivateData(nil)
	fmt.Println(iser.RemoteInvalidation(offer, none))
	// Output:
	// request 0x80, accept 0x80, Send with Invalidate true
	// false
}

// ExampleNewRecvLayout lays out receive slots for 8 KiB data segments.
func ExampleNewRecvLayout() {
	l, err := iser.NewRecvLayout(iser.DefaultRecvDataSegmentLength)
	if err != nil {
		panic(err)
	}
	fmt.Printf("post %d bytes at offset %d of each %d-byte slot; data at offset %d\n",
		l.RecvLen, iser.RecvHeaderOffset, l.SlotSize, iser.RecvDataAlign)
	fmt.Println("128 slots:", l.BufferLen(128), "bytes")
	// Output:
	// post 8268 bytes at offset 436 of each 8704-byte slot; data at offset 512
	// 128 slots: 1114112 bytes
}
