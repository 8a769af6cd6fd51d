package tcp_test

import (
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
)

// TestR2TStatSNFollowsTheWire: an R2T carries "the next StatSN" (RFC 7143
// §11.8): one past the last status the initiator has received on the
// connection. With many 1 MiB writes in flight, responses to earlier
// commands are numbered by the core while R2Ts for later ones go out; an
// R2T that took the core's number ran ahead of the response still on its
// way to the wire (the Go initiator dropped such sessions, 1 in 3 runs of
// goiser-bench 1m-randwrite-qd32 against goiserd).
func TestR2TStatSNFollowsTheWire(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.login("ImmediateData=No", "InitialR2T=Yes")
	const n, size = 16, 1 << 20
	out := pattern(size, 5)
	for round := range 8 {
		itts := map[uint32]bool{}
		for i := range n {
			itt := c.itt
			c.itt++
			cmd := pdu.SCSICommand{Final: true, Write: true, Attr: pdu.AttrSimple, ITT: itt,
				ExpectedDataTransferLength: size, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
			copy(cmd.CDB[:], write10(uint32(i*size/512), size/512))
			c.cmdSN++
			c.send(&cmd)
			itts[itt] = true
		}
		for len(itts) > 0 {
			switch p := c.recv().(type) {
			case *pdu.R2T:
				if p.StatSN != c.expStatSN {
					t.Fatalf("round %d: R2T for ITT %#x carries StatSN %d; the last status on the wire makes the next %d",
						round, p.ITT, p.StatSN, c.expStatSN)
				}
				c.sendData(p.ITT, p.TTT, int(p.BufferOffset), int(p.DesiredDataTransferLength), out)
			case *pdu.SCSIResponse:
				if p.Status != 0 {
					t.Fatalf("WRITE ITT %#x: status %#x", p.ITT, p.Status)
				}
				delete(itts, p.ITT)
			default:
				t.Fatalf("unexpected %v", p.Opcode())
			}
		}
	}
	c.logout()
}
