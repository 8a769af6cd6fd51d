package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// options are the parsed command line.
type options struct {
	config    string
	listen    string
	target    string
	luns      []string
	chap      string
	mutual    string
	logLevel  string
	logFormat string
	addrFile  string
	iser      []string
	pprof     string
}

const usageText = `Usage: goiserd [flags]

goiserd serves SCSI logical units over iSCSI/TCP (RFC 7143) and iSER (RFC 7145).

With no flags it serves the built-in default: a 1 GiB in-memory LUN 0 under
` + defaultIQN + ` on ` + defaultPortal + `.

Flags for the common case (one target):
  -listen ADDR     listen address host:port (default ` + defaultPortal + `)
  -iser ADDR[:PORT]  also serve iSER (iSCSI over RDMA, RFC 7145) on this address of an
                   RDMA device (RoCE, InfiniBand, Soft-RoCE); port 3260 by default;
                   repeatable. Without an RDMA device there, goiserd says so and
                   serves TCP only
  -target IQN      target name (default ` + defaultIQN + `)
  -lun SPEC        a LUN, repeatable; numbered 0, 1, ... in order unless lun=N is given:
                     mem:SIZE[,OPTION...]                 in memory, lost on exit
                     file:PATH[,size=SIZE][,direct][,OPTION...]
                                                          a file or block device; size creates/extends it
                     null:SIZE[,OPTION...]                reads zeros, discards writes
                   OPTION: lun=N, ro, bs=4096 (block size), pbs=4096 (physical block size),
                   removable, nounmap (no thin provisioning), writethrough (WCE=0), serial=S
                   SIZE is bytes or K/M/G/T (binary), e.g. 1G (default: one mem:1G LUN)
  -chap USER:SECRET         require CHAP from initiators
  -mutual-chap USER:SECRET  answer the initiator's CHAP challenge (mutual CHAP)

Or a config file (JSON; see "go doc ./cmd/goiserd"):
  -config FILE     targets, LUNs, portals, ACLs, CHAP, negotiation overrides;
                   -listen, -iser and -log-level/-log-format override it,
                   -target, -lun and -chap cannot be combined with it

Logging and scripting:
  -log-level LEVEL   debug, info, warn or error (default info)
  -log-format FMT    text or json (default text)
  -addr-file FILE    once every portal listens, write one line "tcp HOST:PORT" per
                     portal to FILE (atomically): with port 0 in -listen or the
                     config, scripts learn the port the daemon got
  -pprof ADDR        serve net/http/pprof on ADDR (a loopback address such as
                     127.0.0.1:6060; others are refused) for profiling, e.g.
                     go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10

On SIGTERM or SIGINT goiserd shuts down gracefully (bounded by the config's
shutdown_timeout, default 10s), flushes and closes the backends; a second
signal exits at once.
`

// parseFlags parses args (without the program name).
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("goiserd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText) }
	fs.StringVar(&o.config, "config", "", "JSON config file")
	fs.StringVar(&o.listen, "listen", "", "listen address host:port")
	fs.StringVar(&o.target, "target", "", "target IQN")
	fs.Func("lun", "LUN spec (repeatable)", func(s string) error { o.luns = append(o.luns, s); return nil })
	fs.StringVar(&o.chap, "chap", "", "USER:SECRET for CHAP")
	fs.StringVar(&o.mutual, "mutual-chap", "", "USER:SECRET for mutual CHAP")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "", "text or json")
	fs.StringVar(&o.addrFile, "addr-file", "", "write the listen addresses to this file once serving")
	fs.StringVar(&o.pprof, "pprof", "", "serve net/http/pprof on this loopback address")
	fs.Func("iser", "iSER portal ADDR[:PORT] (repeatable)", func(s string) error { o.iser = append(o.iser, s); return nil })
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	return &o, nil
}

