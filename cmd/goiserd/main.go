package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goiserd:", err)
		os.Exit(2)
	}
	if _, err := buildConfig(o); err != nil {
		fmt.Fprintln(os.Stderr, "goiserd:", err)
		os.Exit(2)
	}
}
