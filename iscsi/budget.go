package iscsi

import (
	"fmt"
	"sync/atomic"
)

// Budget bounds the bytes of task data buffers a session or the whole
// server may hold at once. Budgets nest: a session's budget has the
// server's as its parent, and bytes are taken from every level or from
// none. A transport takes a task buffer's bytes with TryAcquire before it
// allocates the buffer (so no allocation is ever sized by an initiator's
// claim alone) and gives them back with Release when the buffer returns to
// its pool. The core reads Available to close the CmdSN window while a
// session's buffers are scarce (back-pressure through MaxCmdSN).
//
// A nil *Budget is unbounded: TryAcquire always succeeds. Methods are safe
// for concurrent use.
type Budget struct {
	parent *Budget // immutable
	limit  int64   // immutable; bytes
	used   atomic.Int64
}

// NewBudget returns a budget of limit bytes whose acquisitions are also
// taken from parent (nil for none). A limit <= 0 panics: an unbounded
// budget is a nil *Budget.
func NewBudget(limit int64, parent *Budget) *Budget {
	if limit <= 0 {
		panic(fmt.Sprintf("iscsi: NewBudget(%d): the limit must be positive", limit))
	}
	return &Budget{parent: parent, limit: limit}
}

// TryAcquire takes n bytes from b and all its parents, or nothing when one
// of them would go over its limit; it reports whether it took them.
func (b *Budget) TryAcquire(n int64) bool {
	for l := b; l != nil; l = l.parent {
		if l.used.Add(n) > l.limit {
			// Undo this level and the ones below it.
			for u := b; ; u = u.parent {
				u.used.Add(-n)
				if u == l {
					break
				}
			}
			return false
		}
	}
	return true
}

// Release gives back n bytes taken by TryAcquire.
func (b *Budget) Release(n int64) {
	for l := b; l != nil; l = l.parent {
		if l.used.Add(-n) < 0 {
			panic("iscsi: Budget released more than it acquired")
		}
	}
}

// Available returns how many bytes TryAcquire could take now: the least
// room left at b or any of its parents (never negative). A nil budget
// reports the largest int64.
func (b *Budget) Available() int64 {
	avail := int64(1<<63 - 1)
	for l := b; l != nil; l = l.parent {
		avail = min(avail, max(l.limit-l.used.Load(), 0))
	}
	return avail
}

// InUse returns the bytes currently taken from b itself (0 for nil).
func (b *Budget) InUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Limit returns b's own limit in bytes (0 for nil: unbounded).
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}
