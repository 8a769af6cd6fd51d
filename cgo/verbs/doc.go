// Package verbs is the RDMA provider over libibverbs and librdmacm: the only
// package of this module with import "C". It implements rdma/driver, so users
// never call it directly; they hand it to package rdma:
//
//	name, err := verbs.DeviceForAddr("192.0.2.10") // the device behind a portal address
//	dev, err := rdma.Open(verbs.Provider(), name)
//
// # How the C side is organised
//
// All C lives in shim.h and shim.c (functions prefixed goiser_). Every
// object that the datapath touches is allocated in C when it is created and
// freed in C when it is closed:
//
//   - a QP owns C arrays of goiser_send_wr, ibv_send_wr and ibv_sge sized
//     from QPConfig (MaxSendWR x MaxSendSGE, and the same for receives).
//     PostSend writes the caller's []driver.SendWR into those arrays from
//     Go (plain stores into C memory, no call), then makes one cgo call that
//     chains the WRs and calls ibv_post_send once. bad_wr becomes the count
//     of accepted WRs.
//   - a CQ owns a C array of ibv_wc and of flattened goiser_wc; Poll is one
//     cgo call that polls and converts, then Go copies the flat records into
//     the caller's []driver.Completion.
//
// No Go pointer is ever stored in C memory. WR ids are the caller's uint64.
// The only Go memory handed to C during a call is control-path scratch
// (addresses, private data), which C copies before returning. Memory given
// to RegMR is off-heap (package rdma mmaps it), so passing its address is
// legal.
//
// # Errors
//
// Every failure is a *driver.VerbsError carrying the verb's name and errno,
// taken from cgo's two-result call for functions that set errno (librdmacm,
// ibv_create_*, ibv_reg_mr) or from the int result of functions that return
// it (ibv_post_send, ibv_modify_qp, ibv_destroy_*, ibv_query_*).
//
// # Closing
//
// Destroying a QP completes none of its outstanding WRs (rxe drops them;
// mlx5 removes the QP's completions from its CQs), so the owner moves it to
// Error (Disconnect, Modify) and reaps every WR before Close. Every object
// counts as closed only once its destroy call succeeded: a failed destroy
// leaves it open and usable, and a retried Close destroys it.
//
// # Waiting without a thread
//
// The completion channel of each CQ and the event channel of each CM
// listener and dialer have their file descriptors set non-blocking and
// wrapped in an *os.File, so waiting parks the goroutine in the Go netpoller
// instead of blocking an OS thread in ibv_get_cq_event or
// rdma_get_cm_event. One goroutine per CM event channel reads and
// acknowledges events and routes them to the CM id they belong to.
//
// # Build
//
// The provider builds with //go:build linux && cgo and links -libverbs
// -lrdmacm (Debian: libibverbs-dev, librdmacm-dev). Elsewhere Provider
// returns a provider whose every method fails with driver.ErrNotSupported.
//
// Tests that need a device read ISER_TEST_DEVICE (e.g. rxe0) and, for the
// CM, ISER_TEST_ADDR (an IP address of that device); make test-rxe runs them
// in the Soft-RoCE guest. See docs/cgo.md for the rules this package keeps.
package verbs
