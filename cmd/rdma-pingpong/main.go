// Command rdma-pingpong measures raw verbs latency over an RDMA CM
// connection, the floor every iSER benchmark is compared with. It does what
// perftest's ib_send_lat and ib_write_lat do, through package rdma:
//
//	rdma-pingpong -listen 10.99.0.1:18515              # server, answers any plan
//	rdma-pingpong -connect 10.99.0.1:18515 -mode send,write -sizes 64,4096,1M
//	rdma-pingpong -soft -sizes sweep                   # both ends in process, soft provider
//
// In tcp mode the same exchange goes over TCP to the same address (the
// server listens on both), the floor of iSCSI/TCP beside that of iSER.
// In send mode each round trip is a SEND into a posted RECV, answered the
// same way; in write mode an RDMA WRITE whose last 4 bytes carry a sequence
// number that the peer polls for before writing back (like write_lat).
// Buffers are registered once per connection and the loop allocates
// nothing. For each mode and size it prints the one-way latency (half the
// round trip, as perftest does): min, median, average, p99, p99.9, and the
// throughput of the payload in both directions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goiser/goiser/cgo/verbs"
	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
	"github.com/goiser/goiser/rdma/soft"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rdma-pingpong:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	listen, connect string
	soft            bool
	modes           []mode
	sizes           []int
	iters, warmup   int
	count           int
	timeout         time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("rdma-pingpong", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "", "serve on `ip:port` (an address of the RDMA device)")
	fs.StringVar(&o.connect, "connect", "", "run the plans against the server at `ip:port`")
	fs.BoolVar(&o.soft, "soft", false, "run server and client in this process on the soft provider")
	modes := fs.String("mode", "send,write", "comma-separated modes: send, write, tcp (the same exchange over TCP to the same address)")
	sizes := fs.String("sizes", "64,4096,65536,1M", "comma-separated message sizes (k, M suffixes), or 'sweep' for 64 B..1 MiB in powers of 4")
	fs.IntVar(&o.iters, "iters", 1000, "timed round trips per size")
	fs.IntVar(&o.warmup, "warmup", 100, "untimed round trips before them")
	fs.IntVar(&o.count, "count", 0, "server: exit after this many connections (0: serve until killed)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "bound on each size's run (and on the whole -soft run times the plans)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	n := 0
	for _, set := range []bool{o.listen != "", o.connect != "", o.soft} {
		if set {
			n++
		}
	}
	if n != 1 {
		return o, errors.New("give exactly one of -listen, -connect and -soft")
	}
	var err error
	if o.modes, err = parseModes(*modes); err != nil {
		return o, err
	}
	if o.sizes, err = parseSizes(*sizes); err != nil {
		return o, err
	}
	for _, m := range o.modes {
		for _, s := range o.sizes {
			if err := (plan{Mode: m, Size: s, Iters: o.iters, Warmup: o.warmup}).validate(); err != nil {
				return o, err
			}
		}
	}
	return o, nil
}

func parseModes(s string) ([]mode, error) {
	var out []mode
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "send":
			out = append(out, modeSend)
		case "write":
			out = append(out, modeWrite)
		case "tcp":
			out = append(out, modeTCP)
		default:
			return nil, fmt.Errorf("mode %q: want send, write or tcp", f)
		}
	}
	return out, nil
}

func parseSizes(s string) ([]int, error) {
	if s == "sweep" {
		var out []int
		for n := 64; n <= 1<<20; n *= 4 {
			out = append(out, n)
		}
		return out, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k") || strings.HasSuffix(f, "K"):
			mult, f = 1<<10, f[:len(f)-1]
		case strings.HasSuffix(f, "M"):
			mult, f = 1<<20, f[:len(f)-1]
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("size %q: want a positive number of bytes", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// run is main without the exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	switch {
	case o.listen != "":
		p := verbs.Provider()
		l, err := rdma.Listen(p, o.listen, rdma.ListenConfig{})
		if err != nil {
			return err
		}
		defer l.Close()
		// tcp-mode plans come to a TCP listener on the same address.
		tl, err := net.Listen("tcp", l.Addr().String())
		if err != nil {
			return fmt.Errorf("tcp listener beside the RDMA one: %w", err)
		}
		defer tl.Close()
		go serveTCP(ctx, tl, o.timeout, logf)
		fmt.Fprintf(stderr, "rdma-pingpong: listening on %s\n", l.Addr())
		return serve(ctx, l, o.count, o.timeout, logf)
	case o.connect != "":
		return runPlans(ctx, verbs.Provider(), o.connect, o.connect, o, stdout)
	default:
		return runSoft(ctx, o, stdout, logf)
	}
}

// runPlans runs every mode and size against the server at addr (tcpAddr
// for the tcp mode) and prints a line per plan.
func runPlans(ctx context.Context, p driver.Provider, addr, tcpAddr string, o options, w io.Writer) error {
	printHeader(w)
	rtts := make([]time.Duration, o.iters)
	for _, m := range o.modes {
		for _, s := range o.sizes {
			pl := plan{Mode: m, Size: s, Iters: o.iters, Warmup: o.warmup}
			cctx, cancel := context.WithTimeout(ctx, o.timeout)
			var err error
			if m == modeTCP {
				err = runTCPClient(cctx, tcpAddr, pl, rtts)
			} else {
				err = runClient(cctx, p, addr, pl, rtts)
			}
			cancel()
			if err != nil {
				return err
			}
			printResult(w, summarize(pl, rtts))
		}
	}
	return nil
}

// runSoft runs a server and the client in this process on one soft fabric.
func runSoft(ctx context.Context, o options, w io.Writer, logf func(string, ...any)) error {
	p := soft.New(soft.Config{})
	l, err := rdma.Listen(p, "127.0.0.1:0", rdma.ListenConfig{})
	if err != nil {
		return err
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	tcpDone := make(chan struct{})
	go func() { serveTCP(sctx, tl, o.timeout, logf); close(tcpDone) }()
	defer func() { tl.Close(); <-tcpDone }()
	done := make(chan error, 1)
	go func() { done <- serve(sctx, l, 0, o.timeout, logf) }()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	err = runPlans(ctx, p, net.JoinHostPort("127.0.0.1", port), tl.Addr().String(), o, w)
	cancel()
	if serr := <-done; err == nil {
		err = serr
	}
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return err
}
