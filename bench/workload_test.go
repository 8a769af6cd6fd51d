package bench

import "testing"

func TestParseWorkload(t *testing.T) {
	for name, want := range map[string]Workload{
		"4k-randread-qd1":   {Size: 4096, Pattern: Random, QueueDepth: 1},
		"4k-randwrite-qd32": {Size: 4096, Pattern: Random, Write: true, QueueDepth: 32},
		"128k-seqread-qd8":  {Size: 128 << 10, Pattern: Sequential, QueueDepth: 8},
		"1m-seqwrite-qd2":   {Size: 1 << 20, Pattern: Sequential, Write: true, QueueDepth: 2},
		"512-randread-qd4":  {Size: 512, QueueDepth: 4},
	} {
		got, err := ParseWorkload(name)
		if err != nil || got != want {
			t.Errorf("ParseWorkload(%q) = %+v, %v; want %+v", name, got, err, want)
		}
		if got.String() != name {
			t.Errorf("String() = %q, want %q", got.String(), name)
		}
	}
	for _, bad := range []string{"", "4k-randread", "4x-randread-qd1", "0k-randread-qd1", "4k-read-qd1",
		"4k-randread-qd0", "4k-randread-1", "65m-seqread-qd1", "4k-randread-qd1-x"} {
		if w, err := ParseWorkload(bad); err == nil {
			t.Errorf("ParseWorkload(%q) = %+v, want an error", bad, w)
		}
	}
	ws, err := ParseWorkloads("4k-randread-qd1, 128k-seqwrite-qd8,")
	if err != nil || len(ws) != 2 || !ws[1].Write {
		t.Errorf("ParseWorkloads = %+v, %v", ws, err)
	}
	if _, err := ParseWorkloads(" , "); err == nil {
		t.Errorf("ParseWorkloads of an empty list succeeded")
	}
}

func TestParseTarget(t *testing.T) {
	got, err := ParseTarget("tgt=iscsi://127.0.0.1:3261/iqn.2026-11.dev.goiser:tgt/1")
	if want := (Target{Name: "tgt", Addr: "127.0.0.1:3261", IQN: "iqn.2026-11.dev.goiser:tgt", LUN: 1}); err != nil || got != want {
		t.Errorf("ParseTarget = %+v, %v; want %+v", got, err, want)
	}
	got, err = ParseTarget("a=iscsi://localhost/iqn.x:y/0")
	if err != nil || got.Addr != "localhost:3260" {
		t.Errorf("default port: %+v, %v", got, err)
	}
	for _, bad := range []string{"iscsi://h/iqn/0", "=iscsi://h/iqn/0", "a=http://h/iqn/0", "a=iscsi://h/iqn",
		"a=iscsi://h/iqn/x", "a=iscsi:///iqn/0", "a=iscsi://u:p@h/iqn/0", "a b=iscsi://h/iqn/0"} {
		if tg, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want an error", bad, tg)
		}
	}
}
