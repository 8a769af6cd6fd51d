package rdma

import "testing"

func TestPoller(t *testing.T) {
	type step struct {
		n    int // completions the last poll returned
		want PollAction
	}
	for _, tc := range []struct {
		name  string
		busy  int
		steps []step
	}{
		{"busy while completions flow", 2, []step{{3, PollAgain}, {1, PollAgain}, {5, PollAgain}}},
		{"busy polls then arm then wait", 2, []step{{0, PollAgain}, {0, PollAgain}, {0, PollArm}, {0, PollWait}}},
		{"completion found by the re-poll after arm", 1, []step{{0, PollAgain}, {0, PollArm}, {2, PollAgain}, {0, PollAgain}, {0, PollArm}}},
		{"wake-up with completions goes back to busy", 1, []step{{0, PollAgain}, {0, PollArm}, {0, PollWait}, {4, PollAgain}, {0, PollAgain}, {0, PollArm}}},
		{"spurious wake-up re-arms", 1, []step{{0, PollAgain}, {0, PollArm}, {0, PollWait}, {0, PollArm}, {0, PollWait}}},
		{"empty polls reset by a completion", 2, []step{{0, PollAgain}, {0, PollAgain}, {1, PollAgain}, {0, PollAgain}, {0, PollAgain}, {0, PollArm}}},
		{"never busy", -1, []step{{0, PollArm}, {0, PollWait}, {0, PollArm}}},
		{"default busy count", 0, append(repeat(step{0, PollAgain}, 64), step{0, PollArm}, step{0, PollWait})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPoller(PollerConfig{BusyPolls: tc.busy})
			for i, s := range tc.steps {
				if got := p.Next(s.n); got != s.want {
					t.Fatalf("step %d: Next(%d) = %v, want %v", i, s.n, got, s.want)
				}
			}
		})
	}
}

func repeat[E any](e E, n int) []E {
	out := make([]E, n)
	for i := range out {
		out[i] = e
	}
	return out
}

func TestPollerReset(t *testing.T) {
	p := NewPoller(PollerConfig{BusyPolls: 1})
	p.Next(0)
	if got := p.Next(0); got != PollArm {
		t.Fatalf("got %v, want arm", got)
	}
	p.Reset()
	if got := p.Next(0); got != PollAgain {
		t.Fatalf("after Reset got %v, want poll", got)
	}
}

func TestPollActionString(t *testing.T) {
	for a, want := range map[PollAction]string{PollAgain: "poll", PollArm: "arm+poll", PollWait: "wait", 0: "PollAction(?)"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q, want %q", a, a.String(), want)
		}
	}
}
