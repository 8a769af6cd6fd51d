package iscsi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/goiser/goiser/iscsi/text"
	"github.com/goiser/goiser/scsi"
)

// ErrServerClosed is returned by Server.Serve after Shutdown or Close.
var ErrServerClosed = errors.New("iscsi: server closed")

// Target is one iSCSI target node served by a Server: a name, the LUNs
// behind it, and who may log in.
type Target struct {
	// Name is the iSCSI name (iqn./eui./naa.), compared case-insensitively
	// as RFC 3722 stringprep folds it. Required.
	Name string
	// Alias is the optional TargetAlias (RFC 7143 §13.7).
	Alias string
	// LUNs executes the SCSI commands. Required.
	LUNs *scsi.Target
	// PortalGroupTag is the target portal group tag reported in
	// TargetPortalGroupTag and SendTargets; default 1.
	PortalGroupTag uint16
	// Initiators lists the initiator names allowed to log in; empty
	// allows every initiator.
	Initiators []string
	// CHAP, when set, requires CHAP authentication (AuthMethod=CHAP).
	// When nil, AuthMethod=None.
	CHAP *CHAP
}

// CHAP holds the secrets of CHAP authentication (RFC 7143 §12.1.3).
type CHAP struct {
	// User and Secret authenticate the initiator (one-way CHAP).
	User, Secret string
	// MutualUser and MutualSecret, when set, let the initiator
	// authenticate the target too (mutual CHAP).
	MutualUser, MutualSecret string
}

// Negotiation holds the values the target offers during login (RFC 7143
// §13). Zero values mean the defaults given per field; they are
// iscsi/text's Offered and Default constants, the one source of
// negotiation defaults for the target and the Go initiator.
type Negotiation struct {
	// MaxRecvDataSegmentLength the target declares; default 262144
	// (text.OfferedMaxRecvDataSegmentLength), clamped to 512..2^24-1.
	MaxRecvDataSegmentLength uint32
	// MaxBurstLength offered; default 262144 (text.OfferedMaxBurstLength).
	MaxBurstLength uint32
	// FirstBurstLength offered; default 65536 (text.OfferedFirstBurstLength).
	FirstBurstLength uint32
	// MaxOutstandingR2T offered; default 1 (text.OfferedMaxOutstandingR2T).
	MaxOutstandingR2T uint32
	// NoImmediateData answers ImmediateData=No (default Yes).
	NoImmediateData bool
	// InitialR2T answers InitialR2T=Yes (default No, which lets an
	// initiator send unsolicited data up to FirstBurstLength).
	InitialR2T bool
	// NoDigests refuses CRC32C header and data digests (default: accept
	// what the initiator proposes first).
	NoDigests bool
	// DefaultTime2Wait and DefaultTime2Retain offered; default 2 and 20
	// (text.OfferedTargetTime2Wait and OfferedTargetTime2Retain, the RFC
	// defaults, so they need no offer; at ErrorRecoveryLevel 0 they only
	// tell the initiator how long to wait before a new login). Zero
	// selects the default, so 0 itself cannot be offered.
	DefaultTime2Wait, DefaultTime2Retain uint32
}

// withDefaults fills zero fields from iscsi/text's Offered constants.
func (n Negotiation) withDefaults() Negotiation {
	if n.MaxRecvDataSegmentLength == 0 {
		n.MaxRecvDataSegmentLength = text.OfferedMaxRecvDataSegmentLength
	}
	n.MaxRecvDataSegmentLength = min(max(n.MaxRecvDataSegmentLength, 512), 16777215)
	if n.MaxBurstLength == 0 {
		n.MaxBurstLength = text.OfferedMaxBurstLength
	}
	if n.FirstBurstLength == 0 {
		n.FirstBurstLength = text.OfferedFirstBurstLength
	}
	if n.MaxOutstandingR2T == 0 {
		n.MaxOutstandingR2T = text.OfferedMaxOutstandingR2T
	}
	if n.DefaultTime2Wait == 0 {
		n.DefaultTime2Wait = text.OfferedTargetTime2Wait
	}
	if n.DefaultTime2Retain == 0 {
		n.DefaultTime2Retain = text.OfferedTargetTime2Retain
	}
	return n
}

