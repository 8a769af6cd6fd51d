package scsi

import "context"

// appendTimeouts appends a command timeouts descriptor (SPC-4 6.35.4).
func appendTimeouts(b []byte, i *opInfo) []byte {
	var d [12]byte
	putU16(d[0:], 0x0A)
	putU32(d[4:], i.timeoutMs/1000) // NOMINAL COMMAND PROCESSING TIMEOUT (s)
	putU32(d[8:], i.timeoutMs/1000) // RECOMMENDED COMMAND TIMEOUT (s)
	return append(b, d[:]...)
}

func hReportOpcodes(t *Target, _ *lun, _ context.Context, c *Command) result {
	rctd := c.CDB[2]&0x80 != 0
	opt := c.CDB[2] & 0x07
	op := c.CDB[3]
	sa := byte(u16(c.CDB[4:6]))
	alloc := int(u32(c.CDB[6:10]))
	if u16(c.CDB[4:6]) > 0xFF {
		sa = 0xFF // no service action of ours is that big
	}
	var out []byte
	switch opt {
	case 0:
		out = make([]byte, 4)
		for _, i := range t.ops.all {
			var d [8]byte
			d[0] = i.op
			if i.hasSA {
				putU16(d[2:], uint16(i.sa))
				d[5] |= 0x01 // SERVACTV
			}
			if rctd {
				d[5] |= 0x02 // CTDP
			}
			putU16(d[6:], uint16(len(i.usage)))
			out = append(out, d[:]...)
			if rctd {
				out = appendTimeouts(out, i)
			}
		}
		putU32(out[0:], uint32(len(out)-4))
	case 1, 2, 3:
		withSA := opt == 2
		if opt == 3 {
			if p := t.ops.byOp[op]; p != nil && p.sub != nil {
				withSA = true
			}
		}
		if opt == 2 && u16(c.CDB[4:6]) > 0xFF {
			return invalidCDB(4, -1)
		}
		i, ok := t.ops.findOrUnsupported(op, sa, withSA)
		if !ok {
			return invalidCDB(2, -1)
		}
		out = make([]byte, 4)
		if i == nil {
			out[1] = 0x01 // not supported
		} else {
			out[1] = 0x03 // supported, conforming to the standard
			if rctd {
				out[1] |= 0x80
			}
			putU16(out[2:], uint16(len(i.usage)))
			out = append(out, i.usage...)
			if rctd {
				out = appendTimeouts(out, i)
			}
		}
	default:
		return invalidCDB(2, 2)
	}
	fill(c, out, alloc)
	return good
}

// find treats an unknown opcode as "not supported" rather than an error.
func (o *opTable) findOrUnsupported(op, sa byte, withSA bool) (*opInfo, bool) {
	if o.byOp[op] == nil {
		return nil, true
	}
	return o.find(op, sa, withSA)
}

func hReportTMFs(_ *Target, _ *lun, _ context.Context, c *Command) result {
	repd := c.CDB[2]&0x80 != 0
	alloc := int(u32(c.CDB[6:10]))
	// ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET,
	// TARGET RESET (the iSCSI transport implements them).
	out := []byte{0x80 | 0x40 | 0x10 | 0x08 | 0x02, 0x00, 0x00, 0x00}
	if repd {
		out = append(out, make([]byte, 12)...)
		out[3] = 0x0C
	}
	fill(c, out, alloc)
	return good
}
