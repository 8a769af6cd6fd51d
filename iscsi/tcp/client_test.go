package tcp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

const (
	testTarget    = "iqn.2026-01.io.goiser:test"
	testInitiator = "iqn.2026-01.io.goiser:client"
	ioTimeout     = 10 * time.Second
)

// logBuffer collects log lines from the server for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testServer is a Server with one target (LUN 0: a memory backend) on a
// loopback listener.
type testServer struct {
	srv  *iscsi.Server
	addr string
	luns *scsi.Target
	logs *logBuffer
	done chan error
}

type serverOpt func(*iscsi.Server, *iscsi.Target)

func startServer(t testing.TB, be backend.Backend, opts ...serverOpt) *testServer {
	t.Helper()
	if be == nil {
		m, err := backend.NewMemory(16 << 20)
		if err != nil {
			t.Fatal(err)
		}
		be = m
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}})
	if err != nil {
		t.Fatal(err)
	}
	tgt := &iscsi.Target{Name: testTarget, LUNs: luns}
	srv := &iscsi.Server{Targets: []*iscsi.Target{tgt}, Logger: log, NOPInterval: -1}
	for _, o := range opts {
		o(srv, tgt)
	}
	tr, err := tcp.Listen("127.0.0.1:0", tcp.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: tr.Addr().String(), luns: luns, logs: logs, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(tr) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-ts.done:
			if !errors.Is(err, iscsi.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ts
}

// client is a minimal raw-PDU iSCSI initiator for tests.
type client struct {
	t         testing.TB
	nc        net.Conn
	r         *pdu.Reader
	w         *pdu.Writer
	buf       []byte
	dec       pdu.Decoder
	isid      pdu.ISID
	itt       uint32
	cmdSN     uint32
	expStatSN uint32
	maxCmdSN  uint32
	tsih      uint16
	cid       uint16
	keys      map[string]string // negotiated by login
	mrdsl     int               // target's MaxRecvDataSegmentLength
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, buf: make([]byte, pdu.FrameBufferSize(1<<20)), itt: 1, cmdSN: 1, isid: pdu.ISID{0x80, 1, 2, 3, 0, 0}}
	c.r = pdu.NewReader(bufio.NewReader(nc))
	c.r.MaxDataSegmentLength = 1 << 20
	c.w = pdu.NewWriter(nc)
	return c
}

func (c *client) send(p pdu.PDU) {
	c.t.Helper()
	if err := c.nc.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		c.t.Fatal(err)
	}
	if err := c.w.WritePDU(p); err != nil {
		c.t.Fatalf("send %v: %v", p.Opcode(), err)
	}
}

// recv reads the next PDU; it fails the test on error.
func (c *client) recv() pdu.PDU {
	c.t.Helper()
	p, err := c.tryRecv(ioTimeout)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return p
}

func (c *client) tryRecv(d time.Duration) (pdu.PDU, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	var f pdu.Frame
	if err := c.r.ReadFrame(&f, c.buf); err != nil {
		return nil, err
	}
	p, err := c.dec.DecodeFrame(&f)
	if err != nil {
		return nil, err
	}
	c.track(p)
	return p, nil
}

// track follows StatSN and MaxCmdSN.
func (c *client) track(p pdu.PDU) {
	switch p := p.(type) {
	case *pdu.SCSIResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.DataIn:
		if p.HasStatus {
			c.expStatSN = p.StatSN + 1
		}
		c.maxCmdSN = p.MaxCmdSN
	case *pdu.NOPIn:
		if p.ITT != pdu.ReservedTag {
			c.expStatSN = p.StatSN + 1
		}
		c.maxCmdSN = p.MaxCmdSN
	case *pdu.TextResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.TaskMgmtResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.LogoutResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.Reject:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.LoginResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	}
}

