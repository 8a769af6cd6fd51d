package initiator_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// iserHeaderLen is the length of the iSER header (RFC 7145 §9.2) in front
// of every PDU: opcode and W/R flags, Write STag and VA, Read STag and VA.
const iserHeaderLen = 28

// iserLike is a Transport defined outside package initiator that behaves
// like iSER, to prove the seam: every PDU, login included, travels behind
// a 28-byte iSER header, unpadded and without digests; a SCSI Command's
// header carries the STag and VA of the task's buffers; the target moves
// SCSI data itself (rdmaWrite places Data-In in a staging buffer,
// rdmaRead fetches Data-Out), so no Data-In PDU or R2T ever comes; staged
// Data-In is copied out in EndTask. STags are ITTs here; VAs are offsets.
type iserLike struct {
	nc  net.Conn
	r   *bufio.Reader
	wmu sync.Mutex // serializes Send

	mu     sync.Mutex // guards the fields below
	tasks  map[uint32]*staged
	ended  []int // dataInLen of every EndTask
	params initiator.Params
	begun  int
}

// staged is one task registered with BeginTask.
type staged struct {
	io    *initiator.TaskIO
	stage []byte // "registered" memory the target RDMA-WRITEs into
}

func newISERLike(nc net.Conn) *iserLike {
	return &iserLike{nc: nc, r: bufio.NewReader(nc), tasks: map[uint32]*staged{}}
}

func (t *iserLike) Send(bhs *[initiator.BHSLen]byte, ahs, data []byte) error {
	var h [iserHeaderLen]byte
	h[0] = 0x10 // iSCSI control-type PDU
	if pdu.BHS(bhs[:]).Opcode() == pdu.OpSCSICommand {
		itt := binary.BigEndian.Uint32(bhs[16:20])
		t.mu.Lock()
		st := t.tasks[itt]
		t.mu.Unlock()
		if st == nil {
			return fmt.Errorf("SCSI Command ITT %#x without BeginTask", itt)
		}
		if len(st.io.DataOut) > st.io.Unsolicited {
			h[0] |= 0x08 // W: Write STag/VA valid
			binary.BigEndian.PutUint32(h[4:8], itt)
			binary.BigEndian.PutUint64(h[8:16], uint64(st.io.Unsolicited))
		}
		if len(st.io.DataIn) > 0 {
			h[0] |= 0x04 // R: Read STag/VA valid
			binary.BigEndian.PutUint32(h[16:20], itt)
		}
	}
	msg := append(append(append(h[:], bhs[:]...), ahs...), data...)
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_, err := t.nc.Write(msg)
	return err
}

func (t *iserLike) RecvHeader(bhs *[initiator.BHSLen]byte, ahs *[]byte) error {
	var h [iserHeaderLen]byte
	if _, err := io.ReadFull(t.r, h[:]); err != nil {
		return err
	}
	if h[0]&0xf0 != 0x10 {
		return fmt.Errorf("iSER opcode %#x", h[0])
	}
	if _, err := io.ReadFull(t.r, bhs[:]); err != nil {
		return err
	}
	*ahs = (*ahs)[:0]
	if n := int(bhs[4]) * 4; n > 0 {
		*ahs = make([]byte, n)
		_, err := io.ReadFull(t.r, *ahs)
		return err
	}
	return nil
}

func (t *iserLike) RecvData(_ *[initiator.BHSLen]byte, dst []byte) error {
	_, err := io.ReadFull(t.r, dst)
	return err
}

func (t *iserLike) SkipData(_ *[initiator.BHSLen]byte, n int) error {
	_, err := t.r.Discard(n)
	return err
}

func (t *iserLike) Caps() initiator.Caps {
	return initiator.Caps{ISER: true, PlacesDataIn: true, NoR2T: true, MaxRecvDataSegmentLength: 8192}
}

func (t *iserLike) Negotiated(p initiator.Params) error {
	t.mu.Lock()
	t.params = p
	t.mu.Unlock()
	return nil
}

func (t *iserLike) BeginTask(io *initiator.TaskIO) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tasks[io.ITT] = &staged{io: io, stage: make([]byte, len(io.DataIn))}
	t.begun++
	return nil
}

func (t *iserLike) EndTask(itt uint32, dataInLen int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.tasks[itt]
	delete(t.tasks, itt)
	t.ended = append(t.ended, dataInLen)
	if st != nil && dataInLen > 0 {
		copy(st.io.DataIn, st.stage[:dataInLen])
	}
}

