package iser

import (
	"context"
	"fmt"

	"github.com/goiser/goiser/iscsi/initiator"
)

// Transport names, as DialSession reports the one it used.
const (
	TransportISER = "iser"
	TransportTCP  = "tcp"
)

// SessionConfig configures DialSession.
type SessionConfig struct {
	// Initiator is the session's configuration (names, CHAP, queue
	// depth, login keys).
	Initiator initiator.Config
	// ISER configures the iSER connection; its Provider is required and
	// its MaxTasks is raised to Initiator.MaxTasks when lower.
	ISER InitiatorConfig
	// Fallback lets DialSession log in over TCP on the same portal when
	// the iSER connection cannot be made: no RDMA device reaches the
	// address, or the RDMA CM connect fails (no iSER listener there). It
	// says so in a log line on ISER.Logger and in its result. A login that
	// fails over iSER (wrong name, CHAP) is not retried over TCP.
	Fallback bool
}

// DialSession logs in to cfg.Initiator.TargetName at the portal addr
// ("host:port") over iSER, or over TCP when that fails and Fallback is
// set, and returns the session and the transport it runs on
// (TransportISER or TransportTCP).
func DialSession(ctx context.Context, addr string, cfg SessionConfig) (*initiator.Session, string, error) {
	ic := cfg.ISER
	if mt := cfg.Initiator.MaxTasks; mt > ic.MaxTasks {
		ic.MaxTasks = mt
	}
	c, err := Dial(ctx, addr, ic)
	if err != nil {
		if !cfg.Fallback {
			return nil, "", err
		}
		ic = ic.withDefaults()
		ic.Logger.Warn("iser: no iSER connection; falling back to iSCSI over TCP on the same portal", "addr", addr, "err", err)
		s, terr := initiator.Dial(ctx, addr, cfg.Initiator)
		if terr != nil {
			return nil, "", fmt.Errorf("iser: %v; TCP fallback: %w", err, terr)
		}
		return s, TransportTCP, nil
	}
	s, err := initiator.Login(ctx, c, cfg.Initiator)
	if err != nil {
		return nil, "", err
	}
	return s, TransportISER, nil
}
