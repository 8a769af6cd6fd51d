package tcp_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
)

// TestUnreadCommandsReleased checks that the task buffers of SCSI Commands
// the reader took but the owner never handled go back when a connection
// ends. A Login Request in the full feature phase ends the connection;
// the writes sent with it in one segment are usually read (and given
// buffers) before the owner stops. They used to stay charged to the
// server's MaxTaskMemory for good.
func TestUnreadCommandsReleased(t *testing.T) {
	ts := startServer(t, nil)
	for i := range 20 {
		c := dial(t, ts.addr)
		c.login("ImmediateData=No", "InitialR2T=Yes")
		var b bytes.Buffer
		w := pdu.NewWriter(&b)
		if err := w.WritePDU(&pdu.LoginRequest{ITT: 99, CmdSN: c.cmdSN, ISID: c.isid}); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			cmd := pdu.SCSICommand{Final: true, Write: true, Attr: pdu.AttrSimple, ITT: uint32(j + 1),
				ExpectedDataTransferLength: 4096, CmdSN: c.cmdSN + uint32(j), ExpStatSN: c.expStatSN}
			copy(cmd.CDB[:], write10(uint32(j*8), 8))
			if err := w.WritePDU(&cmd); err != nil {
				t.Fatal(err)
			}
		}
		// The server may close before it has read everything.
		_, _ = c.nc.Write(b.Bytes())
		c.expectClosed()
		deadline := time.Now().Add(ioTimeout)
		for ts.srv.TaskMemory() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := ts.srv.TaskMemory(); got != 0 {
			t.Fatalf("round %d: %d bytes of task memory still held after the connection ended", i, got)
		}
	}
}
