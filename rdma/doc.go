// Package rdma is the user-facing RDMA API of goiser: devices, protection
// domains, off-heap buffers, memory regions, completion queues, RC queue
// pairs, RDMA CM style connection management, poll groups and registered
// buffer pools, over any provider of package rdma/driver (rdma/soft in
// process, cgo/verbs for real devices).
// Like database/sql, its types are concrete and hold the lifetime rules
// once for every provider.
//
// # Walk-through
//
// Open a device through a provider, allocate a protection domain, an
// off-heap buffer and its memory region, and a completion queue:
//
//	p := soft.New(soft.Config{})        // or verbs.Provider()
//	dev, err := rdma.Open(p, "soft0")   // Equivalent to: ibv_open_device
//	pd, err := dev.AllocPD()
//	buf, err := rdma.AllocBuffer(1<<20, rdma.BufferOptions{})
//	mr, err := pd.RegisterBuffer(buf, rdma.AccessLocalWrite|rdma.AccessRemoteRead)
//	cq, err := dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 256})
//
// Connect a queue pair with the connection manager. The passive side:
//
//	l, err := rdma.Listen(p, "10.0.0.1:4420", rdma.ListenConfig{})
//	req, err := l.Accept(ctx)           // inspect req.PrivateData(), req.Param()
//	qp, err := req.CreateQP(pd, rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq})
//	qp.PostRecv(recvs)                  // before Accept: the peer may send at once
//	err = req.Accept(ctx, param, private)
//
// and the active side:
//
//	d, err := rdma.Dial(ctx, p, "10.0.0.1:4420", rdma.DialConfig{})
//	qp, err := d.CreateQP(pd, cfg)      // pd allocated on d.Device()
//	peerPrivate, err := d.Connect(ctx, param, private)
//
// (or connect manually: NewQueuePair, exchange QueuePair.Endpoint values
// out of band, ConnectManual). Then post batches and poll completions:
//
//	n, err := qp.PostSend([]rdma.SendWR{{ID: rdma.EncodeWRID(opSend, slot),
//		Op: rdma.OpSend, Flags: rdma.FlagSignaled, SGL: []rdma.SGE{mr.SGE(0, 512)}}})
//	n, err = cq.WaitPoll(ctx, wcs)     // poll, arm, re-poll, wait
//
// Work-request ids encode an operation and a slot (EncodeWRID), never a Go
// pointer. Poller is the adaptive busy-poll/arm/wait policy of a poll group.
//
// # Poll groups
//
// A server does not give every connection its own completion queue and
// goroutine: a few poll groups per device (say one per CPU) each own one
// completion queue that many queue pairs share, and one goroutine that
// busy-polls it while completions flow and, once idle, arms it and sleeps
// on its completion channel through the netpoller (an idle daemon uses no
// CPU). Each completion goes to the CompletionHandler of its queue pair,
// on the group's goroutine:
//
//	g, err := rdma.NewPollGroup(dev, rdma.PollGroupConfig{CQEntries: 4096})
//	qp, err := req.CreateQP(pd, rdma.QueuePairConfig{SendCQ: g.CQ(), RecvCQ: g.CQ(),
//		MaxSendWR: 64, MaxRecvWR: 64})
//	att, err := g.Attach(qp, 0, 0, conn) // reserves 64+64 CQ entries, or ErrCQFull
//	g.Post(func() { conn.startTeardown() }) // run on the group's goroutine
//	...                                   // Disconnect; conn reaps every flush, then:
//	att.Detach()
//	err = qp.Close()
//	err = g.Close()                       // once no queue pair is attached or bound
//
// Attach reserves room for every work request the queue pair may have
// outstanding, so the shared queue cannot overrun; should the queue fail
// anyway, every handler's HandleError ends its connection. Handlers must
// not block.
//
// # Registered buffer pools
//
// Task data goes straight between the device and a BufferPool block: a
// buddy allocator over AllocBuffer arenas registered once (256 MiB by
// default: the registered-memory budget), handing out contiguous,
// size-aligned blocks of 4 KiB to 8 MiB with 0 allocations per Get and
// Put. Get never blocks; when the budget is used up it returns false, the
// request waits (back-pressure, not failure) and is retried when Notify
// says blocks came back:
//
//	pool, err := rdma.NewBufferPool(pd, rdma.BufferPoolConfig{Size: 1 << 30})
//	blk, ok := pool.Get(edtl)           // !ok: queue the task; retry on <-pool.Notify()
//	backend.ReadAt(blk.Bytes(), off)    // SCSI executes into registered memory
//	wr := rdma.SendWR{Op: rdma.OpRDMAWrite, SGL: []rdma.SGE{blk.SGE(0, blk.Len())}, ...}
//	pool.Put(blk)                       // after the work request's completion
//
// A Slab is the fixed-slot variant for receive rings: slot i's data lands
// 512-byte aligned after a 76-byte iSER+BHS header (SlabConfig.Header).
//
// # Memory and ownership
//
// Memory given to a device is never Go-heap memory: AllocBuffer maps it
// with mmap (huge pages when available), and RegisterMemory refuses
// anything else with ErrNotOffHeap. Every post method documents, in an
// Ownership paragraph, that the bytes of a posted work request belong to
// the device until its completion (success or flush) has been polled.
//
// # Teardown
//
// Closing a queue pair does not flush it: on a device, the work requests
// a destroyed queue pair still held are never reported (rxe drops them,
// mlx5 removes the queue pair's completions from its completion queues),
// and rdma/soft does the same. So tear a connection down in this order:
//
//	err = qp.Disconnect()              // or qp.Modify(rdma.QPAttr{State: rdma.QPError})
//	for outstanding > 0 {              // every WR comes back: success or WCWRFlushErr
//		n, err := cq.WaitPoll(ctx, wcs)
//		outstanding -= n
//	}
//	err = qp.Close()                   // then MRs, buffers, CQs, the PD
//
// Disconnect, Modify to Error and the peer's disconnect move the queue pair
// to Error, which completes every outstanding work request (receives and
// unsignaled sends included) with WCWRFlushErr, exactly once. Only after
// the last of them is polled may the buffers be reused or released. See
// ExampleQueuePair_Close.
//
// # Lifetimes
//
// Every object has an idempotent Close. The policy is refuse: a parent
// does not close while it has live children, and its Close returns an
// error wrapping ErrBusy that names how many:
//
//	Device            <- ProtectionDomain, CompletionQueue
//	ProtectionDomain  <- MemoryRegion, QueuePair
//	CompletionQueue   <- QueuePair (bound to it)
//	Buffer            <- MemoryRegion (made by RegisterBuffer)
//
// Close children first (queue pairs, then memory regions and completion
// queues, then protection domains, then the device). Using an object after
// its Close returns ErrClosed; posting sends on a queue pair that is not
// yet in RTS returns ErrInvalidState. A Close the provider fails (its
// destroy call returned an error) leaves the object open and still
// counted by its parents, which keep refusing to close; call Close again.
//
// # Errors
//
// Errors carry the operation and object ("rdma: create CQ of 256 entries on
// rxe0: ibv_create_cq: cannot allocate memory") and wrap the provider's
// error: a *VerbsError unwraps to its syscall.Errno, so errors.Is(err,
// syscall.ENOMEM) works, and EOPNOTSUPP and ENOSYS match ErrNotSupported.
// A failed work completion becomes an error with Completion.Err.
//
// # Concurrency
//
// Devices, protection domains, memory regions, poll groups, buffer pools
// and slabs are safe for concurrent use. A completion queue is polled by one goroutine (its owner); a queue
// pair's send queue and receive queue each have one poster at a time.
// Close may be called from any goroutine; it waits for calls in progress
// on the same object.
package rdma
