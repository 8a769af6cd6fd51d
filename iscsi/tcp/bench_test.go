package tcp_test

import (
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
)

// benchIO runs one command per iteration over a loopback connection, end to
// end (client encode, TCP, server reader, owner, worker, scsi.Target,
// memory backend, Data-In or R2T/Data-Out, response). The client side
// allocates nothing either, so allocs/op is the server's.
func benchIO(b *testing.B, write bool, size int, keys ...string) {
	ts := startServer(b, nil)
	c := dial(b, ts.addr)
	c.login(keys...)
	data := pattern(size, 1)
	var cmd pdu.SCSICommand
	var dout pdu.DataOut
	blocks := uint16(size / 512)
	if write {
		copy(cmd.CDB[:], write10(0, blocks))
		cmd.Write = true
		if c.keys["ImmediateData"] == "Yes" {
			cmd.Data = data
		}
	} else {
		copy(cmd.CDB[:], read10(0, blocks))
		cmd.Read = true
	}
	cmd.Final = true
	cmd.Attr = pdu.AttrSimple
	cmd.ExpectedDataTransferLength = uint32(size)
	if err := c.nc.SetDeadline(time.Now().Add(5 * time.Minute)); err != nil {
		b.Fatal(err)
	}
	var f pdu.Frame
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd.ITT = c.itt
		c.itt++
		cmd.CmdSN = c.cmdSN
		c.cmdSN++
		cmd.ExpStatSN = c.expStatSN
		if err := c.w.WritePDU(&cmd); err != nil {
			b.Fatal(err)
		}
		for done := false; !done; {
			if err := c.r.ReadFrame(&f, c.buf); err != nil {
				b.Fatal(err)
			}
			p, err := c.dec.DecodeFrame(&f)
			if err != nil {
				b.Fatal(err)
			}
			switch p := p.(type) {
			case *pdu.DataIn:
				if p.HasStatus {
					c.expStatSN = p.StatSN + 1
					done = true
				}
			case *pdu.SCSIResponse:
				if p.Status != 0 {
					b.Fatalf("status %#x", p.Status)
				}
				c.expStatSN = p.StatSN + 1
				done = true
			case *pdu.R2T:
				dout = pdu.DataOut{Final: true, ITT: p.ITT, TTT: p.TTT, ExpStatSN: c.expStatSN, BufferOffset: p.BufferOffset,
					Data: data[p.BufferOffset : p.BufferOffset+p.DesiredDataTransferLength]}
				if err := c.w.WritePDU(&dout); err != nil {
					b.Fatal(err)
				}
			default:
				b.Fatalf("unexpected %v", p.Opcode())
			}
		}
	}
}

// BenchmarkTCPRead4K is a 4 KiB READ(10) at queue depth 1.
func BenchmarkTCPRead4K(b *testing.B) { benchIO(b, false, 4096) }

// BenchmarkTCPWrite4K is a 4 KiB WRITE(10) with immediate data.
func BenchmarkTCPWrite4K(b *testing.B) { benchIO(b, true, 4096, "ImmediateData=Yes") }

// BenchmarkTCPWrite4KR2T is a 4 KiB WRITE(10) solicited by an R2T.
func BenchmarkTCPWrite4KR2T(b *testing.B) {
	benchIO(b, true, 4096, "ImmediateData=No", "InitialR2T=Yes")
}

// BenchmarkTCPRead128K is a 128 KiB READ(10) at queue depth 1.
func BenchmarkTCPRead128K(b *testing.B) {
	benchIO(b, false, 128<<10, "MaxRecvDataSegmentLength=262144")
}

// BenchmarkTCPRead4KDigests is BenchmarkTCPRead4K with header and data
// digests.
func BenchmarkTCPRead4KDigests(b *testing.B) {
	benchIO(b, false, 4096, "HeaderDigest=CRC32C", "DataDigest=CRC32C")
}

// BenchmarkTCPWrite4KR2TDigests is BenchmarkTCPWrite4KR2T with header and
// data digests.
func BenchmarkTCPWrite4KR2TDigests(b *testing.B) {
	benchIO(b, true, 4096, "ImmediateData=No", "InitialR2T=Yes", "HeaderDigest=CRC32C", "DataDigest=CRC32C")
}
