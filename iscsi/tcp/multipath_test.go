package tcp_test

import (
	"bytes"
	"testing"
)

// TestTwoSessionsWriteRead writes 1..256 blocks on one session and reads
// them back on another, with the values libiscsi negotiates.
func TestTwoSessionsWriteRead(t *testing.T) {
	ts := startServer(t, nil)
	keys := []string{"InitialR2T=No", "ImmediateData=Yes", "MaxRecvDataSegmentLength=262144", "MaxBurstLength=16776192", "FirstBurstLength=262144"}
	a := dial(t, ts.addr)
	a.login(keys...)
	b := dial(t, ts.addr)
	b.isid[5] = 1
	b.login(keys...)
	for path := range 2 {
		w, r := a, b
		if path == 1 {
			w, r = b, a
		}
		buf := bytes.Repeat([]byte{0xa6 ^ byte(path)}, 256*512)
		for i := 1; i <= 256; i++ {
			res := w.scsiCmd(write10(0, uint16(i)), false, i*512, buf[:i*512])
			if res.status != 0 {
				t.Fatalf("WRITE %d blocks: %#x", i, res.status)
			}
			res = r.scsiCmd(read10(0, uint16(i)), true, i*512, nil)
			if res.status != 0 || !bytes.Equal(res.data, buf[:i*512]) {
				t.Fatalf("path %d, %d blocks: read back differs", path, i)
			}
		}
	}
}
