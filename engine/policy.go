package engine

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cocaine-cloud/cocaine/engine/drivers"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// DriversConfig is what this node lets apps' drivers bind and watch. A
// manifest that asks for more is deployed broken, with the reason.
type DriversConfig struct {
	// BindHosts are the hosts a zeromq-server driver may bind. Default
	// ["127.0.0.1", "::1", "localhost"]; add "*" or "0.0.0.0" to let apps
	// listen on every interface.
	BindHosts []string `toml:"bind-hosts"`
	// ReservedPorts may not be bound by apps, besides ports below 1024
	// and the node's own listen and announce ports: list the front's
	// ports when it runs on the same machine (`cocaine dev` adds its
	// own). Default none.
	ReservedPorts []int `toml:"reserved-ports"`
	// WatchRoots are folders, besides its own package folder, under which
	// an app's filesystem-monitor may watch. Default none.
	WatchRoots []string `toml:"watch-roots"`
}

func (c *DriversConfig) defaults() {
	if c.BindHosts == nil {
		c.BindHosts = []string{"127.0.0.1", "::1", "localhost"}
	}
}

// checkDrivers holds an app's drivers to the node's policy; dir is the
// app's package folder.
func (n *Node) checkDrivers(m *manifest.Manifest, dir string) error {
	pol := &n.cfg.Drivers
	reserved := append([]int(nil), pol.ReservedPorts...)
	for _, ep := range []string{n.cfg.Listen, n.cfg.Announce} {
		if _, port, err := net.SplitHostPort(strings.TrimPrefix(ep, "tcp://")); err == nil {
			if p, err := strconv.Atoi(port); err == nil {
				reserved = append(reserved, p)
			}
		}
	}
	for name, d := range m.Drivers {
		switch d.Type {
		case drivers.ZeroMQServer:
			ep, _ := d.Settings["endpoint"].(string)
			addr, ok := strings.CutPrefix(ep, "tcp://")
			if !ok {
				continue // ipc: a path the app's own user must be able to create
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("driver %s: endpoint %q: %w", name, ep, err)
			}
			if !slices.Contains(pol.BindHosts, host) {
				return fmt.Errorf("driver %s: this node lets apps bind only %v, not %q ([drivers] bind-hosts)", name, pol.BindHosts, host)
			}
			if port == "*" {
				continue // the system picks a free one
			}
			p, err := strconv.Atoi(port)
			if err != nil || p < 1024 || slices.Contains(reserved, p) {
				return fmt.Errorf("driver %s: port %s is reserved on this node ([drivers] reserved-ports, below 1024, the node's own)", name, port)
			}
		case drivers.FilesystemMonitor:
			path, _ := d.Settings["path"].(string)
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			path = filepath.Clean(path)
			allowed := false
			for _, root := range append([]string{dir}, pol.WatchRoots...) {
				if rel, err := filepath.Rel(root, path); err == nil && filepath.IsLocal(rel) || path == filepath.Clean(root) {
					allowed = true
				}
			}
			if !allowed {
				return fmt.Errorf("driver %s: this node lets apps watch only their own folder and %v, not %s ([drivers] watch-roots)", name, pol.WatchRoots, path)
			}
		}
	}
	return nil
}
