package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// Node runs JavaScript apps with the runtime in slaves/node: event
// handlers exported by `args.module`, or a Node request listener (an
// Express or Koa app) exported by `args.http`.
type Node struct {
	// Interpreter runs the runtime. Default "node" on PATH.
	Interpreter string
	// RuntimeDir is the runtime's folder. Default: the "node" runtime inside
	// the binary (a node passes the folder it unpacked, see UnpackRuntimes).
	RuntimeDir string
}

var (
	_ Validator    = (*Node)(nil)
	_ WebDefaulter = (*Node)(nil)
)

func init() { Register("node", &Node{}) }

// HTTPByDefault: a request listener without handlers serves every event
// as HTTP. With both, events go to handlers when the module has one, which
// only the runtime knows: such events declare "payload": "http" themselves.
func (n *Node) HTTPByDefault(m *manifest.Manifest) bool {
	_, hasMod := m.Args["module"]
	_, hasHTTP := m.Args["http"]
	return hasHTTP && !hasMod
}

// ValidateArgs needs module or http, each a module path inside the package.
func (n *Node) ValidateArgs(m *manifest.Manifest) []manifest.Problem {
	var ps []manifest.Problem
	_, hasMod := m.Args["module"]
	_, hasHTTP := m.Args["http"]
	if !hasMod && !hasHTTP {
		ps = append(ps, manifest.Problem{Path: "module", Message: "required: args.module (event handlers) or args.http (a module exporting a request listener, such as an Express app)"})
	}
	for _, key := range []string{"module", "http"} {
		if v, ok := m.Args[key]; ok {
			if s, isStr := v.(string); !isStr || !filepath.IsLocal(s) {
				ps = append(ps, manifest.Problem{Path: key, Message: "must be a module path inside the package, such as \"app.js\""})
			}
		}
	}
	return ps
}

// Prepare finds the interpreter, the runtime and its dependencies.
func (n *Node) Prepare(ctx context.Context, app App) (Launcher, error) {
	if ps := n.ValidateArgs(app.Manifest); len(ps) > 0 {
		return nil, fmt.Errorf("node sandbox: args.%s: %s", ps[0].Path, ps[0].Message)
	}
	interp := n.Interpreter
	if interp == "" {
		interp = "node"
	}
	path, err := exec.LookPath(interp)
	if err != nil {
		return nil, fmt.Errorf("node sandbox: interpreter: %w (apt-get install -y nodejs)", err)
	}
	rt, err := runtimeDir(n.RuntimeDir, "node")
	if err != nil {
		return nil, fmt.Errorf("node sandbox: %w", err)
	}
	if _, err := os.Stat(filepath.Join(rt, "node_modules", "@msgpack", "msgpack")); err != nil {
		return nil, fmt.Errorf("node sandbox: the runtime's dependencies are not installed in %s (run `npm ci` there, or `make build`)", rt)
	}
	return Limit(exec.Command(path, filepath.Join(rt, "cocaine_slave.js")), app), nil
}
