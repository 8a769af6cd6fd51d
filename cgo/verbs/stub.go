//go:build !(linux && cgo)

package verbs

import (
	"context"
	"fmt"

	"github.com/goiser/goiser/rdma/driver"
)

// Provider returns the verbs provider. This build has no cgo or is not
// Linux, so every method fails with driver.ErrNotSupported.
func Provider() driver.Provider { return stubProvider{} }

type stubProvider struct{}

func (stubProvider) Name() string                          { return "verbs" }
func (stubProvider) Devices() ([]driver.DeviceInfo, error) { return nil, errStub }
func (stubProvider) Open(string) (driver.Context, error)   { return nil, errStub }
func (stubProvider) Listen(string, driver.ListenConfig) (driver.Listener, error) {
	return nil, errStub
}
func (stubProvider) Dial(context.Context, string, driver.DialConfig) (driver.Dialer, error) {
	return nil, errStub
}

// errStub is what every method of this build returns.
var errStub = fmt.Errorf("verbs: built without cgo or not on Linux: %w", driver.ErrNotSupported)
