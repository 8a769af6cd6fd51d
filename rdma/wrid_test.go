package rdma

import "testing"

func TestWRIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		op   uint8
		slot uint64
	}{{1, 0}, {1, 1}, {7, 12345}, {255, MaxWRIDSlot}, {3, 1 << 40}} {
		id := EncodeWRID(tc.op, tc.slot)
		op, slot := DecodeWRID(id)
		if op != tc.op || slot != tc.slot {
			t.Errorf("EncodeWRID(%d, %d) = %#x decodes to (%d, %d)", tc.op, tc.slot, id, op, slot)
		}
	}
}

func TestWRIDZeroIsInvalid(t *testing.T) {
	if op, _ := DecodeWRID(0); op != 0 {
		t.Fatalf("DecodeWRID(0) op = %d, want 0 (invalid)", op)
	}
	if op, slot := DecodeWRID(42); op != 0 || slot != 42 {
		t.Fatalf("an id made without EncodeWRID decodes to op %d slot %d", op, slot)
	}
	for _, tc := range []struct {
		name string
		op   uint8
		slot uint64
	}{{"op zero", 0, 1}, {"slot too big", 1, MaxWRIDSlot + 1}} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("EncodeWRID(%d, %d) did not panic", tc.op, tc.slot)
				}
			}()
			EncodeWRID(tc.op, tc.slot)
		})
	}
}
