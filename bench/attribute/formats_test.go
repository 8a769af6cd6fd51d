package attribute

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const switchFormat = `name: sched_switch
ID: 316
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:char prev_comm[16];	offset:8;	size:16;	signed:0;
	field:long prev_state;	offset:32;	size:8;	signed:1;
	field:pid_t next_pid;	offset:56;	size:4;	signed:1;
`

func TestParseFormat(t *testing.T) {
	f := parseFormat(switchFormat)
	if f["next_pid"] != (field{"next_pid", 56, 4}) || f["prev_comm"] != (field{"prev_comm", 8, 16}) {
		t.Errorf("parseFormat: %+v", f)
	}
}

func TestCheckFormats(t *testing.T) {
	dir := t.TempDir()
	write := func(group, name, body string) {
		p := filepath.Join(dir, "events", group, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "format"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tp := range tracepoints {
		var b strings.Builder
		for _, f := range tp.fields {
			b.WriteString("\tfield:long " + f.name + ";\toffset:" + itoa(f.offset) + ";\tsize:" + itoa(f.size) + ";\tsigned:1;\n")
		}
		write(tp.group, tp.name, b.String())
	}
	if skip, err := checkFormats(dir); err != nil || len(skip) != 0 {
		t.Fatalf("matching formats: skip %v, %v", skip, err)
	}
	write("sched", "sched_switch", strings.ReplaceAll(switchFormat, "offset:56", "offset:60"))
	if _, err := checkFormats(dir); err == nil || !strings.Contains(err.Error(), "next_pid is at offset 60") {
		t.Errorf("moved field: %v", err)
	}
	write("sched", "sched_switch", switchFormat)
	// Without the sock tracepoints (Linux before 6.3): attach the rest.
	os.RemoveAll(filepath.Join(dir, "events", "sock"))
	if skip, err := checkFormats(dir); err != nil || len(skip) != 2 || skip[0].name != "sk_data_ready" {
		t.Errorf("no sock tracepoints: skip %v, %v", skip, err)
	}
	// Without a required one: refuse, naming it.
	os.RemoveAll(filepath.Join(dir, "events", "raw_syscalls", "sys_exit"))
	if _, err := checkFormats(dir); err == nil || !strings.Contains(err.Error(), "raw_syscalls/sys_exit is missing") {
		t.Errorf("missing tracepoint: %v", err)
	}
	// The running kernel's, when readable.
	if _, err := os.Stat("/sys/kernel/tracing/events/sched"); err == nil {
		if _, err := checkFormats("/sys/kernel/tracing"); err != nil {
			t.Errorf("this kernel: %v", err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
