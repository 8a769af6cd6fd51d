// Package driver is the provider interface of package rdma, shaped like
// database/sql/driver: Go types only, batch methods, no C.
//
// Two providers implement it: rdma/soft (pure Go, in process, for tests
// everywhere) and cgo/verbs (libibverbs and librdmacm, for real devices such
// as Soft-RoCE rxe0 or a ConnectX NIC). Users do not call a provider
// directly; they pass one to rdma.Open, whose concrete types hold the
// lifetime rules (idempotent Close, parents outliving children, error
// wrapping) once for every provider:
//
//	dev, err := rdma.Open(soft.New(soft.Config{}), "soft0")
//
// A provider's objects form a tree that mirrors the verbs objects:
//
//	Provider -> Context (an opened device)
//	              -> PD -> MR
//	                    -> QP (bound to a send CQ and a receive CQ)
//	              -> CQ
//	Provider -> Listener (RDMA CM, RDMA_PS_TCP port space) -> ConnRequest -> QP
//	Provider -> Dialer   (RDMA CM)                          -> QP
//
// Rules every implementation follows:
//
//   - Methods never keep a reference to a caller's slice after they return,
//     except the memory behind an MR, which the device may access until the
//     MR is closed.
//   - Memory given to RegMR is never Go-heap memory (package rdma allocates it
//     with mmap); providers may pass it to C.
//   - PostSend and PostRecv accept a batch and report how many work requests
//     were accepted before the first failure; they are one C call per batch in
//     cgo/verbs.
//   - Errors from the OS or the verbs library are *VerbsError, which unwraps
//     to the syscall.Errno, so errors.Is(err, syscall.ENOMEM) works, and which
//     matches ErrNotSupported for EOPNOTSUPP and ENOSYS.
//   - Package rdma calls Close children before parents, and calls it again
//     only after it failed. A failed Close leaves the object intact and
//     usable (rdma keeps it counted as its parents' child), so the retry
//     must destroy it; Close after a success must do nothing.
//   - QP.Close completes nothing, as on a device: the work requests still
//     posted are never reported (rxe), and a provider may drop the QP's
//     completions from its CQs (mlx5 does, so does rdma/soft). Disconnect
//     and Modify to Error flush them. Closing a CM QP disconnects the peer.
package driver
