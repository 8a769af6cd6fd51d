package scsi

import (
	"context"
	"strings"
)

// PERSISTENT RESERVE OUT service actions (SPC-4 6.16.2).
const (
	prOutRegister       = 0
	prOutReserve        = 1
	prOutRelease        = 2
	prOutClear          = 3
	prOutPreempt        = 4
	prOutPreemptAbort   = 5
	prOutRegisterIgnore = 6
	prOutRegisterMove   = 7
)

func validPRType(t byte) bool {
	switch t {
	case prWriteExclusive, prExclusiveAccess, prWriteExclusiveRegOnly,
		prExclusiveAccessRegOnly, prWriteExclusiveAllRegs, prExclusiveAccessAllRegs:
		return true
	}
	return false
}

func hPRIn(_ *Target, l *lun, _ context.Context, c *Command) result {
	sa := c.CDB[1] & 0x1F
	alloc := int(u16(c.CDB[7:9]))
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []byte
	switch sa {
	case 0: // READ KEYS
		out = make([]byte, 8, 8+8*len(l.prRegs))
		putU32(out[0:], l.prGen)
		for _, r := range l.prRegs {
			var k [8]byte
			putU64(k[:], r.key)
			out = append(out, k[:]...)
		}
		putU32(out[4:], uint32(len(out)-8))
	case 1: // READ RESERVATION
		out = make([]byte, 8)
		putU32(out[0:], l.prGen)
		if l.prHeld {
			d := make([]byte, 16)
			if !prAllRegistrants(l.prType) {
				if i := l.registeredLocked(l.prOwner); i >= 0 {
					putU64(d[0:], l.prRegs[i].key)
				}
			}
			d[13] = prScopeLU<<4 | l.prType
			out = append(out, d...)
		}
		putU32(out[4:], uint32(len(out)-8))
	case 2: // REPORT CAPABILITIES
		out = make([]byte, 8)
		putU16(out[0:], 8)
		out[2] = 0x10                             // CRH: RESERVE/RELEASE conflict while PRs exist
		out[3] = 0x80                             // TMV: the type mask is valid; ALLOW COMMANDS 000b
		out[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02 // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
		out[5] = 0x01                             // EX_AC_AR
	case 3: // READ FULL STATUS
		out = make([]byte, 8)
		putU32(out[0:], l.prGen)
		for _, r := range l.prRegs {
			tid := transportID(r.nexus)
			d := make([]byte, 24, 24+len(tid))
			putU64(d[0:], r.key)
			if l.prHolderLocked(r.nexus) {
				d[12] = 0x01 // R_HOLDER
				d[13] = prScopeLU<<4 | l.prType
			}
			putU16(d[18:], r.nexus.RelativePort)
			putU32(d[20:], uint32(len(tid)))
			out = append(append(out, d...), tid...)
		}
		putU32(out[4:], uint32(len(out)-8))
	default:
		return invalidCDB(1, 4)
	}
	fill(c, out, alloc)
	return good
}

// transportID builds the iSCSI TransportID of an initiator port (SPC-4
// 7.6.4.6, format 01b: name, ",i,0x", ISID).
func transportID(n Nexus) []byte {
	name := n.InitiatorPort
	format := byte(0x40)
	if name == "" || !strings.Contains(name, ",i,0x") {
		name, format = n.InitiatorName, 0x00
	}
	l := len(name) + 1
	l = (l + 3) &^ 3
	if l < 20 {
		l = 20
	}
	b := make([]byte, 4+l)
	b[0] = format | 0x05 // iSCSI
	putU16(b[2:], uint16(l))
	copy(b[4:], name)
	return b
}

func hPROut(_ *Target, l *lun, _ context.Context, c *Command) result {
	sa := c.CDB[1] & 0x1F
	scope, typ := c.CDB[2]>>4, c.CDB[2]&0x0F
	plen := int(u32(c.CDB[5:9]))
	c.Want = plen
	if sa == prOutRegisterMove {
		return l.registerAndMove(c, scope, typ, plen)
	}
	if plen != 24 {
		return resParamListLength
	}
	if len(c.DataOut) < plen {
		return resParamListLength
	}
	p := c.DataOut[:24]
	key, saKey := u64(p[0:8]), u64(p[8:16])
	flags := p[20]
	if flags&0x08 != 0 { // SPEC_I_PT
		return invalidParam(20)
	}
	if flags&0x04 != 0 { // ALL_TG_PT: not supported (REPORT CAPABILITIES ATP_C=0)
		return invalidParam(20)
	}
	if flags&0x01 != 0 { // APTPL: persistence across power loss not supported
		return invalidParam(20)
	}
	n := c.Nexus
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.updateResvLocked()
	if l.resv != nil {
		return resConflict
	}
	idx := l.registeredLocked(n)
	switch sa {
	case prOutRegister, prOutRegisterIgnore:
		if idx < 0 {
			if sa == prOutRegister && key != 0 {
				return resConflict
			}
			if saKey != 0 && !l.prAddLocked(n, saKey) {
				return resInsufficientRegResources
			}
			l.prGen++
			return good
		}
		if sa == prOutRegister && key != l.prRegs[idx].key {
			return resConflict
		}
		if saKey != 0 {
			l.prRegs[idx].key = saKey
			l.prGen++
			return good
		}
		l.unregisterLocked(idx)
		l.prGen++
		return good
	}
	// Every other service action needs a registered nexus with its key.
	if idx < 0 || l.prRegs[idx].key != key {
		return resConflict
	}
	switch sa {
	case prOutReserve:
		if scope != prScopeLU {
			return invalidCDB(2, 7)
		}
		if !validPRType(typ) {
			return invalidCDB(2, 3)
		}
		if l.prHeld {
			if l.prHolderLocked(n) && l.prType == typ {
				return good
			}
			return resConflict
		}
		l.prHeld, l.prType, l.prOwner = true, typ, n
		return good
	case prOutRelease:
		if !l.prHeld || !l.prHolderLocked(n) {
			return good
		}
		if scope != prScopeLU || l.prType != typ {
			return checkCondition(SenseIllegalRequest, ASCInvalidReleaseOfPR)
		}
		l.releaseLocked(n)
		return good
	case prOutClear:
		for _, r := range l.prRegs {
			if r.nexus != n {
				l.prUALocked(r.nexus, ASCReservationsPreempted)
			}
		}
		l.prFilterLocked(func(prReg) bool { return false })
		l.prHeld = false
		l.prGen++
		return good
	case prOutPreempt, prOutPreemptAbort:
		if l.prHeld && !validPRType(typ) {
			return invalidCDB(2, 3)
		}
		if l.prHeld && scope != prScopeLU {
			return invalidCDB(2, 7)
		}
		switch {
		case !l.prHeld:
			if saKey == 0 {
				return invalidParam(8)
			}
			if l.removeKeyLocked(n, saKey, false) == 0 {
				return resConflict
			}
		case prAllRegistrants(l.prType):
			if saKey == 0 {
				// Remove every other registration; the reservation passes
				// to n with the new type.
				l.prFilterLocked(func(r prReg) bool {
					if r.nexus != n {
						l.prUALocked(r.nexus, ASCRegistrationsPreempted)
						return false
					}
					return true
				})
				l.prType, l.prOwner = typ, n
			} else if l.removeKeyLocked(n, saKey, false) == 0 {
				return resConflict
			}
		default:
			holder := l.registeredLocked(l.prOwner)
			if holder >= 0 && l.prRegs[holder].key == saKey {
				// Preempt the holder: remove its key's registrations and
				// take the reservation with the new type.
				l.removeKeyLocked(n, saKey, true)
				changed := l.prType != typ
				l.prHeld, l.prType, l.prOwner = true, typ, n
				if changed {
					for _, r := range l.prRegs {
						if r.nexus != n {
							l.prUALocked(r.nexus, ASCReservationsReleased)
						}
					}
				}
			} else {
				if saKey == 0 {
					return invalidParam(8)
				}
				if l.removeKeyLocked(n, saKey, false) == 0 {
					return resConflict
				}
			}
		}
		l.prGen++
		return good
	}
	return invalidCDB(1, 4)
}

// removeKeyLocked removes every registration with key, except n's own
// unless self, queueing REGISTRATIONS PREEMPTED for the removed nexuses.
// It returns how many it removed.
func (l *lun) removeKeyLocked(n Nexus, key uint64, self bool) int {
	removed := 0
	l.prFilterLocked(func(r prReg) bool {
		if r.key == key && (r.nexus != n || self) {
			if r.nexus != n {
				l.prUALocked(r.nexus, ASCRegistrationsPreempted)
			}
			removed++
			return false
		}
		return true
	})
	if !l.prHeld {
		return removed
	}
	if prAllRegistrants(l.prType) {
		if len(l.prRegs) == 0 {
			l.prHeld = false
		}
	} else if l.registeredLocked(l.prOwner) < 0 {
		l.prHeld = false
	}
	return removed
}

// unregisterLocked drops registration idx; a holder that unregisters
// releases the reservation (SPC-4 5.13.11.2.3).
func (l *lun) unregisterLocked(idx int) {
	n := l.prRegs[idx].nexus
	l.prFilterLocked(func(r prReg) bool { return r.nexus != n })
	if !l.prHeld {
		return
	}
	if prAllRegistrants(l.prType) {
		if len(l.prRegs) == 0 {
			l.prHeld = false
		}
		return
	}
	if l.prOwner == n {
		typ := l.prType
		l.prHeld = false
		if prRegistrantsOnly(typ) {
			for _, r := range l.prRegs {
				l.prUALocked(r.nexus, ASCReservationsReleased)
			}
		}
	}
}

// releaseLocked releases the persistent reservation held by n.
func (l *lun) releaseLocked(n Nexus) {
	typ := l.prType
	l.prHeld = false
	if typ != prWriteExclusive && typ != prExclusiveAccess {
		for _, r := range l.prRegs {
			if r.nexus != n {
				l.prUALocked(r.nexus, ASCReservationsReleased)
			}
		}
	}
}

// registerAndMove is PERSISTENT RESERVE OUT with REGISTER AND MOVE (SPC-4
// 5.13.8): the holder registers another I_T nexus, named by a TransportID
// and a relative target port, and hands it the reservation.
func (l *lun) registerAndMove(c *Command, scope, typ byte, plen int) result {
	if plen < 24 || len(c.DataOut) < plen {
		return resParamListLength
	}
	p := c.DataOut[:plen]
	key, saKey := u64(p[0:8]), u64(p[8:16])
	unreg, aptpl := p[17]&0x02 != 0, p[17]&0x01 != 0
	rtp := u16(p[18:20])
	tidLen := int(u32(p[20:24]))
	if 24+tidLen > plen {
		return resParamListLength
	}
	if aptpl {
		return invalidParam(17)
	}
	n := c.Nexus
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.updateResvLocked()
	if l.resv != nil {
		return resConflict
	}
	idx := l.registeredLocked(n)
	if idx < 0 || l.prRegs[idx].key != key {
		return resConflict
	}
	if !l.prHeld || !l.prHolderLocked(n) {
		return resConflict
	}
	if prAllRegistrants(l.prType) {
		return invalidCDB(2, 3)
	}
	if scope != prScopeLU || typ != l.prType {
		return invalidCDB(2, 3)
	}
	if saKey == 0 {
		return invalidParam(8)
	}
	dst, ok := l.nexusByTransportIDLocked(p[24:24+tidLen], rtp)
	if !ok {
		return invalidParam(24)
	}
	if dst == n {
		return invalidParam(24)
	}
	if j := l.registeredLocked(dst); j >= 0 {
		l.prRegs[j].key = saKey
	} else if !l.prAddLocked(dst, saKey) {
		return resInsufficientRegResources
	}
	l.prOwner = dst
	if unreg {
		l.prFilterLocked(func(r prReg) bool { return r.nexus != n })
	}
	l.prGen++
	return good
}

// nexusByTransportIDLocked resolves an iSCSI TransportID (format 00b: name;
// 01b: name,i,0xISID) and a relative target port to an I_T nexus the LU
// knows: one that has sent it commands or is registered.
func (l *lun) nexusByTransportIDLocked(tid []byte, rtp uint16) (Nexus, bool) {
	if len(tid) < 4 || tid[0]&0x0F != 0x05 {
		return Nexus{}, false
	}
	n := int(u16(tid[2:4]))
	if 4+n > len(tid) {
		return Nexus{}, false
	}
	name := string(tid[4 : 4+n])
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	format := tid[0] >> 6
	match := func(x Nexus) bool {
		if x.RelativePort != rtp {
			return false
		}
		switch format {
		case 0:
			return strings.EqualFold(x.InitiatorName, name)
		case 1:
			return strings.EqualFold(x.InitiatorPort, name)
		}
		return false
	}
	for _, r := range l.prRegs {
		if match(r.nexus) {
			return r.nexus, true
		}
	}
	for x := range l.nexi {
		if match(x) {
			return x, true
		}
	}
	return Nexus{}, false
}