func (t *iserLike) Close() error { return t.nc.Close() }

// rdmaWrite is the target's RDMA WRITE into a Read STag.
func (t *iserLike) rdmaWrite(stag uint32, va uint64, b []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.tasks[stag]
	if st == nil || va+uint64(len(b)) > uint64(len(st.stage)) {
		return fmt.Errorf("RDMA WRITE to STag %#x VA %d+%d: remote access error", stag, va, len(b))
	}
	copy(st.stage[va:], b)
	return nil
}

// rdmaRead is the target's RDMA READ from a Write STag.
func (t *iserLike) rdmaRead(stag uint32, va uint64, n int) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.tasks[stag]
	if st == nil || va+uint64(n) > uint64(len(st.io.DataOut)) {
		return nil, fmt.Errorf("RDMA READ from STag %#x VA %d+%d: remote access error", stag, va, n)
	}
	return bytes.Clone(st.io.DataOut[va : va+uint64(n)]), nil
}

// iserTarget plays an iSER target on the other end of the pipe: it logs
// the initiator in (answering like LIO: the OR keys offered Yes are left
// unanswered) and serves READ(16) and WRITE(16) on a small disk with
// RDMA operations on the initiator's transport.
type iserTarget struct {
	t      *testing.T
	nc     net.Conn
	r      *bufio.Reader
	ini    *iserLike
	disk   []byte
	statSN uint32
	// mode changes how commands are answered: "" normally, "short" reads
	// half and reports an underflow, "r2t" answers a write with an R2T,
	// "data-in" answers a read with a Data-In PDU.
	mode string
	// Recorded for the test.
	opKeys  text.Pairs // the initiator's operational offer
	cmdHdrs [][iserHeaderLen]byte
}

func (tg *iserTarget) read() (h [iserHeaderLen]byte, bhs [initiator.BHSLen]byte, data []byte, err error) {
	if _, err = io.ReadFull(tg.r, h[:]); err != nil {
		return
	}
	if _, err = io.ReadFull(tg.r, bhs[:]); err != nil {
		return
	}
	data = make([]byte, pdu.BHS(bhs[:]).DataSegmentLength())
	_, err = io.ReadFull(tg.r, data)
	return
}

func (tg *iserTarget) write(p pdu.PDU) {
	b, err := p.AppendBinary(make([]byte, iserHeaderLen, iserHeaderLen+initiator.BHSLen))
	if err != nil {
		tg.t.Errorf("target: encode %v: %v", p.Opcode(), err)
		return
	}
	b[0] = 0x10
	if _, err := tg.nc.Write(append(b, p.DataSegment()...)); err != nil {
		tg.t.Logf("target: write: %v", err)
	}
}

// serve runs the login and the full feature phase until Logout or error.
func (tg *iserTarget) serve() {
	for stage := 0; stage < 2; stage++ {
		_, bhs, data, err := tg.read()
		if err != nil {
			tg.t.Errorf("target: login read: %v", err)
			return
		}
		var req pdu.LoginRequest
		if err := req.UnmarshalBinary(bhs[:]); err != nil {
			tg.t.Errorf("target: login request: %v", err)
			return
		}
		rsp := pdu.LoginResponse{Transit: true, ISID: req.ISID, ITT: req.ITT, StatSN: tg.statSN,
			ExpCmdSN: req.CmdSN, MaxCmdSN: req.CmdSN + 16}
		tg.statSN++
		var in text.Pairs
		_ = text.Parse(data, &in)
		if stage == 0 {
			rsp.CSG, rsp.NSG = pdu.StageSecurity, pdu.StageOperational
			rsp.Data = keys("AuthMethod=None", "TargetPortalGroupTag=1")
		} else {
			tg.opKeys = in
			rsp.CSG, rsp.NSG, rsp.TSIH = pdu.StageOperational, pdu.StageFullFeature, 5
			var ans []string
			for _, p := range in.All() {
				v, _, _ := strings.Cut(p.Value, ",")
				switch p.Key {
				case "InitialR2T", "DataPDUInOrder", "DataSequenceInOrder":
					continue // LIO: the offer decides, no answer
				case "TargetRecvDataSegmentLength":
					v = "4096"
				}
				ans = append(ans, p.Key+"="+v)
			}
			rsp.Data = keys(ans...)
		}
		tg.write(&rsp)
	}
	for {
		h, bhs, data, err := tg.read()
		if err != nil {
			return
		}
		switch op := pdu.BHS(bhs[:]).Opcode(); op {
		case pdu.OpSCSICommand:
			var cmd pdu.SCSICommand
			if err := cmd.UnmarshalBinary(bhs[:]); err != nil {
				tg.t.Errorf("target: command: %v", err)
				return
			}
			tg.cmdHdrs = append(tg.cmdHdrs, h)
			if !tg.command(&cmd, h, data) {
				return
			}
		case pdu.OpLogoutReq:
			var req pdu.LogoutRequest
			_ = req.UnmarshalBinary(bhs[:])
			tg.write(&pdu.LogoutResponse{ITT: req.ITT, StatSN: tg.next(), ExpCmdSN: req.CmdSN, MaxCmdSN: req.CmdSN + 16})
			return
		case pdu.OpTextReq:
			var req pdu.TextRequest
			_ = req.UnmarshalBinary(bhs[:])
			tg.write(&pdu.TextResponse{Final: true, ITT: req.ITT, TTT: 0xffffffff, StatSN: tg.next(),
				ExpCmdSN: req.CmdSN + 1, MaxCmdSN: req.CmdSN + 16,
				Data: keys("TargetName=iqn.2026-11.org.goiser:t", "TargetAddress=10.0.0.1:3260,1")})
		default:
			tg.t.Errorf("target: unexpected %v", op)
			return
		}
	}
}

