package scsi

import (
	"testing"

	"github.com/goiser/goiser/scsi/backend"
)

// wrapped embeds a memory backend, as a test gate or a fault injector
// does: it may block, so its LUN never runs commands inline.
type wrapped struct{ *backend.Memory }

// TestInline: only small READs and WRITEs on a memory or null LUN itself
// may run on the caller's goroutine.
func TestInline(t *testing.T) {
	m, err := backend.NewMemory(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	w, err := backend.NewMemory(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	f := backend.NewNull(8 << 20)
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: m}, {Number: 1, Backend: wrapped{w}}, {Number: 2, Backend: f}}})
	if err != nil {
		t.Fatal(err)
	}
	maxBlocks := uint16(InlineMaxBytes / 512)
	for _, c := range []struct {
		lun  uint64
		cdb  []byte
		want bool
	}{
		{0, cdb10(OpRead10, 0, 0, 8), true},
		{0, cdb16(OpWrite16, 0, 0, 8), true},
		{0, cdb10(OpRead10, 0, 0, maxBlocks), true},
		{0, cdb10(OpRead10, 0, 0, maxBlocks+1), false}, // too large to copy on the caller
		{0, cdb10(OpWriteSame10, 0, 0, 8), false},
		{0, cdb10(OpCompareAndWrite, 0, 0, 1)[:10], false},
		{0, []byte{OpInquiry, 0, 0, 0, 36, 0}, false},
		{0, []byte{OpRead10, 0, 0}, false},   // truncated CDB
		{1, cdb10(OpRead10, 0, 0, 8), false}, // a wrapper may block
		{2, cdb10(OpWrite10, 0, 0, 8), true},
		{7, cdb10(OpRead10, 0, 0, 8), false}, // no such LUN
	} {
		if got := tg.Inline(c.lun, c.cdb); got != c.want {
			t.Errorf("Inline(LUN %d, % x) = %v, want %v", c.lun, c.cdb, got, c.want)
		}
	}
}
