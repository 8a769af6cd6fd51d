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
	io := newIOLoop(b, write, size, keys...)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		io.one()
	}
}

// ioLoop runs one command at a time over a logged-in raw client.
type ioLoop struct {
	tb   testing.TB
	c    *client
	cmd  pdu.SCSICommand
	dout pdu.DataOut
	f    pdu.Frame
	data []byte
}

func newIOLoop(tb testing.TB, write bool, size int, keys ...string) *ioLoop {
	ts := startServer(tb, nil)
	c := dial(tb, ts.addr)
	c.login(keys...)
	l := &ioLoop{tb: tb, c: c, data: pattern(size, 1)}
	blocks := uint16(size / 512)
	if write {
		copy(l.cmd.CDB[:], write10(0, blocks))
		l.cmd.Write = true
		if c.keys["ImmediateData"] == "Yes" {
			l.cmd.Data = l.data
		}
	} else {
		copy(l.cmd.CDB[:], read10(0, blocks))
		l.cmd.Read = true
	}
	l.cmd.Final = true
	l.cmd.Attr = pdu.AttrSimple
	l.cmd.ExpectedDataTransferLength = uint32(size)
	if err := c.nc.SetDeadline(time.Now().Add(5 * time.Minute)); err != nil {
		tb.Fatal(err)
	}
	return l
}

// one runs one command to its status.
func (l *ioLoop) one() {
	c, b := l.c, l.tb
	l.cmd.ITT = c.itt
	c.itt++
	l.cmd.CmdSN = c.cmdSN
	c.cmdSN++
	l.cmd.ExpStatSN = c.expStatSN
	if err := c.w.WritePDU(&l.cmd); err != nil {
		b.Fatal(err)
	}
	for done := false; !done; {
		if err := c.r.ReadFrame(&l.f, c.buf); err != nil {
			b.Fatal(err)
		}
		p, err := c.dec.DecodeFrame(&l.f)
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
			l.dout = pdu.DataOut{Final: true, ITT: p.ITT, TTT: p.TTT, ExpStatSN: c.expStatSN, BufferOffset: p.BufferOffset,
				Data: l.data[p.BufferOffset : p.BufferOffset+p.DesiredDataTransferLength]}
			if err := c.w.WritePDU(&l.dout); err != nil {
				b.Fatal(err)
			}
		default:
			b.Fatalf("unexpected %v", p.Opcode())
		}
	}
}

// TestTCPZeroAllocs proves the datapath claim in every make test, not
// only in benchmarks: a 4 KiB READ, a WRITE with immediate data and one
// solicited by R2T allocate nothing end to end (client, TCP, reader, owner,
// worker, SCSI core, memory backend, response), counted over the whole
// process.
func TestTCPZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write bool
		keys  []string
	}{
		{"read-4k", false, nil},
		{"write-4k-immediate", true, []string{"ImmediateData=Yes"}},
		{"write-4k-r2t", true, []string{"ImmediateData=No", "InitialR2T=Yes"}},
		{"read-4k-digests", false, []string{"HeaderDigest=CRC32C", "DataDigest=CRC32C"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newIOLoop(t, tc.write, 4096, tc.keys...)
			for range 50 {
				l.one() // warm the pools, the window and the workers
			}
			if n := testing.AllocsPerRun(200, l.one); n != 0 {
				t.Fatalf("%.2f allocations per command, want 0", n)
			}
		})
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
