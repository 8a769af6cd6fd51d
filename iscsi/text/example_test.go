package text_test

import (
	"fmt"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// ExampleNegotiator answers an initiator's operational offer as a target.
func ExampleNegotiator() {
	local := text.DefaultParams()
	local.MaxRecvDataSegmentLength = 65536
	n, err := text.NewNegotiator(text.Config{Role: text.RoleTarget, Local: local})
	if err != nil {
		panic(err)
	}
	var in, out text.Pairs
	req := "InitiatorName=iqn.2026-01.example:host\x00TargetName=iqn.2026-01.example:disk\x00" +
		"HeaderDigest=CRC32C,None\x00MaxBurstLength=1048576\x00ImmediateData=Yes\x00X-vendor.key=1\x00"
	if err := text.Parse([]byte(req), &in); err != nil {
		panic(err)
	}
	if err := n.Receive(pdu.StageOperational, &in, &out); err != nil {
		panic(err)
	}
	n.Offer(pdu.StageOperational, &out)
	fmt.Println(out.String())
	p := n.Params()
	fmt.Println(p.MaxBurstLength, p.ImmediateData, p.HeaderDigest)
	// Output:
	// HeaderDigest=None MaxBurstLength=262144 ImmediateData=Yes X-vendor.key=NotUnderstood TargetPortalGroupTag=0 MaxRecvDataSegmentLength=65536
	// 262144 true false
}
