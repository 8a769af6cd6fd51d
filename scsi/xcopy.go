package scsi

import (
	"bytes"
	"context"
)

// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4, 6.18): a copy
// manager that moves blocks between the logical units of this Target
// without the data crossing the network. Only what libiscsi and real
// initiators (VMware's XCOPY) use is implemented: identification
// descriptor target descriptors (0xE4) naming a LU of this Target by its
// designator, and block to block segment descriptors (0x02).

// Operation codes and service actions of the copy manager.
const (
	OpExtendedCopy       = 0x83
	OpReceiveCopyResults = 0x84

	SAExtendedCopyLID1     = 0x00
	SACopyStatus           = 0x00
	SAOperatingParameters  = 0x03
	xcopyHeaderLen         = 16
	xcopyMaxTargets        = 8
	xcopyMaxSegments       = 16
	xcopyMaxDescListLen    = 1024
	xcopyMaxSegmentBytes   = 256 << 20
	xcopyHeldResultsPerLUN = 16
	xcopyTargetIdent       = 0xE4
	xcopySegBlockToBlock   = 0x02
	xcopySegBlockToBlockSz = 0x1C
	xcopyChunkBytes        = 1 << 20 // the most one read/write step of a copy moves; a multiple of every block size
)

// Additional sense codes of the copy manager.
const (
	ASCTooManyTargetDescriptors     ASC = 0x2606
	ASCUnsupportedTargetDescriptor  ASC = 0x2607
	ASCTooManySegmentDescriptors    ASC = 0x2608
	ASCUnsupportedSegmentDescriptor ASC = 0x2609
	ASCThirdPartyDeviceFailure      ASC = 0x0D01
	ASCCopyTargetDeviceNotReachable ASC = 0x0D02
)

// copyResult is a held COPY STATUS (LIST ID USAGE 00b).
type copyResult struct {
	nexus    Nexus
	listID   byte
	status   byte // COPY MANAGER STATUS: 0 completed, 1 failed
	segments uint16
	bytes    uint64
}

// xcopySegment is one decoded block to block segment descriptor.
type xcopySegment struct {
	src, dst         *lun
	blocks           uint64
	srcLBA, dstLBA   uint64
	srcIndex, dstIdx int
}

func copyAborted(asc ASC) result { return checkCondition(SenseCopyAborted, asc) }

func hExtendedCopy(t *Target, l *lun, ctx context.Context, c *Command) result {
	plen := int(u32(c.CDB[10:14]))
	c.Want = plen
	if plen == 0 {
		return good
	}
	if plen < xcopyHeaderLen || len(c.DataOut) < plen {
		return resParamListLength
	}
	p := c.DataOut[:plen]
	listID, usage := p[0], (p[1]>>3)&3
	tdl, sdl, inl := int(u16(p[2:4])), int(u32(p[8:12])), int(u32(p[12:16]))
	if xcopyHeaderLen+tdl+sdl+inl > plen || tdl+sdl+inl < 0 {
		return resParamListLength
	}
	if tdl+sdl > xcopyMaxDescListLen {
		return resParamListLength
	}
	if usage == 1 || usage == 3 && listID != 0 {
		return invalidParam(1)
	}
	if inl != 0 {
		return invalidParam(12)
	}
	// Target descriptors.
	var targets []*lun // nil entries: descriptors naming no LU of ours
	for off := xcopyHeaderLen; off < xcopyHeaderLen+tdl; {
		d := p[off:]
		code := d[0]
		if code != xcopyTargetIdent {
			return checkCondition(SenseIllegalRequest, ASCUnsupportedTargetDescriptor)
		}
		if len(d) < 32 || off+32 > xcopyHeaderLen+tdl {
			return resParamListLength
		}
		if len(targets) == xcopyMaxTargets {
			return checkCondition(SenseIllegalRequest, ASCTooManyTargetDescriptors)
		}
		// The LU ID TYPE and NUL fields are ignored (SPC-4).
		tl := t.lunByDesignator(d[4:28])
		if tl != nil && d[1]&0x1F == 0 && int(u24(d[29:32])) != tl.blockSize {
			tl = nil
		}
		targets = append(targets, tl)
		off += 32
	}
	// Segment descriptors.
	var segs []xcopySegment
	base := xcopyHeaderLen + tdl
	for off := base; off < base+sdl; {
		d := p[off:]
		if len(d) < 4 {
			return resParamListLength
		}
		if d[0] != xcopySegBlockToBlock {
			return checkCondition(SenseIllegalRequest, ASCUnsupportedSegmentDescriptor)
		}
		if int(u16(d[2:4]))+4 != xcopySegBlockToBlockSz || off+xcopySegBlockToBlockSz > base+sdl {
			return resParamListLength
		}
		if len(segs) == xcopyMaxSegments {
			return checkCondition(SenseIllegalRequest, ASCTooManySegmentDescriptors)
		}
		// DC (byte 1 bit 1) picks whose block size counts NUMBER OF
		// BLOCKS in; the copy requires equal block sizes, so both agree.
		segs = append(segs, xcopySegment{
			srcIndex: int(u16(d[4:6])), dstIdx: int(u16(d[6:8])),
			blocks: uint64(u16(d[10:12])), srcLBA: u64(d[12:20]), dstLBA: u64(d[20:28]),
		})
		off += xcopySegBlockToBlockSz
	}
	var done copyResult
	done.nexus, done.listID = c.Nexus, listID
	r := t.runCopy(ctx, c, targets, segs, &done)
	if r.status != StatusGood {
		done.status = 1
	}
	if usage == 0 {
		l.holdCopyResult(done)
	}
	return r
}

// runCopy checks and performs the segments in order. Every segment's
// source and destination are checked, as if the nexus of the EXTENDED COPY
// had sent them a READ and a WRITE (copyTargetAccess), before anything is
// written, and again before each chunk.
//
// Locks: the copy never holds two LUs' locks at once. Each chunk is read
// under the source's cawMu (shared) and written under the destination's
// cawMu (shared), one after the other, and the access checks take each
// LU's mu alone, so copies in opposite directions (A to B beside B to A)
// cannot wait on each other.
func (t *Target) runCopy(ctx context.Context, c *Command, targets []*lun, segs []xcopySegment, done *copyResult) result {
	for i := range segs {
		s := &segs[i]
		if s.srcIndex >= len(targets) || s.dstIdx >= len(targets) || targets[s.srcIndex] == nil || targets[s.dstIdx] == nil {
			return copyAborted(ASCCopyTargetDeviceNotReachable)
		}
		s.src, s.dst = targets[s.srcIndex], targets[s.dstIdx]
		if s.src.blockSize != s.dst.blockSize {
			return copyAborted(ASCCopyTargetDeviceNotReachable)
		}
		if !s.src.checkRange(s.srcLBA, s.blocks) || !s.dst.checkRange(s.dstLBA, s.blocks) ||
			s.blocks*uint64(s.src.blockSize) > xcopyMaxSegmentBytes {
			return copyAborted(ASCNoAdditionalSense)
		}
		if r := t.copyTargetAccess(c.Nexus, s.src, false); r.status != StatusGood {
			return r
		}
		if r := t.copyTargetAccess(c.Nexus, s.dst, true); r.status != StatusGood {
			return r
		}
	}
	// One buffer for all segments: the largest segment, at most 1 MiB, and
	// always whole blocks of each segment (block sizes differ between LUs).
	var size uint64
	for _, s := range segs {
		size = max(size, min(s.blocks*uint64(s.src.blockSize), xcopyChunkBytes))
	}
	buf := make([]byte, size)
	for _, s := range segs {
		bs := uint64(s.src.blockSize)
		for k := uint64(0); k < s.blocks; {
			if err := ctx.Err(); err != nil {
				return checkCondition(SenseAbortedCommand, ASCNoAdditionalSense)
			}
			n := min(s.blocks-k, uint64(len(buf))/bs)
			chunk := buf[:n*bs]
			// Again before each chunk, as a series of READs and WRITEs
			// would be: a reservation taken meanwhile stops the copy.
			if r := t.copyTargetAccess(c.Nexus, s.src, false); r.status != StatusGood {
				return r
			}
			if r := t.copyTargetAccess(c.Nexus, s.dst, true); r.status != StatusGood {
				return r
			}
			s.src.cawMu.RLock()
			err := s.src.readAt(chunk, int64((s.srcLBA+k)*bs))
			s.src.cawMu.RUnlock()
			if err != nil {
				t.log.Error("extended copy: read failed", "lun", s.src.number, "err", err)
				return copyAborted(ASCNoAdditionalSense)
			}
			s.dst.cawMu.RLock()
			err = s.dst.writeAt(c, chunk, int64((s.dstLBA+k)*bs))
			s.dst.cawMu.RUnlock()
			if err != nil {
				t.log.Error("extended copy: write failed", "lun", s.dst.number, "err", err)
				return copyAborted(ASCNoAdditionalSense)
			}
			k += n
			done.bytes += n * bs
		}
		done.segments++
	}
	return good
}

