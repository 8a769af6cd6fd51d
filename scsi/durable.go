package scsi

// mediumChanges records which logical units a command changed (through
// lun.writeAt and lun.unmap, the only ways to change a medium), so that
// Execute makes the changes durable before it reports GOOD: one rule for
// every command, instead of a flush each handler must remember. A LU whose
// caching mode page says WCE=0 promises that completed writes are on stable
// storage (SBC-3 6.4.5), so every LU changed while its write cache is
// disabled is flushed; with FUA or FUA_NV in the CDB, or for WRITE AND
// VERIFY, every LU changed is flushed whatever WCE says.
//
// It lives inside the Command, so recording allocates nothing.
type mediumChanges struct {
	// luns are the distinct LUs changed, the first n of them. EXTENDED
	// COPY writes at most xcopyMaxTargets LUs; every other command one.
	luns [xcopyMaxTargets]*lun
	n    int
	// overflow is set if more LUs changed than luns holds: then every LU
	// of the Target is considered changed.
	overflow bool
	// force flushes the changed LUs whatever their WCE (FUA, FUA_NV,
	// WRITE AND VERIFY); set by dispatch before the handler runs.
	force bool
}

// add records that l changed.
func (m *mediumChanges) add(l *lun) {
	for _, x := range m.luns[:m.n] {
		if x == l {
			return
		}
	}
	if m.n == len(m.luns) {
		m.overflow = true
		return
	}
	m.luns[m.n] = l
	m.n++
}

// settle makes the changes of a command that succeeded durable where they
// must be (see mediumChanges) before its status is reported; a flush that
// fails turns GOOD into MEDIUM ERROR, WRITE ERROR. A command that failed
// reports its own error: what it changed before failing is not promised.
func (t *Target) settle(c *Command, r result) result {
	if r.status != StatusGood {
		return r
	}
	m := &c.changed
	flush := func(l *lun) result {
		if !m.force && l.wce.Load() {
			return good
		}
		if err := l.be.Flush(); err != nil {
			return t.ioError(l, "flush", err, true)
		}
		return good
	}
	if m.overflow {
		for _, num := range t.lunList {
			if fr := flush(t.luns[num]); fr.status != StatusGood {
				return fr
			}
		}
		return r
	}
	for _, l := range m.luns[:m.n] {
		if fr := flush(l); fr.status != StatusGood {
			return fr
		}
	}
	return r
}
