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
	Register(NativeServer, func(d manifest.Driver, env Env) (Driver, error) { return &native{d}, nil }, checkNative)
}

// checkNative: "payload" says whether the event speaks the HTTP payload
// ("http": web apps, Go HandleHTTP events) or takes the request body as
// raw bytes ("raw"); the front serves it accordingly. Without it the
// sandbox decides (WSGI-only Python apps are HTTP, the rest raw).
func checkNative(d manifest.Driver) []manifest.Problem {
	var ps []manifest.Problem
	for k, v := range d.Settings {
		switch k {
		case "payload":
			if s, _ := v.(string); s != "http" && s != "raw" {
				ps = append(ps, manifest.Problem{Path: "payload", Message: `must be "http" or "raw"`})
			}
		default:
			ps = append(ps, manifest.Problem{Path: k, Message: `unknown key for a native-server driver (it takes "emit" and "payload")`})
		}
	}
	return ps
}

func (n *native) Start(context.Context) error { return nil }
func (n *native) Stop()                       {}
func (n *native) Info() map[string]any        { return BaseInfo(n.d) }
