package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

// Go builds the package's main with the node's Go toolchain at deploy
// time and caches the binary by the hash of the sources, so redeploying
// the same code, or starting a second node on the same cache, costs
// nothing.
//
// A package without a go.mod (like the examples) is built against the Go
// SDK inside this binary (GoSDK), with its dependencies from the SDK's own
// module proxy: no network and no checkout are needed. A package with a
// go.mod gets the same SDK through a replace directive, whatever version it
// requires, so that it speaks the protocol of the engine that runs it;
// its other dependencies come from the node's GOPROXY.
type Go struct {
	// Toolchain is the go command. Default: "go" on PATH.
	Toolchain string
	// CacheDir holds built binaries, one per source hash.
	CacheDir string
	// SDKDir is the unpacked GoSDK. Default: unpacked under CacheDir on
	// first use (a node sets it at start, see UnpackRuntimes).
	SDKDir string
	// FrameworkDir is a checkout of FrameworkModule to build against
	// instead of the SDK inside the binary, for work on the SDK itself; the
	// SDK's dependencies then come from the module cache or GOPROXY.
	// Default: none.
	FrameworkDir string

	mu sync.Mutex // one build at a time: builds are CPU-bound
}

var (
	_ Validator = (*Go)(nil)
	_ Checker   = (*Go)(nil)
)

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

// ErrNoGo is returned when the node has no Go toolchain to build apps.
var ErrNoGo = errors.New("go sandbox: no Go toolchain on this node")

func (g *Go) toolchain() string {
	if g.Toolchain == "" {
		return "go"
	}
	return g.Toolchain
}

// Check finds the toolchain, which the node needs to build Go apps.
func (g *Go) Check() error {
	if _, err := exec.LookPath(g.toolchain()); err != nil {
		return fmt.Errorf("%w (%q: %v): install Go %s or later (https://go.dev/dl/) or set [sandbox.go] toolchain",
			ErrNoGo, g.toolchain(), errors.Unwrap(err), sdkGoVersion())
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
	cache := g.CacheDir
	if cache == "" {
		cache = defaultCacheDir()
	}
	sdk, err := g.sdk(cache)
	if err != nil {
		return nil, err
	}
	hash, err := g.sourceHash(app.Dir, sdk)
	if err != nil {
		return nil, fmt.Errorf("go sandbox: hash sources: %w", err)
	}
	bin := filepath.Join(cache, hash[:32], "app")
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := os.Stat(bin); err != nil {
		if err := g.Check(); err != nil {
			return nil, err
		}
		if err := g.build(ctx, app, pkg, bin, sdk, cache); err != nil {
			return nil, err
		}
	}
	return Limit(exec.Command(bin), app), nil
}

// sdkSource is what an app is built against: the folder replacing
// FrameworkModule, whether it is the embedded SDK (with its own proxy),
// and what identifies its content.
type sdkSource struct {
	dir      string
	embedded bool
	id       string
}

func (g *Go) sdk(cache string) (sdkSource, error) {
	if g.FrameworkDir != "" {
		h, err := treeHash(filepath.Join(g.FrameworkDir, "slaves"))
		if err != nil {
			return sdkSource{}, fmt.Errorf("go sandbox: framework: %w", err)
		}
		return sdkSource{dir: g.FrameworkDir, id: "checkout " + g.FrameworkDir + " " + h}, nil
	}
	h, err := GoSDK.Hash()
	if err != nil {
		return sdkSource{}, fmt.Errorf("go sandbox: %w", err)
	}
	dir := g.SDKDir
	if dir == "" {
		if dir, err = GoSDK.Unpack(RuntimesDir(cache)); err != nil {
			return sdkSource{}, fmt.Errorf("go sandbox: %w", err)
		}
	}
	return sdkSource{dir: dir, embedded: true, id: "sdk " + h}, nil
}

func (g *Go) build(ctx context.Context, app App, pkg, bin string, sdk sdkSource, cache string) error {
	work, err := os.MkdirTemp("", "cocaine-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.CopyFS(work, os.DirFS(app.Dir)); err != nil {
		return fmt.Errorf("go sandbox: copy sources: %w", err)
	}
	tool := g.toolchain()
	// -mod=mod lets a generated go.mod pick up the SDK's requirements;
	// GOTOOLCHAIN=local keeps a go directive from fetching a toolchain.
	env := append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	env = append(env, goCacheEnv(cache)...)
	if _, err := os.Stat(filepath.Join(work, "go.mod")); err != nil {
		if err := writeModule(work, app.Name, sdk); err != nil {
			return err
		}
		if sdk.embedded {
			// Everything comes from the SDK's proxy and is checked against
			// the go.sum written from the binary's own: nothing to ask a
			// checksum database about.
			env = append(env, "GOPROXY="+sdkProxyURL(sdk.dir), "GOSUMDB=off")
		}
	} else {
		if err := g.useSDK(ctx, tool, work, env, sdk); err != nil {
			return err
		}
		if sdk.embedded {
			env = append(env, "GOPROXY="+sdkProxyURL(sdk.dir)+","+goEnv(ctx, tool, env, "GOPROXY"))
		}
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, tool, "build", "-trimpath", "-o", tmp, "./"+filepath.ToSlash(filepath.Clean(pkg)))
	cmd.Dir = work
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if app.Logger != nil {
		app.Logger.Info("building go app", "binary", bin, "sdk", sdk.dir)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go sandbox: go build failed: %w\n%s", err, strings.TrimSpace(out.String()))
	}
	return os.Rename(tmp, bin)
}

// sourceHash covers what the binary is built from: the package and the
// SDK it is built against.
func (g *Go) sourceHash(dir string, sdk sdkSource) (string, error) {
	h, err := treeHash(dir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(h + "\n" + sdk.id))
	return hex.EncodeToString(sum[:]), nil
}

func sdkProxyURL(sdkDir string) string {
	return "file://" + filepath.ToSlash(filepath.Join(sdkDir, filepath.FromSlash(sdkProxy)))
}

// writeModule gives a package without a go.mod one that resolves the SDK
// to sdk, with the SDK's checksums.
func writeModule(work, app string, sdk sdkSource) error {
	var mods []sdkModule
	goVersion := sdkGoVersion()
	if sdk.embedded {
		var err error
		if mods, err = sdkModules(os.DirFS(sdk.dir)); err != nil {
			return fmt.Errorf("go sandbox: sdk: %w", err)
		}
	}
	var mod bytes.Buffer
	fmt.Fprintf(&mod, "module cocaine.app/%s\n\ngo %s\n\nrequire (\n\t%s v0.0.0\n", app, goVersion, FrameworkModule)
	// The SDK's dependencies are the app's too: an app may use msgpack.
	for _, m := range mods {
		fmt.Fprintf(&mod, "\t%s %s\n", m.Path, m.Version)
	}
	fmt.Fprintf(&mod, ")\n\nreplace %s => %s\n", FrameworkModule, sdk.dir)
	if err := os.WriteFile(filepath.Join(work, "go.mod"), mod.Bytes(), 0o644); err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(sdk.dir, "go.sum"))
	if err != nil {
		return fmt.Errorf("go sandbox: sdk go.sum: %w", err)
	}
	return os.WriteFile(filepath.Join(work, "go.sum"), sum, 0o644)
}