func (tg *iserTarget) next() uint32 { tg.statSN++; return tg.statSN - 1 }

// command serves one SCSI command with RDMA operations; false ends the
// connection.
func (tg *iserTarget) command(cmd *pdu.SCSICommand, h [iserHeaderLen]byte, imm []byte) bool {
	edtl := int(cmd.ExpectedDataTransferLength)
	lba := int(binary.BigEndian.Uint64(cmd.CDB[2:10]))
	rsp := pdu.SCSIResponse{ITT: cmd.ITT, ExpCmdSN: cmd.CmdSN + 1, MaxCmdSN: cmd.CmdSN + 16}
	switch cmd.CDB[0] {
	case 0x88: // READ(16): RDMA WRITE, then the response
		if tg.mode == "data-in" {
			tg.write(&pdu.DataIn{Final: true, HasStatus: true, ITT: cmd.ITT, TTT: 0xffffffff, StatSN: tg.next(),
				ExpCmdSN: rsp.ExpCmdSN, MaxCmdSN: rsp.MaxCmdSN, Data: make([]byte, edtl)})
			return true
		}
		n := edtl
		if tg.mode == "short" {
			n /= 2
			rsp.ResidualUnderflow, rsp.ResidualCount = true, uint32(edtl-n)
		}
		if h[0]&0x04 == 0 {
			tg.t.Errorf("target: READ without the R flag in the iSER header")
		}
		stag, va := binary.BigEndian.Uint32(h[16:20]), binary.BigEndian.Uint64(h[20:28])
		if err := tg.ini.rdmaWrite(stag, va, tg.disk[lba*512:lba*512+n]); err != nil {
			tg.t.Errorf("target: %v", err)
			return false
		}
	case 0x8a: // WRITE(16): immediate data, RDMA READ of the rest
		if tg.mode == "r2t" {
			tg.write(&pdu.R2T{ITT: cmd.ITT, TTT: 1, StatSN: tg.statSN, ExpCmdSN: rsp.ExpCmdSN, MaxCmdSN: rsp.MaxCmdSN,
				DesiredDataTransferLength: uint32(edtl)})
			return true
		}
		data := imm
		if rest := edtl - len(imm); rest > 0 {
			if h[0]&0x08 == 0 {
				tg.t.Errorf("target: WRITE with %d solicited bytes without the W flag", rest)
				return false
			}
			stag, va := binary.BigEndian.Uint32(h[4:8]), binary.BigEndian.Uint64(h[8:16])
			b, err := tg.ini.rdmaRead(stag, va, rest)
			if err != nil {
				tg.t.Errorf("target: %v", err)
				return false
			}
			data = append(data, b...)
		}
		copy(tg.disk[lba*512:], data)
	}
	rsp.StatSN = tg.next()
	tg.write(&rsp)
	return true
}

