package bench

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Target names one LUN to measure, as given on the command line.
type Target struct {
	// Name labels the target in reports ("goiser", "tgt").
	Name string
	// Addr is the portal, host:port (port 3260 when the URL has none).
	Addr string
	// IQN is the target name to log in to.
	IQN string
	// LUN is the logical unit number.
	LUN uint64
	// ISER is true for an iser:// URL: log in over iSER (RFC 7145).
	ISER bool
}

// ParseTarget parses NAME=iscsi://HOST[:PORT]/IQN/LUN or
// NAME=iser://HOST[:PORT]/IQN/LUN, the libiscsi URL forms without
// credentials, e.g. "tgt=iscsi://127.0.0.1:3260/iqn.2026-11.dev.goiser:tgt/1".
func ParseTarget(spec string) (Target, error) {
	var t Target
	name, raw, ok := strings.Cut(spec, "=")
	if !ok || name == "" || strings.ContainsAny(name, " \t|") {
		return t, fmt.Errorf("parse target %q: want NAME=iscsi://HOST:PORT/IQN/LUN (or iser://)", spec)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return t, fmt.Errorf("parse target %q: %w", spec, err)
	}
	if (u.Scheme != "iscsi" && u.Scheme != "iser") || u.Host == "" || u.User != nil {
		return t, fmt.Errorf("parse target %q: want an iscsi:// or iser://HOST:PORT/IQN/LUN URL without credentials", spec)
	}
	t.ISER = u.Scheme == "iser"
	iqn, lun, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	n, err := strconv.ParseUint(lun, 10, 64)
	if !ok || iqn == "" || err != nil {
		return t, fmt.Errorf("parse target %q: the path must be /IQN/LUN", spec)
	}
	t.Name, t.IQN, t.LUN, t.Addr = name, iqn, n, u.Host
	if u.Port() == "" {
		t.Addr = u.Host + ":3260"
	}
	return t, nil
}
