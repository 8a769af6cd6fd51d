package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/soft"
)

func TestSoftRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	args := []string{"-soft", "-mode", "send,write", "-sizes", "64,4k,64k", "-iters", "50", "-warmup", "5", "-timeout", "30s"}
	if err := run(ctx, args, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 7 {
		t.Fatalf("want a header and 6 result lines, got:\n%s", out.String())
	}
	want := [][2]string{{"send", "64"}, {"send", "4096"}, {"send", "65536"}, {"write", "64"}, {"write", "4096"}, {"write", "65536"}}
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 9 || f[0] != want[i][0] || f[1] != want[i][1] || f[2] != "50" {
			t.Fatalf("line %d = %q, want %s %s 50 ...", i, l, want[i][0], want[i][1])
		}
		var vals []float64
		for _, s := range f[3:] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 {
				t.Fatalf("line %q: field %q is not a non-negative number", l, s)
			}
			vals = append(vals, v)
		}
		// min <= median <= p99 <= p99.9, and some throughput.
		if !(vals[0] <= vals[1] && vals[1] <= vals[3] && vals[3] <= vals[4]) {
			t.Fatalf("line %q: order statistics out of order", l)
		}
	}
	if errb.Len() != 0 {
		t.Fatalf("server complained: %s", errb.String())
	}
}

