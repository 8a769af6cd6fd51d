// Command rxe-up brings up a Soft-RoCE (rdma_rxe) device inside the test
// guest of hack/rxe, so that the real-RDMA tests have a device to run on.
//
// It runs as root in the guest (Linux only) and does, in order:
//
//  1. load the kernel modules with modprobe: rdma_rxe, ib_uverbs, rdma_ucm
//     and dummy, plus any -extra modules (ib_iser, ib_isert, iscsi_target_mod,
//     target_core_mod, ...);
//  2. bring lo up, create a dummy interface (-netdev, default rxedummy0),
//     give it an address (-addr, default 10.99.0.1/24) and bring it up. The
//     address belongs to the guest's private test network; rxe on lo would
//     run verbs but RDMA CM cannot resolve routes over it;
//  3. add the rxe link: netlink.RdmaLinkAdd("rxe0", "rxe", netdev), the
//     equivalent of "rdma link add rxe0 type rxe netdev rxedummy0";
//  4. find the RDMA device of the netdev with github.com/Mellanox/rdmamap,
//     wait until port 1 is ACTIVE and a RoCE v2 GID for the address exists;
//  5. print a summary (device, port state, GID, address, character devices)
//     and, with -env FILE, write it as shell variables (RXE_DEV, RXE_NETDEV,
//     RXE_ADDR, RXE_GID, RXE_GID_INDEX, ...) for the scripts that follow.
//
// Every step is idempotent: running rxe-up again on a guest where the device
// is up reuses what exists. Any failure ends the program with status 1 and a
// message naming the step. Usage:
//
//	rxe-up [-name rxe0] [-netdev rxedummy0] [-addr 10.99.0.1/24]
//	       [-extra ib_iser,ib_isert] [-timeout 90s] [-env FILE] [-v]
package main
