package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/goiser/goiser/rdma"
)

func TestSoftReport(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"-soft", "-v"}, &out, &errb); err != nil {
		t.Fatalf("run: %v (stderr %q)", err, errb.String())
	}
	s := out.String()
	for _, want := range []string{
		"hca_id:\tsoft0\n",
		"\tprovider:\t\tsoft\n",
		"\tphys_port_cnt:\t\t1\n",
		"\t\tport:\t1\n",
		"state:\t\t\tPORT_ACTIVE (4)",
		"max_qp_wr:",
		"link_layer:",
		"GID[  0]:",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestSoftOneDevice(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-soft", "-d", "soft0"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "max_qp_wr") {
		t.Error("limits printed without -v")
	}
	err := run([]string{"-soft", "-d", "nosuch9"}, &out, &out)
	if !errors.Is(err, rdma.ErrNoDevice) {
		t.Fatalf("unknown device: %v, want ErrNoDevice", err)
	}
	if err := run([]string{"-bogus"}, &out, &out); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestFormats(t *testing.T) {
	if got := guid(0x24c85bfffeccbaa8); got != "24c8:5bff:fecc:baa8" {
		t.Errorf("guid = %s", got)
	}
	g := rdma.GID{10: 0xff, 11: 0xff, 12: 10, 13: 99, 14: 0, 15: 1}
	if got := gidHex(g); got != "0000:0000:0000:0000:0000:ffff:0a63:0001" {
		t.Errorf("gidHex = %s", got)
	}
	if g.IP().String() != "10.99.0.1" {
		t.Errorf("GID IP form = %s", g.IP())
	}
}

func TestVerbsWithoutDevices(t *testing.T) {
	if _, err := os.Stat("/sys/class/infiniband"); err == nil {
		t.Skip("this host has RDMA devices; hack/rxe runs rdma-info against rxe0")
	}
	var out, errb bytes.Buffer
	err := run(nil, &out, &errb)
	if err != nil && !errors.Is(err, rdma.ErrNotSupported) && !errors.Is(err, rdma.ErrNoDevice) {
		t.Fatalf("run on a host without RDMA: %v", err)
	}
	if err == nil && out.String() != "No IB devices found\n" {
		t.Fatalf("output %q", out.String())
	}
}
