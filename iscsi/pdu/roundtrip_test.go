package pdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// samples returns one fully populated value of every PDU type, with every
// flag and field set to something non-zero where the encoding allows it.
func samples() []PDU {
	return []PDU{
		&NOPOut{Immediate: true, LUN: EncodeLUN(3), ITT: 0x11, TTT: ReservedTag, CmdSN: 7, ExpStatSN: 9, Data: []byte("ping")},
		&SCSICommand{Immediate: false, Final: true, Read: true, Attr: AttrSimple, LUN: EncodeLUN(300), ITT: 0x22,
			ExpectedDataTransferLength: 4096, CmdSN: 10, ExpStatSN: 11, CDB: [16]byte{0x28, 0, 0, 0, 0, 1, 0, 0, 8, 0}},
		&SCSICommand{Final: false, Write: true, Attr: AttrOrdered, ITT: 0x23, ExpectedDataTransferLength: 512,
			CmdSN: 12, CDB: [16]byte{0x7f, 0, 0, 0, 0, 0, 0, 0x10}, ExtCDB: []byte{1, 2, 3, 4, 5}, Data: []byte("immediate data!")},
		&SCSICommand{Final: true, Read: true, Write: true, Attr: AttrHeadOfQueue, ITT: 0x24, ExpectedDataTransferLength: 1024,
			BidiReadLength: 2048, CDB: [16]byte{0x53}},
		&TaskMgmtRequest{Immediate: true, Function: TMFAbortTask, LUN: EncodeLUN(1), ITT: 0x33, ReferencedTaskTag: 0x22,
			CmdSN: 13, ExpStatSN: 14, RefCmdSN: 10, ExpDataSN: 2},
		&LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature, VersionMax: 0, VersionMin: 0,
			ISID: ISID{0x40, 0, 0x01, 0x37, 0, 0}, TSIH: 0, ITT: 1, CID: 1, CmdSN: 1, ExpStatSN: 0,
			Data: []byte("InitiatorName=iqn.2026-01.test:init\x00SessionType=Normal\x00")},
		&LoginRequest{Continue: true, CSG: StageSecurity, ISID: ISID{1, 2, 3, 4, 5, 6}, TSIH: 5, ITT: 2, CID: 2, CmdSN: 3, ExpStatSN: 4},
		&TextRequest{Immediate: true, Final: true, ITT: 0x44, TTT: ReservedTag, CmdSN: 15, ExpStatSN: 16, Data: []byte("SendTargets=All\x00")},
		&TextRequest{Continue: true, ITT: 0x45, TTT: 0x99, LUN: 0x0102030405060708},
		&DataOut{Final: true, LUN: EncodeLUN(2), ITT: 0x55, TTT: 0x66, ExpStatSN: 17, DataSN: 3, BufferOffset: 8192, Data: []byte{1, 2, 3}},
		&LogoutRequest{Immediate: true, Reason: LogoutCloseConnection, ITT: 0x77, CID: 3, CmdSN: 18, ExpStatSN: 19},
		&SNACKRequest{Type: SNACKDataACK, LUN: EncodeLUN(4), ITT: 0x88, TTT: 0x99, ExpStatSN: 20, BegRun: 5, RunLength: 6},
		&NOPIn{LUN: EncodeLUN(5), ITT: ReservedTag, TTT: 0x1234, StatSN: 21, ExpCmdSN: 22, MaxCmdSN: 53, Data: []byte("pong!")},
		&SCSIResponse{BidiReadUnderflow: true, ResidualOverflow: true, Response: ResponseCompleted, Status: 0x02, ITT: 0x22,
			SNACKTag: 1, StatSN: 23, ExpCmdSN: 24, MaxCmdSN: 55, ExpDataSN: 4, BidiReadResidualCount: 5, ResidualCount: 6,
			Data: AppendSenseData(nil, []byte{0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0})},
		&TaskMgmtResponse{Response: TMFTaskNotExist, ITT: 0x33, StatSN: 25, ExpCmdSN: 26, MaxCmdSN: 57},
		&LoginResponse{Transit: true, CSG: StageOperational, NSG: StageFullFeature, VersionMax: 0, VersionActive: 0,
			ISID: ISID{0x40, 0, 0x01, 0x37, 0, 0}, TSIH: 0x100, ITT: 1, StatSN: 1, ExpCmdSN: 2, MaxCmdSN: 33,
			Status: LoginSuccess, Data: []byte("HeaderDigest=None\x00")},
		&LoginResponse{CSG: StageSecurity, ISID: ISID{9, 8, 7, 6, 5, 4}, ITT: 3, StatSN: 0, Status: LoginAuthFailed},
		&TextResponse{Final: true, ITT: 0x44, TTT: ReservedTag, StatSN: 27, ExpCmdSN: 28, MaxCmdSN: 59, Data: []byte("TargetName=iqn.x\x00")},
		&TextResponse{Continue: true, ITT: 0x45, TTT: 0x100, StatSN: 28},
		&DataIn{Final: true, HasStatus: true, ResidualUnderflow: true, Status: 0, LUN: 0, ITT: 0x22, TTT: ReservedTag,
			StatSN: 29, ExpCmdSN: 30, MaxCmdSN: 61, DataSN: 0, BufferOffset: 0, ResidualCount: 512, Data: bytes.Repeat([]byte{0xab}, 4097)},
		&DataIn{Acknowledge: true, LUN: EncodeLUN(7), ITT: 0x23, TTT: 0x5, DataSN: 1, BufferOffset: 8192, Data: []byte{1}},
		&LogoutResponse{Response: LogoutCIDNotFound, ITT: 0x77, StatSN: 31, ExpCmdSN: 32, MaxCmdSN: 63, Time2Wait: 2, Time2Retain: 20},
		&R2T{LUN: EncodeLUN(8), ITT: 0x23, TTT: 0x10, StatSN: 33, ExpCmdSN: 34, MaxCmdSN: 65, R2TSN: 1, BufferOffset: 65536, DesiredDataTransferLength: 262144},
		&AsyncMessage{LUN: EncodeLUN(9), StatSN: 35, ExpCmdSN: 36, MaxCmdSN: 67, Event: AsyncLogoutRequested, VCode: 0,
			Parameter1: 0, Parameter2: 0, Parameter3: 5},
		&Reject{Reason: RejectInvalidPDUField, StatSN: 37, ExpCmdSN: 38, MaxCmdSN: 69, Data: make([]byte, 48)},
	}
}

