package scsi

// ASCDataPhaseError is DATA PHASE ERROR (SAM-5 5.8.1, SPC-4 Table D.1): a
// transport could not move a command's data.
const ASCDataPhaseError ASC = 0x4B00

// Fail ends c without executing it: CHECK CONDITION with sense key key and
// additional sense code asc, in the sense format of the LUN c addresses
// (descriptor format when its control mode page has D_SENSE=1; fixed
// format otherwise, or for a LUN the target does not have). Transports use
// it for errors they find before execution, such as a transfer larger than
// they can buffer or a broken data phase. c.Sense aliases c until Reset;
// Fail allocates nothing.
func (t *Target) Fail(c *Command, key SenseKey, asc ASC) {
	c.Status = StatusCheckCondition
	c.DataInLen, c.Want = 0, 0
	desc := false
	if l := t.luns[c.LUN]; l != nil {
		desc = l.dsense.Load()
	}
	n := buildSense(c.senseBuf[:], desc, senseInfo{key: key, asc: asc})
	c.Sense = c.senseBuf[:n]
}
