package iscsi

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// sentPDU is one PDU a fakeConn was asked to send.
type sentPDU struct {
	bhs  [BHSLen]byte
	data []byte
}

// fakeConn is a TransportConn that records what the core sends; the tests
// call the owner's handlers directly instead of running serve.
type fakeConn struct {
	sent []sentPDU
}

func (f *fakeConn) Recv(ctx context.Context, _ *Inbound) error { <-ctx.Done(); return ctx.Err() }
func (f *fakeConn) Send(bhs *[BHSLen]byte, data []byte) error {
	f.sent = append(f.sent, sentPDU{*bhs, bytes.Clone(data)})
	return nil
}
func (f *fakeConn) SetParams(Params, SeqNumbers) error { return nil }
func (f *fakeConn) GetData(*Task, int) (bool, error)   { return true, nil }
func (f *fakeConn) PutData(*Task, *Response) error     { return nil }
func (f *fakeConn) Release(*Task)                      {}
func (f *fakeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (f *fakeConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3260} }
func (f *fakeConn) Close() error        { return nil }
func (f *fakeConn) Drained() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// last decodes the last PDU sent.
func (f *fakeConn) last(t *testing.T) (pdu.PDU, []byte) {
	t.Helper()
	if len(f.sent) == 0 {
		t.Fatal("nothing sent")
	}
	s := f.sent[len(f.sent)-1]
	p, err := pdu.Decode(s.bhs[:])
	if err != nil {
		t.Fatalf("decode sent PDU: %v", err)
	}
	return p, s.data
}

// ffpConn returns a connection of s in the full feature phase of a
// discovery session, on a fakeConn.
func ffpConn(t *testing.T, s *Server) (*conn, *fakeConn) {
	t.Helper()
	fc := &fakeConn{}
	c := newConn(s, fc)
	t.Cleanup(c.cancel)
	c.params = Params{InitiatorMaxRecvDSL: 8192, TargetMaxRecvDSL: 262144, Discovery: true}
	c.expCmdSN, c.maxCmdSN = 1, 128
	return c, fc
}

// textPDU sends one immediate Text Request to c and returns what c sent
// back.
func textPDU(t *testing.T, c *conn, fc *fakeConn, ttt uint32, cont bool, data []byte) pdu.PDU {
	t.Helper()
	n := len(fc.sent)
	req := pdu.TextRequest{Immediate: true, Final: !cont, Continue: cont, ITT: 1, TTT: ttt, Data: data}
	if err := c.textRequest(&req); err != nil {
		t.Fatalf("textRequest: %v", err)
	}
	if len(fc.sent) != n+1 {
		t.Fatalf("%d PDUs sent for one Text Request", len(fc.sent)-n)
	}
	p, _ := fc.last(t)
	return p
}

// TestTextContinuedBounded sends Text Request PDUs with the C bit, 8 KiB
// each, in a discovery session: once the text passes MaxTextLength the
// exchange ends with a Reject, and the connection still answers the next
// exchange. Issue 7: 300 MiB of continued Text PDUs were all kept.
func TestTextContinuedBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int // Server.MaxTextLength
		reject int // the PDU (from 0) that gets the Reject
	}{
		{"default", 0, 8},        // 9 * 8192 > 65536
		{"configured", 20000, 2}, // 3 * 8192 > 20000
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testServer(t, nil)
			s.MaxTextLength = tc.limit
			c, fc := ffpConn(t, s)
			chunk := bytes.Repeat([]byte{'a'}, 8192)
			var ttt uint32 = reservedTag
			rejected := -1
			for i := range 64 { // 512 KiB
				switch p := textPDU(t, c, fc, ttt, true, chunk).(type) {
				case *pdu.TextResponse:
					ttt = p.TTT
					continue
				case *pdu.Reject:
					if p.Reason != pdu.RejectProtocolError {
						t.Fatalf("PDU %d: reject reason %v", i, p.Reason)
					}
					rejected = i
				default:
					t.Fatalf("PDU %d: got %v", i, p.Opcode())
				}
				break
			}
			if rejected != tc.reject {
				t.Fatalf("Reject at PDU %d, want %d (-1: none in 512 KiB)", rejected, tc.reject)
			}
			if c.text.req.Pending() || c.text.pending != nil {
				t.Fatal("the rejected exchange is still buffered")
			}
			// The rest of the abandoned exchange is refused too, and
			// nothing is buffered.
			if p := textPDU(t, c, fc, ttt, true, chunk); p.Opcode() != pdu.OpReject {
				t.Fatalf("continuation after the Reject: %v", p.Opcode())
			}
			if c.text.req.Pending() {
				t.Fatal("the refused continuation was buffered")
			}
			// A new exchange works.
			p := textPDU(t, c, fc, reservedTag, false, keys("SendTargets=All"))
			rsp, ok := p.(*pdu.TextResponse)
			if _, data := fc.last(t); !ok || !rsp.Final || !strings.Contains(string(data), "TargetName="+tName) {
				t.Fatalf("SendTargets after the Reject: %v %q", p.Opcode(), data)
			}
			// A continued text within the limit is answered, and the
			// session keeps no buffer once the exchange is over.
			p = textPDU(t, c, fc, reservedTag, true, []byte("SendTar"))
			p = textPDU(t, c, fc, p.(*pdu.TextResponse).TTT, false, []byte("gets=All\x00"))
			if _, data := fc.last(t); !p.(*pdu.TextResponse).Final || !strings.Contains(string(data), "TargetName="+tName) {
				t.Fatalf("continued SendTargets: %q", data)
			}
			if c.text.req.Pending() || c.text.pending != nil || c.text.ttt != 0 {
				t.Fatal("buffers kept after the exchange")
			}
		})
	}
}

// TestTextTooManyKeys checks that a Text Request may carry at most
// text.MaxUnknownKeys keys that need an answer other than SendTargets.
func TestTextTooManyKeys(t *testing.T) {
	for _, n := range []int{text.MaxUnknownKeys, text.MaxUnknownKeys + 1} {
		c, fc := ffpConn(t, testServer(t, nil))
		var kv []string
		for i := range n {
			kv = append(kv, "X-vendor.k"+string(rune('a'+i/26))+string(rune('a'+i%26))+"=1")
		}
		p := textPDU(t, c, fc, reservedTag, false, keys(kv...))
		if want := n <= text.MaxUnknownKeys; (p.Opcode() == pdu.OpTextResp) != want {
			t.Fatalf("%d keys: got %v", n, p.Opcode())
		}
	}
}
