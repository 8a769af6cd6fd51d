package tcp_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/pdu"
)

// TestReadWriteInquiry logs in and runs INQUIRY, WRITE(10) and READ(10)
// through a real scsi.Target with the memory backend, over every data path
// the negotiation allows.
func TestReadWriteInquiry(t *testing.T) {
	cases := []struct {
		name string
		keys []string
		size int
	}{
		{"immediate", []string{"ImmediateData=Yes", "InitialR2T=Yes"}, 4096},
		{"r2t-only", []string{"ImmediateData=No", "InitialR2T=Yes", "MaxBurstLength=8192"}, 64 << 10},
		{"unsolicited", []string{"ImmediateData=Yes", "InitialR2T=No", "FirstBurstLength=16384", "MaxRecvDataSegmentLength=4096"}, 128 << 10},
		{"unsolicited-no-immediate", []string{"ImmediateData=No", "InitialR2T=No", "FirstBurstLength=8192"}, 40960},
		{"digests", []string{"HeaderDigest=CRC32C", "DataDigest=CRC32C", "MaxRecvDataSegmentLength=8192"}, 96 << 10},
		{"small-burst-datain", []string{"MaxBurstLength=4096", "MaxRecvDataSegmentLength=1024"}, 32 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, nil)
			c := dial(t, ts.addr)
			c.login(tc.keys...)

			res := c.scsiCmd(inquiry(255), true, 255, nil)
			if res.status != 0 || len(res.data) < 36 {
				t.Fatalf("INQUIRY: status %#x, %d bytes", res.status, len(res.data))
			}
			if !strings.HasPrefix(string(res.data[8:16]), "GOISER") {
				t.Errorf("INQUIRY vendor %q", res.data[8:16])
			}
			if len(res.data) < 255 && (!res.underflow || int(res.residual) != 255-len(res.data)) {
				t.Errorf("INQUIRY residual: underflow %v count %d, data %d", res.underflow, res.residual, len(res.data))
			}

			data := pattern(tc.size, 3)
			blocks := uint16(tc.size / 512)
			res = c.scsiCmd(write10(16, blocks), false, tc.size, data)
			if res.status != 0 || res.overflow || res.underflow {
				t.Fatalf("WRITE: status %#x sense %x O %v U %v", res.status, res.sense, res.overflow, res.underflow)
			}
			res = c.scsiCmd(read10(16, blocks), true, tc.size, nil)
			if res.status != 0 || res.overflow || res.underflow {
				t.Fatalf("READ: status %#x sense %x", res.status, res.sense)
			}
			if !bytes.Equal(res.data, data) {
				t.Fatalf("READ returned different data (%d bytes)", len(res.data))
			}
			c.logout()
		})
	}
}

// TestResiduals checks the O/U flags and counts against EDTL
// (RFC 7143 §11.4.5), as libiscsi's residual tests expect.
func TestResiduals(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.login()
	// READ of 2 blocks with EDTL of 1 block: overflow by 512, 512 bytes come.
	res := c.scsiCmd(read10(0, 2), true, 512, nil)
	if res.status != 0 || !res.overflow || res.residual != 512 || len(res.data) != 512 {
		t.Errorf("read overflow: status %#x O %v count %d data %d", res.status, res.overflow, res.residual, len(res.data))
	}
	// READ of 1 block with EDTL of 2 blocks: underflow by 512.
	res = c.scsiCmd(read10(0, 1), true, 1024, nil)
	if res.status != 0 || !res.underflow || res.residual != 512 || len(res.data) != 512 {
		t.Errorf("read underflow: status %#x U %v count %d data %d", res.status, res.underflow, res.residual, len(res.data))
	}
	// WRITE of 1 block with EDTL of 2 blocks: underflow by 512.
	res = c.scsiCmd(write10(0, 1), false, 1024, pattern(1024, 1))
	if !res.underflow || res.residual != 512 {
		t.Errorf("write underflow: status %#x U %v count %d", res.status, res.underflow, res.residual)
	}
	// WRITE of 2 blocks with EDTL of 1 block: overflow by 512.
	res = c.scsiCmd(write10(0, 2), false, 512, pattern(512, 1))
	if !res.overflow || res.residual != 512 {
		t.Errorf("write overflow: status %#x O %v count %d", res.status, res.overflow, res.residual)
	}
}

