package iser

import "testing"

func BenchmarkHeaderAppend(b *testing.B) {
	h := Header{ReadValid: true, ReadSTag: 0x1234, ReadVA: 0xffff888100000000}
	buf := make([]byte, 0, HeadersLen)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = h.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeaderUnmarshal(b *testing.B) {
	wire := linuxHeaders[3].wire
	var h Header
	b.ReportAllocs()
	for b.Loop() {
		if err := h.UnmarshalBinary(wire); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSend(b *testing.B) {
	wire := send(b, Header{WriteValid: true, WriteSTag: 1, WriteVA: 0x2000}, writeCmd(make([]byte, 4096)), 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		f, err := ParseSend(wire)
		if err != nil || len(f.Data) != 4096 {
			b.Fatal(err)
		}
	}
}

// TestZeroAllocs keeps the benchmarks' promise in the ordinary test run.
func TestZeroAllocs(t *testing.T) {
	wire := send(t, Header{WriteValid: true, WriteSTag: 1, WriteVA: 0x2000}, writeCmd(make([]byte, 4096)), 0)
	buf := make([]byte, 0, HeaderLen)
	var h Header
	if n := testing.AllocsPerRun(100, func() {
		f, err := ParseSend(wire)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.UnmarshalBinary(wire[:HeaderLen]); err != nil {
			t.Fatal(err)
		}
		if buf, err = f.Header.AppendBinary(buf[:0]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}
