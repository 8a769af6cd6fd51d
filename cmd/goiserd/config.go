package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Built-in defaults: what goiserd serves with no flags and no config file.
const (
	defaultIQN      = "iqn.2026-11.dev.goiser:default"
	defaultPortal   = "127.0.0.1:3260"
	defaultLUNSize  = 1 << 30
	defaultShutdown = 10 * time.Second
	maxLUN          = 16383 // flat/peripheral addressing (SAM-5 §4.7)
	maxNameLen      = 223   // RFC 7143 §4.2.7.1: iSCSI names are at most 223 bytes
)

// Config is the daemon's configuration: the JSON config file, or what the
// flags build. Zero values are the documented defaults; validate checks
// everything before any object is built.
type Config struct {
	// Portals are the listen addresses (host:port) of the one portal
	// group every target is reached through; default ["127.0.0.1:3260"].
	Portals []string `json:"portals"`
	// ISERPortals are the iSER (RDMA) listen addresses, "ip[:port]" (port
	// 3260 by default; RDMA CM port space TCP), beside the TCP portals and
	// in the same portal group. A portal whose address has no RDMA device
	// is skipped with a warning; TCP keeps being served.
	ISERPortals []string `json:"iser_portals"`
	// ISER tunes the iSER transport.
	ISER ISERConfig `json:"iser"`
	// Log sets the log level and format.
	Log LogConfig `json:"log"`
	// ShutdownTimeout bounds the graceful shutdown on SIGTERM/SIGINT:
	// running commands get this long to finish before connections are
	// closed; default "10s".
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// shutdown is ShutdownTimeout, set by validate.
	shutdown time.Duration
	// Negotiation overrides the target's offers in login negotiation.
	Negotiation Negotiation `json:"negotiation"`
	// Limits bound what initiators can make the daemon hold
	// (docs/security.md).
	Limits Limits `json:"limits"`
	// Targets are the iSCSI targets served; at least one.
	Targets []TargetConfig `json:"targets"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `json:"level"`
	// Format is text (default) or json.
	Format string `json:"format"`
}

// TargetConfig is one iSCSI target (RFC 7143 §4.2.7).
type TargetConfig struct {
	// Name is the target's iSCSI name: iqn.YYYY-MM.reversed.domain[:id],
	// eui.<16 hex digits> or naa.<16 or 32 hex digits>. Required.
	Name string `json:"name"`
	// Alias is the TargetAlias sent at login; optional.
	Alias string `json:"alias"`
	// Initiators, when not empty, is the access list: only these
	// initiator names may log in to the target (and see it in
	// SendTargets discovery). Empty allows every initiator.
	Initiators []string `json:"initiators"`
	// CHAP, when set, requires CHAP authentication for this target.
	CHAP *CHAPConfig `json:"chap"`
	// LUNs are the logical units; at least one.
	LUNs []LUNConfig `json:"luns"`
}

// CHAPConfig holds CHAP secrets (RFC 7143 §12.1.3). User and Secret are
// what the initiator must prove it knows (one-way CHAP). MutualUser and
// MutualSecret, when set, are what the target answers with when the
// initiator also challenges the target (mutual CHAP).
type CHAPConfig struct {
	User         string `json:"user"`
	Secret       string `json:"secret"`
	MutualUser   string `json:"mutual_user"`
	MutualSecret string `json:"mutual_secret"`
}

// LUNConfig is one logical unit and its backend.
type LUNConfig struct {
	// LUN is the logical unit number, 0..16383; unique within a target.
	LUN uint64 `json:"lun"`
	// Backend is mem (in memory, lost on exit), file (a regular file or
	// block device) or null (reads zeros, discards writes).
	Backend string `json:"backend"`
	// Path is the backing file of a file backend.
	Path string `json:"path"`
	// Size is the capacity: a byte count or a number with a binary
	// suffix K, M, G, T (also Ki/KiB...), e.g. "1G" = 1073741824 bytes.
	// Required for mem and null. For file, optional: when set, a missing
	// file is created and a shorter one extended; when empty the file
	// must exist and its size is used.
	Size Size `json:"size"`
	// Direct opens a file backend with O_DIRECT.
	Direct bool `json:"direct"`
	// ReadOnly makes the LUN write protected.
	ReadOnly bool `json:"read_only"`
	// BlockSize is the logical block size, 512 (default) or 4096.
	BlockSize int `json:"block_size"`
	// Serial is the unit serial number (VPD page 0x80); default derived
	// from the LUN number.
	Serial string `json:"serial"`
	// PhysicalBlockSize is the physical block size reported in READ
	// CAPACITY(16), a power-of-two multiple of block_size; default
	// block_size.
	PhysicalBlockSize int `json:"physical_block_size"`
	// Removable makes the LUN a removable medium (START STOP UNIT ejects
	// and loads it; PREVENT ALLOW MEDIUM REMOVAL applies).
	Removable bool `json:"removable"`
	// ThinProvisioning offers UNMAP and WRITE SAME with UNMAP (hole
	// punching for files) when the backend can deallocate; default true.
	ThinProvisioning *bool `json:"thin_provisioning"`
	// WriteThrough reports no volatile write cache (WCE=0): every write is
	// flushed to stable storage before it completes. Default false: a
	// write-back cache that initiators flush with SYNCHRONIZE CACHE or FUA.
	WriteThrough bool `json:"write_through"`
	// bytes is Size in bytes (0 for a file backend without size), set by validate.
	bytes int64
}

// Negotiation overrides what the target offers or accepts in login
// negotiation (RFC 7143 §13) and how it watches idle connections. Unset
// fields keep the protocol core's defaults (in parentheses).
type Negotiation struct {
	// MaxRecvDataSegmentLength the target declares (262144).
	MaxRecvDataSegmentLength *uint32 `json:"max_recv_data_segment_length"`
	// MaxBurstLength offered (262144).
	MaxBurstLength *uint32 `json:"max_burst_length"`
	// FirstBurstLength offered (65536).
	FirstBurstLength *uint32 `json:"first_burst_length"`
	// MaxOutstandingR2T offered (1).
	MaxOutstandingR2T *uint32 `json:"max_outstanding_r2t"`
	// ImmediateData accepted (true).
	ImmediateData *bool `json:"immediate_data"`
	// InitialR2T required (false: unsolicited data up to FirstBurstLength).
	InitialR2T *bool `json:"initial_r2t"`
	// Digests: whether CRC32C header and data digests are accepted when
	// the initiator proposes them (true).
	Digests *bool `json:"digests"`
	// DefaultTime2Wait and DefaultTime2Retain offered, seconds (2, 20;
	// 0 also selects the default).
	DefaultTime2Wait   *uint32 `json:"default_time2wait"`
	DefaultTime2Retain *uint32 `json:"default_time2retain"`
	// NopInInterval is how long a connection may stay silent before the
	// target pings it with a NOP-In ("5s"; "0s" disables pings).
	NopInInterval Duration `json:"nop_in_interval"`
}

// ISERConfig tunes the iSER transport (docs/iser.md). Unset fields keep
// the transport's defaults (in parentheses).
type ISERConfig struct {
	// Memory is the registered memory for command data per RDMA device,
	// shared by every iSER connection on it ("256M"). When it runs out,
	// commands wait for a buffer; they do not fail.
	Memory Size `json:"memory"`
	// MaxIOSize is the largest command data buffer ("8M").
	MaxIOSize Size `json:"max_io_size"`
	// RecvDataSize is the TargetRecvDataSegmentLength declared: the most
	// immediate or unsolicited data one SEND may carry ("8K").
	RecvDataSize Size `json:"recv_data_size"`
	// PollGroups is the number of completion-polling goroutines per
	// device (1).
	PollGroups int `json:"poll_groups"`
}

// validate checks the iSER settings.
func (c *ISERConfig) validate() error {
	for _, f := range []struct {
		name   string
		v      Size
		lo, hi int64
	}{{"memory", c.Memory, 1 << 20, 1 << 40}, {"max_io_size", c.MaxIOSize, 4096, 1 << 30}, {"recv_data_size", c.RecvDataSize, 512, 1 << 24}} {
		n, err := f.v.Bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if f.v != "" && (n < f.lo || n > f.hi) {
			return fmt.Errorf("%s: %s is outside %s..%s", f.name, f.v, formatSize(f.lo), formatSize(f.hi))
		}
	}
	if c.PollGroups < 0 || c.PollGroups > 64 {
		return fmt.Errorf("poll_groups: %d is outside 0..64", c.PollGroups)
	}
	return nil
}

// Limits bound what initiators, hostile or broken, can make the daemon
// hold. Unset fields keep the protocol core's defaults (in parentheses);
// docs/security.md explains each.
type Limits struct {
	// MaxConnections over all portals, login phase included (4096, and
	// never more than the open-file limit allows).
	MaxConnections *int `json:"max_connections"`
	// MaxConnectionsPerPortal (max_connections).
	MaxConnectionsPerPortal *int `json:"max_connections_per_portal"`
	// MaxConnectionsPerHost: connections from one initiator IP address
	// (256).
	MaxConnectionsPerHost *int `json:"max_connections_per_host"`
	// MaxSessionsPerTarget: normal sessions per target (1024).
	MaxSessionsPerTarget *int `json:"max_sessions_per_target"`
	// QueueDepth: commands in flight per session, the CmdSN window (128).
	QueueDepth *int `json:"queue_depth"`
	// SessionTaskMemory: bytes of task data buffers per session ("128M").
	SessionTaskMemory Size `json:"session_task_memory"`
	// TaskMemory: bytes of task data buffers over all sessions ("1G").
	TaskMemory Size `json:"task_memory"`
	// LoginTimeout: a connection that has not finished its login this
	// long after it was accepted is closed ("15s").
	LoginTimeout Duration `json:"login_timeout"`
	// DataOutTimeout: a write waiting this long for its Data-Out ends its
	// connection ("30s"; "0s" disables).
	DataOutTimeout Duration `json:"data_out_timeout"`
	// MaxTextLength: the most text a login or Text request may carry over
	// continued (C-bit) PDUs ("64K").
	MaxTextLength Size `json:"max_text_length"`
}

// validate checks the ranges of the limits.
func (l *Limits) validate() error {
	for _, f := range []struct {
		name string
		v    *int
		lo   int
		hi   int
	}{
		{"max_connections", l.MaxConnections, 1, 1 << 20},
		{"max_connections_per_portal", l.MaxConnectionsPerPortal, 1, 1 << 20},
		{"max_connections_per_host", l.MaxConnectionsPerHost, 1, 1 << 20},
		{"max_sessions_per_target", l.MaxSessionsPerTarget, 1, 65535},
		{"queue_depth", l.QueueDepth, 1, 4096},
	} {
		if f.v != nil && (*f.v < f.lo || *f.v > f.hi) {
			return fmt.Errorf("%s: %d is outside %d..%d", f.name, *f.v, f.lo, f.hi)
		}
	}
	for _, f := range []struct {
		name string
		v    Size
	}{{"session_task_memory", l.SessionTaskMemory}, {"task_memory", l.TaskMemory}} {
		n, err := f.v.Bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if f.v != "" && n < 1<<20 {
			return fmt.Errorf("%s: %s is less than 1M", f.name, f.v)
		}
	}
	if n, err := l.MaxTextLength.Bytes(); err != nil {
		return fmt.Errorf("max_text_length: %w", err)
	} else if l.MaxTextLength != "" && (n < 8192 || n > 16<<20) {
		return fmt.Errorf("max_text_length: %s is outside 8K..16M", l.MaxTextLength)
	}
	for _, f := range []struct {
		name string
		v    Duration
	}{{"login_timeout", l.LoginTimeout}, {"data_out_timeout", l.DataOutTimeout}} {
		if _, err := f.v.Value(); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if d, _ := l.LoginTimeout.Value(); l.LoginTimeout != "" && d < time.Second {
		return fmt.Errorf("login_timeout: %s is less than 1s", l.LoginTimeout)
	}
	return nil
}

// Size is a capacity as written in the config: a JSON number of bytes or
// a string with a binary suffix ("512M", "1G", "10GiB"). It is checked and
// converted by validate, so that errors name the field.
type Size string

// UnmarshalJSON accepts a JSON number or string and keeps its text.
func (s *Size) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = Size(v)
		return nil
	}
	*s = Size(b) // a number (or null, true...: parseSize refuses them)
	return nil
}

// Bytes returns the size in bytes; 0 when unset.
func (s Size) Bytes() (int64, error) {
	if s == "" {
		return 0, nil
	}
	return parseSize(string(s))
}

// formatSize formats n with the largest exact binary suffix.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// parseSize parses "4096", "512K", "1G", "1Gi", "1GiB", "2T" (binary units).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	shift := uint(0)
	if t != "" {
		switch t[len(t)-1] {
		case 'K', 'k':
			shift = 10
		case 'M', 'm':
			shift = 20
		case 'G', 'g':
			shift = 30
		case 'T', 't':
			shift = 40
		}
		if shift > 0 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || (shift > 0 && t == "") {
		return 0, fmt.Errorf("%q is not a size (a byte count, or a number with K, M, G or T)", s)
	}
	if n > math.MaxInt64>>(shift+1) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

// Duration is a time span as written in the config: a Go duration string
// such as "10s" or "1m30s". It is checked by validate.
type Duration string

// Value returns the duration; 0 when unset.
func (d Duration) Value() (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(string(d))
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a duration like \"10s\"", string(d))
	}
	return v, nil
}

// loadConfig reads and validates the JSON config file at path.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// parseConfig decodes a JSON config strictly (unknown fields, trailing
// data and type errors are errors that name the field and line) and
// validates it.
func parseConfig(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, jsonError(data, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("line %d: data after the config object", lineOf(data, dec.InputOffset()))
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// jsonError turns an encoding/json error into one that names the line
// and, where known, the field.
func jsonError(data []byte, dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: invalid JSON: %v", lineOf(data, syn.Offset), syn)
	case errors.As(err, &typ):
		return fmt.Errorf("line %d: %s: %s is not a valid %s", lineOf(data, typ.Offset), jsonPath(typ.Field), typ.Value, typ.Type)
	case errors.Is(err, io.EOF):
		return errors.New("empty config file")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("config file ends in the middle of a JSON value")
	}
	line := lineOf(data, dec.InputOffset())
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("line %d: unknown field %s", line, msg)
	}
	return fmt.Errorf("line %d: %s", line, strings.TrimPrefix(err.Error(), "json: "))
}

// jsonPath names the field of a type error ("targets.luns.lun").
func jsonPath(field string) string {
	if field == "" {
		return "config"
	}
	return field
}

func lineOf(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

// validate checks every field and fills defaults. Errors name the field
// as a JSON path, e.g. targets[0].luns[1].size.
func (c *Config) validate() error {
	if len(c.Portals) == 0 {
		c.Portals = []string{defaultPortal}
	}
	seenPortal := map[string]bool{}
	for i, p := range c.Portals {
		if err := checkPortal(p); err != nil {
			return fmt.Errorf("portals[%d]: %w", i, err)
		}
		if seenPortal[p] {
			return fmt.Errorf("portals[%d]: %q listed twice", i, p)
		}
		seenPortal[p] = true
	}
	seenISER := map[string]bool{}
	for i, p := range c.ISERPortals {
		full, err := iserPortal(p)
		if err != nil {
			return fmt.Errorf("iser_portals[%d]: %w", i, err)
		}
		if seenISER[full] {
			return fmt.Errorf("iser_portals[%d]: %q listed twice", i, p)
		}
		seenISER[full] = true
		c.ISERPortals[i] = full
	}
	if err := c.ISER.validate(); err != nil {
		return fmt.Errorf("iser.%w", err)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	d, err := c.ShutdownTimeout.Value()
	if err != nil {
		return fmt.Errorf("shutdown_timeout: %w", err)
	}
	if d == 0 {
		d = defaultShutdown
	}
	c.shutdown = d
	if err := c.Negotiation.validate(); err != nil {
		return fmt.Errorf("negotiation.%w", err)
	}
	if err := c.Limits.validate(); err != nil {
		return fmt.Errorf("limits.%w", err)
	}
	if len(c.Targets) == 0 {
		return errors.New("targets: at least one target is required")
	}
	seenName := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		if err := t.validate(); err != nil {
			return fmt.Errorf("targets[%d].%w", i, err)
		}
		if j, dup := seenName[t.Name]; dup {
			return fmt.Errorf("targets[%d].name: %q is also the name of targets[%d]", i, t.Name, j)
		}
		seenName[t.Name] = i
	}
	return nil
}

// iserPortal checks an iSER portal address and adds the default port
// 3260 when it has none.
func iserPortal(p string) (string, error) {
	if _, _, err := net.SplitHostPort(p); err != nil {
		if ip := net.ParseIP(strings.Trim(p, "[]")); ip != nil {
			p = net.JoinHostPort(ip.String(), "3260")
		}
	}
	if err := checkPortal(p); err != nil {
		return "", err
	}
	return p, nil
}

func checkPortal(p string) error {
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", p, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not 0..65535 (0 picks a free port)", p, port)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: host %q is not an IP address", p, host)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}

func (n *Negotiation) validate() error {
	check := func(name string, v *uint32, lo, hi uint32) error {
		if v != nil && (*v < lo || *v > hi) {
			return fmt.Errorf("%s: %d is outside %d..%d", name, *v, lo, hi)
		}
		return nil
	}
	// Ranges from RFC 7143 §13.
	if err := check("max_recv_data_segment_length", n.MaxRecvDataSegmentLength, 512, 1<<24-1); err != nil {
		return err
	}
	if err := check("max_burst_length", n.MaxBurstLength, 512, 1<<24-1); err != nil {
		return err
	}
	if err := check("first_burst_length", n.FirstBurstLength, 512, 1<<24-1); err != nil {
		return err
	}
	if err := check("max_outstanding_r2t", n.MaxOutstandingR2T, 1, 65535); err != nil {
		return err
	}
	if err := check("default_time2wait", n.DefaultTime2Wait, 0, 3600); err != nil {
		return err
	}
	if err := check("default_time2retain", n.DefaultTime2Retain, 0, 3600); err != nil {
		return err
	}
	if n.FirstBurstLength != nil && n.MaxBurstLength != nil && *n.FirstBurstLength > *n.MaxBurstLength {
		return fmt.Errorf("first_burst_length: %d is more than max_burst_length %d", *n.FirstBurstLength, *n.MaxBurstLength)
	}
	if _, err := n.NopInInterval.Value(); err != nil {
		return fmt.Errorf("nop_in_interval: %w", err)
	}
	return nil
}

func (t *TargetConfig) validate() error {
	if t.Name == "" {
		return errors.New("name: required (an iSCSI name such as iqn.2026-11.com.example:disk1)")
	}
	if err := checkName(t.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	for i, n := range t.Initiators {
		if err := checkName(n); err != nil {
			return fmt.Errorf("initiators[%d]: %w", i, err)
		}
	}
	if c := t.CHAP; c != nil {
		if c.User == "" || c.Secret == "" {
			return errors.New("chap: user and secret are both required")
		}
		if (c.MutualUser == "") != (c.MutualSecret == "") {
			return errors.New("chap: mutual_user and mutual_secret go together")
		}
		if c.MutualSecret != "" && c.MutualSecret == c.Secret {
			// RFC 7143 §12.1.3: the target must not accept its own secret back.
			return errors.New("chap: mutual_secret must differ from secret")
		}
	}
	if len(t.LUNs) == 0 {
		return errors.New("luns: at least one LUN is required")
	}
	seen := map[uint64]int{}
	for i := range t.LUNs {
		l := &t.LUNs[i]
		if err := l.validate(); err != nil {
			return fmt.Errorf("luns[%d].%w", i, err)
		}
		if j, dup := seen[l.LUN]; dup {
			return fmt.Errorf("luns[%d].lun: LUN %d is also luns[%d]", i, l.LUN, j)
		}
		seen[l.LUN] = i
	}
	return nil
}

func (l *LUNConfig) validate() error {
	if l.LUN > maxLUN {
		return fmt.Errorf("lun: %d is more than %d", l.LUN, maxLUN)
	}
	if l.BlockSize == 0 {
		l.BlockSize = 512
	}
	if l.BlockSize != 512 && l.BlockSize != 4096 {
		return fmt.Errorf("block_size: %d is not 512 or 4096", l.BlockSize)
	}
	if p := l.PhysicalBlockSize; p != 0 {
		if p < l.BlockSize || p%l.BlockSize != 0 || (p/l.BlockSize)&(p/l.BlockSize-1) != 0 || p/l.BlockSize > 1<<15 {
			return fmt.Errorf("physical_block_size: %d is not a power-of-two multiple of the block size %d", p, l.BlockSize)
		}
	}
	n, err := l.Size.Bytes()
	if err != nil {
		return fmt.Errorf("size: %w", err)
	}
	l.bytes = n
	switch l.Backend {
	case "mem", "null":
		if n == 0 {
			return fmt.Errorf("size: required for a %s backend", l.Backend)
		}
		if l.Path != "" || l.Direct {
			return fmt.Errorf("path: only a file backend has a path or direct")
		}
	case "file":
		if l.Path == "" {
			return errors.New("path: required for a file backend")
		}
	case "":
		return errors.New("backend: required (mem, file or null)")
	default:
		return fmt.Errorf("backend: %q is not mem, file or null", l.Backend)
	}
	if n%int64(l.BlockSize) != 0 {
		return fmt.Errorf("size: %d bytes is not a multiple of the block size %d", n, l.BlockSize)
	}
	return nil
}

// iSCSI names (RFC 7143 §4.2.7, RFC 3722 stringprep leaves lower case
// letters, digits, '-', '.' and ':').
var (
	iqnRE = regexp.MustCompile(`^iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[a-z0-9.:_-]*)?$`)
	euiRE = regexp.MustCompile(`^eui\.[0-9A-F]{16}$`)
	naaRE = regexp.MustCompile(`^naa\.([0-9A-F]{16}|[0-9A-F]{32})$`)
)

// checkName validates an iSCSI name.
func checkName(n string) error {
	if len(n) > maxNameLen {
		return fmt.Errorf("%q is longer than %d bytes", n, maxNameLen)
	}
	switch {
	case strings.HasPrefix(n, "iqn."):
		if n != strings.ToLower(n) {
			return fmt.Errorf("%q: iSCSI names are lower case (RFC 3722)", n)
		}
		if !iqnRE.MatchString(n) {
			return fmt.Errorf("%q is not an iqn name (iqn.YYYY-MM.reversed.domain[:identifier])", n)
		}
	case strings.HasPrefix(n, "eui."):
		if !euiRE.MatchString(n) {
			return fmt.Errorf("%q is not an eui name (eui. and 16 upper case hex digits)", n)
		}
	case strings.HasPrefix(n, "naa."):
		if !naaRE.MatchString(n) {
			return fmt.Errorf("%q is not a naa name (naa. and 16 or 32 upper case hex digits)", n)
		}
	default:
		return fmt.Errorf("%q is not an iSCSI name (iqn., eui. or naa.)", n)
	}
	return nil
}
