package attribute

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// field is one tracepoint field the eBPF programs read, at the offset and
// size that the context structs of bpf/tracer.c give it.
type field struct {
	name         string
	offset, size int
}

// tracepoint is one tracepoint the tracer attaches to.
type tracepoint struct {
	group, name string
	fields      []field
	// optional: without it the tracer still attaches and only the part
	// it feeds (socket wait) goes unmeasured.
	optional bool
}

// tracepoints lists what bpf/tracer.c reads, laid out as in the format
// files of Linux 6.18 (x86_64). checkFormats compares it with the running
// kernel's.
var tracepoints = []tracepoint{
	{"raw_syscalls", "sys_enter", []field{{"id", 8, 8}}, false},
	{"raw_syscalls", "sys_exit", []field{{"id", 8, 8}, {"ret", 16, 8}}, false},
	{"sched", "sched_switch", []field{{"prev_state", 32, 8}, {"next_pid", 56, 4}}, false},
	{"sched", "sched_waking", []field{{"pid", 24, 4}}, false},
	// The sock tracepoints came with Linux 6.3 (sk_data_ready) and 6.4
	// (sock_recv_length); Debian 12's 6.1, the Soft-RoCE guest's kernel,
	// has neither.
	{"sock", "sk_data_ready", []field{{"skaddr", 8, 8}}, true},
	{"sock", "sock_recv_length", []field{{"sk", 8, 8}, {"ret", 20, 4}}, true},
}

// checkFormats reads the format file of every tracepoint under
// dir/events and returns an error naming the first one that is missing or
// whose fields are not where the eBPF programs read them. An optional
// tracepoint that is missing is returned in skip instead.
func checkFormats(dir string) (skip []tracepoint, err error) {
	for _, tp := range tracepoints {
		path := filepath.Join(dir, "events", tp.group, tp.name, "format")
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && tp.optional {
			skip = append(skip, tp)
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tracepoint %s/%s is missing from this kernel (%s)", tp.group, tp.name, path)
		}
		if err != nil {
			return nil, fmt.Errorf("tracepoint %s/%s: %w", tp.group, tp.name, err)
		}
		have := parseFormat(string(b))
		for _, f := range tp.fields {
			g, ok := have[f.name]
			if !ok {
				return nil, fmt.Errorf("tracepoint %s/%s has no field %q on this kernel (%s)", tp.group, tp.name, f.name, path)
			}
			if g != f {
				return nil, fmt.Errorf("tracepoint %s/%s: field %s is at offset %d size %d on this kernel, the eBPF program reads offset %d size %d (regenerate bpf/tracer.c's structs from %s)",
					tp.group, tp.name, f.name, g.offset, g.size, f.offset, f.size, path)
			}
		}
	}
	return skip, nil
}

// parseFormat returns the fields of a tracepoint format file by name:
//
//	field:pid_t next_pid;	offset:56;	size:4;	signed:1;
func parseFormat(s string) map[string]field {
	out := map[string]field{}
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		var f field
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				continue
			}
			switch k {
			case "field":
				decl := strings.Fields(v)
				if len(decl) == 0 {
					continue
				}
				name := decl[len(decl)-1]
				if i := strings.IndexByte(name, '['); i >= 0 {
					name = name[:i]
				}
				f.name = strings.TrimLeft(name, "*")
			case "offset":
				f.offset, _ = strconv.Atoi(v)
			case "size":
				f.size, _ = strconv.Atoi(v)
			}
		}
		if f.name != "" {
			out[f.name] = f
		}
	}
	return out
}
