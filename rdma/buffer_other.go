//go:build !linux

package rdma

const mapHugeTLB = 0

func hugePageSize() int { return 0 }

func hugePagesFree(int) bool { return false }

// checkOffHeap cannot inspect the address space outside Linux; only
// RegisterBuffer is checked there.
func checkOffHeap(mem []byte) error {
	if len(mem) == 0 {
		return ErrNotOffHeap
	}
	return nil
}
