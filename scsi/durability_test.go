package scsi

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/goiser/goiser/scsi/backend"
)

// flushCounter wraps a real backend and counts Flush calls.
type flushCounter struct {
	backend.Backend
	n atomic.Int64
}

func (f *flushCounter) Flush() error {
	f.n.Add(1)
	return f.Backend.Flush()
}

func TestFUAAndSyncCacheFlush(t *testing.T) {
	fb, err := backend.OpenFile(filepath.Join(t.TempDir(), "lun.img"), backend.FileConfig{Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	fc := &flushCounter{Backend: fb}
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: fc}}})
	if err != nil {
		t.Fatal(err)
	}
	blk := make([]byte, 512)
	cases := []struct {
		name  string
		cdb   []byte
		out   []byte
		flush bool
	}{
		{"write10", cdb10(OpWrite10, 0, 0, 1), blk, false},
		{"write10 FUA", cdb10(OpWrite10, 0x08, 0, 1), blk, true},
		{"write16 FUA_NV", cdb16(OpWrite16, 0x02, 0, 1), blk, true},
		{"write12 FUA", cdb12(OpWrite12, 0x08, 0, 1), blk, true},
		{"write and verify", cdb10(OpWriteVerify10, 0, 0, 1), blk, true},
		{"sync cache 10", cdb10(OpSyncCache10, 0, 0, 0), nil, true},
		{"sync cache 16", cdb16(OpSyncCache16, 0, 0, 0), nil, true},
		{"read10 FUA", cdb10(OpRead10, 0x08, 0, 1), nil, false},
	}
	for _, tc := range cases {
		before := fc.n.Load()
		expectGood(t, run(tg, nexA, 0, tc.cdb, tc.out, 512))
		if got := fc.n.Load() - before; (got > 0) != tc.flush {
			t.Errorf("%s: %d flushes, want flush=%v", tc.name, got, tc.flush)
		}
	}
	// With the write cache disabled every write is flushed.
	c := run(tg, nexA, 0, []byte{OpModeSense6, 0x08, pageCaching, 0, 255, 0}, nil, 255)
	cp := append([]byte{}, c.DataIn[4:24]...)
	cp[2] &^= 0x04
	expectGood(t, modeSelect6(tg, nexA, cp))
	before := fc.n.Load()
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 1), blk, 0))
	if fc.n.Load() == before {
		t.Error("WCE=0 write was not flushed")
	}
	before = fc.n.Load()
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if fc.n.Load() == before {
		t.Error("Close did not flush")
	}
}

// TestCompareAndWriteAtomic increments a counter with COMPARE AND WRITE from
// many goroutines while others write elsewhere in the same block range:
// no increment may be lost.
func TestCompareAndWriteAtomic(t *testing.T) {
	tg := newTarget(t, nil)
	const workers, rounds = 4, 50
	var wins atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n := []Nexus{nexA, nexB, nexC}[w%3]
			for i := 0; i < rounds; i++ {
				r := run(tg, n, 0, cdb10(OpRead10, 0, 0, 1), nil, 512)
				if r.Status != StatusGood {
					t.Errorf("read: %v", r.Status)
					return
				}
				cur := binary.BigEndian.Uint64(r.DataIn)
				out := make([]byte, 1024)
				copy(out, r.DataIn)
				binary.BigEndian.PutUint64(out[512:], cur+1)
				caw := cdb16(OpCompareAndWrite, 0, 0, 0)
				caw[13] = 1
				c := run(tg, n, 0, caw, out, 0)
				switch c.Status {
				case StatusGood:
					wins.Add(1)
				case StatusCheckCondition:
					if k, _, _ := SenseFields(c.Sense); k != SenseMiscompare {
						t.Errorf("CAW sense %v", k)
						return
					}
				default:
					t.Errorf("CAW status %v", c.Status)
					return
				}
				// A plain write next to the counter must not disturb it.
				run(tg, n, 0, cdb10(OpWrite10, 0, 1, 1), out[:512], 0)
			}
		}(w)
	}
	wg.Wait()
	r := run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 1), nil, 512)
	if got := binary.BigEndian.Uint64(r.DataIn); got != uint64(wins.Load()) || got == 0 {
		t.Fatalf("counter %d after %d successful COMPARE AND WRITEs", got, wins.Load())
	}
}