// TestSamplesCoverEveryOpcode keeps samples honest: every opcode appears.
func TestSamplesCoverEveryOpcode(t *testing.T) {
	seen := map[Opcode]bool{}
	for _, p := range samples() {
		seen[p.Opcode()] = true
	}
	for op := Opcode(0); op <= opcodeMask; op++ {
		if op.Known() && !seen[op] {
			t.Errorf("no sample for %v", op)
		}
	}
}

func TestRoundTripBHS(t *testing.T) {
	for _, want := range samples() {
		t.Run(want.Opcode().String(), func(t *testing.T) {
			b, err := want.AppendBinary([]byte("prefix"))
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			if !bytes.HasPrefix(b, []byte("prefix")) || len(b) != 6+BHSLen {
				t.Fatalf("AppendBinary appended %d bytes, want %d after the prefix", len(b)-6, BHSLen)
			}
			h := BHS(b[6:])
			if h.Opcode() != want.Opcode() {
				t.Errorf("opcode %v, want %v", h.Opcode(), want.Opcode())
			}
			if got := h.DataSegmentLength(); got != uint32(len(want.DataSegment())) {
				t.Errorf("DataSegmentLength %d, want %d", got, len(want.DataSegment()))
			}
			got, err := Decode(h)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			// The BHS alone carries neither AHS nor data.
			exp := clearSegments(want)
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("decode(encode(x)) =\n%+v\nwant\n%+v", got, exp)
			}
		})
	}
}

// clearSegments returns a copy of p without data segment and AHS fields.
func clearSegments(p PDU) PDU {
	c, _ := New(p.Opcode())
	b, _ := p.AppendBinary(nil)
	if err := c.UnmarshalBinary(b); err != nil {
		panic(err)
	}
	v := reflect.ValueOf(p).Elem()
	cv := reflect.ValueOf(c).Elem()
	cv.Set(v)
	c.SetDataSegment(nil)
	if cmd, ok := c.(*SCSICommand); ok {
		cmd.ExtCDB = nil
		cmd.BidiReadLength = 0
	}
	return c
}

