package initiator

import (
	"context"
	"encoding/binary"
	"errors"
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
	c.SetWriteTimeout(5 * time.Second)
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
	return newSession(c, c.params, c.seq(), cfg), y
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
	rej := hdr(pdu.OpReject, 0x80, reservedTag, 48)
	binary.BigEndian.PutUint32(rej[20:24], 0)
	rej[2] = byte(pdu.RejectProtocolError)
	f.Add(append(rej, hdr(pdu.OpSCSICommand, 0x80, 0, 0)...))
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

// readCmd reads the next PDU the session sent (draining data).
func readCmd(t *testing.T, target net.Conn) *PDU {
	t.Helper()
	c := NewConn(target)
	var p PDU
	_ = target.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.ReadPDU(&p); err != nil {
		t.Fatalf("target: read: %v", err)
	}
	return &p
}

func TestSessionRejectAndStrayData(t *testing.T) {
	s, target := fakeSession(t)
	defer s.Close()
	defer target.Close() // first: Close then need not wait for a Logout
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		cmd := readCmd(t, target)
		// A Data-In for a task that does not exist is skipped (data and
		// all), then the command is rejected.
		stray := hdr(pdu.OpDataIn, 0x00, 0x4242, 8)
		binary.BigEndian.PutUint32(stray[24:28], 0) // StatSN only with S
		rej := hdr(pdu.OpReject, 0x80, reservedTag, BHSLen)
		rej[2] = byte(pdu.RejectInvalidPDUField)
		binary.BigEndian.PutUint32(rej[20:24], 0)
		wire := append(append(stray, make([]byte, 8)...), append(rej, cmd.BHS[:]...)...)
		_, _ = target.Write(wire)
	}()
	var cdb [6]byte
	c, err := s.Start(ctx, 0, cdb[:], nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Wait(ctx)
	var re *RejectError
	if !errors.As(err, &re) || re.Reason != pdu.RejectInvalidPDUField || re.Opcode != pdu.OpSCSICommand {
		t.Fatalf("wait: %v, want a RejectError for the SCSI Command", err)
	}
	if re.Error() == "" || s.Err() != nil {
		t.Fatalf("session ended after a Reject: %v", s.Err())
	}
}

func TestSessionSense(t *testing.T) {
	s, target := fakeSession(t)
	defer s.Close()
	defer target.Close() // first: Close then need not wait for a Logout
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		cmd := readCmd(t, target)
		sense := []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0x00, 0, 0, 0, 0}
		data := append([]byte{0, byte(len(sense))}, sense...)
		rsp := hdr(pdu.OpSCSIResponse, 0x80, cmd.ITT(), len(data))
		rsp[3] = 0x02 // CHECK CONDITION
		binary.BigEndian.PutUint32(rsp[20:24], 0)
		_, _ = target.Write(append(rsp, append(data, 0, 0)...)) // padded to 4
	}()
	err := s.TestUnitReady(ctx, 0)
	var se *SCSIError
	if !errors.As(err, &se) || se.Key != 0x05 || se.ASC != 0x2400 || len(se.Sense) != 18 || se.Error() == "" {
		t.Fatalf("test unit ready: %v, want ILLEGAL REQUEST / INVALID FIELD IN CDB", err)
	}
}

// TestTaskTransitions drives a task slot through the taskState table.
func TestTaskTransitions(t *testing.T) {
	s, target := fakeSession(t)
	defer s.Close()
	defer target.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	complete := func(tk *task) { tk.mu.Lock(); s.completeLocked(tk); tk.mu.Unlock() }
	type step struct {
		event string
		want  taskState
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"completed-then-released", []step{{"complete", taskDone}, {"release", taskFree}}},
		{"abandoned-then-completed", []step{{"abandon", taskAbandoned}, {"complete", taskFree}}},
		{"send-failed", []step{{"sendFailed", taskFree}}},
		{"completed-before-abandon", []step{{"complete", taskDone}, {"abandon", taskDone}, {"release", taskFree}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			free := len(s.free)
			tk, err := s.acquire(context.Background(), kindSCSI)
			if err != nil || tk.state != taskInFlight {
				t.Fatalf("acquire: %v, state %v", err, tk.state)
			}
			for _, st := range tc.steps {
				switch st.event {
				case "complete":
					complete(tk)
				case "release":
					if tk.state == taskDone && len(tk.done) > 0 {
						<-tk.done
					}
					s.release(tk)
				case "abandon":
					// A completed task is not abandoned: wait returns its
					// completion even with a cancelled context.
					err := s.wait(cancelled, tk)
					if (err == nil) != (st.want == taskDone) {
						t.Fatalf("wait with a cancelled context: %v", err)
					}
				case "sendFailed":
					_ = s.sendFailed(tk, errors.New("write failed"), false)
				}
				tk.mu.Lock()
				got := tk.state
				tk.mu.Unlock()
				if got != st.want {
					t.Fatalf("after %s: state %v, want %v", st.event, got, st.want)
				}
			}
			if len(s.free) != free {
				t.Fatalf("free list has %d slots, want %d back", len(s.free), free)
			}
		})
	}
}
