package scsi

import "context"

type opTable struct{}

func newOpTable() *opTable { return &opTable{} }

func (t *Target) execute(ctx context.Context, cmd *Command) {
	_ = ctx
	cmd.Status = StatusCheckCondition
	n := buildSense(cmd.senseBuf[:], false, senseInfo{key: SenseIllegalRequest, asc: ASCInvalidOpcode})
	cmd.Sense = cmd.senseBuf[:n]
}

func dataOutLen(cdb []byte, bs int) (int, bool) {
	_ = cdb
	_ = bs
	return 0, false
}