func TestRoundTripFrame(t *testing.T) {
	for _, digests := range []struct{ hd, dd bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		var stream []byte
		var err error
		for _, p := range samples() {
			stream, err = AppendFrame(stream, p, digests.hd, digests.dd)
			if err != nil {
				t.Fatalf("AppendFrame %v: %v", p.Opcode(), err)
			}
		}
		if len(stream)%4 != 0 {
			t.Fatalf("stream length %d is not a multiple of 4", len(stream))
		}
		r := NewReader(bytes.NewReader(stream))
		r.HeaderDigest, r.DataDigest = digests.hd, digests.dd
		r.MaxDataSegmentLength = 1 << 16
		buf := make([]byte, FrameBufferSize(r.MaxDataSegmentLength))
		var d Decoder
		var f Frame
		for _, want := range samples() {
			if err := r.ReadFrame(&f, buf); err != nil {
				t.Fatalf("digests %+v: ReadFrame for %v: %v", digests, want.Opcode(), err)
			}
			got, err := d.DecodeFrame(&f)
			if err != nil {
				t.Fatalf("digests %+v: DecodeFrame %v: %v", digests, want.Opcode(), err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("digests %+v: frame round trip =\n%+v\nwant\n%+v", digests, got, want)
			}
		}
		if err := r.ReadFrame(&f, buf); err != io.EOF {
			t.Errorf("after the last PDU: %v, want io.EOF", err)
		}
	}
}

func TestWriterMatchesAppendFrame(t *testing.T) {
	for _, p := range samples() {
		for _, dg := range []bool{false, true} {
			want, err := AppendFrame(nil, p, dg, dg)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			w := NewWriter(&out)
			w.HeaderDigest, w.DataDigest = dg, dg
			if err := w.WritePDU(p); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%v digests=%v: Writer wrote %x, AppendFrame %x", p.Opcode(), dg, out.Bytes(), want)
			}
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// rfc3720ReadPDU is the "iSCSI Read PDU" of RFC 3720 §B.4: a SCSI Command
// for READ(10) of 2 blocks, ITT 0x14000000, 1024 bytes expected.
var rfc3720ReadPDU = mustHex(`
	01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00
	14 00 00 00 00 00 04 00 00 00 00 14 00 00 00 18
	28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00`)

func TestGoldenSCSICommand(t *testing.T) {
	want := &SCSICommand{Final: true, Read: true, Attr: AttrUntagged, ITT: 0x14000000,
		ExpectedDataTransferLength: 0x400, CmdSN: 0x14, ExpStatSN: 0x18,
		CDB: [16]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 2}}
	got, err := Decode(rfc3720ReadPDU)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	b, _ := want.AppendBinary(nil)
	if !bytes.Equal(b, rfc3720ReadPDU) {
		t.Errorf("encoded\n%x\nwant\n%x", b, rfc3720ReadPDU)
	}
}

func TestGoldenLoginRequest(t *testing.T) {
	// Built by hand from RFC 7143 §11.12: I bit + 0x03, T=1 CSG=1 NSG=3,
	// versions 0/0, DataSegmentLength 0x000010, ISID 80 12 34 56 78 9a,
	// TSIH 0, ITT 0xdeadbeef, CID 0x0102, CmdSN 0x0a0b0c0d, ExpStatSN 1.
	wire := mustHex(`
		43 87 00 00 00 00 00 10 80 12 34 56 78 9a 00 00
		de ad be ef 01 02 00 00 0a 0b 0c 0d 00 00 00 01
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`)
	want := &LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature,
		ISID: ISID{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a}, ITT: 0xdeadbeef, CID: 0x0102,
		CmdSN: 0x0a0b0c0d, ExpStatSN: 1, Data: make([]byte, 16)}
	b, err := want.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, wire) {
		t.Errorf("encoded\n%x\nwant\n%x", b, wire)
	}
	var got LoginRequest
	if err := got.UnmarshalBinary(wire); err != nil {
		t.Fatal(err)
	}
	got.Data = want.Data
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}

