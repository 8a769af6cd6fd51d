// Package soft is a pure-Go, in-process RDMA provider for package rdma: a
// fabric of devices inside one Provider value, with the semantics of
// reliable-connected queue pairs, for tests on any machine (no cgo, no
// device, no file descriptors).
//
//	p := soft.New(soft.Config{})      // one device, "soft0", CM host 127.0.0.1
//	dev, err := rdma.Open(p, "soft0")
//	l, err := rdma.Listen(p, "127.0.0.1:0", rdma.ListenConfig{})
//	d, err := rdma.Dial(ctx, p, l.Addr().String(), rdma.DialConfig{})
//
// Two endpoints talk when they use the same Provider. CM addresses are
// plain "host:port" strings inside the provider; a device owns the host
// named in its DeviceConfig.
//
// # Semantics
//
//   - SEND matches the receives of the peer in order; a SEND larger than
//     the receive completes the receive with WCLocLenErr and the SEND with
//     WCRemInvReqErr, and both queue pairs move to Error.
//   - RDMA WRITE and READ are checked against the remote key, the region's
//     bounds, its access rights and the rights granted on the peer queue
//     pair; a violation completes with WCRemAccessErr at the requester and
//     moves both queue pairs to Error. Local SGEs are checked too
//     (WCLocProtErr).
//   - Receiver not ready: with RNRRetry 7 the sender waits until the peer
//     posts a receive; below 7 it retries RNRRetry times, Config.RNRDelay
//     apart, then completes with WCRNRRetryExcErr.
//   - A queue pair in Error completes every outstanding and newly posted
//     work request with WCWRFlushErr, in order. Failed and flushed
//     completions are always generated; successful ones only for signaled
//     work requests (or SignalAll).
//   - SEND with immediate data and with invalidate (the peer's region is
//     invalidated), RDMA WRITE with immediate (consumes a receive).
//   - CM: connect, accept and reject with up to 56 bytes of private data;
//     Disconnect moves both queue pairs to Error (flushing both) and closes
//     both Disconnected channels.
//   - Close completes nothing, as on a device: work requests still posted
//     are dropped unreported (rxe) and the queue pair's completions still
//     in its completion queues are removed (mlx5). Teardown is Disconnect
//     (or Modify to Error), reap every work request, then Close. Closing a
//     CM queue pair moves its peer to Error as a disconnect request would.
//   - The send-queue slot of an unsignaled work request stays taken until a
//     later completion of the same send queue (as on hardware that frees
//     slots when it processes a CQE; rxe frees them earlier): a queue pair
//     that never signals fills up with ErrQueueFull, so signal at least
//     once every MaxSendWR work requests.
//   - A completion queue that overflows is broken: Poll returns EOVERFLOW.
//   - Inline sends copy their payload at post time; unlike hardware, soft
//     requires inline SGEs to carry a valid lkey.
//
// # Fault injection
//
// Provider.InjectFault fails the Nth send work request (of a queue pair or
// any) with a chosen status; Provider.DropConnection breaks a connection as
// a failed link would; Provider.SetCompletionDelay (or
// Config.CompletionDelay) delays completions, keeping their order.
//
// # Concurrency
//
// One engine mutex guards the whole fabric; work requests execute inside
// PostSend and PostRecv with it held (receiver-not-ready retries and
// delayed completions run from timers). Each completion queue has its own
// leaf mutex, and Wait sleeps on a channel. Every method is safe for
// concurrent use, and the datapath (post, execute, poll) allocates
// nothing.
package soft
