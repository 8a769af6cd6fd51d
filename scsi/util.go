package scsi

import "encoding/binary"

func putU16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }
func putU32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func putU64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }
func u16(b []byte) uint16       { return binary.BigEndian.Uint16(b) }
func u32(b []byte) uint32       { return binary.BigEndian.Uint32(b) }
func u64(b []byte) uint64       { return binary.BigEndian.Uint64(b) }
func u24(b []byte) uint32       { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }
