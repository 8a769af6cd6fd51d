package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/goiser/goiser/iscsi"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"4096", 4096, false},
		{"512K", 512 << 10, false},
		{"1G", 1 << 30, false},
		{"1g", 1 << 30, false},
		{"1Gi", 1 << 30, false},
		{"1GiB", 1 << 30, false},
		{"10M", 10 << 20, false},
		{"2T", 2 << 40, false},
		{" 64M ", 64 << 20, false},
		{"", 0, true},
		{"G", 0, true},
		{"1X", 0, true},
		{"-1G", 0, true},
		{"1.5G", 0, true},
		{"99999999999T", 0, true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if s := formatSize(3 << 30); s != "3G" {
		t.Errorf("formatSize(3G) = %q", s)
	}
	if s := formatSize(1000); s != "1000" {
		t.Errorf("formatSize(1000) = %q", s)
	}
}

func TestCheckName(t *testing.T) {
	good := []string{
		"iqn.2026-11.dev.goiser:default",
		"iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test",
		"iqn.1994-05.com.redhat:a1b2c3",
		"iqn.2001-04.com.example",
		"eui.02004567A425678D",
		"naa.52004567BA64678D",
		"naa.62004567BA64678D0123456789ABCDEF",
	}
	bad := []string{
		"",
		"iqn.2026-13.dev.goiser:x",
		"iqn.26-11.dev.goiser",
		"iqn.2026-11.Dev.goiser:x",
		"iqn.2026-11..goiser",
		"iqn.2026-11.dev.goiser:has space",
		"eui.02004567a425678d",
		"eui.0200",
		"naa.1234",
		"target1",
		"iqn.2026-11.dev.goiser:" + strings.Repeat("x", 220),
	}
	for _, n := range good {
		if err := checkName(n); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := checkName(n); err == nil {
			t.Errorf("checkName(%q) = nil, want an error", n)
		}
	}
}

const goodConfig = `{
  "portals": ["127.0.0.1:3260", "[::1]:3260"],
  "log": {"level": "debug", "format": "json"},
  "shutdown_timeout": "30s",
  "negotiation": {"max_burst_length": 1048576, "first_burst_length": 65536,
                  "immediate_data": true, "digests": false, "default_time2wait": 0,
                  "nop_in_interval": "5s"},
  "targets": [
    {
      "name": "iqn.2026-11.dev.goiser:disk1",
      "alias": "disk one",
      "initiators": ["iqn.1994-05.com.redhat:client"],
      "chap": {"user": "u", "secret": "secretsecret", "mutual_user": "t", "mutual_secret": "othersecret1"},
      "luns": [
        {"lun": 0, "backend": "mem", "size": "1G"},
        {"lun": 1, "backend": "file", "path": "/var/lib/goiser/disk.img", "size": "10G", "direct": true},
        {"lun": 7, "backend": "null", "size": 1073741824, "block_size": 4096, "read_only": true},
        {"lun": 8, "backend": "mem", "size": "1M", "physical_block_size": 4096, "removable": true,
         "thin_provisioning": false, "write_through": true}
      ]
    },
    {"name": "iqn.2026-11.dev.goiser:disk2", "luns": [{"backend": "mem", "size": "64M"}]}
  ]
}`

func TestParseConfigGood(t *testing.T) {
	cfg, err := parseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Portals) != 2 || cfg.Portals[1] != "[::1]:3260" {
		t.Errorf("portals = %v", cfg.Portals)
	}
	if cfg.shutdown != 30*time.Second {
		t.Errorf("shutdown_timeout = %v", cfg.shutdown)
	}
	if n := cfg.Negotiation; n.MaxBurstLength == nil || *n.MaxBurstLength != 1<<20 || n.ImmediateData == nil || !*n.ImmediateData ||
		n.NopInInterval != "5s" || n.InitialR2T != nil {
		t.Errorf("negotiation = %+v", n)
	}
	t0 := cfg.Targets[0]
	if t0.CHAP == nil || t0.CHAP.MutualSecret != "othersecret1" || len(t0.Initiators) != 1 {
		t.Errorf("target 0 = %+v", t0)
	}
	if l := t0.LUNs[0]; l.bytes != 1<<30 || l.BlockSize != 512 {
		t.Errorf("lun 0 = %+v", l)
	}
	if l := t0.LUNs[1]; l.Path != "/var/lib/goiser/disk.img" || !l.Direct || l.bytes != 10<<30 {
		t.Errorf("lun 1 = %+v", l)
	}
	if l := t0.LUNs[2]; l.LUN != 7 || l.BlockSize != 4096 || !l.ReadOnly || l.bytes != 1<<30 {
		t.Errorf("lun 7 = %+v", l)
	}
	if l := t0.LUNs[3]; l.PhysicalBlockSize != 4096 || !l.Removable || l.ThinProvisioning == nil || *l.ThinProvisioning || !l.WriteThrough {
		t.Errorf("lun 8 = %+v", l)
	}
	if l := cfg.Targets[1].LUNs[0]; l.LUN != 0 || l.bytes != 64<<20 {
		t.Errorf("target 1 lun = %+v", l)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig([]byte(`{"targets": [{"name": "iqn.2026-11.dev.goiser:x", "luns": [{"backend": "mem", "size": "1M"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Portals) != 1 || cfg.Portals[0] != defaultPortal {
		t.Errorf("default portals = %v", cfg.Portals)
	}
	if cfg.shutdown != defaultShutdown || cfg.Log.Format != "text" {
		t.Errorf("defaults: shutdown %v, log %+v", cfg.shutdown, cfg.Log)
	}
}

// TestParseConfigErrors checks that each bad config is refused with an
// error naming the offending field.
func TestParseConfigErrors(t *testing.T) {
	lun := `{"backend": "mem", "size": "1G"}`
	target := func(luns ...string) string {
		return `{"name": "iqn.2026-11.dev.goiser:x", "luns": [` + strings.Join(luns, ",") + `]}`
	}
	cfg := func(targets ...string) string { return `{"targets": [` + strings.Join(targets, ",") + `]}` }
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", ``, "empty config"},
		{"not json", `portals = 1`, "line 1: invalid JSON"},
		{"truncated", `{"targets": [`, "ends in the middle"},
		{"unknown top field", `{"portal": ["127.0.0.1:3260"]}`, `line 1: unknown field "portal"`},
		{"unknown nested field", "{\"targets\": [\n{\"name\": \"iqn.2026-11.dev.goiser:x\",\n \"lun\": []}]}", `line 3: unknown field "lun"`},
		{"wrong type", `{"targets": [{"name": 5}]}`, "targets.name: number is not a valid string"},
		{"trailing data", cfg(target(lun)) + `{}`, "data after the config object"},
		{"no targets", `{}`, "targets: at least one target"},
		{"no luns", cfg(`{"name": "iqn.2026-11.dev.goiser:x"}`), "targets[0].luns: at least one LUN"},
		{"no name", cfg(`{"luns": [` + lun + `]}`), "targets[0].name: required"},
		{"bad iqn", cfg(`{"name": "iqn.2026-11.dev.goiser:Disk", "luns": [` + lun + `]}`), "targets[0].name: \"iqn.2026-11.dev.goiser:Disk\": iSCSI names are lower case"},
		{"bad name", cfg(`{"name": "disk1", "luns": [` + lun + `]}`), "targets[0].name: \"disk1\" is not an iSCSI name"},
		{"bad initiator", cfg(`{"name": "iqn.2026-11.dev.goiser:x", "initiators": ["iqn.2026-11.a", "bob"], "luns": [` + lun + `]}`), "targets[0].initiators[1]: \"bob\""},
		{"duplicate target", cfg(target(lun), target(lun)), "targets[1].name: \"iqn.2026-11.dev.goiser:x\" is also the name of targets[0]"},
		{"bad size", cfg(target(lun, `{"backend": "mem", "size": "10X"}`)), `targets[0].luns[1].size: "10X" is not a size`},
		{"negative size", cfg(target(`{"backend": "mem", "size": -5}`)), `targets[0].luns[0].size: "-5" is not a size`},
		{"fraction size", cfg(target(`{"backend": "mem", "size": 1.5e9}`)), `targets[0].luns[0].size: "1.5e9" is not a size`},
		{"bool size", cfg(target(`{"backend": "mem", "size": true}`)), `targets[0].luns[0].size: "true" is not a size`},
		{"no size", cfg(target(`{"backend": "mem"}`)), "targets[0].luns[0].size: required for a mem backend"},
		{"odd size", cfg(target(`{"backend": "mem", "size": 1000}`)), "targets[0].luns[0].size: 1000 bytes is not a multiple of the block size 512"},
		{"duplicate lun", cfg(target(`{"lun": 3, "backend": "mem", "size": "1M"}`, `{"lun": 3, "backend": "null", "size": "1M"}`)), "targets[0].luns[1].lun: LUN 3 is also luns[0]"},
		{"lun too big", cfg(target(`{"lun": 16384, "backend": "mem", "size": "1M"}`)), "targets[0].luns[0].lun: 16384 is more than 16383"},
		{"unknown backend", cfg(target(`{"backend": "rbd", "size": "1M"}`)), `targets[0].luns[0].backend: "rbd" is not mem, file or null`},
		{"no backend", cfg(target(`{"size": "1M"}`)), "targets[0].luns[0].backend: required"},
		{"file without path", cfg(target(`{"backend": "file", "size": "1M"}`)), "targets[0].luns[0].path: required for a file backend"},
		{"mem with path", cfg(target(`{"backend": "mem", "size": "1M", "path": "/x"}`)), "targets[0].luns[0].path: only a file backend"},
		{"physical block size", cfg(target(`{"backend": "mem", "size": "1M", "physical_block_size": 1536}`)), "targets[0].luns[0].physical_block_size: 1536 is not a power-of-two multiple of the block size 512"},
		{"physical below logical", cfg(target(`{"backend": "mem", "size": "1M", "block_size": 4096, "physical_block_size": 512}`)), "targets[0].luns[0].physical_block_size: 512"},
		{"bad block size", cfg(target(`{"backend": "mem", "size": "1M", "block_size": 1024}`)), "targets[0].luns[0].block_size: 1024 is not 512 or 4096"},
		{"chap without secret", cfg(`{"name": "iqn.2026-11.dev.goiser:x", "chap": {"user": "u"}, "luns": [` + lun + `]}`), "targets[0].chap: user and secret are both required"},
		{"mutual half", cfg(`{"name": "iqn.2026-11.dev.goiser:x", "chap": {"user": "u", "secret": "s", "mutual_user": "m"}, "luns": [` + lun + `]}`), "targets[0].chap: mutual_user and mutual_secret go together"},
		{"mutual same secret", cfg(`{"name": "iqn.2026-11.dev.goiser:x", "chap": {"user": "u", "secret": "s", "mutual_user": "m", "mutual_secret": "s"}, "luns": [` + lun + `]}`), "targets[0].chap: mutual_secret must differ"},
		{"bad portal", `{"portals": ["localhost"], "targets": [` + target(lun) + `]}`, "portals[0]: \"localhost\" is not host:port"},
		{"portal hostname", `{"portals": ["example.com:3260"], "targets": [` + target(lun) + `]}`, "portals[0]: \"example.com:3260\": host \"example.com\" is not an IP address"},
		{"portal port", `{"portals": ["127.0.0.1:70000"], "targets": [` + target(lun) + `]}`, "portals[0]: \"127.0.0.1:70000\": port \"70000\" is not 0..65535"},
		{"duplicate portal", `{"portals": ["127.0.0.1:3260", "127.0.0.1:3260"], "targets": [` + target(lun) + `]}`, "portals[1]: \"127.0.0.1:3260\" listed twice"},
		{"log level", `{"log": {"level": "loud"}, "targets": [` + target(lun) + `]}`, "log.level: \"loud\" is not debug"},
		{"log format", `{"log": {"format": "xml"}, "targets": [` + target(lun) + `]}`, "log.format: \"xml\" is not text or json"},
		{"shutdown", `{"shutdown_timeout": "soon", "targets": [` + target(lun) + `]}`, `shutdown_timeout: "soon" is not a duration`},
		{"nop interval", `{"negotiation": {"nop_in_interval": "-1s"}, "targets": [` + target(lun) + `]}`, `negotiation.nop_in_interval: "-1s" is not a duration`},
		{"burst range", `{"negotiation": {"max_burst_length": 100}, "targets": [` + target(lun) + `]}`, "negotiation.max_burst_length: 100 is outside 512..16777215"},
		{"first burst", `{"negotiation": {"max_burst_length": 8192, "first_burst_length": 65536}, "targets": [` + target(lun) + `]}`, "negotiation.first_burst_length: 65536 is more than max_burst_length 8192"},
		{"digest", `{"negotiation": {"digests": "CRC32C"}, "targets": [` + target(lun) + `]}`, "negotiation.digests: string is not a valid bool"},
		{"time2wait", `{"negotiation": {"default_time2wait": 7200}, "targets": [` + target(lun) + `]}`, "negotiation.default_time2wait: 7200 is outside 0..3600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.in))
			if err == nil {
				t.Fatalf("parseConfig accepted %s", tc.in)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := loadConfig(filepath.Join(t.TempDir(), "nope.json"))
	if err == nil || !strings.Contains(err.Error(), "read config") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
}

func TestFlagsDefault(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := buildConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Targets) != 1 || cfg.Targets[0].Name != defaultIQN || cfg.Portals[0] != defaultPortal {
		t.Fatalf("default config = %+v", cfg)
	}
	if l := cfg.Targets[0].LUNs; len(l) != 1 || l[0].LUN != 0 || l[0].Backend != "mem" || l[0].bytes != 1<<30 {
		t.Fatalf("default LUNs = %+v", l)
	}
}

func TestFlagsLUNs(t *testing.T) {
	o, err := parseFlags([]string{"-listen", "127.0.0.1:3999", "-target", "iqn.2026-11.dev.goiser:t",
		"-lun", "mem:64M", "-lun", "file:/tmp/x.img,size=1G,direct,ro", "-lun", "null:1G,lun=9,bs=4096,pbs=8192,removable,nounmap,writethrough",
		"-lun", "mem:1M", "-chap", "alice:secret1", "-mutual-chap", "tgt:secret2", "-log-level", "debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := buildConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Targets[0]
	want := []LUNConfig{
		{LUN: 0, Backend: "mem", Size: "64M", BlockSize: 512, bytes: 64 << 20},
		{LUN: 1, Backend: "file", Path: "/tmp/x.img", Size: "1G", Direct: true, ReadOnly: true, BlockSize: 512, bytes: 1 << 30},
		{LUN: 9, Backend: "null", Size: "1G", BlockSize: 4096, PhysicalBlockSize: 8192, Removable: true, WriteThrough: true, bytes: 1 << 30},
		{LUN: 10, Backend: "mem", Size: "1M", BlockSize: 512, bytes: 1 << 20},
	}
	if p := tc.LUNs[2].ThinProvisioning; p == nil || *p {
		t.Errorf("nounmap: thin_provisioning = %v", p)
	}
	tc.LUNs[2].ThinProvisioning = nil
	for i, w := range want {
		if tc.LUNs[i] != w {
			t.Errorf("lun %d = %+v, want %+v", i, tc.LUNs[i], w)
		}
	}
	if tc.CHAP == nil || tc.CHAP.User != "alice" || tc.CHAP.MutualSecret != "secret2" {
		t.Errorf("chap = %+v", tc.CHAP)
	}
	if cfg.Portals[0] != "127.0.0.1:3999" || cfg.Log.Level != "debug" {
		t.Errorf("portals %v, log %+v", cfg.Portals, cfg.Log)
	}
}

func TestFlagsErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.json")
	if err := os.WriteFile(conf, []byte(`{"targets": [{"name": "iqn.2026-11.dev.goiser:x", "luns": [{"backend": "mem", "size": "1M"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-lun", "disk:1G"}, `-lun disk:1G: unknown backend "disk"`},
		{[]string{"-lun", "mem"}, "-lun mem: want KIND:ARG"},
		{[]string{"-lun", "mem:1Q"}, `-lun mem:1Q: "1Q" is not a size`},
		{[]string{"-lun", "mem:1G,direct"}, `unknown option "direct" for a mem LUN`},
		{[]string{"-lun", "file:"}, "file: needs a path"},
		{[]string{"-lun", "mem:1M", "-lun", "mem:1M,lun=0"}, "targets[0].luns[1].lun: LUN 0 is also luns[0]"},
		{[]string{"-lun", "mem:1M,bs=x"}, `option "bs=x"`},
		{[]string{"-target", "mydisk"}, `targets[0].name: "mydisk" is not an iSCSI name`},
		{[]string{"-chap", "alice"}, "-chap \"alice\": want USER:SECRET"},
		{[]string{"-mutual-chap", "t:s"}, "-mutual-chap needs -chap too"},
		{[]string{"-listen", "3260"}, `portals[0]: "3260" is not host:port`},
		{[]string{"-log-level", "chatty"}, `log.level: "chatty"`},
		{[]string{"-config", conf, "-lun", "mem:1G"}, "cannot be combined with -config"},
		{[]string{"-config", conf, "-log-format", "xml"}, "config " + conf + `: log.format: "xml"`},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if err == nil {
			_, err = buildConfig(o)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

func TestNegotiationMapping(t *testing.T) {
	cfg, err := parseConfig([]byte(`{"negotiation": {"max_recv_data_segment_length": 65536, "max_burst_length": 1048576,
  "first_burst_length": 8192, "max_outstanding_r2t": 4, "immediate_data": false, "initial_r2t": true,
  "digests": false, "default_time2wait": 0, "default_time2retain": 20, "nop_in_interval": "0s"},
  "targets": [{"name": "iqn.2026-11.dev.goiser:x", "alias": "x", "initiators": ["iqn.2026-11.dev.goiser:i"],
    "chap": {"user": "u", "secret": "s1", "mutual_user": "m", "mutual_secret": "s2"},
    "luns": [{"backend": "null", "size": "1M"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	n := negotiation(cfg.Negotiation)
	if n.MaxRecvDataSegmentLength != 65536 || n.MaxBurstLength != 1<<20 || n.FirstBurstLength != 8192 || n.MaxOutstandingR2T != 4 ||
		!n.NoImmediateData || !n.InitialR2T || !n.NoDigests || n.DefaultTime2Wait != 0 || n.DefaultTime2Retain != 20 {
		t.Errorf("negotiation = %+v", n)
	}
	if z := negotiation(Negotiation{}); z != (iscsi.Negotiation{}) {
		t.Errorf("empty overrides must keep the core's defaults (zero values), got %+v", z)
	}
	targets, err := openTargets(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeTargets(targets, slog.New(slog.DiscardHandler))
	srv := newServer(cfg, targets, slog.New(slog.DiscardHandler))
	if srv.NOPInterval >= 0 {
		t.Errorf(`nop_in_interval "0s" must disable pings (negative NOPInterval), got %v`, srv.NOPInterval)
	}
	it := srv.Targets[0]
	if it.Name != "iqn.2026-11.dev.goiser:x" || it.Alias != "x" || len(it.Initiators) != 1 || it.LUNs == nil ||
		it.CHAP == nil || it.CHAP.User != "u" || it.CHAP.MutualSecret != "s2" {
		t.Errorf("target = %+v, chap %+v", it, it.CHAP)
	}
}

// TestDirectFileAlignment: a file LUN opened with O_DIRECT accepts I/O
// aligned to its logical block size, which is what initiators address.
func TestDirectFileAlignment(t *testing.T) {
	lc := LUNConfig{Backend: "file", Path: filepath.Join(t.TempDir(), "d.img"), Size: "1M", Direct: true}
	if err := lc.validate(); err != nil {
		t.Fatal(err)
	}
	b, err := openBackend(&lc)
	if err != nil {
		if strings.Contains(err.Error(), "O_DIRECT") {
			t.Skipf("SKIPPED: the file system of %s refuses O_DIRECT: %v", lc.Path, err)
		}
		t.Fatal(err)
	}
	defer b.Close()
	raw := make([]byte, 3*4096)
	start := 4096 - int(uintptr(unsafe.Pointer(&raw[0]))%4096)
	buf := raw[start+512 : start+512+1024] // 512-aligned, not 4096-aligned
	for i := range buf {
		buf[i] = byte(i)
	}
	if _, err := b.WriteAt(buf, 512); err != nil {
		t.Fatalf("512-byte aligned O_DIRECT write on a 512-byte block LUN: %v", err)
	}
	got := raw[start+2048 : start+2048+1024]
	if _, err := b.ReadAt(got, 512); err != nil {
		t.Fatalf("512-byte aligned O_DIRECT read: %v", err)
	}
	if !bytes.Equal(got, buf) {
		t.Fatal("O_DIRECT read back differs")
	}
}

// TestExampleConfig keeps the example of the package documentation valid:
// doc.go quotes testdata/example.json verbatim.
func TestExampleConfig(t *testing.T) {
	cfg, err := loadConfig(filepath.Join("testdata", "example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Targets) != 1 || len(cfg.Targets[0].LUNs) != 3 {
		t.Fatalf("example config = %+v", cfg)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "example.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var quoted strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		quoted.WriteString("//\t" + l + "\n")
	}
	if !strings.Contains(string(doc), quoted.String()) {
		t.Fatal("doc.go does not quote testdata/example.json verbatim")
	}
}

// TestISERConfig: iser_portals get port 3260 when they name none, and the
// iser section is checked.
func TestISERConfig(t *testing.T) {
	tgt := `"targets": [{"name": "iqn.2026-12.dev.goiser:x", "luns": [{"backend": "mem", "size": "1M"}]}]`
	cfg, err := parseConfig([]byte(`{"iser_portals": ["10.0.0.1", "10.0.0.2:3261", "[fd00::1]"], "iser": {"memory": "512M", "max_io_size": "1M"}, ` + tgt + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.1:3260", "10.0.0.2:3261", "[fd00::1]:3260"}; strings.Join(cfg.ISERPortals, " ") != strings.Join(want, " ") {
		t.Fatalf("iser_portals %v, want %v", cfg.ISERPortals, want)
	}
	for in, want := range map[string]string{
		`"iser_portals": ["rdma0"]`:                     "iser_portals[0]",
		`"iser_portals": ["10.0.0.1", "10.0.0.1:3260"]`: "listed twice",
		`"iser": {"memory": "1K"}`:                      "iser.memory",
		`"iser": {"poll_groups": 100}`:                  "iser.poll_groups",
	} {
		if _, err := parseConfig([]byte(`{` + in + `, ` + tgt + `}`)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", in, err, want)
		}
	}
}
