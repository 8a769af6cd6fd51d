package rdma

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

const mapHugeTLB = unix.MAP_HUGETLB

// hugePageSize returns the default huge page size in bytes, 0 if unknown.
func hugePageSize() int {
	v, ok := meminfo("Hugepagesize:")
	if !ok {
		return 0
	}
	return v * 1024 // reported in kB
}

// hugePagesFree reports whether at least n huge pages are free.
func hugePagesFree(n int) bool {
	v, ok := meminfo("HugePages_Free:")
	return ok && v >= n
}

func meminfo(key string) (int, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := bytes.Fields(s.Bytes())
		if len(fields) >= 2 && string(fields[0]) == key {
			v, err := strconv.Atoi(string(fields[1]))
			return v, err == nil
		}
	}
	return 0, false
}

// checkOffHeap verifies that mem lies inside one anonymous shared mapping,
// the kind AllocBuffer makes. The Go runtime maps its heap private, so a
// Go-heap slice (or a stack, or a private mmap) fails with ErrNotOffHeap.
func checkOffHeap(mem []byte) error {
	if len(mem) == 0 {
		return fmt.Errorf("rdma: register memory: empty slice: %w", ErrNotOffHeap)
	}
	start := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem))))
	end := start + uint64(len(mem))
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return fmt.Errorf("rdma: register memory: read mappings: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// "7f..-7f.. rw-s 00000000 00:01 1234   /dev/zero (deleted)"
		fields := bytes.Fields(s.Bytes())
		if len(fields) < 5 {
			continue
		}
		lo, hi, ok := bytes.Cut(fields[0], []byte("-"))
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(string(lo), 16, 64)
		h, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || start < l || start >= h {
			continue
		}
		perms := fields[1]
		path := ""
		if len(fields) >= 6 {
			path = string(bytes.Join(fields[5:], []byte(" ")))
		}
		anonShared := len(perms) == 4 && perms[3] == 's' &&
			(path == "/dev/zero (deleted)" || path == "/anon_hugepage (deleted)" || path == "/dev/zero")
		if !anonShared {
			return fmt.Errorf("rdma: register memory at %#x: mapping %s %s %q: %w", start, fields[0], perms, path, ErrNotOffHeap)
		}
		if end > h {
			return fmt.Errorf("rdma: register memory [%#x, %#x): extends past its buffer's end %#x: %w", start, end, h, ErrNotOffHeap)
		}
		return nil
	}
	return fmt.Errorf("rdma: register memory at %#x: not mapped: %w", start, ErrNotOffHeap)
}
