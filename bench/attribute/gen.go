package attribute

// The tracer's eBPF object is generated from bpf/tracer.c and committed
// (tracer_bpfel.go, tracer_bpfel.o), so building needs no clang. To
// regenerate after changing the C source (clang 14 or later):
//
//	go generate ./bench/attribute

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -go-package attribute -target bpfel -cflags "-O2 -g -Wall -Werror" tracer bpf/tracer.c