// TestNOP checks that a NOP-Out ping is answered with its data echoed.
func TestNOP(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.login()
	ping := pattern(1000, 9)
	rsp := c.nop(ping)
	if !bytes.Equal(rsp.Data, ping) || rsp.TTT != pdu.ReservedTag {
		t.Fatalf("NOP-In: %d bytes, TTT %#x", len(rsp.Data), rsp.TTT)
	}
}

// TestDiscovery runs SendTargets in a discovery session and checks that
// SCSI commands are refused there.
func TestDiscovery(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	rsp := c.loginReq(pdu.StageSecurity, pdu.StageFullFeature, true,
		"InitiatorName="+testInitiator, "SessionType=Discovery", "AuthMethod=None")
	if rsp.Status != pdu.LoginSuccess || rsp.NSG != pdu.StageFullFeature {
		t.Fatalf("discovery login: %v", rsp.Status)
	}
	c.send(&pdu.TextRequest{Immediate: true, Final: true, ITT: 77, TTT: pdu.ReservedTag, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN,
		Data: textKeys("SendTargets=All")})
	p := c.recv()
	tr, ok := p.(*pdu.TextResponse)
	if !ok || !tr.Final {
		t.Fatalf("got %v, want a final Text Response", p.Opcode())
	}
	text := string(tr.Data)
	if !strings.Contains(text, "TargetName="+testTarget+"\x00") || !strings.Contains(text, "TargetAddress="+ts.addr+",1\x00") {
		t.Fatalf("SendTargets answer %q", text)
	}
	cmd := pdu.SCSICommand{Final: true, Read: true, ITT: 78, ExpectedDataTransferLength: 96, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	copy(cmd.CDB[:], inquiry(96))
	c.send(&cmd)
	if rj, ok := c.recv().(*pdu.Reject); !ok || rj.Reason != pdu.RejectProtocolError {
		t.Fatalf("SCSI command in a discovery session was not rejected")
	}
	c.logout()
}

// TestLoginFailures checks the Login Response statuses of RFC 7143
// §11.13.5 for a bad target name, an ACL, a bad version and a missing
// InitiatorName.
func TestLoginFailures(t *testing.T) {
	ts := startServer(t, nil, func(_ *iscsi.Server, tg *iscsi.Target) {
		tg.Initiators = []string{"iqn.2026-01.io.goiser:allowed", testInitiator}
	})
	cases := []struct {
		name string
		keys []string
		want pdu.LoginStatus
	}{
		{"unknown target", []string{"InitiatorName=" + testInitiator, "TargetName=iqn.2026-01.io.goiser:nope"}, pdu.LoginNotFound},
		{"acl", []string{"InitiatorName=iqn.2026-01.io.goiser:stranger", "TargetName=" + testTarget}, pdu.LoginAuthorizationFailed},
		{"no initiator name", []string{"TargetName=" + testTarget}, pdu.LoginMissingParameter},
		{"no target name", []string{"InitiatorName=" + testInitiator}, pdu.LoginMissingParameter},
		{"bad session type", []string{"InitiatorName=" + testInitiator, "SessionType=Other"}, pdu.LoginSessionTypeUnsupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			rsp := c.loginReq(pdu.StageSecurity, pdu.StageOperational, true, append(tc.keys, "AuthMethod=None")...)
			if rsp.Status != tc.want {
				t.Fatalf("status %v, want %v", rsp.Status, tc.want)
			}
			c.expectClosed()
		})
	}
	t.Run("version", func(t *testing.T) {
		c := dial(t, ts.addr)
		req := pdu.LoginRequest{Transit: true, CSG: pdu.StageSecurity, NSG: pdu.StageOperational, VersionMax: 2, VersionMin: 1,
			ISID: c.isid, ITT: 1, Data: textKeys("InitiatorName="+testInitiator, "TargetName="+testTarget)}
		c.send(&req)
		rsp, ok := c.recv().(*pdu.LoginResponse)
		if !ok || rsp.Status != pdu.LoginUnsupportedVersion {
			t.Fatalf("got %+v, want unsupported version", rsp)
		}
		c.expectClosed()
	})
	t.Run("allowed", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.login()
		c.logout()
	})
}

