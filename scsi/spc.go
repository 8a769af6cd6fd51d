package scsi

import (
	"context"
	"strings"
)

func hTestUnitReady(_ *Target, _ *lun, _ context.Context, _ *Command) result { return good }

func hRequestSense(_ *Target, l *lun, _ context.Context, c *Command) result {
	alloc := int(c.CDB[4])
	desc := c.CDB[1]&0x01 != 0
	s := senseInfo{key: SenseNoSense, asc: ASCNoAdditionalSense}
	if l == nil {
		s = senseInfo{key: SenseIllegalRequest, asc: ASCLUNNotSupported}
	} else if asc, ok := l.takeUAForSense(c.Nexus); ok {
		s = senseInfo{key: SenseUnitAttention, asc: asc}
	}
	var buf [MaxSenseLen]byte
	n := buildSense(buf[:], desc, s)
	fill(c, buf[:n], alloc)
	return good
}

// hStartStop is START STOP UNIT (SBC-3 5.25). Nothing spins, so START and
// power conditions change nothing; LOEJ ejects (START=0) or loads
// (START=1) the medium of a removable LU unless a nexus prevents removal.
func hStartStop(_ *Target, l *lun, _ context.Context, c *Command) result {
	pc := c.CDB[4] >> 4
	loej, start := c.CDB[4]&0x02 != 0, c.CDB[4]&0x01 != 0
	if pc != 0 || !loej || !l.removable {
		// POWER CONDITION other than START_VALID ignores START and LOEJ;
		// a fixed medium has nothing to eject.
		return good
	}
	// While removal is prevented the medium neither leaves nor enters
	// (SBC-3 5.11; libiscsi PreventAllow.Eject loads with PREVENT set).
	l.mu.RLock()
	prevented := len(l.prevent) > 0
	l.mu.RUnlock()
	if prevented {
		return checkCondition(SenseIllegalRequest, ASCMediumRemovalPrevented)
	}
	l.ejected.Store(!start)
	return good
}

// hPreventAllow is PREVENT ALLOW MEDIUM REMOVAL (SBC-3 5.11): the
// prevention is held per I_T nexus until it allows removal again, its
// nexus is lost, or the LU is reset. A fixed medium accepts and ignores it.
func hPreventAllow(_ *Target, l *lun, _ context.Context, c *Command) result {
	prevent := c.CDB[4] & 0x03
	if prevent > 1 {
		return invalidCDB(4, 1) // 10b and 11b are obsolete
	}
	if !l.removable {
		return good
	}
	l.mu.Lock()
	if prevent == 1 {
		l.prevent[c.Nexus] = true
	} else {
		delete(l.prevent, c.Nexus)
	}
	l.mu.Unlock()
	return good
}

func hReportLUNs(t *Target, _ *lun, _ context.Context, c *Command) result {
	alloc := int(u32(c.CDB[6:10]))
	sel := c.CDB[2]
	if sel != 0x00 && sel != 0x01 && sel != 0x02 {
		return invalidCDB(2, -1)
	}
	if alloc < 16 {
		return invalidCDB(6, -1)
	}
	buf := make([]byte, 8, 8+8*len(t.lunList))
	if sel != 0x01 { // 0x01: well-known LUNs only; we have none
		for _, n := range t.lunList {
			var e [8]byte
			if n < 256 {
				e[1] = byte(n)
			} else {
				putU16(e[0:], 0x4000|uint16(n&0x3FFF)) // flat space addressing
			}
			buf = append(buf, e[:]...)
		}
	}
	putU32(buf[0:], uint32(len(buf)-8))
	fill(c, buf, alloc)
	return good
}

