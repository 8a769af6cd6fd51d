package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Pattern is the order in which a workload visits the LUN region.
type Pattern uint8

// Patterns.
const (
	// Random picks every I/O's offset uniformly at random, aligned to the
	// I/O size.
	Random Pattern = iota
	// Sequential walks the region in I/O-size steps, shared by every
	// command in flight, and wraps at its end.
	Sequential
)

// String returns "rand" or "seq".
func (p Pattern) String() string {
	if p == Sequential {
		return "seq"
	}
	return "rand"
}

// Workload is one row of a benchmark: what to issue and how many commands
// to keep in flight. Its name has the form SIZE-PATTERNOP-qdN, e.g.
// "4k-randread-qd1" or "128k-seqwrite-qd8".
type Workload struct {
	// Size is the bytes per I/O (a multiple of the LUN's block size).
	Size int
	// Pattern is Random or Sequential.
	Pattern Pattern
	// Write selects WRITE(16); false selects READ(16).
	Write bool
	// QueueDepth is the number of commands kept in flight (>= 1).
	QueueDepth int
}

// String returns the workload's name in the form ParseWorkload accepts.
func (w Workload) String() string {
	size := strconv.Itoa(w.Size)
	switch {
	case w.Size%(1<<20) == 0:
		size = strconv.Itoa(w.Size>>20) + "m"
	case w.Size%(1<<10) == 0:
		size = strconv.Itoa(w.Size>>10) + "k"
	}
	op := "read"
	if w.Write {
		op = "write"
	}
	return fmt.Sprintf("%s-%s%s-qd%d", size, w.Pattern, op, w.QueueDepth)
}

// ParseWorkload parses a workload name: SIZE (bytes, or with a k or m
// suffix for KiB and MiB), "-", "rand" or "seq" followed by "read" or
// "write", "-qd" and the queue depth. Example: "4k-randwrite-qd32".
func ParseWorkload(name string) (Workload, error) {
	var w Workload
	parts := strings.Split(strings.ToLower(strings.TrimSpace(name)), "-")
	if len(parts) != 3 {
		return w, fmt.Errorf("parse workload %q: want SIZE-{rand,seq}{read,write}-qdN", name)
	}
	size, mult := parts[0], 1
	switch {
	case strings.HasSuffix(size, "k"):
		size, mult = size[:len(size)-1], 1<<10
	case strings.HasSuffix(size, "m"):
		size, mult = size[:len(size)-1], 1<<20
	}
	n, err := strconv.Atoi(size)
	if err != nil || n <= 0 || n > (64<<20)/mult {
		return w, fmt.Errorf("parse workload %q: bad size %q (1 byte to 64m)", name, parts[0])
	}
	w.Size = n * mult
	switch op := parts[1]; op {
	case "randread", "randwrite", "seqread", "seqwrite":
		if strings.HasPrefix(op, "seq") {
			w.Pattern = Sequential
		}
		w.Write = strings.HasSuffix(op, "write")
	default:
		return w, fmt.Errorf("parse workload %q: bad pattern %q (randread, randwrite, seqread or seqwrite)", name, op)
	}
	qd, ok := strings.CutPrefix(parts[2], "qd")
	if n, err := strconv.Atoi(qd); ok && err == nil && n >= 1 && n <= 1024 {
		w.QueueDepth = n
	} else {
		return w, fmt.Errorf("parse workload %q: bad queue depth %q (qd1 to qd1024)", name, parts[2])
	}
	return w, nil
}

// ParseWorkloads parses a comma-separated list of workload names.
func ParseWorkloads(list string) ([]Workload, error) {
	var ws []Workload
	for name := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(name) == "" {
			continue
		}
		w, err := ParseWorkload(name)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("parse workloads %q: empty list", list)
	}
	return ws, nil
}
