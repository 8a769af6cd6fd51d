package tcp_test

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/tcp"
)

// TestTwoSessionsWriteRead writes 1..256 blocks on one session and reads
// them back on another, with the values libiscsi negotiates.
func TestTwoSessionsWriteRead(t *testing.T) {
	ts := startServer(t, nil)
	keys := []string{"InitialR2T=No", "ImmediateData=Yes", "MaxRecvDataSegmentLength=262144", "MaxBurstLength=16776192", "FirstBurstLength=262144"}
	a := dial(t, ts.addr)
	a.login(keys...)
	b := dial(t, ts.addr)
	b.isid[5] = 1
	b.login(keys...)
	for path := range 2 {
		w, r := a, b
		if path == 1 {
			w, r = b, a
		}
		buf := bytes.Repeat([]byte{0xa6 ^ byte(path)}, 256*512)
		for i := 1; i <= 256; i++ {
			res := w.scsiCmd(write10(0, uint16(i)), false, i*512, buf[:i*512])
			if res.status != 0 {
				t.Fatalf("WRITE %d blocks: %#x", i, res.status)
			}
			res = r.scsiCmd(read10(0, uint16(i)), true, i*512, nil)
			if res.status != 0 || !bytes.Equal(res.data, buf[:i*512]) {
				t.Fatalf("path %d, %d blocks: read back differs", path, i)
			}
		}
	}
}

// TestPipelined keeps 32 commands in flight (reads and writes to distinct
// blocks, R2Ts interleaved) and checks every response and the data.
func TestPipelined(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.Workers = 8 })
	c := dial(t, ts.addr)
	c.login("ImmediateData=No", "InitialR2T=Yes", "MaxOutstandingR2T=4", "MaxBurstLength=4096")
	const n = 32
	const size = 16384
	data := make([][]byte, n)
	for round := range 2 {
		write := round == 0
		start := c.itt
		for i := range n {
			cmd := pdu.SCSICommand{Final: true, Read: !write, Write: write, ITT: start + uint32(i),
				ExpectedDataTransferLength: size, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
			if write {
				data[i] = pattern(size, byte(i))
				copy(cmd.CDB[:], write10(uint32(i*64), size/512))
			} else {
				copy(cmd.CDB[:], read10(uint32(i*64), size/512))
			}
			c.cmdSN++
			c.send(&cmd)
		}
		c.itt += n
		got := map[uint32][]byte{}
		for done := 0; done < n; {
			switch p := c.recv().(type) {
			case *pdu.R2T:
				i := p.ITT - start
				c.sendData(p.ITT, p.TTT, int(p.BufferOffset), int(p.DesiredDataTransferLength), data[i])
			case *pdu.DataIn:
				got[p.ITT] = append(got[p.ITT], p.Data...)
				if p.HasStatus {
					if p.Status != 0 {
						t.Fatalf("ITT %#x: status %#x", p.ITT, p.Status)
					}
					done++
				}
			case *pdu.SCSIResponse:
				if p.Status != 0 {
					t.Fatalf("ITT %#x: status %#x", p.ITT, p.Status)
				}
				done++
			default:
				t.Fatalf("unexpected %v", p.Opcode())
			}
		}
		if !write {
			for i := range n {
				if !bytes.Equal(got[start+uint32(i)], data[i]) {
					t.Fatalf("read %d returned other data", i)
				}
			}
		}
	}
	c.logout()
}

// TestLoginTimeout checks that a connection that never logs in is closed.
func TestLoginTimeout(t *testing.T) {
	ts := startServer(t, nil, func(s *iscsi.Server, _ *iscsi.Target) { s.LoginTimeout = 100 * time.Millisecond })
	c := dial(t, ts.addr)
	c.expectClosed()
	ts.waitLog(t, "login timeout")
}

// TestTransferTooLarge checks that a command larger than the largest task
// buffer fails cleanly and the session goes on.
func TestTransferTooLarge(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.login()
	res := c.scsiCmd(read10(0, 65535), true, 65535*512, nil)
	if res.status != 2 || len(res.sense) < 14 || res.sense[2]&0x0f != 5 {
		t.Fatalf("oversized READ: status %#x sense %x", res.status, res.sense)
	}
	if res := c.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("INQUIRY afterwards: %#x", res.status)
	}
}

// TestTargetColdReset checks RFC 7143 §11.5.1: after the response to a
// TARGET COLD RESET every session of the target ends; new logins work.
func TestTargetColdReset(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts.addr)
	a.login()
	b := dial(t, ts.addr)
	b.isid[5] = 1
	b.login()
	a.send(&pdu.TaskMgmtRequest{Immediate: true, Function: pdu.TMFTargetColdReset, ITT: 9, ReferencedTaskTag: pdu.ReservedTag,
		CmdSN: a.cmdSN, ExpStatSN: a.expStatSN})
	if r, ok := a.recv().(*pdu.TaskMgmtResponse); !ok || r.Response != pdu.TMFComplete {
		t.Fatalf("cold reset response: %+v", r)
	}
	a.expectClosed()
	b.expectClosed()
	c := dial(t, ts.addr)
	c.login()
	// TEST UNIT READY answers (GOOD, or a unit attention left by the reset).
	if res := c.scsiCmd([]byte{0, 0, 0, 0, 0, 0}, false, 0, nil); res.status != 0 && res.status != 2 {
		t.Fatalf("TEST UNIT READY after cold reset: status %#x", res.status)
	}
	c.logout()
}

