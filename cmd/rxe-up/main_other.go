//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "rxe-up: Soft-RoCE needs Linux")
	os.Exit(1)
}
