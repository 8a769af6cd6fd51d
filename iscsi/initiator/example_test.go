package initiator_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/goiser/goiser/iscsi"
	"github.com/goiser/goiser/iscsi/initiator"
	"github.com/goiser/goiser/iscsi/tcp"
	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

// Example serves a 16 MiB memory LUN with our target on 127.0.0.1, then
// discovers it, logs in, writes a block and reads it back.
func Example() {
	mem, err := backend.NewMemory(16 << 20)
	if err != nil {
		log.Fatal(err)
	}
	luns, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: mem}}})
	if err != nil {
		log.Fatal(err)
	}
	defer luns.Close()
	srv := &iscsi.Server{Targets: []*iscsi.Target{{Name: "iqn.2026-11.org.goiser:example", LUNs: luns}}}
	tr, err := tcp.Listen("127.0.0.1:0", tcp.Config{})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Serve(tr) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := tr.Addr().String()
	cfg := initiator.Config{InitiatorName: "iqn.2026-11.org.goiser:client"}
	targets, err := initiator.Discover(ctx, addr, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("discovered", targets[0].Name)

	cfg.TargetName = targets[0].Name
	s, err := initiator.Dial(ctx, addr, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	c, err := s.ReadCapacity16(ctx, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("blocks:", c.Blocks, "block size:", c.BlockSize)

	out := bytes.Repeat([]byte("goiser! "), 64) // one 512-byte block
	if err := s.Write16(ctx, 0, 7, 512, out); err != nil {
		log.Fatal(err)
	}
	in := make([]byte, 512)
	if err := s.Read16(ctx, 0, 7, 512, in); err != nil {
		log.Fatal(err)
	}
	fmt.Println("read back equal:", bytes.Equal(in, out))
	if err := s.Logout(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// discovered iqn.2026-11.org.goiser:example
	// blocks: 32768 block size: 512
	// read back equal: true
}
