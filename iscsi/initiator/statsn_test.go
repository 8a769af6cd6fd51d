package initiator

import "testing"

// TestCheckStatSNWindow: responses that arrive out of StatSN order (iSER
// targets that build them on several CPUs) are accepted within the task
// slots; a jump no reordering explains is not.
func TestCheckStatSNWindow(t *testing.T) {
	s := &Session{cfg: Config{MaxTasks: 8}}
	w := uint32(8 + ctlSlots)
	for _, base := range []uint32{100, 0, ^uint32(0) - 3} {
		s.expStatSN.Store(base)
		for _, ok := range []uint32{base, base + 1, base + w, base - 1, base - w} {
			if err := s.checkStatSN(ok, "SCSI Response"); err != nil {
				t.Errorf("ExpStatSN %d: StatSN %d refused: %v", base, ok, err)
			}
		}
		for _, bad := range []uint32{base + w + 1, base - w - 1, base + 1<<31} {
			if err := s.checkStatSN(bad, "SCSI Response"); err == nil {
				t.Errorf("ExpStatSN %d: StatSN %d accepted", base, bad)
			}
		}
	}
	// ExpStatSN only moves forward: a late response does not pull it back.
	s.expStatSN.Store(200)
	s.updateSN(198, 1, 10, true)
	if got := s.expStatSN.Load(); got != 200 {
		t.Errorf("after a late StatSN 198, ExpStatSN is %d, want 200", got)
	}
	s.updateSN(203, 1, 10, true)
	if got := s.expStatSN.Load(); got != 204 {
		t.Errorf("after StatSN 203, ExpStatSN is %d, want 204", got)
	}
}