// TestImmediateFlood sends far more immediate commands than the queue
// allows: each gets an answer (GOOD or TASK SET FULL) and nothing hangs.
func TestImmediateFlood(t *testing.T) {
	g := newGateBackend(t)
	ts := startServer(t, g, func(s *iscsi.Server, _ *iscsi.Target) { s.QueueDepth = 4; s.Workers = 2 })
	t.Cleanup(g.open)
	c := dial(t, ts.addr)
	c.login()
	const n = 64
	for i := range n {
		cmd := pdu.SCSICommand{Immediate: true, Final: true, Read: true, ITT: 1000 + uint32(i), ExpectedDataTransferLength: 512,
			CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
		copy(cmd.CDB[:], read10(0, 1))
		c.send(&cmd)
	}
	full := 0
	for range n - 8 { // all but the queued ones are refused at once
		r, ok := c.recv().(*pdu.SCSIResponse)
		if !ok || r.Status != 0x28 {
			t.Fatalf("expected TASK SET FULL, got %+v", r)
		}
		full++
	}
	g.open()
	for range 8 {
		if d, ok := c.recv().(*pdu.DataIn); !ok || !d.HasStatus || d.Status != 0 {
			t.Fatal("queued READ did not complete")
		}
	}
	if res := c.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("INQUIRY afterwards: %#x", res.status)
	}
}

// TestSendTargetsPortals serves one target on two portals, one of them a
// wildcard address: SendTargets lists both, the wildcard one with the
// address the connection arrived on.
func TestSendTargetsPortals(t *testing.T) {
	ts := startServer(t, nil)
	wild, err := tcp.Listen("0.0.0.0:0", tcp.Config{})
	if err != nil {
		t.Skipf("cannot listen on a wildcard address here: %v", err)
	}
	go func() { _ = ts.srv.Serve(wild) }()
	_, port, _ := net.SplitHostPort(wild.Addr().String())
	c := dial(t, "127.0.0.1:"+port)
	rsp := c.loginReq(pdu.StageSecurity, pdu.StageFullFeature, true,
		"InitiatorName="+testInitiator, "SessionType=Discovery", "AuthMethod=None")
	if rsp.Status != pdu.LoginSuccess {
		t.Fatalf("discovery login: %v", rsp.Status)
	}
	c.send(&pdu.TextRequest{Immediate: true, Final: true, ITT: 5, TTT: pdu.ReservedTag, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN,
		Data: textKeys("SendTargets=" + testTarget)})
	tr, ok := c.recv().(*pdu.TextResponse)
	if !ok {
		t.Fatal("no Text Response")
	}
	text := string(tr.Data)
	for _, want := range []string{"TargetAddress=" + ts.addr + ",1\x00", "TargetAddress=127.0.0.1:" + port + ",1\x00"} {
		if !strings.Contains(text, want) {
			t.Errorf("SendTargets answer %q lacks %q", text, want)
		}
	}
	c.logout()
}

// TestSendTargetsLong fetches a SendTargets answer longer than the
// initiator's MaxRecvDataSegmentLength in pieces (C bit and TTT, RFC 7143
// §11.11).
func TestSendTargetsLong(t *testing.T) {
	const extra = 40
	ts := startServer(t, nil, func(s *iscsi.Server, tg *iscsi.Target) {
		for i := range extra {
			s.Targets = append(s.Targets, &iscsi.Target{Name: fmt.Sprintf("%s-with-a-rather-long-name-%03d", testTarget, i), LUNs: tg.LUNs})
		}
	})
	c := dial(t, ts.addr)
	rsp := c.loginReq(pdu.StageSecurity, pdu.StageOperational, true,
		"InitiatorName="+testInitiator, "SessionType=Discovery", "AuthMethod=None")
	if rsp.Status != pdu.LoginSuccess {
		t.Fatalf("discovery login: %v", rsp.Status)
	}
	if rsp = c.loginReq(pdu.StageOperational, pdu.StageFullFeature, true, "MaxRecvDataSegmentLength=512"); rsp.Status != pdu.LoginSuccess {
		t.Fatalf("discovery login: %v", rsp.Status)
	}
	var all []byte
	ttt := uint32(pdu.ReservedTag)
	data := textKeys("SendTargets=All")
	for pieces := 0; ; pieces++ {
		if pieces > 100 {
			t.Fatal("SendTargets answer never ended")
		}
		c.send(&pdu.TextRequest{Immediate: true, Final: true, ITT: 5, TTT: ttt, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN, Data: data})
		tr, ok := c.recv().(*pdu.TextResponse)
		if !ok || len(tr.Data) > 512 {
			t.Fatalf("bad Text Response piece %d", pieces)
		}
		all = append(all, tr.Data...)
		if tr.Final {
			if pieces == 0 {
				t.Fatal("a long answer came in one piece")
			}
			break
		}
		if !tr.Continue || tr.TTT == pdu.ReservedTag {
			t.Fatalf("piece %d: C %v TTT %#x", pieces, tr.Continue, tr.TTT)
		}
		ttt, data = tr.TTT, nil
	}
	if n := strings.Count(string(all), "TargetName="); n != extra+1 {
		t.Fatalf("%d targets in the answer, want %d", n, extra+1)
	}
	c.logout()
}
