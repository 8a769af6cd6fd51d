package rdma

import (
	"sync"
	"sync/atomic"
)

// lifecycle holds the close state shared by every wrapper type.
//
// Lifetime policy (refuse): a parent never closes while it has live
// children; its Close returns an error wrapping ErrBusy that names how many.
// Close is idempotent; a failed driver close leaves the object open so the
// caller may retry.
type lifecycle struct {
	// mu is held shared while calling into the driver object and
	// exclusively by Close, so a driver object is never used after its
	// Close. Acquire a child's mu before its parent's.
	mu sync.RWMutex
	// closed is set once Close succeeded. Guarded by mu.
	closed bool
	// children counts live children. Incremented with the parent's mu held
	// shared (so a concurrent Close sees it), decremented when a child
	// closes.
	children atomic.Int64
}

// liveLocked reports whether the object is open; mu must be held (shared
// or exclusive).
func (l *lifecycle) liveLocked() bool { return !l.closed }

// release drops one child.
func (l *lifecycle) release() { l.children.Add(-1) }