// expectClosed waits until the server closes the connection, skipping any
// PDUs (Reject) it sends first.
func (c *client) expectClosed() {
	c.t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for time.Now().Before(deadline) {
		_, err := c.tryRecv(time.Until(deadline))
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
			strings.Contains(err.Error(), "connection reset") {
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		return
	}
	c.t.Fatal("server did not close the connection")
}

func textKeys(kv ...string) []byte {
	var b []byte
	for _, s := range kv {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func parseText(b []byte) map[string]string {
	m := map[string]string{}
	for _, item := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(item, "="); ok {
			m[k] = v
		}
	}
	return m
}

// loginReq sends one Login Request and returns the response.
func (c *client) loginReq(csg, nsg pdu.Stage, transit bool, kv ...string) *pdu.LoginResponse {
	c.t.Helper()
	req := pdu.LoginRequest{Transit: transit, CSG: csg, NSG: nsg, ISID: c.isid, TSIH: c.tsih, CID: c.cid, ITT: c.itt, CmdSN: c.cmdSN,
		ExpStatSN: c.expStatSN, Data: textKeys(kv...)}
	if !transit {
		req.NSG = 0
	}
	c.send(&req)
	p := c.recv()
	rsp, ok := p.(*pdu.LoginResponse)
	if !ok {
		c.t.Fatalf("got %v, want Login Response", p.Opcode())
	}
	return rsp
}

// login runs a login without authentication straight to the full feature
// phase with the given operational keys, and fails the test unless it
// succeeds. Keys the target offers are accepted as offered.
func (c *client) login(kv ...string) {
	c.t.Helper()
	rsp := c.loginReq(pdu.StageSecurity, pdu.StageOperational, true,
		"InitiatorName="+testInitiator, "TargetName="+testTarget, "SessionType=Normal", "AuthMethod=None")
	if rsp.Status != pdu.LoginSuccess || !rsp.Transit {
		c.t.Fatalf("security stage: status %v transit %v", rsp.Status, rsp.Transit)
	}
	got := parseText(rsp.Data)
	keys := kv
	for range 4 {
		rsp = c.loginReq(pdu.StageOperational, pdu.StageFullFeature, true, keys...)
		if rsp.Status != pdu.LoginSuccess {
			c.t.Fatalf("operational stage: status %v", rsp.Status)
		}
		keys = nil
		for k, v := range parseText(rsp.Data) {
			if _, answered := got[k]; !answered && !strings.Contains(string(textKeys(kv...)), k+"=") &&
				k != "MaxRecvDataSegmentLength" && k != "TargetPortalGroupTag" && k != "TargetAlias" {
				keys = append(keys, k+"="+v) // an offer from the target: accept it
			}
			got[k] = v
		}
		if rsp.Transit && rsp.NSG == pdu.StageFullFeature {
			break
		}
	}
	if !rsp.Transit || rsp.NSG != pdu.StageFullFeature {
		c.t.Fatalf("login did not reach the full feature phase")
	}
	c.keys = got
	c.tsih = rsp.TSIH
	c.mrdsl = 8192
	if v, ok := got["MaxRecvDataSegmentLength"]; ok {
		fmt.Sscan(v, &c.mrdsl)
	}
	c.r.HeaderDigest = got["HeaderDigest"] == "CRC32C"
	c.w.HeaderDigest = c.r.HeaderDigest
	c.r.DataDigest = got["DataDigest"] == "CRC32C"
	c.w.DataDigest = c.r.DataDigest
}

// result is the outcome of a SCSI command.
type result struct {
	status    uint8
	sense     []byte
	data      []byte
	overflow  bool
	underflow bool
	residual  uint32
	itt       uint32
}

// scsiCmd runs one SCSI command to completion: immediate data up to the
// negotiated limits, Data-Out for R2Ts, Data-In collection.
func (c *client) scsiCmd(cdb []byte, read bool, edtl int, out []byte) result {
	c.t.Helper()
	itt := c.itt
	c.itt++
	cmd := pdu.SCSICommand{Final: true, Read: read, Write: len(out) > 0, Attr: pdu.AttrSimple, ITT: itt,
		ExpectedDataTransferLength: uint32(edtl), CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	copy(cmd.CDB[:], cdb)
	c.cmdSN++
	imm := 0
	if cmd.Write && c.keys["ImmediateData"] == "Yes" {
		imm = min(len(out), c.mrdsl, c.firstBurst())
		cmd.Data = out[:imm]
	}
	unsol := 0
	if cmd.Write && c.keys["InitialR2T"] == "No" {
		unsol = min(len(out), c.firstBurst()) - imm
		if unsol > 0 {
			cmd.Final = false
		}
	}
	c.send(&cmd)
	if unsol > 0 {
		c.sendData(itt, pdu.ReservedTag, imm, unsol, out)
	}
	res := result{itt: itt}
	var data bytes.Buffer
	for {
		p := c.recv()
		switch p := p.(type) {
		case *pdu.R2T:
			if p.ITT != itt {
				c.t.Fatalf("R2T for ITT %#x, want %#x", p.ITT, itt)
			}
			c.sendData(itt, p.TTT, int(p.BufferOffset), int(p.DesiredDataTransferLength), out)
		case *pdu.DataIn:
			if int(p.BufferOffset) != data.Len() {
				c.t.Fatalf("Data-In offset %d, have %d bytes", p.BufferOffset, data.Len())
			}
			data.Write(p.Data)
			if p.HasStatus {
				res.status, res.overflow, res.underflow, res.residual = p.Status, p.ResidualOverflow, p.ResidualUnderflow, p.ResidualCount
				res.data = data.Bytes()
				return res
			}
		case *pdu.NOPIn:
			if p.TTT == pdu.ReservedTag {
				c.t.Fatalf("unexpected NOP-In response during a SCSI command")
			}
			c.send(&pdu.NOPOut{Immediate: true, ITT: pdu.ReservedTag, TTT: p.TTT, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN})
		case *pdu.SCSIResponse:
			if p.ITT != itt {
				c.t.Fatalf("SCSI Response for ITT %#x, want %#x", p.ITT, itt)
			}
			res.status, res.overflow, res.underflow, res.residual = p.Status, p.ResidualOverflow, p.ResidualUnderflow, p.ResidualCount
			if len(p.Data) > 0 {
				s, err := pdu.SenseData(p.Data)
				if err != nil {
					c.t.Fatal(err)
				}
				res.sense = append([]byte(nil), s...)
			}
			res.data = data.Bytes()
			return res
		default:
			c.t.Fatalf("unexpected %v during a SCSI command", p.Opcode())
		}
	}
}

func (c *client) firstBurst() int {
	n := 65536
	if v, ok := c.keys["FirstBurstLength"]; ok {
		fmt.Sscan(v, &n)
	}
	return n
}

// sendData sends out[off:off+n] as Data-Out PDUs of at most mrdsl bytes.
func (c *client) sendData(itt, ttt uint32, off, n int, out []byte) {
	c.t.Helper()
	var sn uint32
	for done := 0; done < n; {
		l := min(n-done, c.mrdsl)
		d := pdu.DataOut{ITT: itt, TTT: ttt, ExpStatSN: c.expStatSN, DataSN: sn, BufferOffset: uint32(off + done),
			Data: out[off+done : off+done+l], Final: done+l == n}
		c.send(&d)
		sn++
		done += l
	}
}

// nop sends a NOP-Out ping and waits for its NOP-In.
func (c *client) nop(data []byte) *pdu.NOPIn {
	c.t.Helper()
	itt := c.itt
	c.itt++
	c.send(&pdu.NOPOut{Immediate: true, ITT: itt, TTT: pdu.ReservedTag, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN, Data: data})
	for {
		p := c.recv()
		if n, ok := p.(*pdu.NOPIn); ok && n.ITT == itt {
			return n
		}
		if _, ok := p.(*pdu.NOPIn); !ok {
			c.t.Fatalf("got %v, want NOP-In", p.Opcode())
		}
	}
}

func (c *client) logout() {
	c.t.Helper()
	itt := c.itt
	c.itt++
	c.send(&pdu.LogoutRequest{Immediate: true, Reason: pdu.LogoutCloseSession, ITT: itt, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN})
	for {
		p := c.recv()
		if l, ok := p.(*pdu.LogoutResponse); ok {
			if l.Response != pdu.LogoutSuccess || l.ITT != itt {
				c.t.Fatalf("logout response %v for ITT %#x", l.Response, l.ITT)
			}
			return
		}
	}
}

// CDB builders.
func read10(lba uint32, blocks uint16) []byte {
	return []byte{0x28, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(blocks >> 8), byte(blocks), 0}
}

func write10(lba uint32, blocks uint16) []byte {
	return []byte{0x2a, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(blocks >> 8), byte(blocks), 0}
}

func inquiry(alloc uint16) []byte {
	return []byte{0x12, 0, 0, byte(alloc >> 8), byte(alloc), 0}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// dialErr connects once, returning the error.
func dialErr(addr string) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		nc.Close()
	}
	return nc, err
}

// waitLog waits until the server has logged a line containing s: the log
// line of a closed connection may come just after the client sees the
// close.
func (ts *testServer) waitLog(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !strings.Contains(ts.logs.String(), s) {
		if time.Now().After(deadline) {
			t.Errorf("no log line with %q", s)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
