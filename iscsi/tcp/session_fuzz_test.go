package tcp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

const fuzzIQN = "iqn.2026-12.dev.goiser:fuzz-session"

// fuzzServer is one real server (core, TCP transport, 1 MiB memory LUN)
// shared by every input of FuzzSession: a fresh one per input would make
// each run cost a listener and a LUN.
var fuzzServer struct {
	once sync.Once
	addr string
	err  error
}

func fuzzTarget(t *testing.T) string {
	fuzzServer.once.Do(func() {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		mem, err := backend.NewMemory(1 << 20)
		if err != nil {
			fuzzServer.err = err
			return
		}
		luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: mem}}, Logger: log})
		if err != nil {
			fuzzServer.err = err
			return
		}
		srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: fuzzIQN, LUNs: luns}}, Logger: log}
		tr, err := tcp.Listen("127.0.0.1:0", tcp.Config{Logger: log})
		if err != nil {
			fuzzServer.err = err
			return
		}
		go func() { _ = srv.Serve(tr) }() // lives as long as the test binary
		fuzzServer.addr = tr.Addr().String()
	})
	if fuzzServer.err != nil {
		t.Fatal(fuzzServer.err)
	}
	return fuzzServer.addr
}

// loginPDU is a one-step login to the full feature phase, no digests.
func loginPDU(t *testing.T) []byte {
	keys := "InitiatorName=iqn.2026-12.dev.goiser:fuzzer\x00TargetName=" + fuzzIQN +
		"\x00SessionType=Normal\x00HeaderDigest=None\x00DataDigest=None\x00" +
		"MaxRecvDataSegmentLength=65536\x00ImmediateData=Yes\x00InitialR2T=No\x00FirstBurstLength=65536\x00MaxBurstLength=262144\x00"
	req := &pdu.LoginRequest{Transit: true, CSG: pdu.StageOperational, NSG: pdu.StageFullFeature,
		ISID: pdu.ISID{0x80, 0, 0, 0, 0x12, 0x34}, ITT: 0x100, CmdSN: 1, Data: []byte(keys)}
	b, err := pdu.AppendFrame(nil, req, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cdbPDU is a SCSI Command with CmdSN n for the seeds.
func cdbPDU(n uint32, cdb []byte, write bool, edtl uint32, data []byte) []byte {
	c := pdu.SCSICommand{Final: true, Read: !write && edtl > 0, Write: write, Attr: pdu.AttrSimple, ITT: n,
		ExpectedDataTransferLength: edtl, CmdSN: n, ExpStatSN: 1, Data: data}
	copy(c.CDB[:], cdb)
	b, _ := pdu.AppendFrame(nil, &c, false, false)
	return b
}

// FuzzSession drives a whole session against the real core: a login to
// the full feature phase, then the fuzzer's bytes as the PDU stream (SCSI
// commands, Data-Out, NOP-Out, task management, text, logout, or
// garbage). Whatever it sends, the target must not crash or hang: the
// connection ends within a bound once the fuzzer hangs up, and a fresh
// session then logs in and runs TEST UNIT READY and a READ.
func FuzzSession(f *testing.F) {
	read10 := []byte{0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0}
	write10 := []byte{0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0}
	f.Add(cdbPDU(1, read10, false, 512, nil))
	f.Add(append(cdbPDU(1, write10, true, 512, make([]byte, 512)), cdbPDU(2, read10, false, 512, nil)...))
	// A WRITE whose data comes in a Data-Out.
	dout := pdu.DataOut{Final: true, ITT: 1, TTT: pdu.ReservedTag, Data: make([]byte, 512)}
	d, _ := pdu.AppendFrame(nil, &dout, false, false)
	f.Add(append(cdbPDU(1, write10, true, 512, nil), d...))
	nop := pdu.NOPOut{Immediate: true, ITT: 9, TTT: pdu.ReservedTag, CmdSN: 1, Data: []byte("ping")}
	n, _ := pdu.AppendFrame(nil, &nop, false, false)
	f.Add(n)
	tmf := pdu.TaskMgmtRequest{Immediate: true, Function: pdu.TMFAbortTask, ITT: 7, ReferencedTaskTag: 1, CmdSN: 2}
	m, _ := pdu.AppendFrame(nil, &tmf, false, false)
	f.Add(append(cdbPDU(1, read10, false, 512, nil), m...))
	lo := pdu.LogoutRequest{Immediate: true, ITT: 3, CmdSN: 1}
	l, _ := pdu.AppendFrame(nil, &lo, false, false)
	f.Add(l)
	// A data segment length past what was negotiated.
	big := cdbPDU(1, write10, true, 512, make([]byte, 512))
	binary.BigEndian.PutUint32(big[4:], 0x00ffffff)
	f.Add(big)
	f.Add([]byte{0x01, 0x80, 0, 0, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, stream []byte) {
		addr := fuzzTarget(t)
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write(loginPDU(t)); err != nil {
			t.Fatal(err)
		}
		var bhs [pdu.BHSLen]byte
		if _, err := io.ReadFull(c, bhs[:]); err != nil {
			t.Fatalf("login response: %v", err)
		}
		if bhs[0]&0x3f != byte(pdu.OpLoginResp) || bhs[36] != 0 {
			t.Fatalf("login refused: opcode %#x status %#x/%#x", bhs[0], bhs[36], bhs[37])
		}
		// Drain whatever the target answers while the stream goes in.
		drained := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, c)
			drained <- err
		}()
		if _, err := c.Write(stream); err != nil && !errors.Is(err, net.ErrClosed) {
			// The target may already have ended the connection on a
			// malformed PDU; that is its right.
			t.Logf("write: %v", err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		select {
		case err := <-drained:
			if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				t.Fatalf("connection did not end cleanly: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the target kept the connection open 15 s after the initiator hung up")
		}
		// The target still serves a fresh session.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		s, err := initiator.Dial(ctx, addr, initiator.Config{InitiatorName: "iqn.2026-12.dev.goiser:check", TargetName: fuzzIQN})
		if err != nil {
			t.Fatalf("a fresh login after the fuzzed session: %v", err)
		}
		defer s.Close()
		if err := s.TestUnitReady(ctx, 0); err != nil && !isUnitAttention(err) {
			t.Fatalf("TEST UNIT READY after the fuzzed session: %v", err)
		}
		buf := make([]byte, 4096)
		if err := s.Read16(ctx, 0, 0, 512, buf); err != nil && !isUnitAttention(err) {
			t.Fatalf("READ after the fuzzed session: %v", err)
		}
		_ = s.Logout(ctx)
	})
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// isUnitAttention: a fuzzed command may leave a pending unit attention
// (e.g. a reset) that the next session's first command reports.
func isUnitAttention(err error) bool {
	var se *initiator.SCSIError
	return errors.As(err, &se)
}
