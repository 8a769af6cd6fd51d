package scsi

import (
	"context"
	"testing"
)

func benchCommand(b *testing.B, cdb []byte, out []byte, inLen int) {
	tg := newTarget(b, nil)
	c := &Command{Nexus: nexA, CDB: cdb, DataOut: out, DataIn: make([]byte, inLen)}
	ctx := context.Background()
	tg.Execute(ctx, c) // first contact of the nexus, and chunk allocation
	if c.Status != StatusGood {
		b.Fatalf("status %v", c.Status)
	}
	b.SetBytes(4096)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tg.Execute(ctx, c)
	}
	if c.Status != StatusGood {
		b.Fatalf("status %v", c.Status)
	}
}

// BenchmarkRead10_4K measures READ(10) of 4 KiB through Target.Execute on
// the memory backend; it must show 0 allocs/op.
func BenchmarkRead10_4K(b *testing.B) {
	benchCommand(b, cdb10(OpRead10, 0, 8, 8), nil, 4096)
}

// BenchmarkWrite10_4K measures WRITE(10) of 4 KiB through Target.Execute on
// the memory backend; it must show 0 allocs/op.
func BenchmarkWrite10_4K(b *testing.B) {
	benchCommand(b, cdb10(OpWrite10, 0, 8, 8), make([]byte, 4096), 0)
}

// TestDatapathAllocs keeps the 0 allocs/op promise in the ordinary tests.
func TestDatapathAllocs(t *testing.T) {
	tg := newTarget(t, nil)
	ctx := context.Background()
	r := &Command{Nexus: nexA, CDB: cdb10(OpRead10, 0, 8, 8), DataIn: make([]byte, 4096)}
	w := &Command{Nexus: nexA, CDB: cdb16(OpWrite16, 0x08, 8, 8), DataOut: make([]byte, 4096)}
	tg.Execute(ctx, w)
	for name, c := range map[string]*Command{"read": r, "write": w} {
		if n := testing.AllocsPerRun(100, func() { tg.Execute(ctx, c) }); n != 0 {
			t.Errorf("%s: %v allocs per command", name, n)
		}
	}
}
