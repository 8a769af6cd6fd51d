package bench

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// The verify pattern of one logical block: a 32-byte header of four
// little-endian words, then words derived from the header alone, so that a
// block read back names the write that put it there and any byte that
// differs from what that write sent is found.
//
//	bytes 0-7    patternMagic
//	bytes 8-15   LBA the block was written to
//	bytes 16-23  run: the Verifier's generation (random per Verifier)
//	bytes 24-31  write sequence: which write command of the run (from 1)
//	bytes 32-    splitmix64 stream seeded by (LBA, run, sequence)
//
// A block written for another LBA (misplaced), by an older write (stale),
// by another run (a previous invocation) or torn between two writes (the
// body of one under the header of another) differs from the expected
// pattern in the header or in the body.
const (
	patternMagic  = 0x4256726573696f67 // "goiserVB" in little-endian byte order
	patternHeader = 32
)

// BlockHeader is the header of a verify-pattern block.
type BlockHeader struct {
	// Magic is patternMagic in a block written by a Verifier.
	Magic uint64
	// LBA is the block the write was addressed to.
	LBA uint64
	// Run is the writing Verifier's generation.
	Run uint64
	// Seq is the write command's sequence number in that run; 0 never
	// appears in a written block.
	Seq uint64
}

// String prints the header as "lba 12 run 0x1f2e write 7", or the raw
// magic first when it is not the pattern's.
func (h BlockHeader) String() string {
	s := fmt.Sprintf("lba %d run %#x write %d", h.LBA, h.Run, h.Seq)
	if h.Magic != patternMagic {
		s = fmt.Sprintf("magic %#016x (not a verify pattern), ", h.Magic) + s
	}
	return s
}

// readHeader decodes the header at the start of b (len(b) >= 32).
func readHeader(b []byte) BlockHeader {
	return BlockHeader{
		Magic: binary.LittleEndian.Uint64(b[0:]),
		LBA:   binary.LittleEndian.Uint64(b[8:]),
		Run:   binary.LittleEndian.Uint64(b[16:]),
		Seq:   binary.LittleEndian.Uint64(b[24:]),
	}
}

// mix is splitmix64's finalizer.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

const golden64 = 0x9e3779b97f4a7c15

// bodySeed is the state the body's stream starts from.
func bodySeed(lba, run, seq uint64) uint64 {
	return mix(lba ^ mix(run^mix(seq+golden64)))
}

// putBlock writes the pattern of (lba, run, seq) into b, one logical
// block: len(b) a multiple of 8 and at least 32. It allocates nothing.
func putBlock(b []byte, lba, run, seq uint64) {
	binary.LittleEndian.PutUint64(b[0:], patternMagic)
	binary.LittleEndian.PutUint64(b[8:], lba)
	binary.LittleEndian.PutUint64(b[16:], run)
	binary.LittleEndian.PutUint64(b[24:], seq)
	z := bodySeed(lba, run, seq)
	for off := patternHeader; off+8 <= len(b); off += 8 {
		z += golden64
		binary.LittleEndian.PutUint64(b[off:], mix(z))
	}
}

// checkBlock compares the block b with the pattern of (lba, run, seq) and
// returns the offset of the first byte that differs, or -1 when none does.
// It allocates nothing.
func checkBlock(b []byte, lba, run, seq uint64) int {
	want := [4]uint64{patternMagic, lba, run, seq}
	for i, w := range want {
		if g := binary.LittleEndian.Uint64(b[8*i:]); g != w {
			return 8*i + bits.TrailingZeros64(g^w)/8
		}
	}
	z := bodySeed(lba, run, seq)
	for off := patternHeader; off+8 <= len(b); off += 8 {
		z += golden64
		if g, w := binary.LittleEndian.Uint64(b[off:]), mix(z); g != w {
			return off + bits.TrailingZeros64(g^w)/8
		}
	}
	return -1
}
