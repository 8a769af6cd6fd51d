package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/goiser/goiser/cgo/verbs"
	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iser"
	"github.com/goiser/goiser/rdma"
)

// listenISER opens the iSER portals of cfg. A portal that cannot be served
// here (no RDMA device on the host, none with that address, or a listen
// error) is skipped with one warning line that says why: the daemon keeps
// serving TCP.
func listenISER(cfg *Config, srv *iscsi.Server, log *slog.Logger) []portal {
	var out []portal
	if len(cfg.ISERPortals) == 0 {
		return nil
	}
	prov := verbs.Provider()
	devs, err := rdma.Devices(prov)
	if err != nil || len(devs) == 0 {
		why := "this host has no RDMA device"
		if err != nil && !errors.Is(err, rdma.ErrNotSupported) {
			why = fmt.Sprintf("RDMA devices cannot be listed: %v", err)
		} else if errors.Is(err, rdma.ErrNotSupported) {
			why = "this goiserd was built without cgo, so without RDMA support"
		}
		for _, p := range cfg.ISERPortals {
			log.Warn("iSER portal not served: "+why+" (for Soft-RoCE: modprobe rdma_rxe; rdma link add rxe0 type rxe netdev IFACE); serving TCP only", "portal", p)
		}
		return nil
	}
	icfg := iserConfig(cfg, srv, log)
	for _, p := range cfg.ISERPortals {
		host, _, _ := net.SplitHostPort(p) // validated
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			if _, err := verbs.DeviceForAddr(host); err != nil {
				log.Warn("iSER portal not served: no RDMA device has this address; serving TCP only", "portal", p, "err", err)
				continue
			}
		}
		t, err := iser.Listen(p, icfg)
		if err != nil {
			log.Warn("iSER portal not served; serving TCP only", "portal", p, "err", err)
			continue
		}
		out = append(out, portal{kind: "iser", t: t})
	}
	return out
}

// iserConfig maps the config's iser section onto iser.TargetConfig.
func iserConfig(cfg *Config, srv *iscsi.Server, log *slog.Logger) iser.TargetConfig {
	c := iser.TargetConfig{Provider: verbs.Provider(), Logger: log, PollGroups: cfg.ISER.PollGroups}
	c.Memory, _ = cfg.ISER.Memory.Bytes() // validated
	n, _ := cfg.ISER.MaxIOSize.Bytes()
	c.MaxIOSize = int(n)
	n, _ = cfg.ISER.RecvDataSize.Bytes()
	c.RecvDataSize = int(n)
	c.QueueDepth = srv.QueueDepth
	return c
}
