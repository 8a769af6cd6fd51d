package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/tcp"
)

// exitError carries the exit status main should use.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks a bad command line or config (exit status 2).
func usageError(err error) error { return &exitError{code: 2, err: err} }

// run is the whole daemon: parse, validate, build, serve until ctx ends,
// shut down. stdout gets the "how to reach it" hints, stderr the logs.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return usageError(err)
	}
	cfg, err := buildConfig(o)
	if err != nil {
		return usageError(err)
	}
	log := newLogger(cfg.Log, stderr)
	if o.pprof != "" {
		if err := servePprof(o.pprof, log); err != nil {
			return usageError(err)
		}
	}

	targets, err := openTargets(cfg, log)
	if err != nil {
		return err
	}
	served := false
	defer func() {
		if err := closeTargets(targets, log); err == nil && served {
			log.Info("backends flushed and closed")
		}
	}()

	portals, err := listen(cfg.Portals, log)
	if err != nil {
		return err
	}
	srv := newServer(cfg, targets, log)
	portals = append(portals, listenISER(cfg, srv, log)...)
	files := len(portals)
	for _, t := range targets {
		files += len(t.cfg.LUNs)
	}
	clampConnections(srv, files, log)
	served = true
	errc := make(chan error, len(portals))
	for _, p := range portals {
		go func() { errc <- srv.Serve(p.t) }()
	}
	announce(cfg, portals, targets, log, stdout)
	if o.addrFile != "" {
		if err := writeAddrFile(o.addrFile, portals); err != nil {
			log.Error("cannot report the listen addresses", "err", err)
			_ = srv.Close()
			return err
		}
	}

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx), "timeout", cfg.shutdown)
	case serveErr = <-errc:
		log.Error("portal failed; shutting down", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdown)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown timed out; remaining connections closed", "after", time.Since(start).Round(time.Millisecond))
	} else {
		log.Info("all sessions ended", "after", time.Since(start).Round(time.Millisecond))
	}
	for range len(portals) - boolInt(serveErr != nil) {
		if err := <-errc; err != nil && !errors.Is(err, iscsi.ErrServerClosed) && serveErr == nil {
			serveErr = err
		}
	}
	if serveErr != nil && !errors.Is(serveErr, iscsi.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// newLogger builds the slog logger the config asks for.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Level) // validated
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// portal is one listening transport of the daemon.
type portal struct {
	kind string // "tcp" (iSCSI/TCP) or "iser"
	t    iscsi.Transport
}

// listen opens every portal; on error the ones already open are closed.
// A busy port gives "listen 127.0.0.1:3260: address already in use"; port
// 0 picks a free port (Addr reports it).
func listen(portals []string, log *slog.Logger) ([]portal, error) {
	var out []portal
	for _, addr := range portals {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, p := range out {
				p.t.Close()
			}
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("listen %s: address already in use (is another target running? choose a port with -listen)", addr)
			}
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				return nil, fmt.Errorf("listen %s: no local interface has this address", addr)
			}
			if errors.Is(err, syscall.EACCES) {
				return nil, fmt.Errorf("listen %s: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)", addr)
			}
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		out = append(out, portal{kind: "tcp", t: tcp.New(l, tcp.Config{Logger: log.With("portal", l.Addr().String())})})
	}
	return out, nil
}

// writeAddrFile writes one line "KIND ADDR" per portal, with the port each
// one got, to path: atomically (temporary file, rename), so a script that
// waits for the file reads it whole, and only once every portal listens.
func writeAddrFile(path string, portals []portal) error {
	var b strings.Builder
	for _, p := range portals {
		fmt.Fprintf(&b, "%s %s\n", p.kind, p.t.Addr())
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write -addr-file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write -addr-file: %w", err)
	}
	return nil
}

// newServer builds the iscsi.Server from the config and the SCSI targets.
func newServer(cfg *Config, targets []*openedTarget, log *slog.Logger) *iscsi.Server {
	srv := &iscsi.Server{Logger: log, Negotiation: negotiation(cfg.Negotiation)}
	if d, _ := cfg.Negotiation.NopInInterval.Value(); cfg.Negotiation.NopInInterval != "" {
		srv.NOPInterval = d
		if d == 0 {
			srv.NOPInterval = -1 // disabled
		}
	}
	srv.Limits = limits(cfg.Limits)
	if d, _ := cfg.Limits.LoginTimeout.Value(); d > 0 {
		srv.LoginTimeout = d
	}
	if q := cfg.Limits.QueueDepth; q != nil {
		srv.QueueDepth = *q
	}
	if n, _ := cfg.Limits.MaxTextLength.Bytes(); n > 0 {
		srv.MaxTextLength = int(n)
	}
	for _, t := range targets {
		it := &iscsi.Target{
			Name:       t.cfg.Name,
			Alias:      t.cfg.Alias,
			LUNs:       t.scsi,
			Initiators: t.cfg.Initiators,
		}
		if c := t.cfg.CHAP; c != nil {
			it.CHAP = &iscsi.CHAP{User: c.User, Secret: c.Secret, MutualUser: c.MutualUser, MutualSecret: c.MutualSecret}
		}
		srv.Targets = append(srv.Targets, it)
	}
	return srv
}

