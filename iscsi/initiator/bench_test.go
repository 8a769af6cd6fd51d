package initiator_test

import (
	"context"
	"testing"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/initiator"
)

// The benchmarks measure the initiator's datapath. Against tgt (a separate
// process) allocs/op counts the initiator alone; against our server in
// process it counts both sides.

func benchIO(b *testing.B, addr, target string, lun uint64, write bool, size, qd int) {
	ctx := context.Background()
	s, err := initiator.Dial(ctx, addr, initiator.Config{
		InitiatorName: testInitiator, TargetName: target, MaxTasks: max(qd, 1),
	})
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	defer s.Close()
	_ = s.TestUnitReady(ctx, lun)
	_ = s.TestUnitReady(ctx, lun)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	if qd <= 1 {
		buf := make([]byte, size)
		io := func() error {
			if write {
				return s.Write16(ctx, lun, 0, 512, buf)
			}
			return s.Read16(ctx, lun, 0, 512, buf)
		}
		if err := io(); err != nil { // warm up: grow every buffer once
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if err := io(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(qd)
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, size)
		for pb.Next() {
			var err error
			if write {
				err = s.Write16(ctx, lun, 0, 512, buf)
			} else {
				err = s.Read16(ctx, lun, 0, 512, buf)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkTgt(b *testing.B) {
	g := startTgt(b)
	for _, bc := range []struct {
		name  string
		write bool
		size  int
		qd    int
	}{
		{"Read4K-QD1", false, 4096, 1},
		{"Write4K-QD1", true, 4096, 1},
		{"Read128K-QD1", false, 128 << 10, 1},
		{"Write128K-QD1", true, 128 << 10, 1},
		{"Read4K-QD32", false, 4096, 32},
	} {
		b.Run(bc.name, func(b *testing.B) { benchIO(b, g.addr, g.target, 1, bc.write, bc.size, bc.qd) })
	}
}

func BenchmarkServer(b *testing.B) {
	srv := startServer(b, nil, iscsi.Negotiation{})
	for _, bc := range []struct {
		name  string
		write bool
		size  int
		qd    int
	}{
		{"Read4K-QD1", false, 4096, 1},
		{"Write4K-QD1", true, 4096, 1},
		{"Read128K-QD1", false, 128 << 10, 1},
		{"Write128K-QD1", true, 128 << 10, 1},
		{"Read4K-QD32", false, 4096, 32},
	} {
		b.Run(bc.name, func(b *testing.B) { benchIO(b, srv.addr, testTarget, 0, bc.write, bc.size, bc.qd) })
	}
}