// iserPair connects an iserLike transport to an iserTarget over a pipe.
func iserPair(t *testing.T, mode string) (*iserLike, *iserTarget, <-chan struct{}) {
	x, y := net.Pipe()
	t.Cleanup(func() { x.Close(); y.Close() })
	ini := newISERLike(x)
	tg := &iserTarget{t: t, nc: y, r: bufio.NewReader(y), ini: ini, disk: make([]byte, 1<<20), mode: mode}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer y.Close()
		tg.serve()
	}()
	return ini, tg, done
}

var iserCfg = initiator.Config{InitiatorName: testInitiator, TargetName: "iqn.2026-11.org.goiser:t", LoginTimeout: 5 * time.Second}

// TestISERTransport runs a session over a Transport that places Data-In
// itself and never gets R2Ts, as iSER does: the login offers the RFC 7145
// keys, commands carry their buffers in the iSER header, reads complete
// from the SCSI Response alone (residual included), writes send
// immediate data and let the target fetch the rest.
func TestISERTransport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ini, tg, done := iserPair(t, "")
	s, err := initiator.Login(ctx, ini, iserCfg)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	// RFC 7145 §6.3: RDMAExtensions and the two iSER keys, no
	// MaxRecvDataSegmentLength, no digests.
	for _, kv := range []string{"RDMAExtensions=Yes", "InitiatorRecvDataSegmentLength=8192", "TargetRecvDataSegmentLength=262144"} {
		k, v, _ := strings.Cut(kv, "=")
		if got, ok := tg.opKeys.Get(k); !ok || got != v {
			t.Errorf("offer %s=%q, want %s (offer: %s)", k, got, v, tg.opKeys.String())
		}
	}
	for _, k := range []string{"MaxRecvDataSegmentLength", "HeaderDigest", "DataDigest", "IFMarker", "OFMarker"} {
		if tg.opKeys.Has(k) {
			t.Errorf("iSER offer has %s: %s", k, tg.opKeys.String())
		}
	}
	p := s.Params()
	if !p.RDMAExtensions || p.TargetRecvDataSegmentLength != 4096 || p.TargetMaxRecvDataSegmentLength != 4096 ||
		p.InitiatorRecvDataSegmentLength != 8192 || p.MaxRecvDataSegmentLength != 8192 || p.HeaderDigest || !p.InitialR2T {
		t.Fatalf("params %+v", p)
	}
	ini.mu.Lock()
	if ini.params != p {
		t.Errorf("Negotiated got %+v, want %+v", ini.params, p)
	}
	ini.mu.Unlock()

	// WRITE of 16 KiB: 4 KiB immediate (TargetRecvDataSegmentLength),
	// the rest fetched by RDMA READ from Write VA 4096.
	out := make([]byte, 16384)
	for i := range out {
		out[i] = byte(i * 7)
	}
	if err := s.Write16(ctx, 0, 8, 512, out); err != nil {
		t.Fatalf("write: %v", err)
	}
	h := tg.cmdHdrs[0]
	if h[0] != 0x18 || binary.BigEndian.Uint64(h[8:16]) != 4096 {
		t.Errorf("write iSER header %x, want W set and Write VA 4096", h[:16])
	}
	in := make([]byte, 16384)
	if err := s.Read16(ctx, 0, 8, 512, in); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(in, out) {
		i := 0
		for in[i] == out[i] {
			i++
		}
		t.Fatalf("read back differs from what was written at %d: %d, want %d; ended %v", i, in[i], out[i], ini.ended)
	}
	if h := tg.cmdHdrs[1]; h[0] != 0x14 {
		t.Errorf("read iSER header flags %#x, want R", h[0])
	}

	// A short read: DataInLen is the EDTL less the underflow residual.
	tg.mode = "short"
	var cdb [16]byte
	cdb[0] = 0x88
	binary.BigEndian.PutUint64(cdb[2:10], 8)
	binary.BigEndian.PutUint32(cdb[10:14], 8)
	in2 := make([]byte, 4096)
	r, err := s.Execute(ctx, 0, cdb[:], nil, in2)
	if err != nil || r.Err() != nil || !r.Underflow || r.Residual != 2048 || r.DataInLen != 2048 {
		t.Fatalf("short read: %v %+v", err, r)
	}
	if !bytes.Equal(in2[:2048], out[:2048]) || !bytes.Equal(in2[2048:], make([]byte, 2048)) {
		t.Fatal("short read: wrong bytes copied out of the staging buffer")
	}

	if err := s.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	<-done
	ini.mu.Lock()
	defer ini.mu.Unlock()
	if ini.begun != 3 || len(ini.ended) != 3 || len(ini.tasks) != 0 || ini.ended[1] != 16384 || ini.ended[2] != 2048 {
		t.Fatalf("BeginTask %d times, EndTask %v, %d tasks left", ini.begun, ini.ended, len(ini.tasks))
	}
}