// useSDK points an app's own go.mod at sdk and adds the SDK's checksums to
// its go.sum (duplicates are harmless).
func (g *Go) useSDK(ctx context.Context, tool, work string, env []string, sdk sdkSource) error {
	cmd := exec.CommandContext(ctx, tool, "mod", "edit", "-replace="+FrameworkModule+"="+sdk.dir)
	cmd.Dir, cmd.Env = work, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go sandbox: go.mod: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	if !sdk.embedded {
		return nil
	}
	sum, err := os.ReadFile(filepath.Join(sdk.dir, "go.sum"))
	if err != nil {
		return fmt.Errorf("go sandbox: sdk go.sum: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(work, "go.sum"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append([]byte("\n"), sum...)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// goEnv asks the toolchain for a setting as the node's user has it (the
// environment or `go env -w`).
func goEnv(ctx context.Context, tool string, env []string, key string) string {
	cmd := exec.CommandContext(ctx, tool, "env", key)
	cmd.Env = env
	out, err := cmd.Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v
	}
	return "https://proxy.golang.org,direct"
}

// goCacheEnv gives the go command its caches under the node's cache when
// the environment cannot (a service without HOME).
func goCacheEnv(cache string) []string {
	if os.Getenv("HOME") != "" {
		return nil
	}
	var env []string
	if os.Getenv("GOCACHE") == "" {
		env = append(env, "GOCACHE="+filepath.Join(cache, "go-build"))
	}
	if os.Getenv("GOMODCACHE") == "" && os.Getenv("GOPATH") == "" {
		env = append(env, "GOPATH="+filepath.Join(cache, "gopath"))
	}
	return env
}

// sdkGoVersion is the Go release the SDK's go.mod asks for.
func sdkGoVersion() string {
	data, err := fs.ReadFile(GoSDK.FS, "go.mod")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "1.26"
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