// buildConfig turns the options into a validated Config: the config file
// when given (with -listen and -log-* overriding it), else the flags, else
// the built-in default.
func buildConfig(o *options) (*Config, error) {
	var cfg *Config
	if o.config != "" {
		if o.target != "" || len(o.luns) > 0 || o.chap != "" || o.mutual != "" {
			return nil, errors.New("-target, -lun, -chap and -mutual-chap cannot be combined with -config: put them in the config file")
		}
		var err error
		if cfg, err = loadConfig(o.config); err != nil {
			return nil, err
		}
	} else {
		t := TargetConfig{Name: o.target}
		if t.Name == "" {
			t.Name = defaultIQN
		}
		if len(o.luns) == 0 {
			t.LUNs = []LUNConfig{{LUN: 0, Backend: "mem", Size: Size(formatSize(defaultLUNSize))}}
		}
		next := uint64(0)
		for _, s := range o.luns {
			l, err := parseLUNSpec(s, next)
			if err != nil {
				return nil, fmt.Errorf("-lun %s: %w", s, err)
			}
			t.LUNs = append(t.LUNs, l)
			next = l.LUN + 1
		}
		if o.chap != "" || o.mutual != "" {
			t.CHAP = &CHAPConfig{}
			if o.chap != "" {
				u, s, ok := strings.Cut(o.chap, ":")
				if !ok || u == "" || s == "" {
					return nil, fmt.Errorf("-chap %q: want USER:SECRET", o.chap)
				}
				t.CHAP.User, t.CHAP.Secret = u, s
			}
			if o.mutual != "" {
				u, s, ok := strings.Cut(o.mutual, ":")
				if !ok || u == "" || s == "" {
					return nil, fmt.Errorf("-mutual-chap %q: want USER:SECRET", o.mutual)
				}
				t.CHAP.MutualUser, t.CHAP.MutualSecret = u, s
			}
			if t.CHAP.User == "" {
				return nil, errors.New("-mutual-chap needs -chap too")
			}
		}
		cfg = &Config{Targets: []TargetConfig{t}}
	}
	if o.listen != "" {
		cfg.Portals = []string{o.listen}
	}
	if len(o.iser) > 0 {
		cfg.ISERPortals = o.iser
	}
	if o.logLevel != "" {
		cfg.Log.Level = o.logLevel
	}
	if o.logFormat != "" {
		cfg.Log.Format = o.logFormat
	}
	if err := cfg.validate(); err != nil {
		if o.config != "" {
			return nil, fmt.Errorf("config %s: %w", o.config, err)
		}
		return nil, err
	}
	return cfg, nil
}

// parseLUNSpec parses a -lun value: KIND:ARG[,OPTION...] where KIND is
// mem, file or null. num is the LUN number used when no lun=N is given.
func parseLUNSpec(spec string, num uint64) (LUNConfig, error) {
	kind, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return LUNConfig{}, errors.New("want KIND:ARG, e.g. mem:1G, file:/path/disk.img or null:1G")
	}
	parts := strings.Split(rest, ",")
	l := LUNConfig{LUN: num, Backend: kind}
	switch kind {
	case "mem", "null":
		if _, err := parseSize(parts[0]); err != nil {
			return LUNConfig{}, err
		}
		l.Size = Size(parts[0])
	case "file":
		if parts[0] == "" {
			return LUNConfig{}, errors.New("file: needs a path")
		}
		l.Path = parts[0]
	default:
		return LUNConfig{}, fmt.Errorf("unknown backend %q (mem, file or null)", kind)
	}
	for _, opt := range parts[1:] {
		key, val, hasVal := strings.Cut(opt, "=")
		var err error
		switch {
		case key == "size" && hasVal && kind == "file":
			_, err = parseSize(val)
			l.Size = Size(val)
		case key == "direct" && !hasVal && kind == "file":
			l.Direct = true
		case (key == "ro" || key == "readonly") && !hasVal:
			l.ReadOnly = true
		case key == "bs" && hasVal:
			l.BlockSize, err = strconv.Atoi(val)
		case key == "lun" && hasVal:
			l.LUN, err = strconv.ParseUint(val, 10, 64)
		case key == "serial" && hasVal:
			l.Serial = val
		case key == "pbs" && hasVal:
			l.PhysicalBlockSize, err = strconv.Atoi(val)
		case key == "removable" && !hasVal:
			l.Removable = true
		case key == "nounmap" && !hasVal:
			no := false
			l.ThinProvisioning = &no
		case key == "writethrough" && !hasVal:
			l.WriteThrough = true
		default:
			return LUNConfig{}, fmt.Errorf("unknown option %q for a %s LUN", opt, kind)
		}
		if err != nil {
			return LUNConfig{}, fmt.Errorf("option %q: %w", opt, err)
		}
	}
	return l, nil
}
