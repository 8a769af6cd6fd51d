package rdma_test

import (
	"errors"
	"sync"
	"syscall"
	"testing"

	"github.com/goiser/goiser/rdma"
	"github.com/goiser/goiser/rdma/driver"
	"github.com/goiser/goiser/rdma/soft"
)

// failingProvider wraps the soft provider so that the next Close of a kind
// of object ("device", "pd", "mr", "cq", "qp") fails once with EBUSY, as a
// destroy call the kernel refuses does. Only manual queue pairs are
// wrapped; the CM passes through.
type failingProvider struct {
	driver.Provider
	mu   sync.Mutex
	fail map[string]bool // guarded by mu
}

func (p *failingProvider) failOnce(kind string) {
	p.mu.Lock()
	p.fail[kind] = true
	p.mu.Unlock()
}

// closeErr consumes an armed failure of kind.
func (p *failingProvider) closeErr(kind string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.fail[kind] {
		return nil
	}
	delete(p.fail, kind)
	return driver.NewVerbsError("destroy_"+kind, syscall.EBUSY)
}

func (p *failingProvider) Open(name string) (driver.Context, error) {
	c, err := p.Provider.Open(name)
	if err != nil {
		return nil, err
	}
	return &failingCtx{Context: c, p: p}, nil
}

type failingCtx struct {
	driver.Context
	p *failingProvider
}

func (c *failingCtx) AllocPD() (driver.PD, error) {
	pd, err := c.Context.AllocPD()
	if err != nil {
		return nil, err
	}
	return &failingPD{PD: pd, p: c.p}, nil
}

func (c *failingCtx) CreateCQ(cfg driver.CQConfig) (driver.CQ, error) {
	cq, err := c.Context.CreateCQ(cfg)
	if err != nil {
		return nil, err
	}
	return &failingCQ{CQ: cq, p: c.p}, nil
}

func (c *failingCtx) Close() error {
	if err := c.p.closeErr("device"); err != nil {
		return err
	}
	return c.Context.Close()
}

type failingPD struct {
	driver.PD
	p *failingProvider
}

func (d *failingPD) RegMR(mem []byte, access driver.Access) (driver.MR, error) {
	mr, err := d.PD.RegMR(mem, access)
	if err != nil {
		return nil, err
	}
	return &failingMR{MR: mr, p: d.p}, nil
}

func (d *failingPD) CreateQP(cfg driver.QPConfig, send, recv driver.CQ) (driver.QP, error) {
	qp, err := d.PD.CreateQP(cfg, send.(*failingCQ).CQ, recv.(*failingCQ).CQ)
	if err != nil {
		return nil, err
	}
	return &failingQP{QP: qp, p: d.p}, nil
}

func (d *failingPD) Close() error {
	if err := d.p.closeErr("pd"); err != nil {
		return err
	}
	return d.PD.Close()
}

type failingMR struct {
	driver.MR
	p *failingProvider
}

func (m *failingMR) Close() error {
	if err := m.p.closeErr("mr"); err != nil {
		return err
	}
	return m.MR.Close()
}

type failingCQ struct {
	driver.CQ
	p *failingProvider
}

func (c *failingCQ) Close() error {
	if err := c.p.closeErr("cq"); err != nil {
		return err
	}
	return c.CQ.Close()
}

type failingQP struct {
	driver.QP
	p *failingProvider
}

func (q *failingQP) Close() error {
	if err := q.p.closeErr("qp"); err != nil {
		return err
	}
	return q.QP.Close()
}

// TestFailedCloseKeepsObjectOpen: an object whose provider Close (the
// destroy call) fails stays open and counted as its parents' child, so
// they refuse to close (ErrBusy) instead of being released under it; it
// stays usable, and a retry closes it.
func TestFailedCloseKeepsObjectOpen(t *testing.T) {
	p := &failingProvider{Provider: soft.New(soft.Config{}), fail: map[string]bool{}}
	dev, err := rdma.Open(p, "soft0")
	mustT(t, err)
	pd, err := dev.AllocPD()
	mustT(t, err)
	cq, err := dev.NewCompletionQueue(rdma.CompletionQueueConfig{Entries: 16})
	mustT(t, err)
	buf, err := rdma.AllocBuffer(4096, rdma.BufferOptions{})
	mustT(t, err)
	mr, err := pd.RegisterBuffer(buf, rdma.AccessLocalWrite)
	mustT(t, err)
	qp, err := pd.NewQueuePair(rdma.QueuePairConfig{SendCQ: cq, RecvCQ: cq})
	mustT(t, err)

	busy := func(what string, c interface{ Close() error }) {
		t.Helper()
		if err := c.Close(); !errors.Is(err, rdma.ErrBusy) {
			t.Fatalf("close %s: %v; want ErrBusy", what, err)
		}
	}
	failed := func(what string, c interface{ Close() error }) {
		t.Helper()
		if err := c.Close(); !errors.Is(err, syscall.EBUSY) || errors.Is(err, rdma.ErrBusy) {
			t.Fatalf("close %s with a failing destroy: %v; want the provider's EBUSY", what, err)
		}
	}

	p.failOnce("qp")
	failed("QP", qp)
	busy("PD under a QP whose close failed", pd)
	busy("CQ under a QP whose close failed", cq)
	if s, err := qp.State(); err != nil || s != rdma.QPReset {
		t.Fatalf("QP after a failed close: %v, %v; want it open, in RESET", s, err)
	}
	mustT(t, qp.Close())
	mustT(t, qp.Close())
	if _, err := qp.State(); !errors.Is(err, rdma.ErrClosed) {
		t.Fatalf("QP after its retried close: %v; want ErrClosed", err)
	}

	p.failOnce("mr")
	failed("MR", mr)
	busy("buffer under an MR whose close failed", buf)
	busy("PD under an MR whose close failed", pd)
	mustT(t, mr.Close())

	p.failOnce("cq")
	failed("CQ", cq)
	busy("device under a CQ whose close failed", dev)
	if _, err := cq.Poll(make([]rdma.Completion, 1)); err != nil {
		t.Fatalf("poll a CQ whose close failed: %v", err)
	}
	mustT(t, cq.Close())

	p.failOnce("pd")
	failed("PD", pd)
	busy("device under a PD whose close failed", dev)
	mr2, err := pd.RegisterBuffer(buf, rdma.AccessLocalWrite)
	if err != nil {
		t.Fatalf("register on a PD whose close failed: %v", err)
	}
	mustT(t, mr2.Close())
	mustT(t, pd.Close())
	mustT(t, buf.Close())

	p.failOnce("device")
	failed("device", dev)
	pd2, err := dev.AllocPD()
	if err != nil {
		t.Fatalf("alloc PD on a device whose close failed: %v", err)
	}
	busy("device with a new PD", dev)
	mustT(t, pd2.Close())
	mustT(t, dev.Close())
	mustT(t, dev.Close())
}
