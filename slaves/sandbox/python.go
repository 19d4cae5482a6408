package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// Python runs apps with the pure-Python runtime in slaves/python: event
// handlers from `args.module`, a WSGI app from `args.wsgi`.
type Python struct {
	// Interpreter runs the runtime. Default /usr/bin/python3: Debian's
	// python3-msgpack belongs to it, not to another python3 on PATH.
	Interpreter string
	// RuntimeDir is slaves/python of a checkout. Default: found like the
	// Go sandbox's framework.
	RuntimeDir string
}

var _ Validator = (*Python)(nil)

func init() { Register("python", &Python{}) }

// HTTPByDefault: a WSGI app without handlers serves every event as HTTP.
// With both, events go to handlers when the module has one, which only
// the runtime knows: such events declare "payload": "http" themselves.
func (p *Python) HTTPByDefault(m *manifest.Manifest) bool {
	_, hasMod := m.Args["module"]
	_, hasWSGI := m.Args["wsgi"]
	return hasWSGI && !hasMod
}

// ValidateArgs needs module or wsgi ("module:callable") and a list path.
func (p *Python) ValidateArgs(m *manifest.Manifest) []manifest.Problem {
	var ps []manifest.Problem
	mod, hasMod := m.Args["module"]
	wsgi, hasWSGI := m.Args["wsgi"]
	if !hasMod && !hasWSGI {
		ps = append(ps, manifest.Problem{Path: "module", Message: "required: args.module (event handlers) or args.wsgi (module:callable)"})
	}
	if s, ok := mod.(string); hasMod && (!ok || !isDotted(s)) {
		ps = append(ps, manifest.Problem{Path: "module", Message: "must be a Python module name such as \"app\" or \"pkg.handlers\""})
	}
	if hasWSGI {
		s, _ := wsgi.(string)
		modPart, callable, ok := strings.Cut(s, ":")
		if !ok || !isDotted(modPart) || !isDotted(callable) {
			ps = append(ps, manifest.Problem{Path: "wsgi", Message: "must be \"module:callable\", such as \"site:app\""})
		}
	}
	if v, ok := m.Args["path"]; ok {
		list, err := stringList(v)
		if err != nil {
			ps = append(ps, manifest.Problem{Path: "path", Message: err.Error()})
		}
		for i, d := range list {
			if !filepath.IsLocal(d) {
				ps = append(ps, manifest.Problem{Path: fmt.Sprintf("path[%d]", i), Message: "must be a folder inside the package"})
			}
		}
	}
	return ps
}

func isDotted(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || (part[0] >= '0' && part[0] <= '9') {
			return false
		}
		for _, r := range part {
			if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

// Prepare finds the interpreter and the runtime.
func (p *Python) Prepare(ctx context.Context, app App) (Launcher, error) {
	if ps := p.ValidateArgs(app.Manifest); len(ps) > 0 {
		return nil, fmt.Errorf("python sandbox: args.%s: %s", ps[0].Path, ps[0].Message)
	}
	interp := p.Interpreter
	if interp == "" {
		interp = "/usr/bin/python3"
	}
	if _, err := exec.LookPath(interp); err != nil {
		return nil, fmt.Errorf("python sandbox: interpreter: %w", err)
	}
	rt := p.RuntimeDir
	if rt == "" {
		fw, err := findFramework()
		if err != nil {
			return nil, fmt.Errorf("python sandbox: runtime: %w", err)
		}
		rt = filepath.Join(fw, "slaves", "python")
	}
	launcher := filepath.Join(rt, "cocaine_slave.py")
	if _, err := os.Stat(launcher); err != nil {
		return nil, fmt.Errorf("python sandbox: runtime: %w", err)
	}
	// -u: unbuffered output, so the app's log and crash log are complete.
	return Limit(exec.Command(interp, "-u", launcher), app), nil
}
