//go:build linux && cgo

package verbs

import (
	"sync"
	"sync/atomic"
)

// closeState is the close bookkeeping of one C object: the object counts
// as closed only once its destroy call succeeded. A failed destroy leaves
// it open (package rdma then keeps it counted as a child of its parents,
// which refuse to close with ErrBusy), and a later Close calls destroy
// again; after a success Close does nothing.
type closeState struct {
	mu     sync.Mutex  // serialises close
	closed atomic.Bool // set once destroy succeeded
}

// close runs destroy unless the object is closed already and marks it
// closed only when destroy returns nil.
func (c *closeState) close(destroy func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil
	}
	if err := destroy(); err != nil {
		return err
	}
	c.closed.Store(true)
	return nil
}

// isClosed reports whether destroy succeeded.
func (c *closeState) isClosed() bool { return c.closed.Load() }
