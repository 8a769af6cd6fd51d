package rdma

import "testing"

func TestQPEndpointBinary(t *testing.T) {
	e := QPEndpoint{QPN: 0x123456, PSN: 0xabcdef, LID: 7, GID: GID{0xfe, 0x80, 15: 1}}
	b, err := e.AppendBinary(nil)
	if err != nil || len(b) != QPEndpointSize {
		t.Fatalf("AppendBinary: %d bytes, %v", len(b), err)
	}
	var got QPEndpoint
	if err := got.UnmarshalBinary(b); err != nil || got != e {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if err := got.UnmarshalBinary(b[:25]); err == nil {
		t.Fatal("short endpoint decoded")
	}
	b[0] = 1 // QPN beyond 24 bits
	if err := got.UnmarshalBinary(b); err == nil {
		t.Fatal("32-bit QPN decoded")
	}
}
