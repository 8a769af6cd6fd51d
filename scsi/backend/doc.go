// Package backend stores the bytes of a logical unit for the SCSI target
// core (package scsi).
//
// A Backend reads into and writes from buffers the caller owns, so a
// transport can hand it registered (RDMA) memory and a READ reaches the
// wire with no copy:
//
//	be, err := backend.NewMemory(1 << 30) // sparse: costs RAM only once written
//	n, err := be.WriteAt(buf, 4096)
//	n, err = be.ReadAt(buf, 4096)
//	err = be.Flush()                      // SYNCHRONIZE CACHE, FUA
//
// Three implementations exist: Memory (sparse 64 KiB chunks), File (pread
// and pwrite on a file or block device, optional O_DIRECT, fdatasync,
// hole punching) and Null (zeros in, writes dropped).
//
// Every backend takes any buffer, offset and length, O_DIRECT files too:
// aligned requests (the READ and WRITE datapath) go straight to the file,
// others (the SCSI core's own buffers, transfers shorter than a block) go
// through an aligned bounce buffer, with read-modify-write of partial
// blocks:
//
//	f, err := backend.OpenFile(path, backend.FileConfig{Size: 1 << 30, Direct: true, Align: 512})
//	n, err := f.WriteAt([]byte("any bytes"), 1000) // reads, patches and writes back block 1
//
// Thin provisioning is optional: backends that can deallocate implement
// Unmapper, those that know their allocation map implement Mapper; the
// SCSI core finds both by type assertion.
package backend
