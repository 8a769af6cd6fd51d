package scsi

// SCSI operation codes the target implements (SPC-4, SBC-3).
const (
	OpTestUnitReady        = 0x00
	OpRequestSense         = 0x03
	OpRead6                = 0x08
	OpWrite6               = 0x0A
	OpInquiry              = 0x12
	OpModeSelect6          = 0x15
	OpReserve6             = 0x16
	OpRelease6             = 0x17
	OpModeSense6           = 0x1A
	OpStartStopUnit        = 0x1B
	OpPreventAllow         = 0x1E
	OpReadCapacity10       = 0x25
	OpRead10               = 0x28
	OpWrite10              = 0x2A
	OpWriteVerify10        = 0x2E
	OpVerify10             = 0x2F
	OpPrefetch10           = 0x34
	OpSyncCache10          = 0x35
	OpReadDefectData10     = 0x37
	OpWriteSame10          = 0x41
	OpUnmap                = 0x42
	OpModeSelect10         = 0x55
	OpReserve10            = 0x56
	OpRelease10            = 0x57
	OpModeSense10          = 0x5A
	OpPersistentReserveIn  = 0x5E
	OpPersistentReserveOut = 0x5F
	OpRead16               = 0x88
	OpCompareAndWrite      = 0x89
	OpWrite16              = 0x8A
	OpOrWrite16            = 0x8B
	OpWriteVerify16        = 0x8E
	OpVerify16             = 0x8F
	OpPrefetch16           = 0x90
	OpSyncCache16          = 0x91
	OpWriteSame16          = 0x93
	OpWriteAtomic16        = 0x9C
	OpServiceActionIn16    = 0x9E
	OpReportLUNs           = 0xA0
	OpMaintenanceIn        = 0xA3
	OpRead12               = 0xA8
	OpWrite12              = 0xAA
	OpWriteVerify12        = 0xAE
	OpVerify12             = 0xAF
	OpReadDefectData12     = 0xB7
)

// Service actions.
const (
	SAReadCapacity16             = 0x10
	SAGetLBAStatus               = 0x12
	SAReportSupportedOpcodes     = 0x0C
	SAReportSupportedTMFunctions = 0x0D
)

// cdbLen returns the length of a CDB from its group code (SPC-4 4.2.5.1),
// or 0 for reserved and vendor-specific groups.
func cdbLen(op byte) int {
	switch op >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 0
}

// lbaCDB is the decoded addressing of a block command: READ, WRITE,
// VERIFY, WRITE AND VERIFY, PRE-FETCH, SYNCHRONIZE CACHE, WRITE SAME,
// ORWRITE, COMPARE AND WRITE.
type lbaCDB struct {
	lba    uint64
	blocks uint32
	flags  byte // byte 1 of 10/12/16-byte CDBs (protect, DPO, FUA, BYTCHK, ...); 0 for 6-byte CDBs
}

// protect returns the RDPROTECT/WRPROTECT/VRPROTECT/ORPROTECT field.
func (c lbaCDB) protect() byte { return c.flags >> 5 }

// bytchk returns the 2-bit BYTCHK field of VERIFY and WRITE AND VERIFY.
func (c lbaCDB) bytchk() byte { return (c.flags >> 1) & 3 }

// decodeLBA decodes the LBA and transfer length of a block command by its
// CDB size. The caller has checked len(cdb) >= cdbLen(cdb[0]).
func decodeLBA(cdb []byte) lbaCDB {
	switch cdbLen(cdb[0]) {
	case 6:
		n := uint32(cdb[4])
		if n == 0 && (cdb[0] == OpRead6 || cdb[0] == OpWrite6) {
			n = 256
		}
		return lbaCDB{lba: uint64(u24(cdb[1:4]) & 0x1FFFFF), blocks: n}
	case 10:
		return lbaCDB{lba: uint64(u32(cdb[2:6])), blocks: uint32(u16(cdb[7:9])), flags: cdb[1]}
	case 12:
		return lbaCDB{lba: uint64(u32(cdb[2:6])), blocks: u32(cdb[6:10]), flags: cdb[1]}
	case 16:
		switch cdb[0] {
		case OpCompareAndWrite:
			return lbaCDB{lba: u64(cdb[2:10]), blocks: uint32(cdb[13]), flags: cdb[1]}
		case OpWriteAtomic16: // bytes 10-11: ATOMIC BOUNDARY
			return lbaCDB{lba: u64(cdb[2:10]), blocks: uint32(u16(cdb[12:14])), flags: cdb[1]}
		}
		return lbaCDB{lba: u64(cdb[2:10]), blocks: u32(cdb[10:14]), flags: cdb[1]}
	}
	return lbaCDB{}
}

// dataOutLen is Target.DataOutLen for a LUN of block size bs.
func dataOutLen(cdb []byte, bs int) (int, bool) {
	if len(cdb) == 0 {
		return 0, false
	}
	op := cdb[0]
	if n := cdbLen(op); n == 0 || len(cdb) < n {
		return 0, false
	}
	switch op {
	case OpWrite6, OpWrite10, OpWrite12, OpWrite16, OpWriteVerify10, OpWriteVerify12, OpWriteVerify16, OpOrWrite16, OpWriteAtomic16:
		return int(decodeLBA(cdb).blocks) * bs, true
	case OpCompareAndWrite:
		if cdb[13] == 0 {
			// Zero blocks move no data, but an initiator that sends some
			// anyway (256 blocks wrapped into the 8-bit field) must get an
			// error, not GOOD: let the transport fetch what it announced
			// so Execute sees the mismatch.
			return 0, false
		}
		return 2 * int(cdb[13]) * bs, true
	case OpWriteSame10:
		return bs, true
	case OpWriteSame16:
		if cdb[1]&0x01 != 0 { // NDOB
			return 0, true
		}
		return bs, true
	case OpVerify10, OpVerify12, OpVerify16:
		c := decodeLBA(cdb)
		switch c.bytchk() {
		case 1:
			return int(c.blocks) * bs, true
		case 3:
			return bs, true
		}
		return 0, true
	case OpModeSelect6:
		return int(cdb[4]), true
	case OpModeSelect10, OpUnmap:
		return int(u16(cdb[7:9])), true
	case OpPersistentReserveOut:
		return int(u32(cdb[5:9])), true
	case OpExtendedCopy:
		return int(u32(cdb[10:14])), true
	case OpTestUnitReady, OpRequestSense, OpRead6, OpInquiry, OpReserve6, OpRelease6, OpModeSense6,
		OpStartStopUnit, OpPreventAllow, OpReadCapacity10, OpRead10, OpPrefetch10, OpSyncCache10,
		OpReserve10, OpRelease10, OpModeSense10, OpPersistentReserveIn, OpRead16, OpPrefetch16,
		OpSyncCache16, OpServiceActionIn16, OpReportLUNs, OpMaintenanceIn, OpRead12,
		OpReadDefectData10, OpReadDefectData12, OpReceiveCopyResults:
		return 0, true
	}
	return 0, false
}
