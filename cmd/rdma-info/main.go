// Command rdma-info lists RDMA devices and their ports, like ibv_devinfo:
// node GUID, firmware, port state, MTU, link layer, the GID table with each
// GID's IP form, and the network interfaces behind the device.
//
//	rdma-info              every device the verbs provider sees
//	rdma-info -d rxe0 -v   one device, with its limits
//	rdma-info -soft        the in-process soft provider (demos, tests)
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/goiser/goiser/cgo/verbs"
	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
	"github.com/goiser/goiser/rdma/soft"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rdma-info:", err)
		}
		os.Exit(1)
	}
}

// run parses args and prints the report to stdout.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rdma-info", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.String("d", "", "only this device (default: all)")
	verbose := fs.Bool("v", false, "also print device limits")
	useSoft := fs.Bool("soft", false, "use the in-process soft provider instead of libibverbs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var p driver.Provider = verbs.Provider()
	if *useSoft {
		p = soft.New(soft.Config{})
	}
	return report(stdout, p, *dev, *verbose)
}

// report prints every device of p (or only the one called only) to w.
func report(w io.Writer, p driver.Provider, only string, verbose bool) error {
	infos, err := rdma.Devices(p)
	if err != nil {
		return err
	}
	found := false
	for _, info := range infos {
		if only != "" && info.Name != only {
			continue
		}
		found = true
		if err := describe(w, p, info.Name, verbose); err != nil {
			return err
		}
	}
	if !found {
		if only != "" {
			return fmt.Errorf("no device %s: %w", only, rdma.ErrNoDevice)
		}
		fmt.Fprintln(w, "No IB devices found")
	}
	return nil
}

func describe(w io.Writer, p driver.Provider, name string, verbose bool) (err error) {
	dev, err := rdma.Open(p, name)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dev.Close(); err == nil {
			err = cerr
		}
	}()
	d, err := dev.Query()
	if err != nil {
		return err
	}
	a := d.Attr
	fmt.Fprintf(w, "hca_id:\t%s\n", name)
	fmt.Fprintf(w, "\tprovider:\t\t%s\n", p.Name())
	fmt.Fprintf(w, "\tfw_ver:\t\t\t%s\n", a.FirmwareVersion)
	fmt.Fprintf(w, "\tnode_guid:\t\t%s\n", guid(a.NodeGUID))
	fmt.Fprintf(w, "\tsys_image_guid:\t\t%s\n", guid(a.SysImageGUID))
	fmt.Fprintf(w, "\tvendor_id:\t\t%#x\n", a.VendorID)
	fmt.Fprintf(w, "\tvendor_part_id:\t\t%d\n", a.VendorPartID)
	fmt.Fprintf(w, "\thw_ver:\t\t\t%#x\n", a.HardwareVersion)
	fmt.Fprintf(w, "\tnetdevs:\t\t%s\n", list(d.Info.NetDevs))
	fmt.Fprintf(w, "\tphys_port_cnt:\t\t%d\n", a.PhysPortCount)
	if verbose {
		fmt.Fprintf(w, "\tmax_mr_size:\t\t%#x\n", a.MaxMRSize)
		fmt.Fprintf(w, "\tmax_qp:\t\t\t%d\n", a.MaxQP)
		fmt.Fprintf(w, "\tmax_qp_wr:\t\t%d\n", a.MaxQPWR)
		fmt.Fprintf(w, "\tmax_sge:\t\t%d\n", a.MaxSGE)
		fmt.Fprintf(w, "\tmax_cq:\t\t\t%d\n", a.MaxCQ)
		fmt.Fprintf(w, "\tmax_cqe:\t\t%d\n", a.MaxCQE)
		fmt.Fprintf(w, "\tmax_mr:\t\t\t%d\n", a.MaxMR)
		fmt.Fprintf(w, "\tmax_pd:\t\t\t%d\n", a.MaxPD)
		fmt.Fprintf(w, "\tmax_qp_rd_atom:\t\t%d\n", a.MaxQPRdAtom)
		fmt.Fprintf(w, "\tmax_qp_init_rd_atom:\t%d\n", a.MaxQPInitRdAtom)
	}
	for _, port := range d.Ports {
		pa := port.Attr
		fmt.Fprintf(w, "\t\tport:\t%d\n", port.Number)
		fmt.Fprintf(w, "\t\t\tstate:\t\t\tPORT_%s (%d)\n", pa.State, uint8(pa.State))
		fmt.Fprintf(w, "\t\t\tmax_mtu:\t\t%d\n", pa.MaxMTU)
		fmt.Fprintf(w, "\t\t\tactive_mtu:\t\t%d\n", pa.ActiveMTU)
		fmt.Fprintf(w, "\t\t\tsm_lid:\t\t\t%d\n", pa.SMLID)
		fmt.Fprintf(w, "\t\t\tport_lid:\t\t%d\n", pa.LID)
		fmt.Fprintf(w, "\t\t\tlink_layer:\t\t%s\n", pa.LinkLayer)
		fmt.Fprintf(w, "\t\t\tgid_tbl_len:\t\t%d\n", pa.GIDTableLen)
		for i := 0; i < rdma.MaxListedGIDs; i++ {
			g, ok := port.GIDs[i]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "\t\t\tGID[%3d]:\t\t%s, %s\n", i, gidHex(g), g.IP())
		}
	}
	return nil
}

// guid formats a GUID the way ibv_devinfo does: four groups of 16 bits.
func guid(g uint64) string {
	return fmt.Sprintf("%04x:%04x:%04x:%04x", g>>48, g>>32&0xffff, g>>16&0xffff, g&0xffff)
}

// gidHex formats a GID as eight groups of 16 bits, like ibv_devinfo -v.
func gidHex(g rdma.GID) string {
	s := ""
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			s += ":"
		}
		s += fmt.Sprintf("%02x%02x", g[i], g[i+1])
	}
	return s
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	out := s[0]
	for _, x := range s[1:] {
		out += "," + x
	}
	return out
}
