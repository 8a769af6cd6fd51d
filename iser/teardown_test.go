package iser_test

import (
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iser"
	"github.com/goiser/goiser/rdma"
)

// TestUnreadCommandsReleased: the buffers of SCSI Commands the target
// received but did not handle before the connection ended (here, writes
// posted in one batch behind a Login Request, which ends a connection in
// the full feature phase) come back, so the connection drains. They used
// to stay out for good: Drained never closed and Shutdown timed out.
func TestUnreadCommandsReleased(t *testing.T) {
	tt := startTarget(t, iser.TargetConfig{})
	for round := range 5 {
		c := dialRaw(t, tt.p, tt.addr, false)
		c.login(testIQN, "ImmediateData=No", "InitialR2T=Yes")
		frames := [][]byte{frame(t, iser.Header{}, &pdu.LoginRequest{ITT: 99, CmdSN: c.cmdSN, ISID: c.isid})}
		for i := range 3 {
			cmd := pdu.SCSICommand{Final: true, Write: true, Attr: pdu.AttrSimple, ITT: uint32(i + 1),
				ExpectedDataTransferLength: 4096, CmdSN: c.cmdSN + uint32(i), ExpStatSN: c.expStatSN}
			copy(cmd.CDB[:], write10(uint32(i*8), 8))
			area := c.dmr.Remote(i*4096, 4096)
			frames = append(frames, frame(t, iser.Header{WriteValid: true, WriteSTag: area.RKey, WriteVA: area.Addr}, &cmd))
		}
		var wrs []rdma.SendWR
		for i, f := range frames {
			off := rcSendOff + i*1024
			copy(c.buf.Bytes()[off:], f)
			wrs = append(wrs, rdma.SendWR{ID: rdma.EncodeWRID(2, uint64(i)), Op: rdma.OpSend, Flags: rdma.FlagSignaled,
				SGL: []rdma.SGE{c.mr.SGE(off, len(f))}})
		}
		_, err := c.qp.PostSend(wrs)
		must(t, err)
		c.expectClosed()
		c.close()
		deadline := time.Now().Add(5 * time.Second)
		for tt.tr.Stats().BlocksOut != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if s := tt.tr.Stats(); s.BlocksOut != 0 {
			t.Fatalf("round %d: after the connection ended: %+v", round, s)
		}
	}
}

// frame encodes p behind the iSER header h, as one SEND carries it.
func frame(t *testing.T, h iser.Header, p pdu.PDU) []byte {
	t.Helper()
	b, err := h.AppendBinary(nil)
	must(t, err)
	b, err = p.AppendBinary(b)
	must(t, err)
	return append(b, p.DataSegment()...)
}
