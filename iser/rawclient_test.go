package iser_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iser"
	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
)

// rawClient is a minimal iSER initiator for tests, written against the
// wire rules (RFC 7145) with the rdma API directly: it sends PDUs with
// the iSER header in SENDs, exposes a registered data area whose STags it
// puts in SCSI Commands, and reads responses from its receive ring. Tests
// use it to check the target byte by byte and to send what a correct
// initiator never would.
type rawClient struct {
	t   testing.TB
	qp  *rdma.QueuePair
	cq  *rdma.CompletionQueue
	pd  *rdma.ProtectionDomain
	buf *rdma.Buffer
	mr  *rdma.MemoryRegion // the receive and send areas
	dmr *rdma.MemoryRegion // the data area (the one STag commands advertise)
	dec pdu.Decoder
	// lastInv is the rkey the last received SEND invalidated (0: none).
	lastInv uint32
	posted  int // receives posted and not yet polled
	wcs     []rdma.Completion
	recv    []rdma.Completion // receive completions not yet consumed

	itt       uint32
	cmdSN     uint32
	expStatSN uint32
	maxCmdSN  uint32
	keys      map[string]string
	tsih      uint16
	isid      pdu.ISID
	private   []byte // the target's CM private data
}

// Layout of the client's registered buffer.
const (
	rcRecvSlots = 16
	rcRecvLen   = iser.LoginRecvLen
	rcSendOff   = rcRecvSlots * rcRecvLen
	rcSendLen   = iser.HeadersLen + 65536
	rcDataOff   = 1 << 20 // the data area starts at 1 MiB
	rcDataLen   = 16 << 20
)

// dialRaw connects to an iSER target at addr over provider p.
func dialRaw(t testing.TB, p driver.Provider, addr string, sendInvOK bool) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := rdma.Dial(ctx, p, addr, rdma.DialConfig{})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	n := isids.Add(1)
	c := &rawClient{t: t, itt: 1, cmdSN: 1, isid: pdu.ISID{0x80, 0, 0, 0, byte(n >> 8), byte(n)}, wcs: make([]rdma.Completion, 32)}
	c.pd, err = d.Device().AllocPD()
	must(t, err)
	c.cq, err = d.Device().NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 256})
	must(t, err)
	c.qp, err = d.CreateQP(c.pd, rdma.QueuePairConfig{SendCQ: c.cq, RecvCQ: c.cq, MaxSendWR: 64, MaxRecvWR: rcRecvSlots})
	must(t, err)
	c.buf, err = rdma.AllocBuffer(rcDataOff+rcDataLen, rdma.BufferOptions{})
	must(t, err)
	c.mr, err = c.pd.RegisterMemory(c.buf.Bytes()[:rcDataOff], rdma.AccessLocalWrite)
	must(t, err)
	c.dmr, err = c.pd.RegisterMemory(c.buf.Bytes()[rcDataOff:], rdma.AccessLocalWrite|rdma.AccessRemoteRead|rdma.AccessRemoteWrite)
	must(t, err)
	for i := range rcRecvSlots {
		c.postRecv(i)
	}
	var priv [iser.CMHeaderLen]byte
	hdr := iser.ConnectPrivateData(sendInvOK)
	b, _ := hdr.AppendBinary(priv[:0])
	c.private, err = d.Connect(ctx, rdma.ConnParam{ResponderResources: 4, InitiatorDepth: 1, RetryCount: 7, RNRRetryCount: 7}, b)
	if err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	t.Cleanup(c.close)
	return c
}

// isids numbers the clients so that each has its own session.
var isids atomic.Uint32

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// close disconnects, reaps every work request and frees everything.
func (c *rawClient) close() {
	if c.qp == nil {
		return
	}
	_ = c.qp.Disconnect()
	// Reap the flushed receives (sends were all reaped synchronously).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for c.posted > 0 {
		if _, err := c.poll(ctx); err != nil {
			break
		}
	}
	_ = c.qp.Close()
	_ = c.mr.Close()
	_ = c.dmr.Close()
	_ = c.buf.Close()
	_ = c.cq.Close()
	_ = c.pd.Close()
	c.qp = nil
}

func (c *rawClient) postRecv(i int) {
	c.t.Helper()
	_, err := c.qp.PostRecv([]rdma.RecvWR{{ID: rdma.EncodeWRID(1, uint64(i)), SGL: []rdma.SGE{c.mr.SGE(i*rcRecvLen, rcRecvLen)}}})
	must(c.t, err)
	c.posted++
}

// poll waits for the next completion, keeping receive completions.
func (c *rawClient) poll(ctx context.Context) (rdma.Completion, error) {
	n, err := c.cq.WaitPoll(ctx, c.wcs[:1])
	if err != nil || n == 0 {
		return rdma.Completion{}, fmt.Errorf("poll: %w", err)
	}
	if op, _ := rdma.DecodeWRID(c.wcs[0].ID); op == 1 {
		c.posted--
	}
	return c.wcs[0], nil
}

