package initiator

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
)

// fakeSession starts a Session on one end of a pipe, as if login had
// negotiated the defaults; the other end plays the target.
func fakeSession(tb testing.TB) (*Session, net.Conn) {
	tb.Helper()
	x, y := net.Pipe()
	c := NewConn(x)
	c.params = Params{
		MaxRecvDataSegmentLength: 8192, TargetMaxRecvDataSegmentLength: 8192,
		FirstBurstLength: 65536, MaxBurstLength: 262144, MaxOutstandingR2T: 1,
		ImmediateData: true, InitialR2T: true, TSIH: 1,
	}
	c.SetMaxRecvDataSegmentLength(8192)
	c.cmdSN, c.expStatSN, c.maxCmdSN = 1, 1, 64
	cfg, err := Config{InitiatorName: "iqn.2026-11.org.goiser:fuzz", TargetName: "t", MaxTasks: 4}.withDefaults(false)
	if err != nil {
		tb.Fatal(err)
	}
	return newSession(c, cfg), y
}

// hdr builds a target PDU header.
func hdr(op pdu.Opcode, flags byte, itt uint32, data int) []byte {
	var h [BHSLen]byte
	h[0] = byte(op)
	h[1] = flags
	pdu.BHS(h[:]).SetDataSegmentLength(uint32(data))
	binary.BigEndian.PutUint32(h[16:20], itt)
	binary.BigEndian.PutUint32(h[20:24], reservedTag)
	binary.BigEndian.PutUint32(h[24:28], 1) // StatSN
	binary.BigEndian.PutUint32(h[28:32], 2) // ExpCmdSN
	binary.BigEndian.PutUint32(h[32:36], 65)
	return h[:]
}

// FuzzSessionReader feeds arbitrary bytes to the session's reader while a
// READ of 4 KiB (ITT 0) is in flight: the session may end, but it must not
// panic, hang or write outside the read buffer.
func FuzzSessionReader(f *testing.F) {
	dataIn := hdr(pdu.OpDataIn, 0x81, 0, 4096) // F and S: status collapsed
	binary.BigEndian.PutUint32(dataIn[20:24], reservedTag)
	f.Add(append(dataIn, make([]byte, 4096)...))
	f.Add(hdr(pdu.OpSCSIResponse, 0x80, 0, 0))
	f.Add(append(hdr(pdu.OpSCSIResponse, 0x80, 0, 20), append([]byte{0, 18, 0x70, 0, 5}, make([]byte, 15)...)...))
	r2t := hdr(pdu.OpR2T, 0x80, 0, 0)
	binary.BigEndian.PutUint32(r2t[44:48], 512)
	f.Add(r2t)
	f.Add(append(hdr(pdu.OpReject, 0x80, reservedTag, 48), hdr(pdu.OpSCSICommand, 0x80, 0, 0)...))
	nop := hdr(pdu.OpNOPIn, 0x80, reservedTag, 4)
	binary.BigEndian.PutUint32(nop[20:24], 7)
	f.Add(append(nop, 1, 2, 3, 4))
	f.Add(hdr(pdu.OpAsync, 0x80, reservedTag, 0))
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, wire []byte) {
		s, target := fakeSession(t)
		defer target.Close()
		// Drain what the session writes (the command, NOP-Out answers).
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := target.Read(buf); err != nil {
					return
				}
			}
		}()
		buf := make([]byte, 4096+16)
		guard := buf[4096:]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var cdb [16]byte
		cdb[0] = 0x88
		cdb[13] = 8
		c, err := s.Start(ctx, 0, cdb[:], nil, buf[:4096])
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		go func() {
			_, _ = target.Write(wire)
			time.Sleep(10 * time.Millisecond)
			target.Close()
		}()
		_, _ = c.Wait(ctx)
		s.Close()
		for _, b := range guard {
			if b != 0 {
				t.Fatalf("session wrote beyond the read buffer")
			}
		}
	})
}
