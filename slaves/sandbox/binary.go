package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// Binary runs an executable from the package (`args.path`, with optional
// `args.args`) that speaks the slave protocol itself.
type Binary struct{}

var (
	_ Sandbox   = Binary{}
	_ Validator = Binary{}
)

func init() { Register("binary", Binary{}) }

// ValidateArgs requires args.path inside the package.
func (Binary) ValidateArgs(m *manifest.Manifest) []manifest.Problem {
	var ps []manifest.Problem
	path, ok := m.ArgString("path")
	if !ok || path == "" {
		ps = append(ps, manifest.Problem{Path: "path", Message: "required: the executable to run, relative to the package root"})
	} else if !filepath.IsLocal(path) {
		ps = append(ps, manifest.Problem{Path: "path", Message: "must be a relative path inside the package"})
	}
	if _, err := stringList(m.Args["args"]); err != nil {
		ps = append(ps, manifest.Problem{Path: "args", Message: err.Error()})
	}
	return ps
}

// Prepare checks the executable exists and is executable.
func (Binary) Prepare(ctx context.Context, app App) (Launcher, error) {
	if ps := (Binary{}).ValidateArgs(app.Manifest); len(ps) > 0 {
		return nil, fmt.Errorf("binary sandbox: args.%s: %s", ps[0].Path, ps[0].Message)
	}
	rel, _ := app.Manifest.ArgString("path")
	exe := filepath.Join(app.Dir, rel)
	st, err := os.Stat(exe)
	if err != nil {
		return nil, fmt.Errorf("binary sandbox: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("binary sandbox: %s is not an executable file", rel)
	}
	args, _ := stringList(app.Manifest.Args["args"])
	return Limit(exec.Command(exe, args...), app), nil
}

func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list of strings")
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("element %d must be a string", i)
		}
		out[i] = s
	}
	return out, nil
}