// sendRaw sends b (iSER header included) in one SEND and waits for its
// completion.
func (c *rawClient) sendRaw(b []byte) error {
	c.t.Helper()
	copy(c.buf.Bytes()[rcSendOff:], b)
	_, err := c.qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(2, 0), Op: rdma.OpSend, Flags: rdma.FlagSignaled,
		SGL: []rdma.SGE{c.mr.SGE(rcSendOff, len(b))}}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		wc, err := c.poll(ctx)
		if err != nil {
			return err
		}
		if op, _ := rdma.DecodeWRID(wc.ID); op == 1 {
			c.recv = append(c.recv, wc)
			continue
		}
		if wc.Status != rdma.WCSuccess {
			return fmt.Errorf("send: %v", wc.Err())
		}
		return nil
	}
}

// send sends a PDU with iSER header h.
func (c *rawClient) send(h iser.Header, p pdu.PDU) {
	c.t.Helper()
	b, err := h.AppendBinary(nil)
	must(c.t, err)
	b, err = p.AppendBinary(b)
	must(c.t, err)
	b = append(b, p.DataSegment()...)
	if err := c.sendRaw(b); err != nil {
		c.t.Fatalf("send %v: %v", p.Opcode(), err)
	}
}

// tryRecv waits up to d for the next PDU.
func (c *rawClient) tryRecv(d time.Duration) (pdu.PDU, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for len(c.recv) == 0 {
		wc, err := c.poll(ctx)
		if err != nil {
			return nil, err
		}
		if op, _ := rdma.DecodeWRID(wc.ID); op != 1 {
			continue
		}
		c.recv = append(c.recv, wc)
	}
	wc := c.recv[0]
	c.recv = c.recv[1:]
	if wc.Status != rdma.WCSuccess {
		return nil, fmt.Errorf("receive: %w", wc.Err())
	}
	c.lastInv = 0
	if wc.Flags&rdma.WCWithInv != 0 {
		c.lastInv = wc.InvalidatedRKey
	}
	_, slot := rdma.DecodeWRID(wc.ID)
	raw := c.buf.Bytes()[int(slot)*rcRecvLen : int(slot)*rcRecvLen+int(wc.ByteLen)]
	f, err := iser.ParseSend(raw)
	if err != nil {
		return nil, err
	}
	f.Data = append([]byte(nil), f.Data...)
	p, err := c.dec.DecodeFrame(&f.Frame)
	c.postRecv(int(slot))
	if err != nil {
		return nil, err
	}
	c.track(p)
	return p, nil
}

func (c *rawClient) recvPDU() pdu.PDU {
	c.t.Helper()
	p, err := c.tryRecv(10 * time.Second)
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	return p
}

func (c *rawClient) track(p pdu.PDU) {
	switch p := p.(type) {
	case *pdu.SCSIResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.LoginResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.TextResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.NOPIn:
		if p.ITT != pdu.ReservedTag {
			c.expStatSN = p.StatSN + 1
		}
		c.maxCmdSN = p.MaxCmdSN
	case *pdu.LogoutResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.TaskMgmtResponse:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	case *pdu.Reject:
		c.expStatSN, c.maxCmdSN = p.StatSN+1, p.MaxCmdSN
	}
}

func keys(kv ...string) []byte {
	var b []byte
	for _, s := range kv {
		b = append(append(b, s...), 0)
	}
	return b
}

func parseKeys(b []byte) map[string]string {
	m := map[string]string{}
	for _, item := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(item, "="); ok {
			m[k] = v
		}
	}
	return m
}

// login logs in to target (discovery when target is "") with the iSER
// keys, extra operational keys added.
func (c *rawClient) login(target string, extra ...string) {
	c.t.Helper()
	sec := []string{"InitiatorName=iqn.2026-12.dev.goiser:raw", "AuthMethod=None"}
	if target == "" {
		sec = append(sec, "SessionType=Discovery")
	} else {
		sec = append(sec, "SessionType=Normal", "TargetName="+target)
	}
	rsp := c.loginReq(pdu.StageSecurity, pdu.StageOperational, sec...)
	if rsp.Status != pdu.LoginSuccess {
		c.t.Fatalf("security stage: %v", rsp.Status)
	}
	op := append([]string{"RDMAExtensions=Yes", "InitiatorRecvDataSegmentLength=262144", "TargetRecvDataSegmentLength=8192",
		"HeaderDigest=None", "DataDigest=None", "MaxBurstLength=16776192", "FirstBurstLength=65536"}, extra...)
	got := map[string]string{}
	for range 4 {
		rsp = c.loginReq(pdu.StageOperational, pdu.StageFullFeature, op...)
		if rsp.Status != pdu.LoginSuccess {
			c.t.Fatalf("operational stage: %v", rsp.Status)
		}
		for k, v := range parseKeys(rsp.Data) {
			got[k] = v
		}
		if rsp.Transit && rsp.NSG == pdu.StageFullFeature {
			break
		}
		op = nil
	}
	if got["RDMAExtensions"] != "Yes" {
		c.t.Fatalf("login: RDMAExtensions=%q, want Yes (keys %v)", got["RDMAExtensions"], got)
	}
	c.keys = got
	c.tsih = rsp.TSIH
}

