package pdu

import "fmt"

// LUN is the 8-byte SAM logical unit number as carried in BHS bytes 8-15
// (RFC 7143 §11.2.1.6, SAM-5 §4.7), held as a big-endian uint64 so that the
// first wire byte is the most significant byte.
type LUN uint64

// Address methods of the first LUN level (SAM-5 §4.7.2, byte 0 bits 7-6).
const (
	lunPeripheral = 0x00 // peripheral device addressing
	lunFlat       = 0x01 // flat space addressing
)

// MaxFlatLUN is the largest number flat space addressing can carry.
const MaxFlatLUN = 0x3fff

// EncodeLUN returns the single-level SAM encoding of n: peripheral device
// addressing (bus 0) for n < 256, flat space addressing for 256 <= n <= 16383,
// as Linux and most targets do. It panics if n > MaxFlatLUN.
func EncodeLUN(n uint16) LUN {
	switch {
	case n < 256:
		return LUN(uint64(n) << 48)
	case n <= MaxFlatLUN:
		return LUN(uint64(lunFlat<<6|n>>8)<<56 | uint64(n&0xff)<<48)
	}
	panic(fmt.Sprintf("pdu: LUN %d out of range for flat space addressing", n))
}

// Number decodes a single-level peripheral (bus 0) or flat space LUN.
// ok is false for other address methods, a non-zero bus, or non-zero
// lower levels.
func (l LUN) Number() (n uint16, ok bool) {
	if uint64(l)&0xffff_ffff_ffff != 0 {
		return 0, false
	}
	b0, b1 := byte(l>>56), byte(l>>48)
	switch b0 >> 6 {
	case lunPeripheral:
		if b0 != 0 {
			return 0, false // bus identifier must be 0
		}
		return uint16(b1), true
	case lunFlat:
		return uint16(b0&0x3f)<<8 | uint16(b1), true
	}
	return 0, false
}

// Bytes returns the 8-byte wire form.
func (l LUN) Bytes() [8]byte {
	return [8]byte{byte(l >> 56), byte(l >> 48), byte(l >> 40), byte(l >> 32),
		byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l)}
}

// String prints the decoded number when the encoding is a simple one and
// the raw 16 hex digits otherwise.
func (l LUN) String() string {
	if n, ok := l.Number(); ok {
		return fmt.Sprintf("%d", n)
	}
	return fmt.Sprintf("%#016x", uint64(l))
}
