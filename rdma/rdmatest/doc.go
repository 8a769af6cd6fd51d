// Package rdmatest is the conformance suite of RDMA providers: one set of
// cases, run through package rdma, that every provider must pass, so the
// in-process rdma/soft provider stays honest to real devices.
//
// The soft provider runs it in its own tests:
//
//	func TestConformance(t *testing.T) {
//		rdmatest.Run(t, rdmatest.Env{Provider: soft.New(soft.Config{}),
//			Device: "soft0", ListenAddr: "127.0.0.1:0"})
//	}
//
// and cgo/verbs on a real device (Soft-RoCE inside the test guest):
//
//	dev := os.Getenv("ISER_TEST_DEVICE") // e.g. rxe0; skip when empty
//	rdmatest.Run(t, rdmatest.Env{Provider: verbs.Provider(), Device: dev,
//		GIDIndex: 1, ListenAddr: "10.0.2.1:0"})
//
// The cases: device and port query; lifetimes (the refuse policy,
// idempotent Close, use after Close); Go-heap registration refused;
// manual connection through Reset, Init, RTR and RTS; SEND/RECV of 0 B to
// 1 MiB, batches matched in order, a batch accepted only up to its first
// bad work request, two queue pairs sharing one completion queue,
// scatter/gather lists, immediate data,
// unsignaled work requests; RDMA WRITE and READ; completion order across
// operations; remote access errors (wrong key, out of bounds, missing
// right) moving both queue pairs to Error and flushing every other work
// request exactly once; a receive too small; receiver-not-ready with a
// finite and an infinite retry count; posting on errored and closed queue
// pairs; completion-queue Wait waking on a completion, a context and a
// Close; Wait on a completion queue shared by many queue pairs waking on
// a completion of any of them; a PollGroup serving several connections
// with RDMA WRITE + SEND from BufferPool blocks, their teardown through
// the group, and the idle group sleeping; teardown (Close completes nothing, neither the closed queue
// pair's own work requests nor a SEND aimed at it; Error flushes every
// work request, receives and unsignaled sends included, exactly once);
// and with the CM, accept and reject with private data, a connect nobody
// listens for, a disconnect observed by the peer, the full teardown
// (Disconnect, reap both sides, Close) and a Close without Disconnect
// that the peer observes as a disconnect.
//
// Each case is bounded by Env.Timeout: a hang fails. No case asserts a
// timing. Env.Caps declares the few things a provider may legitimately
// lack; the cases that need them skip with the reason. A provider that
// does not declare Caps.NoCM must give Env.ListenAddr, or the CM cases
// fail; Env.Strict turns every skip into a failure, for runs on a real
// device where a skip means a misconfigured environment.
//
// BenchmarkPostPoll measures post+poll of a batch of work requests through
// a provider and reports the cost per work request.
package rdmatest
