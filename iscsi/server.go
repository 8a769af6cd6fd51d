package iscsi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

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
// §13). Zero values mean the defaults given per field.
type Negotiation struct {
	// MaxRecvDataSegmentLength the target declares; default 262144.
	MaxRecvDataSegmentLength uint32
	// MaxBurstLength offered; default 262144.
	MaxBurstLength uint32
	// FirstBurstLength offered; default 65536.
	FirstBurstLength uint32
	// MaxOutstandingR2T offered; default 1.
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
	// (the RFC defaults, so they need no offer; at ErrorRecoveryLevel 0
	// they only tell the initiator how long to wait before a new login).
	DefaultTime2Wait, DefaultTime2Retain uint32
}

func (n Negotiation) withDefaults() Negotiation {
	if n.MaxRecvDataSegmentLength == 0 {
		n.MaxRecvDataSegmentLength = 262144
	}
	n.MaxRecvDataSegmentLength = min(max(n.MaxRecvDataSegmentLength, 512), 16777215)
	if n.MaxBurstLength == 0 {
		n.MaxBurstLength = 262144
	}
	if n.FirstBurstLength == 0 {
		n.FirstBurstLength = 65536
	}
	if n.MaxOutstandingR2T == 0 {
		n.MaxOutstandingR2T = 1
	}
	if n.DefaultTime2Wait == 0 {
		n.DefaultTime2Wait = 2
	}
	if n.DefaultTime2Retain == 0 {
		n.DefaultTime2Retain = 20
	}
	return n
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
	// MaxTextLength is the largest text (login or Text request)
	// accumulated over C-bit PDUs; default 65536.
	MaxTextLength int

	mu       sync.Mutex
	inShut   bool
	trans    map[Transport]struct{}  // guarded by mu
	conns    map[*conn]struct{}      // guarded by mu
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
		s.trans = make(map[Transport]struct{})
		s.conns = make(map[*conn]struct{})
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

// Serve accepts connections from t and serves them until t fails or the
// server shuts down; then it closes t and returns (ErrServerClosed after
// Shutdown or Close).
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
	s.trans[t] = struct{}{}
	s.mu.Unlock()
	log := s.logger()
	log.Info("iscsi: serving", "addr", t.Addr().String(), "targets", len(s.Targets))
	ctx := context.Background()
	var tempDelay time.Duration
	for {
		tc, err := t.Accept(ctx)
		if err != nil {
			s.mu.Lock()
			shut := s.inShut
			delete(s.trans, t)
			s.mu.Unlock()
			if shut {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				s.mu.Lock()
				s.trans[t] = struct{}{}
				s.mu.Unlock()
				continue
			}
			_ = t.Close()
			return fmt.Errorf("iscsi: accept: %w", err)
		}
		tempDelay = 0
		c := newConn(s, tc)
		s.mu.Lock()
		if s.inShut {
			s.mu.Unlock()
			_ = tc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
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
	s.inShut = true
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
	s.inShut = true
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
