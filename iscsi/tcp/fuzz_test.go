package tcp_test

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/tcp"
)

// seqs is a fixed SeqNumbers for transport-only tests.
type seqs struct{}

func (seqs) Numbers() (statSN, expCmdSN, maxCmdSN uint32) { return 1, 2, 3 }

// FuzzRecv feeds arbitrary bytes to a full-feature-phase connection: Recv
// must return events or an error, never panic or hang, and every task
// buffer it hands out can be released.
func FuzzRecv(f *testing.F) {
	cmd := pdu.SCSICommand{Final: true, Write: true, ITT: 1, ExpectedDataTransferLength: 1024, Data: make([]byte, 512)}
	seed, _ := pdu.AppendFrame(nil, &cmd, false, false)
	dout := pdu.DataOut{Final: true, ITT: 1, TTT: pdu.ReservedTag, BufferOffset: 512, Data: make([]byte, 512)}
	seed, _ = pdu.AppendFrame(seed, &dout, false, false)
	f.Add(seed, false, false)
	nop := pdu.NOPOut{Immediate: true, ITT: 9, TTT: pdu.ReservedTag, Data: []byte("ping")}
	b, _ := pdu.AppendFrame(nil, &nop, true, true)
	f.Add(b, true, true)
	bad := append([]byte(nil), b...)
	binary.BigEndian.PutUint32(bad[48:], 1)
	f.Add(bad, true, false)
	f.Add([]byte{0x41, 0x80, 0, 0, 0xff}, false, false)
	f.Fuzz(func(t *testing.T, data []byte, hd, dd bool) {
		a, b := net.Pipe()
		defer a.Close()
		c := tcp.NewConn(b, tcp.Config{MaxTaskData: 1 << 20, WriteTimeout: time.Second})
		defer c.Close()
		if err := c.SetParams(iscsi.Params{HeaderDigest: hd, DataDigest: dd, TargetMaxRecvDSL: 8192, InitiatorMaxRecvDSL: 8192,
			MaxBurstLength: 4096, FirstBurstLength: 2048, MaxOutstandingR2T: 2}, seqs{}); err != nil {
			t.Fatal(err)
		}
		go func() {
			// Drain what the transport sends (Rejects, R2Ts).
			buf := make([]byte, 4096)
			for {
				if _, err := a.Read(buf); err != nil {
					return
				}
			}
		}()
		go func() {
			_ = a.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = a.Write(data)
			_ = a.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var in iscsi.Inbound
		for i := 0; i < len(data)/pdu.BHSLen+2; i++ {
			if err := c.Recv(ctx, &in); err != nil {
				return
			}
			if in.Kind == iscsi.InPDU && in.Task != nil {
				task := &iscsi.Task{ITT: pdu.BHS(in.BHS[:]).InitiatorTaskTag(), Buf: in.Task.Buffer(), Data: in.Task}
				_, err := c.GetData(task, len(task.Buf)) // fails once the peer is gone
				c.Release(task)
				if err != nil {
					return
				}
			}
		}
	})
}
