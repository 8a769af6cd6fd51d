package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// repeatWindow is how soon after the first shutdown signal a repeat counts
// as the same signal delivered twice rather than a request to exit at once.
const repeatWindow = 250 * time.Millisecond

func main() {
	// The first SIGTERM/SIGINT starts a graceful shutdown; a second one
	// exits at once. A repeat within repeatWindow of the first is the same
	// request delivered twice (coreutils timeout, or a kill of the process
	// group, signals both the process and its group) and is ignored.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		s := <-sigs
		first := time.Now()
		cancel(fmt.Errorf("signal %v", s))
		for s = range sigs {
			if time.Since(first) < repeatWindow {
				fmt.Fprintf(os.Stderr, "goiserd: ignoring %v delivered again within %v of the first\n", s, repeatWindow)
				continue
			}
			fmt.Fprintf(os.Stderr, "goiserd: second signal (%v): exiting without waiting\n", s)
			os.Exit(1)
		}
	}()

	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goiserd:", err)
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		os.Exit(code)
	}
}