func TestGoldenR2TAndReject(t *testing.T) {
	r2t := &R2T{LUN: EncodeLUN(1), ITT: 1, TTT: 2, StatSN: 3, ExpCmdSN: 4, MaxCmdSN: 5, R2TSN: 6,
		BufferOffset: 7, DesiredDataTransferLength: 8}
	wantR2T := mustHex(`
		31 80 00 00 00 00 00 00 00 01 00 00 00 00 00 00
		00 00 00 01 00 00 00 02 00 00 00 03 00 00 00 04
		00 00 00 05 00 00 00 06 00 00 00 07 00 00 00 08`)
	if b, _ := r2t.AppendBinary(nil); !bytes.Equal(b, wantR2T) {
		t.Errorf("R2T encoded\n%x\nwant\n%x", b, wantR2T)
	}
	rej := &Reject{Reason: RejectProtocolError, StatSN: 9, ExpCmdSN: 10, MaxCmdSN: 11, Data: rfc3720ReadPDU}
	wantRej := mustHex(`
		3f 80 04 00 00 00 00 30 00 00 00 00 00 00 00 00
		ff ff ff ff 00 00 00 00 00 00 00 09 00 00 00 0a
		00 00 00 0b 00 00 00 00 00 00 00 00 00 00 00 00`)
	if b, _ := rej.AppendBinary(nil); !bytes.Equal(b, wantRej) {
		t.Errorf("Reject encoded\n%x\nwant\n%x", b, wantRej)
	}
}

