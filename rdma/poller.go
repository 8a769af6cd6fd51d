package rdma

// PollAction is what a Poller tells its owner to do next.
type PollAction uint8

// Poll actions.
const (
	// PollAgain: poll the completion queue again now (busy polling; the
	// owner may runtime.Gosched between empty polls).
	PollAgain PollAction = iota + 1
	// PollArm: arm the completion queue, then poll once more (a completion
	// that arrived before the arm raises no event).
	PollArm
	// PollWait: the armed queue was empty; Wait on it, then poll.
	PollWait
)

// String names the action.
func (a PollAction) String() string {
	switch a {
	case PollAgain:
		return "poll"
	case PollArm:
		return "arm+poll"
	case PollWait:
		return "wait"
	}
	return "PollAction(?)"
}

// PollerConfig tunes a Poller.
type PollerConfig struct {
	// BusyPolls is how many consecutive empty polls are busy-polled before
	// the poller arms the queue and sleeps. 0 means 64; negative means
	// never busy-poll (arm after the first empty poll).
	BusyPolls int
}

// pollerState is where a Poller is in its cycle.
type pollerState uint8

const (
	// pollerBusy: busy polling; counting empty polls.
	pollerBusy pollerState = iota
	// pollerArmed: the owner armed the queue and is re-polling.
	pollerArmed
	// pollerWoken: the owner waited and is polling after the wake-up.
	pollerWoken
)

// Poller is the adaptive polling policy of a poll group, as pure logic: it
// performs nothing itself. Under load it keeps polling; after BusyPolls
// empty polls in a row it asks for the queue to be armed and re-polled,
// and only if that re-poll is empty too for a wait on the completion
// channel. The owner loop is:
//
//	act := rdma.PollAgain
//	for {
//		switch act {
//		case rdma.PollArm:
//			cq.Arm(false)
//		case rdma.PollWait:
//			cq.Wait(ctx)
//		}
//		n, _ := cq.Poll(wcs)
//		handle(wcs[:n])
//		act = p.Next(n)
//	}
//
// A Poller belongs to the one goroutine that owns its queues.
type Poller struct {
	busy  int // immutable
	empty int // consecutive empty polls while busy
	state pollerState
}

// NewPoller returns a Poller in its busy state.
func NewPoller(cfg PollerConfig) *Poller {
	busy := cfg.BusyPolls
	if busy == 0 {
		busy = 64
	}
	if busy < 0 {
		busy = 0
	}
	return &Poller{busy: busy}
}

// Next takes the number of completions the last poll returned and says
// what to do next.
func (p *Poller) Next(n int) PollAction {
	if n > 0 {
		p.state, p.empty = pollerBusy, 0
		return PollAgain
	}
	switch p.state {
	case pollerBusy:
		p.empty++
		if p.empty <= p.busy {
			return PollAgain
		}
		p.state = pollerArmed
		return PollArm
	case pollerArmed:
		p.state = pollerWoken
		return PollWait
	default: // pollerWoken: a wake-up that found nothing; re-arm.
		p.state = pollerArmed
		return PollArm
	}
}

// Reset returns the poller to its busy state, e.g. after the owner posted
// new work and expects completions soon.
func (p *Poller) Reset() { p.state, p.empty = pollerBusy, 0 }
