package rdma

import "fmt"

// Work-request ids carry an operation and a slot index, never a Go pointer
// (a pointer in a uint64 hides it from the garbage collector and cannot be
// checked). The operation lives in the top WRIDOpBits bits and the slot
// below. Operation 0 is reserved as invalid, so a completion whose id was
// never encoded (a zero id, a forgotten EncodeWRID) decodes to operation 0
// and is caught by the poller.
const (
	// WRIDOpBits is the number of high bits holding the operation.
	WRIDOpBits = 8
	// MaxWRIDSlot is the largest slot EncodeWRID accepts.
	MaxWRIDSlot = 1<<(64-WRIDOpBits) - 1
)

// EncodeWRID builds a work-request id from a non-zero operation code and a
// slot index (an index into the caller's preallocated request table). It
// panics when op is 0 or slot exceeds MaxWRIDSlot: both are programming
// errors that must not reach the device.
func EncodeWRID(op uint8, slot uint64) uint64 {
	if op == 0 {
		panic("rdma: EncodeWRID with operation 0 (reserved as invalid)")
	}
	if slot > MaxWRIDSlot {
		panic(fmt.Sprintf("rdma: EncodeWRID slot %d exceeds %d", slot, uint64(MaxWRIDSlot)))
	}
	return uint64(op)<<(64-WRIDOpBits) | slot
}

// DecodeWRID splits a work-request id into its operation and slot. An op
// of 0 means the id was not made by EncodeWRID.
func DecodeWRID(id uint64) (op uint8, slot uint64) {
	return uint8(id >> (64 - WRIDOpBits)), id & MaxWRIDSlot
}
