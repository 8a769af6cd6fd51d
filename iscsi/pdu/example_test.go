package pdu_test

import (
	"bytes"
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
)

// Example writes a NOP-Out with digests and reads it back.
func Example() {
	var wire bytes.Buffer
	w := pdu.NewWriter(&wire)
	w.HeaderDigest, w.DataDigest = true, true
	ping := &pdu.NOPOut{Immediate: true, ITT: 7, TTT: pdu.ReservedTag, CmdSN: 1, Data: []byte("hello")}
	if err := w.WritePDU(ping); err != nil {
		panic(err)
	}
	fmt.Println("bytes on the wire:", wire.Len()) // 48 BHS + 4 digest + 8 data and padding + 4 digest

	r := pdu.NewReader(&wire)
	r.HeaderDigest, r.DataDigest = true, true
	buf := make([]byte, pdu.FrameBufferSize(pdu.DefaultMaxRecvDataSegmentLength))
	var f pdu.Frame
	var d pdu.Decoder
	if err := r.ReadFrame(&f, buf); err != nil {
		panic(err)
	}
	p, err := d.DecodeFrame(&f)
	if err != nil {
		panic(err)
	}
	nop := p.(*pdu.NOPOut)
	fmt.Printf("%v ITT=%d data=%q\n", p.Opcode(), nop.ITT, nop.Data)
	// Output:
	// bytes on the wire: 64
	// NOP-Out ITT=7 data="hello"
}

// ExampleRejectReasonFor shows how a target maps a decoding error to the
// Reject it sends.
func ExampleRejectReasonFor() {
	bhs := make([]byte, pdu.BHSLen)
	bhs[0] = 0x1e // no such opcode
	_, err := pdu.Decode(bhs)
	reason, ok := pdu.RejectReasonFor(err)
	fmt.Println(err)
	fmt.Println(reason, ok)
	// Output:
	// pdu: unsupported opcode 0x1e
	// Command not supported true
}