func (c *rawClient) loginReq(csg, nsg pdu.Stage, kv ...string) *pdu.LoginResponse {
	c.t.Helper()
	req := pdu.LoginRequest{Transit: true, CSG: csg, NSG: nsg, ISID: c.isid, TSIH: c.tsih, ITT: c.itt, CmdSN: c.cmdSN,
		ExpStatSN: c.expStatSN, Data: keys(kv...)}
	c.send(iser.Header{}, &req)
	p := c.recvPDU()
	rsp, ok := p.(*pdu.LoginResponse)
	if !ok {
		c.t.Fatalf("got %v, want a Login Response", p.Opcode())
	}
	return rsp
}

// result of a SCSI command.
type result struct {
	status   uint8
	sense    []byte
	residual uint32
	under    bool
	over     bool
}

// data returns the client's registered data area.
func (c *rawClient) data() []byte { return c.buf.Bytes()[rcDataOff : rcDataOff+rcDataLen] }

// command sends a SCSI Command moving n bytes of the data area at offset
// off (read or write), with imm bytes of immediate data and unsol bytes
// of unsolicited Data-Out, and waits for its response.
func (c *rawClient) command(cdb []byte, read bool, n, off, imm, unsol int) result {
	c.t.Helper()
	itt := c.start(cdb, read, n, off, imm, unsol)
	return c.wait(itt)
}

// start sends the command (and its unsolicited data) without waiting.
func (c *rawClient) start(cdb []byte, read bool, n, off, imm, unsol int) uint32 {
	c.t.Helper()
	itt := c.itt
	c.itt++
	cmd := pdu.SCSICommand{Final: unsol == 0, Read: read, Write: !read && n > 0, Attr: pdu.AttrSimple, ITT: itt,
		ExpectedDataTransferLength: uint32(n), CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	copy(cmd.CDB[:], cdb)
	c.cmdSN++
	var h iser.Header
	area := c.dmr.Remote(off, n)
	if read && n > 0 {
		h.ReadValid, h.ReadSTag, h.ReadVA = true, area.RKey, area.Addr
	}
	if !read && n > imm+unsol {
		// Linux advances the Write VA past the immediate and
		// unsolicited bytes.
		h.WriteValid, h.WriteSTag, h.WriteVA = true, area.RKey, area.Addr+uint64(imm+unsol)
	}
	if imm > 0 {
		cmd.Data = c.data()[off : off+imm]
	}
	c.send(h, &cmd)
	for sent, sn := 0, uint32(0); sent < unsol; sn++ {
		l := min(unsol-sent, 8192)
		d := pdu.DataOut{ITT: itt, TTT: pdu.ReservedTag, ExpStatSN: c.expStatSN, DataSN: sn, BufferOffset: uint32(imm + sent),
			Data: c.data()[off+imm+sent : off+imm+sent+l], Final: sent+l == unsol}
		c.send(iser.Header{}, &d)
		sent += l
	}
	return itt
}

// wait waits for the SCSI Response of itt.
func (c *rawClient) wait(itt uint32) result {
	c.t.Helper()
	for {
		p := c.recvPDU()
		switch p := p.(type) {
		case *pdu.SCSIResponse:
			if p.ITT != itt {
				c.t.Fatalf("response for ITT %#x, want %#x", p.ITT, itt)
			}
			r := result{status: p.Status, residual: p.ResidualCount, under: p.ResidualUnderflow, over: p.ResidualOverflow}
			if len(p.Data) > 0 {
				s, err := pdu.SenseData(p.Data)
				must(c.t, err)
				r.sense = append([]byte(nil), s...)
			}
			return r
		case *pdu.NOPIn:
			if p.TTT != pdu.ReservedTag {
				c.send(iser.Header{}, &pdu.NOPOut{Immediate: true, ITT: pdu.ReservedTag, TTT: p.TTT, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN})
			}
		default:
			c.t.Fatalf("unexpected %v while waiting for ITT %#x", p.Opcode(), itt)
		}
	}
}

// logout logs out and waits for the response.
func (c *rawClient) logout() {
	c.t.Helper()
	itt := c.itt
	c.itt++
	c.send(iser.Header{}, &pdu.LogoutRequest{Immediate: true, Reason: pdu.LogoutCloseSession, ITT: itt, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN})
	for {
		if l, ok := c.recvPDU().(*pdu.LogoutResponse); ok {
			if l.Response != pdu.LogoutSuccess {
				c.t.Fatalf("logout: %v", l.Response)
			}
			return
		}
	}
}

// expectClosed waits until the target ends the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, err := c.tryRecv(time.Until(deadline))
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		return
	}
	select {
	case <-c.qp.Disconnected():
		return
	default:
	}
	c.t.Fatal("the target did not end the connection")
}

func read10(lba uint32, blocks uint16) []byte {
	return []byte{0x28, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(blocks >> 8), byte(blocks), 0}
}

func write10(lba uint32, blocks uint16) []byte {
	return []byte{0x2a, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(blocks >> 8), byte(blocks), 0}
}
