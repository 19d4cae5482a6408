package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// Perl runs Perl apps with the runtime in slaves/perl: the subs of the
// package `args.module` serve events, a PSGI app file `args.psgi` (Plack,
// Dancer2) serves HTTP events.
type Perl struct {
	// Interpreter runs the runtime. Default /usr/bin/perl: Debian's
	// libdata-messagepack-perl and libplack-perl belong to it.
	Interpreter string
	// RuntimeDir is the runtime's folder. Default: the "perl" runtime inside
	// the binary (a node passes the folder it unpacked, see UnpackRuntimes).
	RuntimeDir string
}

var (
	_ Validator    = (*Perl)(nil)
	_ WebDefaulter = (*Perl)(nil)
)

func init() { Register("perl", &Perl{}) }

var perlPackage = regexp.MustCompile(`^[A-Za-z_]\w*(::\w+)*$`)

// HTTPByDefault: a PSGI app without handlers serves every event as HTTP.
// With both, events go to handlers when the package has a sub, which only
// the runtime knows: such events declare "payload": "http" themselves.
func (p *Perl) HTTPByDefault(m *manifest.Manifest) bool {
	_, hasMod := m.Args["module"]
	_, hasPSGI := m.Args["psgi"]
	return hasPSGI && !hasMod
}

// ValidateArgs needs module (a package name) or psgi (a file of the package).
func (p *Perl) ValidateArgs(m *manifest.Manifest) []manifest.Problem {
	var ps []manifest.Problem
	mod, hasMod := m.Args["module"]
	psgi, hasPSGI := m.Args["psgi"]
	if !hasMod && !hasPSGI {
		ps = append(ps, manifest.Problem{Path: "module", Message: "required: args.module (a package of handlers) or args.psgi (a PSGI app file)"})
	}
	if s, ok := mod.(string); hasMod && (!ok || !perlPackage.MatchString(s)) {
		ps = append(ps, manifest.Problem{Path: "module", Message: "must be a Perl package name such as \"MyApp::Handlers\""})
	}
	if s, ok := psgi.(string); hasPSGI && (!ok || !filepath.IsLocal(s)) {
		ps = append(ps, manifest.Problem{Path: "psgi", Message: "must be a file inside the package such as \"app.psgi\""})
	}
	return ps
}

// Prepare finds the interpreter and the runtime.
func (p *Perl) Prepare(ctx context.Context, app App) (Launcher, error) {
	if ps := p.ValidateArgs(app.Manifest); len(ps) > 0 {
		return nil, fmt.Errorf("perl sandbox: args.%s: %s", ps[0].Path, ps[0].Message)
	}
	interp := p.Interpreter
	if interp == "" {
		interp = "/usr/bin/perl"
	}
	if _, err := exec.LookPath(interp); err != nil {
		return nil, fmt.Errorf("perl sandbox: interpreter: %w", err)
	}
	rt, err := runtimeDir(p.RuntimeDir, "perl")
	if err != nil {
		return nil, fmt.Errorf("perl sandbox: %w", err)
	}
	launcher := filepath.Join(rt, "cocaine_slave.pl")
	if _, err := os.Stat(launcher); err != nil {
		return nil, fmt.Errorf("perl sandbox: runtime: %w", err)
	}
	return Limit(exec.Command(interp, launcher), app), nil
}
