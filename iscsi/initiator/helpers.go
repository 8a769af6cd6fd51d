package initiator

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// SCSI operation codes used by the helpers (SPC-4, SBC-3).
const (
	opTestUnitReady   = 0x00
	opInquiry         = 0x12
	opSyncCache10     = 0x35
	opRead16          = 0x88
	opWrite16         = 0x8a
	opServiceAction16 = 0x9e // READ CAPACITY(16) is service action 0x10
	opReportLUNs      = 0xa0
)

// run executes cdb and turns a non-GOOD status into a *SCSIError.
func (s *Session) run(ctx context.Context, lun uint64, cdb, out, in []byte) (Result, error) {
	r, err := s.Execute(ctx, lun, cdb, out, in)
	if err != nil {
		return r, err
	}
	if r.Status != 0 || r.Response != 0 {
		return r, r.Err()
	}
	return r, nil
}

// TestUnitReady sends TEST UNIT READY (SPC-4 §6.47).
func (s *Session) TestUnitReady(ctx context.Context, lun uint64) error {
	var cdb [6]byte
	cdb[0] = opTestUnitReady
	_, err := s.run(ctx, lun, cdb[:], nil, nil)
	return err
}

// Inquiry sends INQUIRY (SPC-4 §6.6) with buf as the allocation length:
// the standard data when evpd is false, VPD page otherwise. It returns the
// number of bytes received.
func (s *Session) Inquiry(ctx context.Context, lun uint64, evpd bool, page uint8, buf []byte) (int, error) {
	if len(buf) > 0xffff {
		buf = buf[:0xffff]
	}
	var cdb [6]byte
	cdb[0] = opInquiry
	if evpd {
		cdb[1] = 1
		cdb[2] = page
	}
	binary.BigEndian.PutUint16(cdb[3:5], uint16(len(buf)))
	r, err := s.run(ctx, lun, cdb[:], nil, buf)
	return r.DataInLen, err
}

// Capacity is the answer to READ CAPACITY(16).
type Capacity struct {
	Blocks    uint64 // number of logical blocks (last LBA + 1)
	BlockSize uint32 // bytes per logical block
}

// ReadCapacity16 sends READ CAPACITY(16) (SBC-3 §5.16).
func (s *Session) ReadCapacity16(ctx context.Context, lun uint64) (Capacity, error) {
	buf := make([]byte, 32)
	var cdb [16]byte
	cdb[0] = opServiceAction16
	cdb[1] = 0x10
	binary.BigEndian.PutUint32(cdb[10:14], uint32(len(buf)))
	r, err := s.run(ctx, lun, cdb[:], nil, buf)
	if err != nil {
		return Capacity{}, err
	}
	if r.DataInLen < 12 {
		return Capacity{}, fmt.Errorf("initiator: READ CAPACITY(16) returned %d bytes", r.DataInLen)
	}
	return Capacity{Blocks: binary.BigEndian.Uint64(buf[0:8]) + 1, BlockSize: binary.BigEndian.Uint32(buf[8:12])}, nil
}

// rw16 builds and runs READ(16) or WRITE(16).
func (s *Session) rw16(ctx context.Context, op byte, lun, lba uint64, blockSize int, out, in []byte) error {
	n := len(out) + len(in)
	if blockSize <= 0 || n%blockSize != 0 {
		return fmt.Errorf("initiator: buffer of %d bytes is not a multiple of block size %d", n, blockSize)
	}
	var cdb [16]byte
	cdb[0] = op
	binary.BigEndian.PutUint64(cdb[2:10], lba)
	binary.BigEndian.PutUint32(cdb[10:14], uint32(n/blockSize))
	r, err := s.Execute(ctx, lun, cdb[:], out, in)
	if err != nil {
		return err
	}
	if r.Status != 0 || r.Response != 0 {
		return r.Err()
	}
	if r.Residual != 0 {
		return errResidual
	}
	return nil
}

// errResidual reports a READ or WRITE that moved fewer bytes than asked.
var errResidual = errors.New("initiator: command completed with a residual")

// Read16 reads len(buf)/blockSize blocks at lba into buf with READ(16)
// (SBC-3 §5.11). It allocates nothing.
func (s *Session) Read16(ctx context.Context, lun, lba uint64, blockSize int, buf []byte) error {
	return s.rw16(ctx, opRead16, lun, lba, blockSize, nil, buf)
}

// Write16 writes buf at lba with WRITE(16) (SBC-3 §5.40). It allocates
// nothing.
func (s *Session) Write16(ctx context.Context, lun, lba uint64, blockSize int, buf []byte) error {
	return s.rw16(ctx, opWrite16, lun, lba, blockSize, buf, nil)
}

// ReportLUNs sends REPORT LUNS (SPC-4 §6.33, select report 0) and returns
// the LUN numbers of single-level peripheral or flat LUNs.
func (s *Session) ReportLUNs(ctx context.Context) ([]uint64, error) {
	buf := make([]byte, 16+8*256)
	var cdb [12]byte
	cdb[0] = opReportLUNs
	binary.BigEndian.PutUint32(cdb[6:10], uint32(len(buf)))
	r, err := s.run(ctx, 0, cdb[:], nil, buf)
	if err != nil {
		return nil, err
	}
	if r.DataInLen < 8 {
		return nil, fmt.Errorf("initiator: REPORT LUNS returned %d bytes", r.DataInLen)
	}
	n := int(binary.BigEndian.Uint32(buf[0:4])) / 8
	var luns []uint64
	for i := 0; i < n && 8+8*i+8 <= r.DataInLen; i++ {
		e := buf[8+8*i:]
		switch e[0] >> 6 {
		case 0:
			luns = append(luns, uint64(e[1]))
		case 1:
			luns = append(luns, uint64(e[0]&0x3f)<<8|uint64(e[1]))
		}
	}
	return luns, nil
}

// SynchronizeCache sends SYNCHRONIZE CACHE(10) for the whole LUN (SBC-3
// §5.22).
func (s *Session) SynchronizeCache(ctx context.Context, lun uint64) error {
	var cdb [10]byte
	cdb[0] = opSyncCache10
	_, err := s.run(ctx, lun, cdb[:], nil, nil)
	return err
}
