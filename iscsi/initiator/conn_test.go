package initiator

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/goiser/goiser/iscsi/pdu"
)

// pipe returns two Conns joined by an in-memory stream.
func pipe(t *testing.T) (a, b *Conn) {
	t.Helper()
	x, y := net.Pipe()
	t.Cleanup(func() { x.Close(); y.Close() })
	return NewConn(x), NewConn(y)
}

// send writes p on c from another goroutine (net.Pipe is synchronous) and
// returns a channel with the result.
func send(c *Conn, f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

func TestCRC32CVector(t *testing.T) {
	// RFC 3720 Appendix B.4: 32 bytes of zeros give 0x8a9136aa, sent as
	// aa 36 91 8a.
	c := NewConn(nil)
	if got := c.digest(0, make([]byte, 32)); got != 0x8a9136aa {
		t.Fatalf("CRC32C(32 zeros) = %#x, want 0x8a9136aa", got)
	}
}

func TestConnRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hd, dd     bool
		ahs, data  int
		wantOnWire int
	}{
		{"plain", false, false, 0, 0, 48},
		{"data-padded", false, false, 0, 5, 48 + 8},
		{"digests", true, true, 0, 5, 48 + 4 + 8 + 4},
		{"ahs-digests", true, true, 8, 4096, 48 + 8 + 4 + 4096 + 4},
		{"header-digest-no-data", true, true, 0, 0, 48 + 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := net.Pipe()
			defer x.Close()
			defer y.Close()
			w := NewConn(x)
			w.SetDigests(tc.hd, tc.dd)
			p := &PDU{AHS: make([]byte, tc.ahs), Data: make([]byte, tc.data)}
			p.BHS[0] = byte(pdu.OpNOPIn)
			p.BHS[1] = 0x80
			p.PutU32(16, 0x1234)
			for i := range p.Data {
				p.Data[i] = byte(i + 1)
			}
			for i := range p.AHS {
				p.AHS[i] = byte(0xa0 + i)
			}
			var wire bytes.Buffer
			done := send(w, func() error { return w.WritePDU(p) })
			buf := make([]byte, 1<<16)
			for wire.Len() < tc.wantOnWire {
				_ = y.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := y.Read(buf)
				if err != nil {
					t.Fatalf("read wire after %d bytes: %v", wire.Len(), err)
				}
				wire.Write(buf[:n])
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			b := wire.Bytes()
			if len(b) != tc.wantOnWire {
				t.Fatalf("%d bytes on the wire, want %d", len(b), tc.wantOnWire)
			}
			if b[4] != byte(tc.ahs/4) || pdu.BHS(b).DataSegmentLength() != uint32(tc.data) {
				t.Fatalf("lengths in BHS: ahs %d data %d", b[4], pdu.BHS(b).DataSegmentLength())
			}
			if tc.hd {
				got := binary.LittleEndian.Uint32(b[48+tc.ahs:])
				if want := pdu.CRC32C(b[:48+tc.ahs]); got != want {
					t.Fatalf("header digest %#x, want %#x (little-endian on the wire)", got, want)
				}
			}
			// Read it back through a Conn.
			x2, y2 := net.Pipe()
			defer x2.Close()
			defer y2.Close()
			r := NewConn(y2)
			r.SetDigests(tc.hd, tc.dd)
			go func() { _, _ = x2.Write(b) }()
			var q PDU
			if err := r.ReadPDU(&q); err != nil {
				t.Fatalf("read back: %v", err)
			}
			if q.BHS != p.BHS || !bytes.Equal(q.AHS, p.AHS) || !bytes.Equal(q.Data, p.Data) {
				t.Fatalf("read back differs")
			}
		})
	}
}

func TestConnErrors(t *testing.T) {
	mk := func() *PDU {
		p := &PDU{Data: []byte("hello, target")}
		p.BHS[0] = byte(pdu.OpNOPIn)
		p.BHS[1] = 0x80
		return p
	}
	t.Run("header-digest", func(t *testing.T) {
		a, b := pipe(t)
		a.SetDigests(true, true)
		b.SetDigests(true, true)
		done := send(a, func() error { return a.WritePDURaw(mk(), CorruptHeaderDigest) })
		var q PDU
		err := b.ReadPDU(&q)
		var de *pdu.DigestError
		if !errors.As(err, &de) || !de.Header {
			t.Fatalf("read: %v, want a header DigestError", err)
		}
		a.Close()
		<-done
	})
	t.Run("data-digest", func(t *testing.T) {
		a, b := pipe(t)
		a.SetDigests(true, true)
		b.SetDigests(true, true)
		p := mk()
		pdu.BHS(p.BHS[:]).SetDataSegmentLength(uint32(len(p.Data)))
		done := send(a, func() error { return a.WritePDURaw(p, CorruptDataDigest) })
		var q PDU
		err := b.ReadPDU(&q)
		var de *pdu.DigestError
		if !errors.As(err, &de) || de.Header {
			t.Fatalf("read: %v, want a data DigestError", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("too-long", func(t *testing.T) {
		a, b := pipe(t)
		b.SetMaxRecvDataSegmentLength(8)
		done := send(a, func() error { return a.WritePDU(mk()) })
		var q PDU
		err := b.ReadPDU(&q)
		var tl *pdu.DataSegmentTooLongError
		if !errors.As(err, &tl) || tl.Max != 8 {
			t.Fatalf("read: %v, want DataSegmentTooLongError", err)
		}
		a.Close()
		<-done
	})
	t.Run("bad-ahs-length", func(t *testing.T) {
		a, _ := pipe(t)
		p := mk()
		p.AHS = make([]byte, 3)
		if err := a.WritePDU(p); err == nil {
			t.Fatalf("WritePDU accepted a 3-byte AHS")
		}
	})
	t.Run("context-keeps-conn", func(t *testing.T) {
		a, b := pipe(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		var q PDU
		if err := b.ReadPDUContext(ctx, &q); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read: %v, want DeadlineExceeded", err)
		}
		// Nothing was consumed: the next PDU still reads.
		done := send(a, func() error { return a.WritePDU(mk()) })
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		if err := b.ReadPDUContext(ctx2, &q); err != nil || string(q.Data) != "hello, target" {
			t.Fatalf("read after timeout: %v %q", err, q.Data)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
