package iscsi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

// ExampleServer serves a 64 MiB in-memory LUN over iSCSI/TCP on a loopback
// port, then shuts the server down. Reach such a server with
// `iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-01.io.goiser:example/0`.
func ExampleServer() {
	be, err := backend.NewMemory(64 << 20)
	if err != nil {
		panic(err)
	}
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}})
	if err != nil {
		panic(err)
	}
	srv := &iscsi.Server{
		Targets: []*iscsi.Target{{
			Name: "iqn.2026-01.io.goiser:example",
			LUNs: luns,
			// Initiators: []string{"iqn.1994-05.com.redhat:client"}, // ACL
			// CHAP: &iscsi.CHAP{User: "user", Secret: "a-long-secret"},
		}},
		Logger: slog.New(slog.DiscardHandler),
	}
	t, err := tcp.Listen("127.0.0.1:0", tcp.Config{})
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(t) }()

	// An initiator would log in here; we only check the port is open.
	nc, err := net.Dial("tcp", t.Addr().String())
	if err != nil {
		panic(err)
	}
	nc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", srv.Shutdown(ctx))
	fmt.Println("serve returned ErrServerClosed:", errors.Is(<-served, iscsi.ErrServerClosed))
	// Output:
	// shutdown: <nil>
	// serve returned ErrServerClosed: true
}