// limits maps the config's limits onto iscsi.Limits, whose zero values
// are the protocol core's defaults.
func limits(l Limits) iscsi.Limits {
	var out iscsi.Limits
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&out.MaxConnections, l.MaxConnections)
	set(&out.MaxConnectionsPerPortal, l.MaxConnectionsPerPortal)
	set(&out.MaxConnectionsPerHost, l.MaxConnectionsPerHost)
	set(&out.MaxSessionsPerTarget, l.MaxSessionsPerTarget)
	out.MaxSessionTaskMemory, _ = l.SessionTaskMemory.Bytes() // validated
	out.MaxTaskMemory, _ = l.TaskMemory.Bytes()
	if l.DataOutTimeout != "" {
		d, _ := l.DataOutTimeout.Value()
		out.DataOutTimeout = d
		if d == 0 {
			out.DataOutTimeout = -1 // disabled
		}
	}
	return out
}

// fdReserve is how many open files goiserd keeps for itself (listeners,
// backend files, logs) when it fits MaxConnections under the open-file
// limit.
const fdReserve = 64

// clampConnections lowers srv.Limits.MaxConnections so that every
// connection it admits has a file descriptor to spare: accept never fails
// with "too many open files" because of connections the limits let in.
// Go raises the soft RLIMIT_NOFILE to the hard one at start; soft is what
// remains.
func clampConnections(srv *iscsi.Server, files int, log *slog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return
	}
	want := srv.Limits.MaxConnections
	if want <= 0 {
		want = iscsi.DefaultMaxConnections
	}
	room := int(rl.Cur) - fdReserve - files
	if room >= want {
		return
	}
	room = max(room, 1)
	log.Warn("max_connections lowered to fit the open-file limit (raise it with ulimit -n or LimitNOFILE=)",
		"max_connections", room, "configured", want, "nofile", rl.Cur)
	srv.Limits.MaxConnections = room
}

// negotiation maps the config's overrides onto iscsi.Negotiation, whose
// zero values are the protocol core's defaults.
func negotiation(n Negotiation) iscsi.Negotiation {
	var out iscsi.Negotiation
	set := func(dst *uint32, v *uint32) {
		if v != nil {
			*dst = *v
		}
	}
	set(&out.MaxRecvDataSegmentLength, n.MaxRecvDataSegmentLength)
	set(&out.MaxBurstLength, n.MaxBurstLength)
	set(&out.FirstBurstLength, n.FirstBurstLength)
	set(&out.MaxOutstandingR2T, n.MaxOutstandingR2T)
	set(&out.DefaultTime2Wait, n.DefaultTime2Wait)
	set(&out.DefaultTime2Retain, n.DefaultTime2Retain)
	if n.ImmediateData != nil {
		out.NoImmediateData = !*n.ImmediateData
	}
	if n.InitialR2T != nil {
		out.InitialR2T = *n.InitialR2T
	}
	if n.Digests != nil {
		out.NoDigests = !*n.Digests
	}
	return out
}

// announce logs what is served and prints how to reach it.
func announce(cfg *Config, portals []portal, targets []*openedTarget, log *slog.Logger, stdout io.Writer) {
	var addrs []string
	for _, p := range portals {
		addrs = append(addrs, p.t.Addr().String())
	}
	for _, t := range targets {
		for _, l := range t.cfg.LUNs {
			what := l.Backend
			if l.Path != "" {
				what += " " + l.Path
			}
			size := l.bytes
			if i := indexOfLUN(t, l.LUN); i >= 0 {
				size = t.backends[i].Size()
			}
			log.Info("serving LUN", "target", t.cfg.Name, "lun", l.LUN, "backend", what,
				"size", formatSize(size), "block_size", l.BlockSize, "read_only", l.ReadOnly)
		}
		log.Info("serving target", "target", t.cfg.Name, "portals", strings.Join(addrs, ","),
			"acl", len(t.cfg.Initiators), "chap", t.cfg.CHAP != nil)
	}
	addr := reachable(addrs[0])
	first := targets[0]
	fmt.Fprintf(stdout, "goiserd: serving %d target(s) on %s; try:\n", len(targets), strings.Join(addrs, ", "))
	fmt.Fprintf(stdout, "  iscsi-ls -s iscsi://%s\n", addr)
	fmt.Fprintf(stdout, "  iscsi-inq iscsi://%s/%s/%d\n", addr, first.cfg.Name, first.cfg.LUNs[0].LUN)
	fmt.Fprintf(stdout, "  iscsi-readcapacity16 iscsi://%s/%s/%d\n", addr, first.cfg.Name, first.cfg.LUNs[0].LUN)
	if first.cfg.CHAP != nil {
		fmt.Fprintf(stdout, "  (CHAP: iscsi://USER%%SECRET@%s/...)\n", addr)
	}
	for _, p := range portals {
		if p.kind == "iser" {
			fmt.Fprintf(stdout, "  iSER on %s: iscsiadm -m discovery -t st -p %s -I iser; iscsi-inq iser://%s/%s/%d\n",
				p.t.Addr(), reachable(p.t.Addr().String()), reachable(p.t.Addr().String()), first.cfg.Name, first.cfg.LUNs[0].LUN)
		}
	}
}

func indexOfLUN(t *openedTarget, lun uint64) int {
	for i, l := range t.cfg.LUNs {
		if l.LUN == lun {
			return i
		}
	}
	return -1
}

// reachable turns a wildcard listen address into one a client on this
// host can dial.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			return net.JoinHostPort("::1", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