// copyTargetAccess checks that nexus n may read (write=false) or write l
// as a copy target device of an EXTENDED COPY, with the checks a READ(16)
// or WRITE(16) of n addressed to l would get: reservation conflicts, a
// missing medium and, for writes, write protection. A refusal is the copy
// manager's error, not l's status: CHECK CONDITION with COPY ABORTED, the
// sense key SPC-4 gives for "an error condition on the source device, the
// destination device, or both". A RESERVATION CONFLICT, which the copy
// target would answer without sense data, becomes THIRD PARTY DEVICE FAILURE
// (as SCST's copy manager reports a copy target's non-CHECK CONDITION
// status); answering RESERVATION CONFLICT would tell the initiator that the
// LU it addressed is reserved. A CHECK CONDITION keeps its additional sense
// code (WRITE PROTECTED, MEDIUM NOT PRESENT).
func (t *Target) copyTargetAccess(n Nexus, l *lun, write bool) result {
	op := byte(OpRead16)
	if write {
		op = OpWrite16
	}
	r := l.access(n, t.ops.byOp[op], nil)
	if r.status == StatusGood && write && l.writeProtected() {
		r = resWriteProtected
	}
	switch r.status {
	case StatusGood:
		return good
	case StatusCheckCondition:
		return copyAborted(r.sense.asc)
	}
	return copyAborted(ASCThirdPartyDeviceFailure)
}

// lunByDesignator finds the LU whose NAA designator the identification
// descriptor d (code set, type, reserved, length, designator) names.
func (t *Target) lunByDesignator(d []byte) *lun {
	if d[1]&0x0F != 0x03 || d[3] != 16 || len(d) < 20 {
		return nil
	}
	for _, n := range t.lunList {
		if l := t.luns[n]; bytes.Equal(l.naa[:], d[4:20]) {
			return l
		}
	}
	return nil
}

// holdCopyResult keeps r for RECEIVE COPY RESULTS, replacing an older
// result of the same list identifier and dropping the oldest past the cap.
func (l *lun) holdCopyResult(r copyResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.copies {
		if l.copies[i].nexus == r.nexus && l.copies[i].listID == r.listID {
			l.copies = append(l.copies[:i], l.copies[i+1:]...)
			break
		}
	}
	if len(l.copies) == xcopyHeldResultsPerLUN {
		l.copies = l.copies[1:]
	}
	l.copies = append(l.copies, r)
}

func hReceiveCopyResults(_ *Target, l *lun, _ context.Context, c *Command) result {
	sa := c.CDB[1] & 0x1F
	listID := c.CDB[2]
	alloc := int(u32(c.CDB[10:14]))
	var out []byte
	switch sa {
	case SAOperatingParameters:
		out = make([]byte, 44, 46)
		putU16(out[8:], xcopyMaxTargets)
		putU16(out[10:], xcopyMaxSegments)
		putU32(out[12:], xcopyMaxDescListLen)
		putU32(out[16:], xcopyMaxSegmentBytes)
		putU16(out[34:], 1) // TOTAL CONCURRENT COPIES
		out[36] = 1         // MAXIMUM CONCURRENT COPIES
		out[37] = 9         // DATA SEGMENT GRANULARITY: 2^9 bytes
		out = append(out, xcopySegBlockToBlock, xcopyTargetIdent)
		out[43] = 2
		putU32(out[0:], uint32(len(out)-4))
	case SACopyStatus:
		l.mu.RLock()
		var r *copyResult
		for i := range l.copies {
			if l.copies[i].nexus == c.Nexus && l.copies[i].listID == listID {
				r = &l.copies[i]
			}
		}
		var cr copyResult
		if r != nil {
			cr = *r
		}
		l.mu.RUnlock()
		if r == nil {
			return invalidCDB(2, -1)
		}
		out = make([]byte, 12)
		putU32(out[0:], 8)
		out[4] = cr.status
		putU16(out[5:], cr.segments)
		units, count := byte(0xF1), cr.bytes/uint64(l.blockSize) // logical blocks
		out[7] = units
		putU32(out[8:], uint32(min(count, 0xFFFFFFFF)))
	default:
		return invalidCDB(1, 4)
	}
	fill(c, out, alloc)
	return good
}
