package pdu

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// lenientBits are "always 1" bits that decoding accepts as 0 (the encoder
// always sets them): the F bit of PDUs that have no use for it, and the I
// bit of the Login Request.
func lenient(op Opcode, byteIdx int, mask byte) bool {
	if byteIdx == 0 && mask == immediateBit && op == OpLoginReq {
		return true
	}
	if byteIdx == 1 && mask == finalBit {
		switch op {
		case OpNOPOut, OpNOPIn, OpR2T, OpReject, OpAsync, OpSNACKReq, OpTaskMgmtReq, OpTaskMgmtResp,
			OpLogoutReq, OpLogoutResp, OpSCSIResponse:
			return true
		}
	}
	return false
}

// TestEveryBitIsAFieldOrRejected flips each of the 384 BHS bits of every
// sample PDU. Each flip must either be rejected with a *FormatError, or
// decode to a PDU that encodes back to exactly the flipped bytes (the bit
// is a real field). No bit may be silently dropped, except the lenient
// "always 1" bits and the opcode and length bytes, which change the PDU's
// identity or framing.
func TestEveryBitIsAFieldOrRejected(t *testing.T) {
	for _, p := range samples() {
		orig, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		op := p.Opcode()
		for i := range BHSLen {
			for bit := range 8 {
				mask := byte(1) << bit
				if i == 0 && mask&opcodeMask != 0 || i >= 4 && i <= 7 {
					continue // opcode, TotalAHSLength, DataSegmentLength
				}
				b := bytes.Clone(orig)
				b[i] ^= mask
				q, err := Decode(b)
				if err != nil {
					var fe *FormatError
					if !errors.As(err, &fe) {
						t.Errorf("%v byte %d mask %#02x: error %T %v", op, i, mask, err, err)
					}
					if !strings.Contains(err.Error(), op.String()) {
						t.Errorf("%v: error %q does not name the opcode", op, err)
					}
					continue
				}
				enc, err := q.AppendBinary(nil)
				if err != nil {
					t.Errorf("%v byte %d mask %#02x: re-encode: %v", op, i, mask, err)
					continue
				}
				// Bytes 4-7 come from the AHS and data segment, which a
				// BHS-only decode does not carry.
				copy(enc[4:8], b[4:8])
				if !bytes.Equal(enc, b) && !lenient(op, i, mask) {
					t.Errorf("%v byte %d mask %#02x: bit accepted but not kept", op, i, mask)
				}
			}
		}
	}
}

func TestEnumStrings(t *testing.T) {
	fallback := map[string]func(uint8) string{
		"TaskAttr":           func(v uint8) string { return TaskAttr(v).String() },
		"ResponseCode":       func(v uint8) string { return ResponseCode(v).String() },
		"TMFunction":         func(v uint8) string { return TMFunction(v).String() },
		"TMFResponse":        func(v uint8) string { return TMFResponse(v).String() },
		"RejectReason":       func(v uint8) string { return RejectReason(v).String() },
		"LogoutReason":       func(v uint8) string { return LogoutReason(v).String() },
		"LogoutResponseCode": func(v uint8) string { return LogoutResponseCode(v).String() },
		"Stage":              func(v uint8) string { return Stage(v).String() },
		"AsyncEvent":         func(v uint8) string { return AsyncEvent(v).String() },
		"SNACKType":          func(v uint8) string { return SNACKType(v).String() },
		"Opcode":             func(v uint8) string { return Opcode(v).String() },
	}
	for name, str := range fallback {
		named := 0
		for v := range 256 {
			s := str(uint8(v))
			if s == "" {
				t.Errorf("%s(%d): empty", name, v)
			}
			if !strings.HasPrefix(s, name+"(") && !strings.HasPrefix(s, "Vendor") {
				named++
			}
		}
		if named == 0 {
			t.Errorf("%s: no value has a name", name)
		}
	}
	for v := range 0x400 {
		s := LoginStatus(v).String()
		if !strings.HasPrefix(s, "0x") {
			t.Errorf("LoginStatus(%#x) = %q", v, s)
		}
	}
	if LUN(0x8000_0000_0000_0001).String() != "0x8000000000000001" {
		t.Error(LUN(0x8000_0000_0000_0001).String())
	}
	h := BHS(rfc3720ReadPDU)
	if !h.Final() || h.InitiatorTaskTag() != 0x14000000 || h.Immediate() {
		t.Error("BHS accessors")
	}
	for _, e := range []error{
		&FormatError{Op: OpDataOut, Field: "f", Detail: "d"},
		&UnknownOpcodeError{Op: 0x1f},
		&DataSegmentTooLongError{Op: OpDataOut, Length: 2, Max: 1},
		&DigestError{Op: OpNOPIn, Header: true},
		&DigestError{Op: OpNOPIn},
	} {
		if e.Error() == "" || !strings.HasPrefix(e.Error(), "pdu: ") {
			t.Errorf("%T: %q", e, e.Error())
		}
	}
}

func TestDecodeFrameAllocating(t *testing.T) {
	wire, _ := AppendFrame(nil, &SCSICommand{Read: true, Write: true, BidiReadLength: 9, ExtCDB: []byte{1}}, false, false)
	r := NewReader(bytes.NewReader(wire))
	var f Frame
	if err := r.ReadFrame(&f, make([]byte, FrameBufferSize(0))); err != nil {
		t.Fatal(err)
	}
	p, err := DecodeFrame(&f)
	if err != nil {
		t.Fatal(err)
	}
	if c := p.(*SCSICommand); c.BidiReadLength != 9 || !bytes.Equal(c.ExtCDB, []byte{1}) {
		t.Errorf("%+v", c)
	}
	f.BHS[0] = 0x1f
	if _, err := DecodeFrame(&f); err == nil {
		t.Error("bad opcode decoded")
	}
	f.BHS[0] = byte(OpSCSICommand)
	f.AHS = []byte{0, 1}
	if _, err := DecodeFrame(&f); err == nil {
		t.Error("bad AHS decoded")
	}
	for op := Opcode(0); op <= opcodeMask; op++ {
		p, err := New(op)
		if op.Known() != (err == nil) {
			t.Errorf("New(%v): %v", op, err)
		}
		if err == nil && p.Opcode() != op {
			t.Errorf("New(%v) gave %v", op, p.Opcode())
		}
	}
}
