package scsi

import (
	"fmt"
	"sync"

	"github.com/goiser/goiser/scsi/backend"
)

// lun is one logical unit's state.
type lun struct {
	t         *Target
	number    uint64          // immutable
	be        backend.Backend // immutable
	blockSize int             // immutable
	nblocks   uint64          // immutable
	readOnly  bool            // immutable
	serial    string          // immutable

	mu sync.Mutex      // guards the fields below
	ua map[Nexus][]ASC // pending unit attentions per nexus, oldest first
}

func newLUN(t *Target, c LUNConfig) (*lun, error) {
	if c.Backend == nil {
		return nil, fmt.Errorf("no backend")
	}
	bs := c.BlockSize
	if bs == 0 {
		bs = 512
	}
	if bs != 512 && bs != 4096 {
		return nil, fmt.Errorf("block size %d: want 512 or 4096", bs)
	}
	nb := c.Backend.Size() / int64(bs)
	if nb < 1 {
		return nil, fmt.Errorf("backend of %d bytes holds no %d-byte block", c.Backend.Size(), bs)
	}
	serial := c.SerialNumber
	if serial == "" {
		serial = fmt.Sprintf("goiser-lun-%d", c.Number)
	}
	return &lun{t: t, number: c.Number, be: c.Backend, blockSize: bs, nblocks: uint64(nb),
		readOnly: c.ReadOnly, serial: serial, ua: make(map[Nexus][]ASC)}, nil
}

func (l *lun) reset(n Nexus, asc ASC) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = n
	_ = asc
}

func (l *lun) nexusLost(n Nexus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.ua, n)
}
