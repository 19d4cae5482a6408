package drivers

import (
	"context"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// NativeServer is the type of the driver that makes an event reachable by
// the dealer through the node's request endpoint.
const NativeServer = "native-server"

// native is passive: the node's ROUTER endpoint receives requests for
// APP/DRIVER-NAME and submits them with the driver's emit. The driver only
// declares the route and shows up in info like any other.
type native struct{ d manifest.Driver }

var _ Driver = (*native)(nil)

func init() {
	Register(NativeServer, func(d manifest.Driver, env Env) (Driver, error) { return &native{d}, nil }, nil)
}

func (n *native) Start(context.Context) error { return nil }
func (n *native) Stop()                       {}
func (n *native) Info() map[string]any        { return BaseInfo(n.d) }
