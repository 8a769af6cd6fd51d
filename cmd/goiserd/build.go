package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/goiser/goiser/scsi"
	"github.com/goiser/goiser/scsi/backend"
)

// openedTarget is a target's SCSI core with the backends it owns.
type openedTarget struct {
	cfg      *TargetConfig
	scsi     *scsi.Target
	backends []backend.Backend // same order as cfg.LUNs
}

// openTargets opens every backend and builds one scsi.Target per
// configured target. On error everything opened so far is closed.
func openTargets(cfg *Config, log *slog.Logger) ([]*openedTarget, error) {
	var out []*openedTarget
	fail := func(err error) ([]*openedTarget, error) {
		closeTargets(out, log)
		return nil, err
	}
	for i := range cfg.Targets {
		tc := &cfg.Targets[i]
		ot := &openedTarget{cfg: tc}
		sc := scsi.TargetConfig{Logger: log.With("target", tc.Name), Name: tc.Name}
		for j := range tc.LUNs {
			lc := &tc.LUNs[j]
			be, err := openBackend(lc)
			if err != nil {
				for _, b := range ot.backends {
					b.Close()
				}
				return fail(fmt.Errorf("target %s LUN %d: %w", tc.Name, lc.LUN, err))
			}
			ot.backends = append(ot.backends, be)
			sc.LUNs = append(sc.LUNs, scsi.LUNConfig{
				Number:       lc.LUN,
				Backend:      be,
				BlockSize:    lc.BlockSize,
				SerialNumber: lc.Serial,
				ReadOnly:     lc.ReadOnly,
				Removable:    lc.Removable,
				WriteThrough: lc.WriteThrough,

				PhysicalBlockSize:  lc.PhysicalBlockSize,
				NoThinProvisioning: lc.ThinProvisioning != nil && !*lc.ThinProvisioning,
			})
		}
		t, err := scsi.NewTarget(sc)
		if err != nil {
			for _, b := range ot.backends {
				b.Close()
			}
			return fail(fmt.Errorf("target %s: %w", tc.Name, err))
		}
		ot.scsi = t
		out = append(out, ot)
	}
	return out, nil
}

// openBackend opens the storage of one LUN.
func openBackend(lc *LUNConfig) (backend.Backend, error) {
	switch lc.Backend {
	case "mem":
		b, err := backend.NewMemory(lc.bytes)
		if err != nil {
			return nil, fmt.Errorf("memory backend of %s: %w", formatSize(lc.bytes), err)
		}
		return b, nil
	case "null":
		return backend.NewNull(lc.bytes), nil
	case "file":
		// With O_DIRECT the alignment is the LUN's logical block: the
		// READ/WRITE datapath is aligned to it and goes straight to the
		// disk, anything else is bounced through aligned buffers. A file
		// system that needs more (4Kn disks) wants "block_size": 4096.
		b, err := backend.OpenFile(lc.Path, backend.FileConfig{Size: lc.bytes, Direct: lc.Direct, Align: lc.BlockSize, ReadOnly: lc.ReadOnly})
		if err != nil {
			return nil, err
		}
		if b.Size()%int64(lc.BlockSize) != 0 {
			b.Close()
			return nil, fmt.Errorf("backing file %s: %d bytes is not a multiple of the block size %d", lc.Path, b.Size(), lc.BlockSize)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown backend %q", lc.Backend)
}

// closeTargets flushes every backend (so that nothing acknowledged is lost
// even with a write cache) and closes it. Errors are logged and returned.
func closeTargets(ts []*openedTarget, log *slog.Logger) error {
	var errs []error
	for _, t := range ts {
		for j, b := range t.backends {
			lun := t.cfg.LUNs[j].LUN
			if err := b.Flush(); err != nil {
				err = fmt.Errorf("flush target %s LUN %d: %w", t.cfg.Name, lun, err)
				log.Error("flush failed", "target", t.cfg.Name, "lun", lun, "err", err)
				errs = append(errs, err)
			}
		}
		if t.scsi != nil {
			// scsi.Target.Close closes the backends it was given.
			if err := t.scsi.Close(); err != nil {
				log.Error("close failed", "target", t.cfg.Name, "err", err)
				errs = append(errs, fmt.Errorf("close target %s: %w", t.cfg.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