func TestDescriptorSenseInformation(t *testing.T) {
	tg := newTarget(t, nil)
	pg := controlPage(t, tg, nexA, pcCurrent)
	pg[2] |= 0x04
	expectGood(t, modeSelect6(tg, nexA, pg))
	expectGood(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 1), make([]byte, 512), 0))
	caw := cdb16(OpCompareAndWrite, 0, 0, 0)
	caw[13] = 1
	out := make([]byte, 1024)
	out[37] = 1
	c := run(tg, nexA, 0, caw, out, 0)
	expect(t, c, StatusCheckCondition, SenseMiscompare, ASCMiscompareDuringVerify)
	// Descriptor format: header, then the information descriptor.
	if c.Sense[0] != 0x72 || c.Sense[8] != 0x00 || c.Sense[10]&0x80 == 0 || binary.BigEndian.Uint64(c.Sense[12:]) != 37 {
		t.Fatalf("descriptor sense % x", c.Sense)
	}
	// Field pointers in descriptor format: sense key specific descriptor.
	c = run(tg, nexA, 0, cdb10(OpRead10, 0x04|0x01, 0, 1), nil, 512)
	expect(t, c, StatusCheckCondition, SenseIllegalRequest, ASCInvalidFieldInCDB)
	if int(c.Sense[7])+8 != len(c.Sense) || c.Sense[8] != 0x02 || c.Sense[12]&0xC0 != 0xC0 || binary.BigEndian.Uint16(c.Sense[13:]) != 1 {
		t.Fatalf("descriptor sense with field pointer % x", c.Sense)
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[interface{ String() string }]string{
		StatusReservationConflict:   "RESERVATION CONFLICT",
		Status(0x77):                "Status(0x77)",
		SenseIllegalRequest:         "ILLEGAL REQUEST",
		SenseKey(0xC):               "SenseKey(0xc)",
		ASCLBAOutOfRange:            "LOGICAL BLOCK ADDRESS OUT OF RANGE",
		ASC(0x8080):                 "ASC(0x80/0x80)",
		TaskHeadOfQueue:             "HEAD OF QUEUE",
		TaskAttr(9):                 "TaskAttr(9)",
		ASCReservationsPreempted:    "RESERVATIONS PREEMPTED",
		ASCBusDeviceResetOccurred:   "BUS DEVICE RESET FUNCTION OCCURRED",
		ASCParameterListLengthError: "PARAMETER LIST LENGTH ERROR",
	} {
		if got := v.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestCommandReset(t *testing.T) {
	tg := newTarget(t, nil)
	c := run(tg, nexA, 0, []byte{0xC9, 0, 0, 0, 0, 0}, nil, 0)
	if len(c.Sense) == 0 {
		t.Fatal("no sense")
	}
	c.Reset()
	if c.Status != 0 || c.Sense != nil || c.CDB != nil || c.DataInLen != 0 || c.Want != 0 {
		t.Fatal("Reset left state behind")
	}
	// Reused after Reset, the command works again.
	c.Nexus, c.CDB = nexA, []byte{OpTestUnitReady, 0, 0, 0, 0, 0}
	tg.Execute(context.Background(), c)
	expectGood(t, c)
}

func TestBackendErrorsAndCancel(t *testing.T) {
	fb, err := backend.OpenFile(filepath.Join(t.TempDir(), "lun.img"), backend.FileConfig{Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := NewTarget(TargetConfig{LUNs: []LUNConfig{{Number: 0, Backend: fb}}})
	if err != nil {
		t.Fatal(err)
	}
	// A cancelled context aborts a command before it touches the backend.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &Command{Nexus: nexA, CDB: cdb10(OpRead10, 0, 0, 1), DataIn: make([]byte, 512)}
	tg.Execute(ctx, c)
	expect(t, c, StatusCheckCondition, SenseAbortedCommand, ASCNoAdditionalSense)
	// The backing file goes away under the target: medium errors.
	fb.Close()
	expect(t, run(tg, nexA, 0, cdb10(OpRead10, 0, 0, 1), nil, 512), StatusCheckCondition, SenseMediumError, ASCUnrecoveredReadError)
	expect(t, run(tg, nexA, 0, cdb10(OpWrite10, 0, 0, 1), make([]byte, 512), 0), StatusCheckCondition, SenseMediumError, ASCWriteError)
	expect(t, run(tg, nexA, 0, cdb10(OpSyncCache10, 0, 0, 0), nil, 0), StatusCheckCondition, SenseMediumError, ASCWriteError)
	if err := tg.Close(); err == nil {
		t.Fatal("Close of a closed backend reported no error")
	}
}