// Limits bound what initiators, hostile or broken, can make a Server hold.
// Zero values mean the defaults given per field; docs/security.md lists
// them with the reasoning behind each.
type Limits struct {
	// MaxConnections is the most connections the server holds at once,
	// over all portals and in every phase (login included); default
	// 4096. A connection over a limit is closed as soon as it is
	// accepted, before anything is read from it. Keep it below the
	// process's open-file limit (goiserd clamps it).
	MaxConnections int
	// MaxConnectionsPerPortal is the most connections one Transport (one
	// portal) holds at once; default MaxConnections.
	MaxConnectionsPerPortal int
	// MaxConnectionsPerHost is the most connections from one initiator
	// address (IP, any port) at once, over all portals; default 256.
	MaxConnectionsPerHost int
	// MaxSessionsPerTarget is the most normal sessions one target serves
	// at once; a login past it fails with Out of Resources (0x0302).
	// Default 1024.
	MaxSessionsPerTarget int
	// MaxSessionTaskMemory is the most bytes of task data buffers one
	// session holds at once (the data of the commands it has in flight);
	// default 128 MiB. The CmdSN window closes while the session's
	// buffers are scarce; a command that finds no room anyway ends with
	// TASK SET FULL, which initiators retry.
	MaxSessionTaskMemory int64
	// MaxTaskMemory is the most bytes of task data buffers the whole
	// server holds at once, over all sessions; default 1 GiB.
	MaxTaskMemory int64
	// DataOutTimeout bounds the data phase of a write: a task still
	// waiting for its Data-Out this long after the target asked for it
	// ends the connection (ErrorRecoveryLevel 0, as LIO does), releasing
	// every buffer the connection held. Default 30 s; negative disables.
	DataOutTimeout time.Duration
}

// Limit defaults (see Limits).
const (
	DefaultMaxConnections        = 4096
	DefaultMaxConnectionsPerHost = 256
	DefaultMaxSessionsPerTarget  = 1024
	DefaultMaxSessionTaskMemory  = 128 << 20
	DefaultMaxTaskMemory         = 1 << 30
	DefaultDataOutTimeout        = 30 * time.Second
)

// withDefaults fills zero fields with their defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxConnectionsPerPortal <= 0 {
		l.MaxConnectionsPerPortal = l.MaxConnections
	}
	if l.MaxConnectionsPerHost <= 0 {
		l.MaxConnectionsPerHost = DefaultMaxConnectionsPerHost
	}
	if l.MaxSessionsPerTarget <= 0 {
		l.MaxSessionsPerTarget = DefaultMaxSessionsPerTarget
	}
	if l.MaxSessionTaskMemory <= 0 {
		l.MaxSessionTaskMemory = DefaultMaxSessionTaskMemory
	}
	if l.MaxTaskMemory <= 0 {
		l.MaxTaskMemory = DefaultMaxTaskMemory
	}
	if l.DataOutTimeout == 0 {
		l.DataOutTimeout = DefaultDataOutTimeout
	}
	return l
}

// Server serves iSCSI targets on one or more Transports, like net/http's
// Server: fill the fields, call Serve for each Transport, call Shutdown to
// stop. Fields must not change after the first Serve.
type Server struct {
	// Targets served. Names must be unique.
	Targets []*Target
	// Logger receives the server's logs; nil discards.
	Logger *slog.Logger
	// Negotiation holds the login values offered.
	Negotiation Negotiation
	// LoginTimeout bounds the login phase of a connection; default 15 s.
	LoginTimeout time.Duration
	// NOPInterval is how long a connection may stay silent before the
	// target sends a NOP-In ping; default 5 s, negative disables pings.
	NOPInterval time.Duration
	// NOPTimeout is how long the target waits for the answer to a ping
	// before it drops the connection; default 10 s.
	NOPTimeout time.Duration
	// QueueDepth is the CmdSN window per session (commands in flight);
	// default 128.
	QueueDepth int
	// Workers is the most goroutines executing SCSI commands per
	// connection; default 32.
	Workers int
	// Limits bound what initiators can make the server hold.
	Limits Limits
	// MaxTextLength is the largest text (login or Text request)
	// accumulated over C-bit PDUs; default 65536.
	MaxTextLength int

	mu       sync.Mutex
	inShut   bool
	trans    map[Transport]*portal // guarded by mu
	conns    map[*conn]struct{}    // guarded by mu
	perHost  map[string]int        // guarded by mu; connections by initiator IP
	refused  refusals              // guarded by mu
	sessPerT map[*Target]int       // guarded by mu; normal sessions by target
	limits   Limits                // immutable after init; defaults filled
	memory   *Budget               // immutable after init; MaxTaskMemory
	shutCh   chan struct{}         // closed when shutting down
	shutOnce sync.Once
	sessions map[sessionKey]*session // guarded by mu; by (initiator, ISID, target)
	byTSIH   map[uint16]*session     // guarded by mu
	nextTSIH uint16                  // guarded by mu
	targets  map[string]*Target      // immutable after init; by folded name
	initOnce sync.Once
	initErr  error
	wg       sync.WaitGroup // counts connection goroutines
}

