package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// Python runs apps with the pure-Python runtime of slaves/python, carried
// inside the binary: event handlers from `args.module`, a WSGI app from
// `args.wsgi`.
type Python struct {
	// Interpreter runs the runtime. Default /usr/bin/python3: Debian's
	// python3-msgpack belongs to it, not to another python3 on PATH.
	Interpreter string
	// RuntimeDir is the runtime's folder (cocaine_slave.py and the cocaine
	// package). Default: the runtime inside the binary, unpacked under
	// CacheDir on first use (a node sets it at start, see UnpackRuntimes).
	RuntimeDir string
	// CacheDir is where the runtime is unpacked when RuntimeDir is unset.
	// Default: a folder under the system's temporary folder.
	CacheDir string

	// checked remembers that the interpreter passed Check.
	checked atomic.Bool
}

var (
	_ Validator = (*Python)(nil)
	_ Checker   = (*Python)(nil)
)

// ErrNoPython is returned when the node cannot run the Python runtime.
var ErrNoPython = errors.New("python sandbox: no usable Python on this node")

func (p *Python) interpreter() string {
	if p.Interpreter == "" {
		return "/usr/bin/python3"
	}
	return p.Interpreter
}

// Check finds the interpreter and the one library the runtime needs
// (msgpack). A success is remembered; a failure is not, so installing the
// package is enough.
func (p *Python) Check() error {
	if p.checked.Load() {
		return nil
	}
	interp := p.interpreter()
	if _, err := exec.LookPath(interp); err != nil {
		return fmt.Errorf("%w (%q: %v): install python3 and python3-msgpack (apt-get install python3 python3-msgpack) or set [sandbox.python] interpreter",
			ErrNoPython, interp, errors.Unwrap(err))
	}
	out, err := exec.Command(interp, "-c", "import msgpack").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w (%s cannot import msgpack: %s): install python3-msgpack (apt-get install python3-msgpack, or pip install msgpack for that interpreter)",
			ErrNoPython, interp, strings.TrimSpace(lastLine(string(out))))
	}
	p.checked.Store(true)
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

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
	if err := p.Check(); err != nil {
		return nil, err
	}
	interp := p.interpreter()
	rt := p.RuntimeDir
	if rt == "" {
		cache := p.CacheDir
		if cache == "" {
			cache = defaultCacheDir()
		}
		var err error
		if rt, err = PythonRuntime.Unpack(RuntimesDir(cache)); err != nil {
			return nil, fmt.Errorf("python sandbox: runtime: %w", err)
		}
	}
	launcher := filepath.Join(rt, "cocaine_slave.py")
	if _, err := os.Stat(launcher); err != nil {
		return nil, fmt.Errorf("python sandbox: runtime: %w", err)
	}
	// -u: unbuffered output, so the app's log and crash log are complete.
	return Limit(exec.Command(interp, "-u", launcher), app), nil
}
