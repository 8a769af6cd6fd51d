//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rxe-up: %v\n", err)
		os.Exit(1)
	}
}

// run parses the flags, brings the device up and reports it.
func run(args []string) error {
	fs := flag.NewFlagSet("rxe-up", flag.ContinueOnError)
	var cfg Config
	fs.StringVar(&cfg.Name, "name", DefaultName, "name of the rdma link to add")
	fs.StringVar(&cfg.Netdev, "netdev", DefaultNetdev, "dummy network interface to create and bind rxe to")
	fs.StringVar(&cfg.Addr, "addr", DefaultAddr, "address/prefix for the dummy interface (guest-private network)")
	extra := fs.String("extra", "", "comma-separated extra modules to load (e.g. ib_iser,ib_isert,iscsi_target_mod)")
	timeout := fs.Duration("timeout", 90*time.Second, "give up when the device is not ready after this long")
	envFile := fs.String("env", "", "write the result as shell variables to this file")
	verbose := fs.Bool("v", false, "log every step")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg.ExtraModules = splitList(*extra)
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	res, err := Up(ctx, cfg)
	if err != nil {
		return err
	}
	if *envFile != "" {
		if err := os.WriteFile(*envFile, []byte(res.Env()), 0o644); err != nil {
			return fmt.Errorf("write env file: %w", err)
		}
	}
	fmt.Print(res.Summary())
	fmt.Printf("rxe-up: ready in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// splitList splits a comma- or space-separated list, dropping empty items.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}