// sessionKey identifies a session for reinstatement (RFC 7143 §6.3.5).
type sessionKey struct {
	initiator string
	isid      [6]byte
	target    string
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) init() error {
	s.initOnce.Do(func() {
		s.targets = make(map[string]*Target, len(s.Targets))
		for _, t := range s.Targets {
			if t == nil || t.Name == "" || t.LUNs == nil {
				s.initErr = errors.New("iscsi: target needs Name and LUNs")
				return
			}
			k := foldName(t.Name)
			if _, dup := s.targets[k]; dup {
				s.initErr = fmt.Errorf("iscsi: duplicate target %q", t.Name)
				return
			}
			s.targets[k] = t
		}
		s.trans = make(map[Transport]*portal)
		s.conns = make(map[*conn]struct{})
		s.perHost = make(map[string]int)
		s.sessPerT = make(map[*Target]int)
		s.limits = s.Limits.withDefaults()
		s.memory = NewBudget(s.limits.MaxTaskMemory, nil)
		s.shutCh = make(chan struct{})
		s.sessions = make(map[sessionKey]*session)
		s.byTSIH = make(map[uint16]*session)
	})
	return s.initErr
}

func (s *Server) loginTimeout() time.Duration {
	if s.LoginTimeout > 0 {
		return s.LoginTimeout
	}
	return 15 * time.Second
}

func (s *Server) nopInterval() time.Duration {
	if s.NOPInterval != 0 {
		return s.NOPInterval
	}
	return 5 * time.Second
}

func (s *Server) nopTimeout() time.Duration {
	if s.NOPTimeout > 0 {
		return s.NOPTimeout
	}
	return 10 * time.Second
}

func (s *Server) queueDepth() int {
	if s.QueueDepth > 0 {
		return s.QueueDepth
	}
	return 128
}

func (s *Server) workers() int {
	if s.Workers > 0 {
		return s.Workers
	}
	return 32
}

func (s *Server) maxTextLength() int {
	if s.MaxTextLength > 0 {
		return s.MaxTextLength
	}
	return defaultMaxTextLength
}

// lookupTarget finds a target by iSCSI name.
func (s *Server) lookupTarget(name string) *Target {
	return s.targets[foldName(name)]
}

// portal is the server's bookkeeping for one Transport.
type portal struct {
	conns int // guarded by Server.mu
}

// refusals rate-limits the log of connections refused over a limit.
type refusals struct {
	n    int       // refused since the last log line
	last time.Time // when the last line was logged
}

// Serve accepts connections from t and serves them until the server shuts
// down; then it closes t and returns ErrServerClosed. Accept errors other
// than t being closed (too many open files, aborted handshakes, timeouts)
// are logged and retried with a growing delay, as net/http does, so a
// connection flood cannot stop a portal. If t is closed by someone else,
// Serve returns that error.
func (s *Server) Serve(t Transport) error {
	if err := s.init(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.inShut {
		s.mu.Unlock()
		_ = t.Close()
		return ErrServerClosed
	}
	p := &portal{}
	s.trans[t] = p
	s.mu.Unlock()
	log := s.logger()
	log.Info("iscsi: serving", "addr", t.Addr().String(), "targets", len(s.Targets))
	ctx := context.Background()
	var tempDelay time.Duration
	for {
		tc, err := t.Accept(ctx)
		if err != nil {
			if s.shuttingDown() {
				s.dropTransport(t)
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				s.dropTransport(t)
				return fmt.Errorf("iscsi: accept: %w", err)
			}
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			log.Warn("iscsi: accept failed, retrying", "addr", t.Addr().String(), "err", err, "delay", tempDelay)
			select {
			case <-time.After(tempDelay):
			case <-s.shutCh:
				s.dropTransport(t)
				return ErrServerClosed
			}
			continue
		}
		tempDelay = 0
		host := hostOf(tc.RemoteAddr())
		s.mu.Lock()
		if s.inShut {
			s.mu.Unlock()
			_ = tc.Close()
			continue
		}
		if why := s.admitLocked(p, host); why != "" {
			s.refuseLocked(log, tc, why)
			s.mu.Unlock()
			_ = tc.Close()
			continue
		}
		c := newConn(s, tc)
		s.conns[c] = struct{}{}
		p.conns++
		s.perHost[host]++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			p.conns--
			if s.perHost[host]--; s.perHost[host] <= 0 {
				delete(s.perHost, host)
			}
			s.mu.Unlock()
		}()
	}
}

