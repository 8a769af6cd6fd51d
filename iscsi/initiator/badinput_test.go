package initiator_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/pdu"
)

// rawConn logs in and returns the bare connection for hand-made PDUs.
func rawConn(t *testing.T, ctx context.Context, addr string, cfg initiator.Config) *initiator.Conn {
	t.Helper()
	cfg.InitiatorName = testInitiator
	cfg.TargetName = testTarget
	c, err := initiator.DialConn(ctx, addr, cfg)
	if err != nil {
		t.Fatalf("dial raw: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nopOut builds an immediate NOP-Out ping (RFC 7143 §11.18).
func nopOut(c *initiator.Conn, itt uint32, data []byte) *initiator.PDU {
	cmdSN, expStatSN, _ := c.SeqNumbers()
	p := &initiator.PDU{Data: data}
	p.BHS[0] = byte(pdu.OpNOPOut) | 0x40
	p.BHS[1] = 0x80
	p.PutU32(16, itt)
	p.PutU32(20, 0xffffffff)
	p.PutU32(24, cmdSN)
	p.PutU32(28, expStatSN)
	return p
}

// testUnitReady builds a TEST UNIT READY command PDU with the given CmdSN.
func testUnitReady(c *initiator.Conn, itt, cmdSN uint32) *initiator.PDU {
	_, expStatSN, _ := c.SeqNumbers()
	p := &initiator.PDU{}
	p.BHS[0] = byte(pdu.OpSCSICommand)
	p.BHS[1] = 0x80 | byte(pdu.AttrSimple)
	p.PutU32(16, itt)
	p.PutU32(24, cmdSN)
	p.PutU32(28, expStatSN)
	return p
}

// outcome is what the target did with a bad PDU.
type outcome struct {
	reject  *initiator.PDU // the Reject it sent, if any
	dropped bool           // it closed the connection
}

// awaitOutcome reads until a Reject arrives, the connection ends, or five
// seconds pass with neither (a test failure: the target must answer a
// malformed PDU one way or the other).
func awaitOutcome(t *testing.T, c *initiator.Conn) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var o outcome
	for {
		p := &initiator.PDU{}
		err := c.ReadPDUContext(ctx, p)
		if err != nil {
			if ctx.Err() != nil && o.reject != nil {
				return o // rejected, connection kept
			}
			if ctx.Err() != nil {
				t.Fatalf("target neither rejected the PDU nor dropped the connection within 5 s")
			}
			o.dropped = true
			return o
		}
		advance(c, p)
		if p.Opcode() == pdu.OpReject {
			if o.reject == nil {
				o.reject = p
			}
			// Keep reading briefly: the target may drop the connection
			// after the Reject.
			cancel()
			ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			continue
		}
		if o.reject != nil {
			return o
		}
		t.Fatalf("target answered the bad PDU with %v", p.Opcode())
	}
}

// advance updates the raw connection's ExpStatSN from a response.
func advance(c *initiator.Conn, p *initiator.PDU) {
	switch p.Opcode() {
	case pdu.OpSCSIResponse, pdu.OpReject, pdu.OpTaskMgmtResp, pdu.OpTextResp, pdu.OpLogoutResp:
	case pdu.OpNOPIn:
		if p.ITT() == 0xffffffff {
			return
		}
	default:
		return
	}
	cmdSN, _, _ := c.SeqNumbers()
	c.SetSeqNumbers(cmdSN, p.U32(24)+1)
}

// checkRawAlive proves a raw connection that got a Reject still works.
func checkRawAlive(t *testing.T, c *initiator.Conn) {
	t.Helper()
	if err := c.WritePDU(nopOut(c, 0x777, []byte("still there?"))); err != nil {
		t.Fatalf("ping after reject: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := &initiator.PDU{}
	if err := c.ReadPDUContext(ctx, p); err != nil {
		t.Fatalf("ping after reject: %v", err)
	}
	if p.Opcode() != pdu.OpNOPIn || p.ITT() != 0x777 || string(p.Data) != "still there?" {
		t.Fatalf("ping after reject: got %v ITT %#x data %q", p.Opcode(), p.ITT(), p.Data)
	}
}

func TestServerBadInput(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{MaxRecvDataSegmentLength: 8192})
	ctx := testCtx(t)
	// A healthy session that every case below must leave working.
	other := dial(t, ctx, srv.addr, initiator.Config{})
	_ = other.TestUnitReady(ctx, 0)

	digests := initiator.Config{HeaderDigest: initiator.DigestRequireCRC32C, DataDigest: initiator.DigestRequireCRC32C}
	for _, tc := range []struct {
		name string
		cfg  initiator.Config
		// send writes the bad PDU.
		send func(c *initiator.Conn) error
		// reasons lists the acceptable Reject reasons; nil means the
		// target must drop the connection.
		reasons []pdu.RejectReason
		// mayDrop allows a drop (with or without Reject) instead of a
		// Reject that keeps the connection.
		mayDrop bool
	}{
		{
			name: "reserved-opcode",
			send: func(c *initiator.Conn) error {
				p := nopOut(c, 0x10, nil)
				p.BHS[0] = 0x40 | 0x0a // 0x0a: reserved initiator opcode
				return c.WritePDU(p)
			},
			reasons: []pdu.RejectReason{pdu.RejectCommandNotSupported, pdu.RejectProtocolError},
			mayDrop: true,
		},
		{
			name: "vendor-opcode",
			send: func(c *initiator.Conn) error {
				p := nopOut(c, 0x11, nil)
				p.BHS[0] = 0x40 | 0x1c // vendor specific, never negotiated
				return c.WritePDU(p)
			},
			reasons: []pdu.RejectReason{pdu.RejectCommandNotSupported, pdu.RejectProtocolError},
			mayDrop: true,
		},
		{
			name: "target-opcode-from-initiator",
			send: func(c *initiator.Conn) error {
				p := nopOut(c, 0x12, nil)
				p.BHS[0] = byte(pdu.OpSCSIResponse)
				return c.WritePDU(p)
			},
			reasons: []pdu.RejectReason{pdu.RejectCommandNotSupported, pdu.RejectProtocolError},
			mayDrop: true,
		},
		{
			name: "bad-ahs-length",
			send: func(c *initiator.Conn) error {
				cmdSN, _, _ := c.SeqNumbers()
				p := testUnitReady(c, 0x13, cmdSN)
				// One 8-byte AHS whose own length field claims 200 bytes.
				p.AHS = make([]byte, 8)
				binary.BigEndian.PutUint16(p.AHS[0:2], 200)
				p.AHS[2] = pdu.AHSExtendedCDB
				return c.WritePDU(p)
			},
			reasons: []pdu.RejectReason{pdu.RejectProtocolError, pdu.RejectInvalidPDUField},
			mayDrop: true,
		},
		{
			name: "data-segment-beyond-max-recv",
			send: func(c *initiator.Conn) error {
				n := c.Params().TargetMaxRecvDataSegmentLength + 4
				return c.WritePDU(nopOut(c, 0x14, make([]byte, n)))
			},
			reasons: []pdu.RejectReason{pdu.RejectProtocolError},
			mayDrop: true,
		},
		{
			name: "bad-header-digest",
			cfg:  digests,
			send: func(c *initiator.Conn) error {
				return c.WritePDURaw(nopOut(c, 0x15, nil), initiator.CorruptHeaderDigest)
			},
			mayDrop: true, // the PDU boundaries are lost: the connection must end
		},
		{
			name: "bad-data-digest",
			cfg:  digests,
			send: func(c *initiator.Conn) error {
				p := nopOut(c, 0x16, []byte("ping with a bad digest"))
				p.BHS[5], p.BHS[6], p.BHS[7] = 0, 0, byte(len(p.Data))
				return c.WritePDURaw(p, initiator.CorruptDataDigest)
			},
			reasons: []pdu.RejectReason{pdu.RejectDataDigestError},
			mayDrop: true,
		},
		{
			name: "garbage-header",
			send: func(c *initiator.Conn) error {
				// 0xff bytes: a BHS with opcode 0x3f (a target opcode),
				// 1020 bytes of AHS (sent, all 0xff) and a 16 MiB data
				// segment announced: the header must be enough to refuse it.
				garbage := make([]byte, 48+1020)
				for i := range garbage {
					garbage[i] = 0xff
				}
				return c.WriteBytes(garbage)
			},
			reasons: []pdu.RejectReason{pdu.RejectCommandNotSupported, pdu.RejectProtocolError, pdu.RejectInvalidPDUField},
			mayDrop: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawConn(t, ctx, srv.addr, tc.cfg)
			if err := tc.send(c); err != nil {
				t.Fatalf("send: %v", err)
			}
			o := awaitOutcome(t, c)
			if o.reject != nil {
				t.Logf("target sent Reject (%v); dropped=%v", pdu.RejectReason(o.reject.BHS[2]), o.dropped)
			} else {
				t.Logf("target dropped the connection without a Reject")
			}
			if o.reject != nil {
				reason := pdu.RejectReason(o.reject.BHS[2])
				ok := false
				for _, r := range tc.reasons {
					ok = ok || r == reason
				}
				if !ok {
					t.Errorf("reject reason %v, want one of %v", reason, tc.reasons)
				}
				if len(o.reject.Data) < initiator.BHSLen {
					t.Errorf("reject carries %d bytes, want the 48-byte rejected header", len(o.reject.Data))
				}
			}
			switch {
			case o.dropped && !tc.mayDrop:
				t.Errorf("target dropped the connection, want a Reject only")
			case !o.dropped && tc.reasons == nil:
				t.Errorf("target kept the connection, want a drop")
			case !o.dropped:
				checkRawAlive(t, c)
			}
			checkAlive(t, ctx, other)
		})
	}
}

func TestServerCmdSNOutOfWindow(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	other := dial(t, ctx, srv.addr, initiator.Config{})
	_ = other.TestUnitReady(ctx, 0)
	c := rawConn(t, ctx, srv.addr, initiator.Config{})
	cmdSN, _, maxCmdSN := c.SeqNumbers()

	// RFC 7143 §4.2.2.1: a non-immediate command outside [ExpCmdSN,
	// MaxCmdSN] is silently ignored. Send one far ahead and one behind.
	for i, sn := range []uint32{maxCmdSN + 1000, cmdSN - 5} {
		if err := c.WritePDU(testUnitReady(c, uint32(0x20+i), sn)); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	// An immediate ping must be answered, and nothing for the ignored
	// commands may come before (or instead of) the NOP-In.
	if err := c.WritePDU(nopOut(c, 0x30, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p := &initiator.PDU{}
	if err := c.ReadPDUContext(rctx, p); err != nil {
		t.Fatalf("read: %v", err)
	}
	if p.Opcode() == pdu.OpReject {
		// Also acceptable to RFC 7143? No: out-of-window commands are
		// ignored, not rejected. Report what came.
		t.Fatalf("target rejected an out-of-window command (reason %v); it must ignore it", pdu.RejectReason(p.BHS[2]))
	}
	if p.Opcode() != pdu.OpNOPIn || p.ITT() != 0x30 {
		t.Fatalf("got %v ITT %#x, want the NOP-In for ITT 0x30", p.Opcode(), p.ITT())
	}
	advance(c, p)
	// The window is intact: a command with the right CmdSN runs.
	if err := c.WritePDU(testUnitReady(c, 0x31, cmdSN)); err != nil {
		t.Fatal(err)
	}
	for {
		p := &initiator.PDU{}
		if err := c.ReadPDUContext(rctx, p); err != nil {
			t.Fatalf("read: %v", err)
		}
		if p.Opcode() == pdu.OpSCSIResponse {
			if p.ITT() != 0x31 {
				t.Fatalf("SCSI Response for ITT %#x, want 0x31 (an ignored command ran)", p.ITT())
			}
			break
		}
		if p.Opcode() != pdu.OpNOPIn {
			t.Fatalf("got %v, want the SCSI Response", p.Opcode())
		}
	}
	checkAlive(t, ctx, other)
}

// writeCmd builds a WRITE(16) of blocks at LBA 0 with imm as immediate
// data; final is the F bit (clear when unsolicited Data-Out follows).
func writeCmd(c *initiator.Conn, itt uint32, blocks int, imm []byte, final bool) *initiator.PDU {
	cmdSN, expStatSN, _ := c.SeqNumbers()
	p := &initiator.PDU{Data: imm}
	p.BHS[0] = byte(pdu.OpSCSICommand)
	p.BHS[1] = 0x20 | byte(pdu.AttrSimple)
	if final {
		p.BHS[1] |= 0x80
	}
	p.PutU32(16, itt)
	p.PutU32(20, uint32(blocks*512))
	p.PutU32(24, cmdSN)
	p.PutU32(28, expStatSN)
	p.BHS[32] = 0x8a
	p.BHS[32+13] = byte(blocks)
	c.SetSeqNumbers(cmdSN+1, expStatSN)
	return p
}

// dataOut builds a Data-Out PDU.
func dataOut(c *initiator.Conn, itt, ttt, offset uint32, data []byte, final bool) *initiator.PDU {
	_, expStatSN, _ := c.SeqNumbers()
	p := &initiator.PDU{Data: data}
	p.BHS[0] = byte(pdu.OpDataOut)
	if final {
		p.BHS[1] = 0x80
	}
	p.PutU32(16, itt)
	p.PutU32(20, ttt)
	p.PutU32(28, expStatSN)
	p.PutU32(40, offset)
	return p
}

// awaitAfterPing sends a ping after a questionable PDU and reads until
// the ping's NOP-In and, when itt is not 0xffffffff, until the task itt
// has its answer (SCSI Response, or a Reject of its PDU): the target may
// have ignored the bad PDU, rejected it (reason checked), answered it, or
// dropped the connection. Silence fails the test. It returns the PDUs
// other than the ping's answer.
func awaitAfterPing(t *testing.T, c *initiator.Conn, itt uint32, reasons []pdu.RejectReason) (got []*initiator.PDU, dropped bool) {
	t.Helper()
	if err := c.WritePDU(nopOut(c, 0x999, []byte("ping"))); err != nil {
		return nil, true // already dropped
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pinged, answered := false, itt == 0xffffffff
	for !pinged || !answered {
		p := &initiator.PDU{}
		if err := c.ReadPDUContext(ctx, p); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("no answer within 5 s after the bad PDU (ping answered: %v, task answered: %v)", pinged, answered)
			}
			return got, true
		}
		advance(c, p)
		switch {
		case p.Opcode() == pdu.OpNOPIn && p.ITT() == 0x999:
			pinged = true
			continue
		case p.Opcode() == pdu.OpSCSIResponse && p.ITT() == itt:
			answered = true
		case p.Opcode() == pdu.OpReject:
			reason := pdu.RejectReason(p.BHS[2])
			if !slices.Contains(reasons, reason) {
				t.Errorf("reject reason %v, want one of %v", reason, reasons)
			}
			if len(p.Data) >= 20 && binary.BigEndian.Uint32(p.Data[16:20]) == itt {
				answered = true
			}
		}
		got = append(got, p)
	}
	return got, false
}

func TestServerBadDataPhase(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{InitialR2T: true, FirstBurstLength: 16384})
	ctx := testCtx(t)
	other := dial(t, ctx, srv.addr, initiator.Config{})
	_ = other.TestUnitReady(ctx, 0)
	protocol := []pdu.RejectReason{pdu.RejectProtocolError, pdu.RejectInvalidPDUField}

	for _, tc := range []struct {
		name string
		itt  uint32 // task that must get an answer; 0xffffffff for none
		send func(t *testing.T, c *initiator.Conn) error
		// mustRefuse: the target may not just carry on (Reject, CHECK
		// CONDITION or a drop are fine; silently accepting is not).
		mustRefuse bool
	}{
		{
			name: "unsolicited-data-with-InitialR2T",
			itt:  0x40,
			send: func(t *testing.T, c *initiator.Conn) error {
				if !c.Params().InitialR2T {
					t.Fatalf("InitialR2T not negotiated")
				}
				if err := c.WritePDU(writeCmd(c, 0x40, 8, nil, false)); err != nil {
					return err
				}
				return c.WritePDU(dataOut(c, 0x40, 0xffffffff, 0, make([]byte, 4096), true))
			},
			mustRefuse: true,
		},
		{
			name: "immediate-data-beyond-FirstBurstLength",
			itt:  0x41,
			send: func(t *testing.T, c *initiator.Conn) error {
				fb := int(c.Params().FirstBurstLength)
				return c.WritePDU(writeCmd(c, 0x41, (fb+4096)/512, make([]byte, fb+4096), true))
			},
			mustRefuse: true,
		},
		{
			name: "data-out-for-unknown-task",
			itt:  0xffffffff,
			send: func(t *testing.T, c *initiator.Conn) error {
				return c.WritePDU(dataOut(c, 0x4242, 0x1234, 0, make([]byte, 512), true))
			},
		},
		{
			name: "data-out-beyond-r2t",
			itt:  0x43,
			send: func(t *testing.T, c *initiator.Conn) error {
				if err := c.WritePDU(writeCmd(c, 0x43, 1, nil, true)); err != nil {
					return err
				}
				// Wait for the R2T, then answer it with more than it asked.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				p := &initiator.PDU{}
				if err := c.ReadPDUContext(ctx, p); err != nil || p.Opcode() != pdu.OpR2T {
					t.Fatalf("want an R2T, got %v %v", p.Opcode(), err)
				}
				return c.WritePDU(dataOut(c, 0x43, p.U32(20), 0, make([]byte, 4096), true))
			},
			mustRefuse: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawConn(t, ctx, srv.addr, initiator.Config{ImmediateData: initiator.Yes})
			if err := tc.send(t, c); err != nil {
				t.Fatalf("send: %v", err)
			}
			before, dropped := awaitAfterPing(t, c, tc.itt, protocol)
			refused := dropped
			for _, p := range before {
				switch p.Opcode() {
				case pdu.OpReject:
					refused = true
				case pdu.OpSCSIResponse:
					if p.BHS[2] != 0 || p.BHS[3] != 0 {
						refused = true // iSCSI failure or CHECK CONDITION
					}
				}
			}
			t.Logf("target: dropped=%v, answered with: %v", dropped, opcodes(before))
			checkAlive(t, ctx, other)
			if tc.mustRefuse && !refused {
				serverBug(t, "target accepted a protocol violation (%s) with GOOD status instead of a Reject or CHECK CONDITION", tc.name)
			}
		})
	}
}

// opcodes lists the opcodes of PDUs for logs.
func opcodes(ps []*initiator.PDU) []string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%v(status %#x)", p.Opcode(), p.BHS[3]))
	}
	return s
}

// TestServerRawThenSession drives a logged-in Conn by hand, then hands it
// to a Session that must carry on from the sequence numbers left.
func TestServerRawThenSession(t *testing.T) {
	srv := startServer(t, nil, iscsi.Negotiation{})
	ctx := testCtx(t)
	cfg := initiator.Config{InitiatorName: testInitiator, TargetName: testTarget}
	c, err := initiator.DialConn(ctx, srv.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmdSN, _, _ := c.SeqNumbers()
	if err := c.WritePDU(testUnitReady(c, 0x55, cmdSN)); err != nil {
		t.Fatal(err)
	}
	c.SetSeqNumbers(cmdSN+1, 0)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p := &initiator.PDU{}
	if err := c.ReadPDUContext(rctx, p); err != nil || p.Opcode() != pdu.OpSCSIResponse || p.ITT() != 0x55 {
		t.Fatalf("raw TEST UNIT READY: %v %v ITT %#x", err, p.Opcode(), p.ITT())
	}
	advance(c, p)
	s, err := initiator.NewSession(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkAlive(t, ctx, s)
	if err := s.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
}
