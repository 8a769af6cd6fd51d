package scsi

import "context"

// Mode page codes.
const (
	pageCaching   = 0x08
	pageControl   = 0x0A
	pageInfoExcep = 0x1C
	pageAll       = 0x3F
)

// Mode page control values of MODE SENSE.
const (
	pcCurrent    = 0
	pcChangeable = 1
	pcDefault    = 2
	pcSaved      = 3
)

// modePage returns page code's content for page control pc (SPC-4 7.5,
// SBC-3 6.4).
func (l *lun) modePage(code byte, pc byte) []byte {
	switch code {
	case pageCaching:
		b := make([]byte, 20)
		b[0], b[1] = pageCaching, 18
		switch pc {
		case pcCurrent:
			if l.wce.Load() {
				b[2] |= 0x04
			}
		case pcChangeable:
			b[2] = 0x04 // WCE
		case pcDefault:
			b[2] = 0x04
		}
		return b
	case pageControl:
		b := make([]byte, 12)
		b[0], b[1] = pageControl, 10
		switch pc {
		case pcCurrent, pcDefault:
			if pc == pcCurrent && l.dsense.Load() {
				b[2] |= 0x04 // D_SENSE
			}
			b[3] = 0x10 // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
			if pc == pcCurrent && l.swp.Load() {
				b[4] |= 0x08 // SWP
			}
			putU16(b[8:], 0xFFFF) // BUSY TIMEOUT PERIOD: unlimited
		case pcChangeable:
			b[2] = 0x04 // D_SENSE
			if !l.readOnly {
				b[4] = 0x08 // SWP
			}
		}
		return b
	case pageInfoExcep:
		b := make([]byte, 12)
		b[0], b[1] = pageInfoExcep, 10
		if pc != pcChangeable {
			b[2] = 0x08 // DEXCPT: no informational exceptions reported
		}
		return b
	}
	return nil
}

var modePages = [...]byte{pageCaching, pageControl, pageInfoExcep}

func hModeSense(_ *Target, l *lun, _ context.Context, c *Command) result {
	ten := c.CDB[0] == OpModeSense10
	dbd := c.CDB[1]&0x08 != 0
	llbaa := ten && c.CDB[1]&0x10 != 0
	pc := c.CDB[2] >> 6
	code := c.CDB[2] & 0x3F
	sub := c.CDB[3]
	var alloc int
	if ten {
		alloc = int(u16(c.CDB[7:9]))
	} else {
		alloc = int(c.CDB[4])
	}
	if pc == pcSaved {
		return checkCondition(SenseIllegalRequest, ASCSavingParamsNotSupported)
	}
	var pages []byte
	switch {
	case code == pageAll && (sub == 0x00 || sub == 0xFF):
		for _, p := range modePages {
			pages = append(pages, l.modePage(p, pc)...)
		}
	case sub != 0x00:
		return invalidCDB(3, -1)
	default:
		p := l.modePage(code, pc)
		if p == nil {
			return invalidCDB(2, 5)
		}
		pages = p
	}
	var bd []byte
	if !dbd {
		if llbaa {
			bd = make([]byte, 16)
			putU64(bd[0:], l.nblocks)
			putU32(bd[12:], uint32(l.blockSize))
		} else {
			bd = make([]byte, 8)
			nb := l.nblocks
			if nb > 0xFFFFFFFF {
				nb = 0xFFFFFFFF
			}
			putU32(bd[0:], uint32(nb))
			putU32(bd[4:], uint32(l.blockSize)) // byte 4 density code 0, then 3-byte length
		}
	}
	dsp := byte(0x10) // DPOFUA
	if l.writeProtected() {
		dsp |= 0x80 // WP
	}
	var out []byte
	if ten {
		out = make([]byte, 8, 8+len(bd)+len(pages))
		out[3] = dsp
		if llbaa && len(bd) > 0 {
			out[4] = 0x01 // LONGLBA
		}
		putU16(out[6:], uint16(len(bd)))
		out = append(append(out, bd...), pages...)
		putU16(out[0:], uint16(len(out)-2))
	} else {
		out = make([]byte, 4, 4+len(bd)+len(pages))
		out[2] = dsp
		out[3] = byte(len(bd))
		out = append(append(out, bd...), pages...)
		out[0] = byte(len(out) - 1)
	}
	fill(c, out, alloc)
	return good
}

func hModeSelect(_ *Target, l *lun, _ context.Context, c *Command) result {
	ten := c.CDB[0] == OpModeSelect10
	pf := c.CDB[1]&0x10 != 0
	sp := c.CDB[1]&0x01 != 0
	var plen, hdr int
	if ten {
		plen, hdr = int(u16(c.CDB[7:9])), 8
	} else {
		plen, hdr = int(c.CDB[4]), 4
	}
	c.Want = plen
	if sp {
		return invalidCDB(1, 0)
	}
	if plen == 0 {
		return good
	}
	if !pf {
		return invalidCDB(1, 4)
	}
	if plen < hdr || len(c.DataOut) < plen {
		return resParamListLength
	}
	p := c.DataOut[:plen]
	var bdl int
	if ten {
		bdl = int(u16(p[6:8]))
	} else {
		bdl = int(p[3])
	}
	if hdr+bdl > plen {
		return resParamListLength
	}
	if bdl != 0 {
		if bdl != 8 || ten && p[4]&0x01 != 0 {
			return invalidParam(hdr - 1)
		}
		if int(u32(p[hdr+4:])&0xFFFFFF) != l.blockSize {
			return invalidParam(hdr + 5)
		}
	}
	// Validate every page against the changeable masks before applying any.
	type change struct {
		code byte
		page []byte
	}
	var changes []change
	for off := hdr + bdl; off < plen; {
		if plen-off < 2 {
			return resParamListLength
		}
		if p[off]&0x40 != 0 { // SPF: we have no subpages
			return invalidParam(off)
		}
		code := p[off] & 0x3F
		n := int(p[off+1]) + 2
		if off+n > plen {
			return resParamListLength
		}
		cur := l.modePage(code, pcCurrent)
		mask := l.modePage(code, pcChangeable)
		if cur == nil {
			return invalidParam(off)
		}
		if n != len(cur) {
			return invalidParam(off + 1)
		}
		if p[off]&0x80 != 0 { // PS is reserved in MODE SELECT
			return invalidParam(off)
		}
		for i := 2; i < n; i++ {
			if (p[off+i]^cur[i])&^mask[i] != 0 {
				return invalidParam(off + i)
			}
		}
		changes = append(changes, change{code, p[off : off+n]})
		off += n
	}
	for _, ch := range changes {
		switch ch.code {
		case pageCaching:
			l.wce.Store(ch.page[2]&0x04 != 0)
		case pageControl:
			l.dsense.Store(ch.page[2]&0x04 != 0)
			l.swp.Store(ch.page[4]&0x08 != 0)
		}
	}
	if len(changes) > 0 {
		l.mu.Lock()
		l.uaOthersLocked(c.Nexus, ASCModeParametersChanged)
		l.mu.Unlock()
	}
	return good
}