func hReserve(_ *Target, l *lun, _ context.Context, c *Command) result {
	if c.CDB[0] == OpReserve10 && c.CDB[1] != 0 {
		return invalidCDB(1, -1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.prHeld || len(l.prRegs) > 0 {
		return resConflict
	}
	if l.resv != nil && *l.resv != c.Nexus {
		return resConflict
	}
	n := c.Nexus
	l.resv = &n
	l.updateResvLocked()
	return good
}

func hRelease(_ *Target, l *lun, _ context.Context, c *Command) result {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.prHeld || len(l.prRegs) > 0 {
		return resConflict
	}
	if l.resv != nil && *l.resv == c.Nexus {
		l.resv = nil
		l.updateResvLocked()
	}
	return good
}

// Standard INQUIRY data (SPC-4 6.6.2).
func (t *Target) standardInquiry(l *lun) []byte {
	buf := make([]byte, 96)
	if l == nil {
		buf[0] = 0x7F // peripheral qualifier 011b, device type 1Fh: no LU here
	} else {
		buf[0] = 0x00 // connected direct-access block device
	}
	if l != nil && l.removable {
		buf[1] = 0x80 // RMB
	}
	buf[2] = 0x06        // SPC-4
	buf[3] = 0x10 | 0x02 // HISUP, RESPONSE DATA FORMAT 2
	buf[4] = byte(len(buf) - 5)
	buf[5] = 0x08 // 3PC: EXTENDED COPY is supported
	buf[7] = 0x02 // CMDQUE
	copy(buf[8:16], t.vendor[:])
	copy(buf[16:32], t.product[:])
	copy(buf[32:36], t.revision[:])
	// Version descriptors: SAM-5, iSCSI, SPC-4, SBC-3.
	for i, v := range []uint16{0x00A0, 0x0960, 0x0460, 0x04C0} {
		putU16(buf[58+2*i:], v)
	}
	return buf
}

func hInquiry(t *Target, l *lun, _ context.Context, c *Command) result {
	evpd := c.CDB[1]&0x01 != 0
	page := c.CDB[2]
	alloc := int(u16(c.CDB[3:5]))
	if !evpd {
		if page != 0 {
			return invalidCDB(2, -1)
		}
		fill(c, t.standardInquiry(l), alloc)
		return good
	}
	if l == nil {
		// No LU: only the qualifier tells; VPD pages are not there.
		return invalidCDB(2, -1)
	}
	var data []byte
	switch page {
	case 0x00:
		data = vpdPage(0x00, []byte{0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2})
	case 0x80:
		data = vpdPage(0x80, []byte(l.serial))
	case 0x83:
		data = vpdPage(0x83, t.deviceIdentification(l, c.Nexus))
	case 0xB0:
		data = vpdPage(0xB0, l.blockLimits())
	case 0xB1:
		b := make([]byte, 0x3C)
		putU16(b[0:], 1) // MEDIUM ROTATION RATE: non-rotating medium
		data = vpdPage(0xB1, b)
	case 0xB2:
		b := make([]byte, 4)
		if l.thin() {
			b[1] = 0x80 | 0x40 | 0x20 | 0x04 // LBPU, LBPWS, LBPWS10, LBPRZ
			b[2] = 0x02                      // PROVISIONING TYPE: thin
		}
		data = vpdPage(0xB2, b)
	default:
		return invalidCDB(2, -1)
	}
	fill(c, data, alloc)
	return good
}

func vpdPage(code byte, payload []byte) []byte {
	b := make([]byte, 4+len(payload))
	b[1] = code
	putU16(b[2:], uint16(len(payload)))
	copy(b[4:], payload)
	return b
}

// deviceIdentification builds the designators of VPD page 0x83.
func (t *Target) deviceIdentification(l *lun, n Nexus) []byte {
	var b []byte
	// NAA IEEE Registered Extended (binary, LU).
	b = append(b, 0x01, 0x03, 0x00, 16)
	b = append(b, l.naa[:]...)
	// T10 vendor ID (ASCII, LU): vendor + serial number.
	id := append(append([]byte{}, t.vendor[:]...), l.serial...)
	b = append(b, 0x02, 0x01, 0x00, byte(len(id)))
	b = append(b, id...)
	if n.TargetPort != "" {
		// SCSI name string of the target port (UTF-8, PIV, target port, iSCSI).
		b = appendNameDesignator(b, 0x10, n.TargetPort)
		// Relative target port (binary, PIV, target port, iSCSI).
		b = append(b, 0x51, 0x94, 0x00, 4, 0, 0, 0, 0)
		putU16(b[len(b)-2:], n.RelativePort)
		// SCSI name string of the target device (association 10b).
		name := n.TargetPort
		if i := strings.Index(name, ",t,"); i >= 0 {
			name = name[:i]
		}
		b = appendNameDesignator(b, 0x20, name)
	}
	return b
}

// appendNameDesignator appends a SCSI name string designator (type 8)
// with association assoc (0x10 target port, 0x20 target device), null
// terminated and padded to a multiple of 4.
func appendNameDesignator(b []byte, assoc byte, name string) []byte {
	n := len(name) + 1
	n = (n + 3) &^ 3
	if n > 252 {
		n = 252
		name = name[:251]
	}
	b = append(b, 0x53, 0x80|assoc|0x08, 0x00, byte(n))
	b = append(b, name...)
	for i := len(name); i < n; i++ {
		b = append(b, 0)
	}
	return b
}

// blockLimits is the payload of VPD page 0xB0 (SBC-3 6.5.3).
func (l *lun) blockLimits() []byte {
	b := make([]byte, 0x3C)
	// byte 4 (payload 0): WSNZ=0: WRITE SAME with 0 blocks means "to the end".
	b[1] = maxCompareAndWriteBlocks
	putU16(b[2:], 1<<l.lbppbe())                 // OPTIMAL TRANSFER LENGTH GRANULARITY: one physical block
	putU32(b[4:], uint32(l.maxTransferBlocks())) // MAXIMUM TRANSFER LENGTH
	putU32(b[8:], optimalTransferBlocks)         // OPTIMAL TRANSFER LENGTH
	putU32(b[12:], 0)                            // MAXIMUM PREFETCH LENGTH
	if l.thin() {
		putU32(b[16:], 0xFFFFFFFF)               // MAXIMUM UNMAP LBA COUNT
		putU32(b[20:], maxUnmapBlockDescriptors) // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
	}
	putU64(b[32:], maxWriteSameBlocks)          // MAXIMUM WRITE SAME LENGTH
	putU32(b[40:], uint32(l.maxAtomicBlocks())) // MAXIMUM ATOMIC TRANSFER LENGTH
	// ATOMIC ALIGNMENT, ATOMIC TRANSFER LENGTH GRANULARITY: 0, no constraint.
	return b
}