// TestISERTransportProtocolErrors: on a transport that places Data-In and
// never gets R2Ts, a Data-In PDU or an R2T ends the session with an error
// naming it, and the task still ends in the transport.
func TestISERTransportProtocolErrors(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"data-in", "data-in PDU"},
		{"r2t", "R2T for ITT"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ini, _, _ := iserPair(t, tc.mode)
			s, err := initiator.Login(ctx, ini, iserCfg)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			defer s.Close()
			buf := make([]byte, 16384)
			if tc.mode == "r2t" {
				err = s.Write16(ctx, 0, 0, 512, buf)
			} else {
				err = s.Read16(ctx, 0, 0, 512, buf)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("I/O: %v, want an error with %q", err, tc.want)
			}
			<-s.Done()
			ini.mu.Lock()
			defer ini.mu.Unlock()
			if ini.begun != 1 || len(ini.ended) != 1 || len(ini.tasks) != 0 {
				t.Fatalf("BeginTask %d, EndTask %v", ini.begun, ini.ended)
			}
		})
	}
}

// TestISERDiscoverOver runs SendTargets over the iSER-like transport.
func TestISERDiscoverOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ini, tg, done := iserPair(t, "")
	ts, err := initiator.DiscoverOver(ctx, ini, initiator.Config{InitiatorName: testInitiator})
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	<-done
	if len(ts) != 1 || ts[0].Name != "iqn.2026-11.org.goiser:t" || len(ts[0].Addresses) != 1 {
		t.Fatalf("targets %+v", ts)
	}
	if v, _ := tg.opKeys.Get("RDMAExtensions"); v != "Yes" {
		t.Fatalf("discovery offer %s", tg.opKeys.String())
	}
}

// TestLoginRequiresISERAgreement: a target that answers RDMAExtensions=No
// on an iSER connection fails the login, and the transport is closed.
func TestLoginRequiresISERAgreement(t *testing.T) {
	x, y := net.Pipe()
	defer y.Close()
	ini := newISERLike(x)
	go func() {
		r := bufio.NewReader(y)
		tg := &iserTarget{t: t, nc: y, r: r}
		for stage := 0; stage < 2; stage++ {
			_, bhs, data, err := tg.read()
			if err != nil {
				return
			}
			var req pdu.LoginRequest
			_ = req.UnmarshalBinary(bhs[:])
			rsp := pdu.LoginResponse{Transit: true, ISID: req.ISID, ITT: req.ITT, StatSN: uint32(stage),
				ExpCmdSN: req.CmdSN, MaxCmdSN: req.CmdSN + 16, CSG: pdu.StageSecurity, NSG: pdu.StageOperational,
				Data: keys("AuthMethod=None")}
			if stage == 1 {
				var in text.Pairs
				_ = text.Parse(data, &in)
				var ans []string
				for _, p := range in.All() {
					v, _, _ := strings.Cut(p.Value, ",")
					if p.Key == "RDMAExtensions" {
						v = "No"
					}
					ans = append(ans, p.Key+"="+v)
				}
				rsp.CSG, rsp.NSG, rsp.TSIH, rsp.Data = pdu.StageOperational, pdu.StageFullFeature, 5, keys(ans...)
			}
			tg.write(&rsp)
		}
	}()
	_, err := initiator.Login(context.Background(), ini, iserCfg)
	if err == nil || !strings.Contains(err.Error(), "RDMAExtensions=Yes") {
		t.Fatalf("login: %v, want a refusal of RDMAExtensions", err)
	}
	if _, werr := x.Write([]byte{0}); !errors.Is(werr, io.ErrClosedPipe) {
		t.Fatalf("transport still open after a failed login: %v", werr)
	}
}

// keys encodes key=value pairs.
func keys(kv ...string) []byte {
	var b []byte
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		b, _ = text.AppendPair(b, k, v)
	}
	return b
}
