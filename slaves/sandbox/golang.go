package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// FrameworkModule is the module apps import slaves/go from.
const FrameworkModule = "github.com/cocaine-cloud/cocaine"

// Go builds the package's main with the node's Go toolchain at deploy
// time and caches the binary by the hash of the sources, so redeploying
// the same code, or starting a second node on the same cache, costs
// nothing.
type Go struct {
	// Toolchain is the go command. Default: "go" on PATH.
	Toolchain string
	// CacheDir holds built binaries, one per source hash.
	CacheDir string
	// FrameworkDir is a checkout of FrameworkModule, used for packages that
	// bring no go.mod of their own (like the examples). Default: found by
	// walking up from the working directory.
	FrameworkDir string

	mu sync.Mutex // one build at a time: builds are CPU-bound
}

var _ Validator = (*Go)(nil)

func init() { Register("go", &Go{}) }

// ValidateArgs checks args.package, the folder of the main package.
func (g *Go) ValidateArgs(m *manifest.Manifest) []manifest.Problem {
	if v, ok := m.Args["package"]; ok {
		s, isStr := v.(string)
		if !isStr || !filepath.IsLocal(s) {
			return []manifest.Problem{{Path: "package", Message: "must be a relative folder inside the package"}}
		}
	}
	return nil
}

// Prepare builds the app (or finds it in the cache).
func (g *Go) Prepare(ctx context.Context, app App) (Launcher, error) {
	if ps := g.ValidateArgs(app.Manifest); len(ps) > 0 {
		return nil, fmt.Errorf("go sandbox: args.%s: %s", ps[0].Path, ps[0].Message)
	}
	pkg, ok := app.Manifest.ArgString("package")
	if !ok {
		pkg = "."
	}
	hash, err := g.sourceHash(app.Dir)
	if err != nil {
		return nil, fmt.Errorf("go sandbox: hash sources: %w", err)
	}
	cache := g.CacheDir
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "cocaine-go-cache")
	}
	bin := filepath.Join(cache, hash[:32], "app")
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := os.Stat(bin); err != nil {
		if err := g.build(ctx, app, pkg, bin); err != nil {
			return nil, err
		}
	}
	return Limit(exec.Command(bin), app), nil
}

func (g *Go) build(ctx context.Context, app App, pkg, bin string) error {
	work, err := os.MkdirTemp("", "cocaine-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.CopyFS(work, os.DirFS(app.Dir)); err != nil {
		return fmt.Errorf("go sandbox: copy sources: %w", err)
	}
	if _, err := os.Stat(filepath.Join(work, "go.mod")); err != nil {
		if err := g.writeModule(work, app.Name); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	tmp := bin + ".tmp"
	tool := g.Toolchain
	if tool == "" {
		tool = "go"
	}
	cmd := exec.CommandContext(ctx, tool, "build", "-trimpath", "-o", tmp, "./"+filepath.ToSlash(filepath.Clean(pkg)))
	cmd.Dir = work
	// -mod=mod lets a generated go.mod pick up the framework's requirements.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if app.Logger != nil {
		app.Logger.Info("building go app", "binary", bin)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go sandbox: go build failed: %w\n%s", err, strings.TrimSpace(out.String()))
	}
	return os.Rename(tmp, bin)
}

// sourceHash covers what the binary is built from: the package, and for a
// package without go.mod the framework checkout it will be built against.
func (g *Go) sourceHash(dir string) (string, error) {
	h, err := treeHash(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return h, nil
	}
	fw := g.FrameworkDir
	if fw == "" {
		if fw, err = findFramework(); err != nil {
			return "", err
		}
	}
	fh, err := treeHash(filepath.Join(fw, "slaves"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(h + fh + fw))
	return hex.EncodeToString(sum[:]), nil
}

// writeModule gives a package without a go.mod one that resolves the
// framework to the node's checkout, with its go.sum for the checksums.
func (g *Go) writeModule(work, app string) error {
	dir := g.FrameworkDir
	if dir == "" {
		var err error
		if dir, err = findFramework(); err != nil {
			return err
		}
	}
	mod := fmt.Sprintf("module cocaine.app/%s\n\ngo 1.26\n\nrequire %s v0.0.0\n\nreplace %s => %s\n",
		app, FrameworkModule, FrameworkModule, dir)
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		return fmt.Errorf("go sandbox: framework go.sum: %w", err)
	}
	return os.WriteFile(filepath.Join(work, "go.sum"), sum, 0o644)
}

// findFramework walks up from the working directory and from the
// executable to a go.mod declaring FrameworkModule.
func findFramework() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, d := range starts {
		for {
			if isFramework(filepath.Join(d, "go.mod")) {
				return d, nil
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", fmt.Errorf("go sandbox: the package has no go.mod and no checkout of %s was found; set the go sandbox's framework directory", FrameworkModule)
}

func isFramework(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == FrameworkModule
		}
	}
	return false
}

// treeHash hashes file names, modes and contents in a stable order.
func treeHash(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	fmt.Fprintf(h, "cocaine-go-sandbox v1\n")
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %o %d\n", rel, st.Mode().Perm(), st.Size())
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
