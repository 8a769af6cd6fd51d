package scsi_test

import (
	"context"
	"fmt"

	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

// A transport runs each command through Target.Execute with buffers it
// owns; here a WRITE(10) and a READ(10) of one block, and an INQUIRY.
func ExampleTarget_Execute() {
	be, _ := backend.NewMemory(1 << 20)
	t, err := scsi.NewTarget(scsi.TargetConfig{LUNs: []scsi.LUNConfig{{Number: 0, Backend: be}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	nexus := scsi.Nexus{InitiatorName: "iqn.2026-01.example:host", TargetPort: "iqn.2026-01.example:disk,t,0x0001", RelativePort: 1}
	ctx := context.Background()

	var cmd scsi.Command
	cmd.Nexus = nexus
	cmd.CDB = []byte{scsi.OpWrite10, 0, 0, 0, 0, 8, 0, 0, 1, 0} // LBA 8, 1 block
	// A WRITE carries whole blocks.
	block := make([]byte, 512)
	copy(block, "hello, block 8")
	cmd.DataOut = block
	t.Execute(ctx, &cmd)
	fmt.Println("write:", cmd.Status, "wanted", cmd.Want, "bytes")

	cmd.Reset()
	cmd.Nexus = nexus
	cmd.CDB = []byte{scsi.OpRead10, 0, 0, 0, 0, 8, 0, 0, 1, 0}
	cmd.DataIn = make([]byte, 512)
	t.Execute(ctx, &cmd)
	fmt.Printf("read: %v %q\n", cmd.Status, cmd.DataIn[:14])

	cmd.Reset()
	cmd.Nexus = nexus
	cmd.CDB = []byte{0xC0, 0, 0, 0, 0, 0} // vendor specific: not supported
	t.Execute(ctx, &cmd)
	key, asc, _ := scsi.SenseFields(cmd.Sense)
	fmt.Println("unknown:", cmd.Status, key, asc)
	// Output:
	// write: GOOD wanted 512 bytes
	// read: GOOD "hello, block 8"
	// unknown: CHECK CONDITION ILLEGAL REQUEST INVALID COMMAND OPERATION CODE
}
