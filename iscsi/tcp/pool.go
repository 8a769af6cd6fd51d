package tcp

import (
	"math/bits"
	"sync"

	"github.com/goiser/goiser/iscsi"
)

// minClass is the smallest buffer class: 4 KiB (1 << 12).
const minClass = 12

// xferPool hands out xfers with data buffers in power-of-two size classes
// from 4 KiB up to the configured maximum. Each class is a sync.Pool of
// *xfer, so a steady stream of tasks of similar sizes allocates nothing.
type xferPool struct {
	classes []sync.Pool // immutable slice; index i holds buffers of 1<<(minClass+i) bytes
	max     int         // immutable: largest buffer
}

func newXferPool(max int) *xferPool {
	n := 1
	for 1<<(minClass+n-1) < max {
		n++
	}
	p := &xferPool{classes: make([]sync.Pool, n), max: 1 << (minClass + n - 1)}
	return p
}

// class returns the class index for a buffer of n bytes (n <= p.max).
func class(n int) int {
	if n <= 1<<minClass {
		return 0
	}
	return bits.Len(uint(n-1)) - minClass
}

// get returns an xfer whose buf has length n (n <= p.max), zeroed state,
// after taking the size of its buffer class from budget; it returns nil,
// allocating nothing, when budget has no room.
func (p *xferPool) get(n int, budget *iscsi.Budget) *xfer {
	c := class(n)
	size := int64(1) << (minClass + c)
	if !budget.TryAcquire(size) {
		return nil
	}
	x, _ := p.classes[c].Get().(*xfer)
	if x == nil {
		x = &xfer{mem: make([]byte, size), class: c}
	}
	x.buf = x.mem[:n]
	x.budget = budget
	return x
}

// put returns x to its class and its bytes to the budget they came from.
func (p *xferPool) put(x *xfer) {
	x.budget.Release(int64(len(x.mem)))
	x.clear()
	p.classes[x.class].Put(x)
}
