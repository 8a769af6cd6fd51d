package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The tcp mode is the same exchange over a TCP connection on the same
// path (the address of the RDMA device): the client writes Size bytes,
// the server reads them all and writes Size bytes back, with TCP_NODELAY
// on both ends. It is the floor of iSCSI over TCP beside the verbs floor
// of iSER. A connection starts with the plan:
//
//	"GPP1" mode(1) pad(3) size(4) iters(4) warmup(4)  = 20 bytes
//
// and the server answers the 4-byte magic before the first round trip.

// tcpHeader is the length of the plan a tcp-mode client sends first.
const tcpHeader = 20

// runTCPClient runs one tcp-mode plan against the server at addr and
// returns the round-trip times of the timed iterations in rtts.
func runTCPClient(ctx context.Context, addr string, pl plan, rtts []time.Duration) (err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			return err
		}
	}
	hdr := pl.marshal(0, 0)[:tcpHeader]
	if _, err := c.Write(hdr); err != nil {
		return err
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("tcp plan: %w", err)
	}
	if ack != magic {
		return errors.New("peer is not a rdma-pingpong server")
	}
	tx, rx := make([]byte, pl.Size), make([]byte, pl.Size)
	total := pl.Warmup + pl.Iters
	for i := range total {
		binary.BigEndian.PutUint32(tx[pl.Size-4:], uint32(i+1))
		t0 := time.Now()
		if _, err := c.Write(tx); err != nil {
			return fmt.Errorf("tcp %d bytes, round trip %d: %w", pl.Size, i, err)
		}
		if _, err := io.ReadFull(c, rx); err != nil {
			return fmt.Errorf("tcp %d bytes, round trip %d: %w", pl.Size, i, err)
		}
		rtt := time.Since(t0)
		if got := binary.BigEndian.Uint32(rx[pl.Size-4:]); got != uint32(i+1) {
			return fmt.Errorf("tcp %d bytes, round trip %d: answer carries sequence %d", pl.Size, i, got)
		}
		if i >= pl.Warmup {
			rtts[i-pl.Warmup] = rtt
		}
	}
	return nil
}

// serveTCP answers tcp-mode plans on l, each connection on its own
// goroutine, until l is closed; it returns when every connection has
// ended. Errors of one connection go to logf.
func serveTCP(ctx context.Context, l net.Listener, timeout time.Duration, logf func(string, ...any)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := serveTCPOne(cctx, c); err != nil {
				logf("rdma-pingpong: tcp connection from %s: %v", c.RemoteAddr(), err)
			}
		})
	}
}

func serveTCPOne(ctx context.Context, c net.Conn) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			return err
		}
	}
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(c, hdr[:tcpHeader]); err != nil {
		return fmt.Errorf("tcp plan: %w", err)
	}
	pl, _, _, err := unmarshalPlan(hdr)
	if err == nil && pl.Mode != modeTCP {
		err = fmt.Errorf("mode %s on the tcp listener", pl.Mode)
	}
	if err != nil {
		return err
	}
	if _, err := c.Write(magic[:]); err != nil {
		return err
	}
	buf := make([]byte, pl.Size)
	for i := range pl.Warmup + pl.Iters {
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("tcp %d bytes, round trip %d: %w", pl.Size, i, err)
		}
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("tcp %d bytes, round trip %d: %w", pl.Size, i, err)
		}
	}
	return nil
}