func TestFlags(t *testing.T) {
	var errb bytes.Buffer
	bad := [][]string{
		{},
		{"-soft", "-listen", "1.2.3.4:1"},
		{"-soft", "-mode", "read"},
		{"-soft", "-sizes", "3"},
		{"-soft", "-sizes", "66"},
		{"-soft", "-sizes", "x"},
		{"-soft", "-iters", "0"},
		{"-soft", "extra"},
	}
	for _, a := range bad {
		if _, err := parseFlags(a, &errb); err == nil {
			t.Errorf("parseFlags(%q) accepted", a)
		}
	}
	o, err := parseFlags([]string{"-connect", "10.0.0.1:1", "-sizes", "sweep", "-mode", "write"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.sizes) != 8 || o.sizes[0] != 64 || o.sizes[7] != 1<<20 || len(o.modes) != 1 || o.modes[0] != modeWrite {
		t.Fatalf("sweep = %v, modes %v", o.sizes, o.modes)
	}
	if o, _ = parseFlags([]string{"-soft", "-sizes", "1M,8K,128"}, &errb); len(o.sizes) != 3 || o.sizes[0] != 1<<20 || o.sizes[1] != 8192 {
		t.Fatalf("suffixes: %v", o.sizes)
	}
}

func TestPlanWire(t *testing.T) {
	p := plan{Mode: modeWrite, Size: 4096, Iters: 1000, Warmup: 10}
	b := p.marshal(0x1122334455667788, 0xabcdef01)
	if len(b) > rdma.MaxPrivateData {
		t.Fatalf("connect private data is %d bytes", len(b))
	}
	got, addr, rkey, err := unmarshalPlan(b)
	if err != nil || got != p || addr != 0x1122334455667788 || rkey != 0xabcdef01 {
		t.Fatalf("round trip: %+v %#x %#x %v", got, addr, rkey, err)
	}
	if _, _, _, err := unmarshalPlan(b[:20]); err == nil {
		t.Fatal("short private data accepted")
	}
	b[4] = 9
	if _, _, _, err := unmarshalPlan(b); err == nil {
		t.Fatal("unknown mode accepted")
	}
	a, k, err := unmarshalAccept(marshalAccept(42, 7))
	if err != nil || a != 42 || k != 7 {
		t.Fatalf("accept round trip: %d %d %v", a, k, err)
	}
	if _, _, err := unmarshalAccept(make([]byte, 16)); err == nil {
		t.Fatal("zero accept data accepted")
	}
}

func TestSummarize(t *testing.T) {
	rtts := make([]time.Duration, 1000)
	for i := range rtts {
		rtts[i] = time.Duration(2*(1000-i)) * time.Microsecond // 2..2000 us, reversed
	}
	r := summarize(plan{Mode: modeSend, Size: 1000, Iters: 1000}, rtts)
	us := time.Microsecond
	if r.Min != 1*us || r.Median != 501*us || r.P99 != 990*us || r.P999 != 999*us {
		t.Fatalf("summary %+v", r)
	}
	if r.Avg != 500500*time.Nanosecond {
		t.Fatalf("avg %v", r.Avg)
	}
	// 1000 round trips in 1.001 s moving 2 x 1000 B each.
	if r.MBps < 1.99 || r.MBps > 2.0 {
		t.Fatalf("MB/s %v", r.MBps)
	}
}

// connectedPair builds a client and a server endpoint connected over a
// soft fabric, for the allocation test.
func connectedPair(t *testing.T, pl plan) (cli, srv *endpoint) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := soft.New(soft.Config{})
	l, err := rdma.Listen(p, "127.0.0.1:0", rdma.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	type res struct {
		e   *endpoint
		err error
	}
	ch := make(chan res, 1)
	go func() {
		req, err := l.Accept(ctx)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		pl, raddr, rkey, err := unmarshalPlan(req.PrivateData())
		if err != nil {
			ch <- res{nil, err}
			return
		}
		e, err := newEndpoint(req.Device(), pl)
		if err == nil {
			e.qp, err = req.CreateQP(e.pd, e.qpConfig())
		}
		if err == nil && pl.Mode == modeSend {
			err = e.postRecvs(recvDepth)
		}
		if err == nil {
			e.prepare(raddr, rkey)
			err = req.Accept(ctx, connParam, marshalAccept(e.mr.Addr()+uint64(pl.Size), e.mr.RKey()))
		}
		ch <- res{e, err}
	}()
	d, err := rdma.Dial(ctx, p, l.Addr().String(), rdma.DialConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err = newEndpoint(d.Device(), pl)
	if err != nil {
		t.Fatal(err)
	}
	if cli.qp, err = d.CreateQP(cli.pd, cli.qpConfig()); err != nil {
		t.Fatal(err)
	}
	if pl.Mode == modeSend {
		if err := cli.postRecvs(recvDepth); err != nil {
			t.Fatal(err)
		}
	}
	peer, err := d.Connect(ctx, connParam, pl.marshal(cli.mr.Addr()+uint64(pl.Size), cli.mr.RKey()))
	if err != nil {
		t.Fatal(err)
	}
	raddr, rkey, err := unmarshalAccept(peer)
	if err != nil {
		t.Fatal(err)
	}
	cli.prepare(raddr, rkey)
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	srv = r.e
	cli.up, srv.up = true, true
	t.Cleanup(func() {
		// close disconnects and reaps what is posted before closing.
		if err := cli.close(); err != nil {
			t.Error(err)
		}
		if err := srv.close(); err != nil {
			t.Error(err)
		}
	})
	return cli, srv
}

// TestLoopAllocs checks that a round trip allocates nothing on the client
// and the server (the soft provider's own allocations would count too).
func TestLoopAllocs(t *testing.T) {
	for _, m := range []mode{modeSend, modeWrite} {
		t.Run(m.String(), func(t *testing.T) {
			pl := plan{Mode: m, Size: 256, Iters: 1, Warmup: 0}
			cli, srv := connectedPair(t, pl)
			cli.deadline = time.Now().Add(20 * time.Second)
			srv.deadline = cli.deadline
			seq := uint32(0)
			allocs := testing.AllocsPerRun(200, func() {
				seq++
				if m == modeSend {
					// The soft provider delivers inside PostSend, so the
					// server can answer in line.
					if err := cli.postSend(); err != nil {
						t.Fatal(err)
					}
					if err := srv.pongOnce(seq); err != nil {
						t.Fatal(err)
					}
					if err := cli.waitRecv(); err != nil {
						t.Fatal(err)
					}
					if err := cli.postRecvs(1); err != nil {
						t.Fatal(err)
					}
					if err := cli.reap(0); err != nil {
						t.Fatal(err)
					}
					return
				}
				*cli.txLast = seq
				if err := cli.postSend(); err != nil {
					t.Fatal(err)
				}
				if err := srv.pongOnce(seq); err != nil {
					t.Fatal(err)
				}
				if err := cli.waitWord(seq); err != nil {
					t.Fatal(err)
				}
				if err := cli.reap(0); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per round trip, want 0", allocs)
			}
		})
	}
}

// The tcp mode: the same exchange over TCP, served beside the RDMA
// listener; a plan of another mode on the TCP listener is refused.
func TestSoftTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	args := []string{"-soft", "-mode", "tcp", "-sizes", "64,4k,1M", "-iters", "20", "-warmup", "2", "-timeout", "30s"}
	if err := run(ctx, args, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 result lines, got:\n%s", out.String())
	}
	for i, s := range []string{"64", "4096", "1048576"} {
		f := strings.Fields(lines[i+1])
		if len(f) != 9 || f[0] != "tcp" || f[1] != s || f[2] != "20" {
			t.Fatalf("line %q, want tcp %s 20 ...", lines[i+1], s)
		}
	}
	if errb.Len() != 0 {
		t.Fatalf("server complained: %s", errb.String())
	}
}