// admitLocked checks the connection limits for one more connection on
// portal p from host; it returns which limit refuses it, or "".
func (s *Server) admitLocked(p *portal, host string) string {
	switch {
	case len(s.conns) >= s.limits.MaxConnections:
		return fmt.Sprintf("MaxConnections (%d)", s.limits.MaxConnections)
	case p.conns >= s.limits.MaxConnectionsPerPortal:
		return fmt.Sprintf("MaxConnectionsPerPortal (%d)", s.limits.MaxConnectionsPerPortal)
	case s.perHost[host] >= s.limits.MaxConnectionsPerHost:
		return fmt.Sprintf("MaxConnectionsPerHost (%d)", s.limits.MaxConnectionsPerHost)
	}
	return ""
}

// refuseLocked logs a refused connection, at most one line a second with
// the count of those refused meanwhile.
func (s *Server) refuseLocked(log *slog.Logger, tc TransportConn, why string) {
	s.refused.n++
	now := time.Now()
	if now.Sub(s.refused.last) < time.Second {
		return
	}
	log.Warn("iscsi: connection refused over a limit", "peer", tc.RemoteAddr().String(), "limit", why, "refused", s.refused.n)
	s.refused.n = 0
	s.refused.last = now
}

// hostOf returns the IP of a connection's remote address, the key of the
// per-host connection limit.
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// dropTransport forgets t and closes it.
func (s *Server) dropTransport(t Transport) {
	s.mu.Lock()
	delete(s.trans, t)
	s.mu.Unlock()
	_ = t.Close()
}

// shuttingDown reports whether Shutdown or Close was called.
func (s *Server) shuttingDown() bool {
	select {
	case <-s.shutCh:
		return true
	default:
		return false
	}
}

// beginShutdownLocked marks the server as shutting down. s.mu must be held.
func (s *Server) beginShutdownLocked() {
	s.inShut = true
	s.shutOnce.Do(func() { close(s.shutCh) })
}

// Shutdown stops the server gracefully: it closes every Transport so no
// new connection arrives, asks every connection to finish (commands
// already received run to completion and their responses are sent; an
// Async Message asks each initiator to log out), and waits until all
// connections are gone or ctx ends; then it closes what is left and
// returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.init(); err != nil {
		return err
	}
	s.mu.Lock()
	s.beginShutdownLocked()
	for t := range s.trans {
		_ = t.Close()
	}
	for c := range s.conns {
		c.shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		_ = s.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops the server at once: transports and connections are closed;
// running commands finish but their responses are not sent.
func (s *Server) Close() error {
	if err := s.init(); err != nil {
		return err
	}
	s.mu.Lock()
	s.beginShutdownLocked()
	for t := range s.trans {
		_ = t.Close()
	}
	for c := range s.conns {
		c.abort()
	}
	s.mu.Unlock()
	return nil
}

// Sessions returns the number of sessions in the full feature phase.
func (s *Server) Sessions() int {
	if s.init() != nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byTSIH)
}

// TaskMemory returns the bytes of task data buffers the server's sessions
// hold now (at most Limits.MaxTaskMemory).
func (s *Server) TaskMemory() int64 {
	if s.init() != nil {
		return 0
	}
	return s.memory.InUse()
}

// foldName folds an iSCSI name for comparison (RFC 7143 §4.2.7.1: names
// are case insensitive; stringprep maps them to lower case).
func foldName(n string) string {
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= 'A' && c <= 'Z' {
			b := []byte(n)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return n
}