func TestExtendedCDBWireLayout(t *testing.T) {
	// A 32-byte CDB: 16 bytes in the BHS, 16 in an Extended CDB AHS with
	// AHSLength 17 (16 + the reserved byte), padded to 20 bytes = 5 words.
	cmd := &SCSICommand{Final: true, Read: true, ITT: 1, CDB: [16]byte{0x7f, 0, 0, 0, 0, 0, 0, 0x18}}
	cmd.ExtCDB = bytes.Repeat([]byte{0xee}, 16)
	b, err := AppendFrame(nil, cmd, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if BHS(b).TotalAHSLength() != 5 {
		t.Fatalf("TotalAHSLength %d, want 5", BHS(b).TotalAHSLength())
	}
	wantAHS := append(mustHex("00 11 01 00"), append(bytes.Repeat([]byte{0xee}, 16), 0, 0, 0, 0)...)
	if !bytes.Equal(b[BHSLen:], wantAHS[:20]) {
		t.Errorf("AHS %x, want %x", b[BHSLen:], wantAHS[:20])
	}
	if cmd.CDBLen() != 32 || len(cmd.AppendCDB(nil)) != 32 {
		t.Errorf("CDBLen %d", cmd.CDBLen())
	}
}

func TestStrictDecoding(t *testing.T) {
	base := func(p PDU) []byte {
		b, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		p      PDU
		mutate func(b []byte)
		reason RejectReason
		field  string
	}{
		{"reserved byte 0 bit", &NOPOut{}, func(b []byte) { b[0] |= 0x80 }, RejectInvalidPDUField, "byte 0"},
		{"SCSI Command reserved flag bits", &SCSICommand{}, func(b []byte) { b[1] |= 0x08 }, RejectInvalidPDUField, "byte 1"},
		{"SCSI Command reserved bytes 2-3", &SCSICommand{}, func(b []byte) { b[3] = 1 }, RejectInvalidPDUField, "bytes 2-3"},
		{"Data-Out reserved bytes 24-27", &DataOut{}, func(b []byte) { b[25] = 1 }, RejectInvalidPDUField, "bytes 24-27"},
		{"Data-Out reserved bytes 44-47", &DataOut{}, func(b []byte) { b[47] = 1 }, RejectInvalidPDUField, "bytes 44-47"},
		{"Data-Out AHS", &DataOut{}, func(b []byte) { b[4] = 1 }, RejectProtocolError, "TotalAHSLength"},
		{"NOP-Out reserved tail", &NOPOut{}, func(b []byte) { b[40] = 1 }, RejectInvalidPDUField, "bytes 32-47"},
		{"Login T and C", &LoginRequest{}, func(b []byte) { b[1] = 0xc0 }, RejectProtocolError, "T and C"},
		{"Login CSG 2", &LoginRequest{}, func(b []byte) { b[1] = 0x08 }, RejectInvalidPDUField, "CSG"},
		{"Login NSG 2", &LoginRequest{}, func(b []byte) { b[1] = 0x82 }, RejectInvalidPDUField, "NSG"},
		{"Text F and C", &TextRequest{}, func(b []byte) { b[1] = 0xc0 }, RejectProtocolError, "F and C"},
		{"Logout reserved LUN", &LogoutRequest{}, func(b []byte) { b[9] = 1 }, RejectInvalidPDUField, "bytes 8-15"},
		{"TMF reserved tail", &TaskMgmtRequest{}, func(b []byte) { b[44] = 1 }, RejectInvalidPDUField, "bytes 40-47"},
		{"SNACK reserved", &SNACKRequest{}, func(b []byte) { b[33] = 1 }, RejectInvalidPDUField, "bytes 32-39"},
		{"Reject tag", &Reject{}, func(b []byte) { b[16] = 0 }, RejectInvalidPDUField, "bytes 16-19"},
		{"response I bit", &SCSIResponse{}, func(b []byte) { b[0] |= 0x40 }, RejectInvalidPDUField, "I bit"},
		{"Data-Out I bit", &DataOut{}, func(b []byte) { b[0] |= 0x40 }, RejectInvalidPDUField, "I bit"},
		{"response O and U", &SCSIResponse{}, func(b []byte) { b[1] |= 0x06 }, RejectProtocolError, "Flags"},
		{"Data-In S without F", &DataIn{}, func(b []byte) { b[1] = 0x01 }, RejectProtocolError, "S bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base(tt.p)
			if _, err := Decode(b); err != nil {
				t.Fatalf("unmodified PDU rejected: %v", err)
			}
			tt.mutate(b)
			_, err := Decode(b)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want *FormatError", err)
			}
			if fe.Reason != tt.reason || !strings.Contains(fe.Field, tt.field) && !strings.Contains(fe.Detail, tt.field) {
				t.Errorf("got %v (reason %v), want reason %v mentioning %q", fe, fe.Reason, tt.reason, tt.field)
			}
			if r, ok := RejectReasonFor(err); !ok || r != tt.reason {
				t.Errorf("RejectReasonFor = %v, %v", r, ok)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	b := make([]byte, BHSLen)
	b[0] = 0x1c // undefined initiator opcode
	_, err := Decode(b)
	var ue *UnknownOpcodeError
	if !errors.As(err, &ue) || ue.Op != 0x1c {
		t.Fatalf("got %v, want *UnknownOpcodeError", err)
	}
	if r, ok := RejectReasonFor(err); !ok || r != RejectCommandNotSupported {
		t.Errorf("RejectReasonFor = %v %v, want Command not supported", r, ok)
	}
	var d Decoder
	if _, err := d.Decode(b); !errors.As(err, &ue) {
		t.Errorf("Decoder: got %v, want *UnknownOpcodeError", err)
	}
	if _, err := Decode(b[:47]); err == nil {
		t.Error("short BHS accepted")
	}
	var cmd SCSICommand
	if err := cmd.UnmarshalBinary(make([]byte, 49)); err == nil {
		t.Error("long BHS accepted")
	}
	if err := cmd.UnmarshalBinary(make([]byte, 48)); err == nil {
		t.Error("NOP-Out BHS accepted as SCSI Command")
	}
	if _, err := RejectReasonFor(io.EOF); err {
		t.Error("RejectReasonFor(io.EOF) reports a reason")
	}
}

func TestAHSErrors(t *testing.T) {
	tests := map[string][]byte{
		"truncated":       {0, 1, 1},
		"length too long": {0, 9, 1, 0, 1, 2, 3, 4},
		"reserved type":   {0, 1, 0x41, 0},
		"reserved byte":   {0, 1, 1, 1},
		"unknown type":    {0, 1, 5, 0},
		"bidi wrong len":  {0, 4, 2, 0, 0, 0, 0, 0},
		"duplicate bidi":  {0, 5, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 5, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0},
		"zero AHS length": {0, 0, 1, 0},
	}
	for name, ahs := range tests {
		var cmd SCSICommand
		if err := cmd.DecodeAHS(ahs); err == nil {
			t.Errorf("%s: accepted %x", name, ahs)
		} else if _, ok := RejectReasonFor(err); !ok {
			t.Errorf("%s: %v is not a Reject-able error", name, err)
		}
	}
	var cmd SCSICommand
	f := &Frame{BHS: mustFrame(t, &NOPOut{})[:BHSLen], AHS: []byte{0, 5, 2, 0, 0, 0, 0, 1}}
	var d Decoder
	if _, err := d.DecodeFrame(f); err == nil {
		t.Error("AHS on a NOP-Out accepted")
	}
	_ = cmd
}

func mustFrame(t *testing.T, p PDU) []byte {
	t.Helper()
	b, err := AppendFrame(nil, p, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeErrors(t *testing.T) {
	big := &DataIn{Data: make([]byte, MaxDataSegmentLength+1)}
	if _, err := big.AppendBinary(nil); err == nil {
		t.Error("oversized data segment encoded")
	}
	long := &SCSICommand{ExtCDB: make([]byte, MaxCDBLen)}
	if _, err := long.AppendBinary(nil); err == nil {
		t.Error("oversized CDB encoded")
	}
	if _, err := (&LoginRequest{CSG: 4}).AppendBinary(nil); err == nil {
		t.Error("stage 4 encoded")
	}
	if _, err := (&SCSICommand{Attr: 8}).AppendBinary(nil); err == nil {
		t.Error("attribute 8 encoded")
	}
	if _, err := (&LogoutRequest{Reason: 0x80}).AppendBinary(nil); err == nil {
		t.Error("logout reason 0x80 encoded")
	}
	if _, err := (&TaskMgmtRequest{Function: 0x80}).AppendBinary(nil); err == nil {
		t.Error("TMF function 0x80 encoded")
	}
	if _, err := (&SNACKRequest{Type: 0x10}).AppendBinary(nil); err == nil {
		t.Error("SNACK type 16 encoded")
	}
}

func TestLUN(t *testing.T) {
	tests := []struct {
		n    uint16
		wire [8]byte
	}{
		{0, [8]byte{}},
		{5, [8]byte{0, 5}},
		{255, [8]byte{0, 0xff}},
		{256, [8]byte{0x41, 0x00}},
		{0x3fff, [8]byte{0x7f, 0xff}},
	}
	for _, tt := range tests {
		l := EncodeLUN(tt.n)
		if l.Bytes() != tt.wire {
			t.Errorf("EncodeLUN(%d) = %x, want %x", tt.n, l.Bytes(), tt.wire)
		}
		if n, ok := l.Number(); !ok || n != tt.n {
			t.Errorf("Number(%x) = %d %v", l.Bytes(), n, ok)
		}
	}
	for _, bad := range []LUN{0x0105_0000_0000_0000, 0x8000_0000_0000_0000, 0x0001_0000_0000_0001} {
		if n, ok := bad.Number(); ok {
			t.Errorf("Number(%#x) = %d, want not ok", uint64(bad), n)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("EncodeLUN(0x4000) did not panic")
		}
	}()
	EncodeLUN(0x4000)
}

func TestSenseData(t *testing.T) {
	sense := []byte{0x70, 0, 5}
	seg := AppendSenseData(nil, sense)
	got, err := SenseData(seg)
	if err != nil || !bytes.Equal(got, sense) {
		t.Errorf("SenseData = %x, %v", got, err)
	}
	if _, err := SenseData([]byte{0, 9, 1}); err == nil {
		t.Error("truncated sense accepted")
	}
	if _, err := SenseData([]byte{0}); err == nil {
		t.Error("1-byte segment accepted")
	}
	if s, err := SenseData(nil); s != nil || err != nil {
		t.Error("empty segment")
	}
}

func TestStrings(t *testing.T) {
	checks := map[string]string{
		OpSCSICommand.String():             "SCSI Command",
		Opcode(0x1c).String():              "Opcode(0x1c)",
		TMFLogicalUnitReset.String():       "LOGICAL UNIT RESET",
		RejectCommandNotSupported.String(): "Command not supported",
		LoginAuthFailed.String():           "0x0201 (authentication failure)",
		StageFullFeature.String():          "FullFeaturePhase",
		AsyncNegotiate.String():            "parameter negotiation requested",
		LogoutCloseSession.String():        "close the session",
		LogoutCleanupFailed.String():       "cleanup failed for various reasons",
		TMFRejected.String():               "Function rejected",
		AttrHeadOfQueue.String():           "Head of Queue",
		ResponseCode(0x85).String():        "Vendor specific (0x85)",
		SNACKRData.String():                "R-Data",
		ISID{1, 2, 3, 4, 5, 6}.String():    "010203040506",
		EncodeLUN(300).String():            "300",
	}
	for got, want := range checks {
		if got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
	if LoginAuthFailed.Class() != ClassInitiatorError || LoginAuthFailed.Detail() != 1 {
		t.Error("LoginStatus Class/Detail")
	}
}