// TestSessionReinstatement logs in twice with the same ISID: the first
// connection is closed (RFC 7143 §6.3.5), the second works.
func TestSessionReinstatement(t *testing.T) {
	ts := startServer(t, nil)
	c1 := dial(t, ts.addr)
	c1.login()
	c2 := dial(t, ts.addr)
	c2.login()
	c1.expectClosed()
	if res := c2.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("INQUIRY on the new session: %#x", res.status)
	}
	if c2.tsih == c1.tsih {
		t.Fatalf("reinstated session kept TSIH %d", c1.tsih)
	}
	// A second connection (another CID) to the live session:
	// MaxConnections=1.
	c3 := dial(t, ts.addr)
	c3.isid, c3.tsih, c3.cid = c2.isid, c2.tsih, 1
	rsp := c3.loginReq(pdu.StageSecurity, pdu.StageOperational, true,
		"InitiatorName="+testInitiator, "TargetName="+testTarget, "AuthMethod=None")
	if rsp.Status != pdu.LoginTooManyConnections {
		t.Fatalf("second connection: %v, want too many connections", rsp.Status)
	}
	// The same CID again: connection reinstatement (RFC 7143 §6.3.4). The
	// session and its TSIH carry on over the new connection.
	c5 := dial(t, ts.addr)
	c5.isid, c5.tsih = c2.isid, c2.tsih
	c5.login()
	if c5.tsih != c2.tsih {
		t.Fatalf("reinstated connection got TSIH %d, want %d", c5.tsih, c2.tsih)
	}
	c2.expectClosed()
	if res := c5.scsiCmd(inquiry(36), true, 36, nil); res.status != 0 {
		t.Fatalf("INQUIRY on the reinstated connection: %#x", res.status)
	}
	if n := ts.srv.Sessions(); n != 1 {
		t.Fatalf("%d sessions after reinstatement, want 1", n)
	}
	// A connection to a session that does not exist.
	c4 := dial(t, ts.addr)
	c4.tsih = 999
	rsp = c4.loginReq(pdu.StageSecurity, pdu.StageOperational, true,
		"InitiatorName="+testInitiator, "TargetName="+testTarget, "AuthMethod=None")
	if rsp.Status != pdu.LoginSessionNotExist {
		t.Fatalf("unknown TSIH: %v, want session does not exist", rsp.Status)
	}
	c5.logout()
}

// TestEmptyDataOutWithDigests sends a Data-Out with an empty data segment
// while data digests are on: it has no data digest on the wire (RFC 7143
// §11.1), and the Data-Out PDUs after it must be read in sync.
func TestEmptyDataOutWithDigests(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.login("HeaderDigest=CRC32C", "DataDigest=CRC32C", "ImmediateData=No", "InitialR2T=Yes")
	if c.keys["DataDigest"] != "CRC32C" {
		t.Fatalf("DataDigest=%s", c.keys["DataDigest"])
	}
	const size = 8192
	data := pattern(size, 9)
	itt := c.itt
	c.itt++
	cmd := pdu.SCSICommand{Final: true, Write: true, Attr: pdu.AttrSimple, ITT: itt,
		ExpectedDataTransferLength: size, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	copy(cmd.CDB[:], write10(40, size/512))
	c.cmdSN++
	c.send(&cmd)
	r2t, ok := c.recv().(*pdu.R2T)
	if !ok || r2t.BufferOffset != 0 || r2t.DesiredDataTransferLength != size {
		t.Fatalf("want an R2T for the whole write, got %+v", r2t)
	}
	c.send(&pdu.DataOut{ITT: itt, TTT: r2t.TTT, ExpStatSN: c.expStatSN}) // DataSN 0, no data
	c.send(&pdu.DataOut{Final: true, ITT: itt, TTT: r2t.TTT, ExpStatSN: c.expStatSN, DataSN: 1, Data: data})
	rsp, ok := c.recv().(*pdu.SCSIResponse)
	if !ok || rsp.Status != 0 {
		t.Fatalf("WRITE: %+v", rsp)
	}
	if res := c.scsiCmd(read10(40, size/512), true, size, nil); res.status != 0 || !bytes.Equal(res.data, data) {
		t.Fatalf("READ back: status %#x, %d bytes", res.status, len(res.data))
	}
	c.logout()
}
