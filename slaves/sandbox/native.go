package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// Native builds C (`type: c`) and C++ (`type: cpp`) apps at deploy, linked
// with libcocaine-slave (slaves/c), and caches the binary by the hash of
// the package, the library and the compiler, as the go sandbox does. A
// package with a Makefile is built with make; otherwise every C (or, for
// cpp, C and C++) source file of the package is compiled into one program.
type Native struct {
	// Lang is "c" or "cpp".
	Lang string
	// Compiler is the C or C++ compiler. Default "cc" for c, "c++" for cpp.
	Compiler string
	// CacheDir holds built binaries and the library. Default: a folder in
	// the system's temporary directory.
	CacheDir string
	// RuntimeDir is the runtime's folder. Default: the "c" runtime inside
	// the binary (a node passes the folder it unpacked, see UnpackRuntimes).
	RuntimeDir string
}

var (
	_ Validator = (*Native)(nil)
	// Builds are CPU-bound: one at a time, for both languages.
	nativeBuild sync.Mutex
)

func init() {
	Register("c", &Native{Lang: "c"})
	Register("cpp", &Native{Lang: "cpp"})
}

// maxBuildOutput bounds the compiler output kept for the crash log.
const maxBuildOutput = 64 << 10

// ValidateArgs checks the optional args: binary (what make produces),
// flags (more compiler and linker flags) and args (the program's arguments).
func (n *Native) ValidateArgs(m *manifest.Manifest) []manifest.Problem {
	var ps []manifest.Problem
	if v, ok := m.Args["binary"]; ok {
		if s, isStr := v.(string); !isStr || !filepath.IsLocal(s) {
			ps = append(ps, manifest.Problem{Path: "binary", Message: "must be a relative path inside the package"})
		}
	}
	for _, key := range []string{"flags", "args"} {
		if _, err := stringList(m.Args[key]); err != nil {
			ps = append(ps, manifest.Problem{Path: key, Message: err.Error()})
		}
	}
	return ps
}

func (n *Native) name() string {
	if n.Lang == "cpp" {
		return "cpp sandbox"
	}
	return "c sandbox"
}

func (n *Native) compiler() string {
	switch {
	case n.Compiler != "":
		return n.Compiler
	case n.Lang == "cpp":
		return "c++"
	}
	return "cc"
}

// Prepare builds the app, or finds it in the cache.
func (n *Native) Prepare(ctx context.Context, app App) (Launcher, error) {
	if ps := n.ValidateArgs(app.Manifest); len(ps) > 0 {
		return nil, fmt.Errorf("%s: args.%s: %s", n.name(), ps[0].Path, ps[0].Message)
	}
	rt, err := runtimeDir(n.RuntimeDir, "c")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.name(), err)
	}
	cache := n.CacheDir
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "cocaine-cache")
	}
	cache = filepath.Join(cache, "native")
	flags, _ := stringList(app.Manifest.Args["flags"])
	args, _ := stringList(app.Manifest.Args["args"])

	appHash, err := treeHash(app.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s: hash sources: %w", n.name(), err)
	}
	rtHash, err := treeHash(rt)
	if err != nil {
		return nil, fmt.Errorf("%s: hash the runtime: %w", n.name(), err)
	}
	sum := sha256.Sum256([]byte(strings.Join(append([]string{"native v1", n.Lang, n.compiler(), appHash, rtHash}, flags...), "\x00")))
	bin := filepath.Join(cache, hex.EncodeToString(sum[:16]), "app")

	nativeBuild.Lock()
	defer nativeBuild.Unlock()
	if _, err := os.Stat(bin); err != nil {
		lib, err := n.library(ctx, rt, filepath.Join(cache, "lib-"+rtHash[:16]))
		if err != nil {
			return nil, err
		}
		if err := n.build(ctx, app, rt, lib, flags, bin); err != nil {
			return nil, err
		}
	}
	return Limit(exec.Command(bin, args...), app), nil
}

// library builds libcocaine-slave.a once per version of slaves/c.
func (n *Native) library(ctx context.Context, rt, dir string) (string, error) {
	lib := filepath.Join(dir, "libcocaine-slave.a")
	if _, err := os.Stat(lib); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "lib-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	obj := filepath.Join(tmp, "slave.o")
	// The library is C whatever the app's language: build it with cc.
	if err := run(ctx, "", "libcocaine-slave", "cc", "-std=gnu11", "-O2", "-fPIC", "-pthread", "-I", filepath.Join(rt, "include"), "-c", filepath.Join(rt, "src", "slave.c"), "-o", obj); err != nil {
		return "", fmt.Errorf("%s: %w", n.name(), err)
	}
	if err := run(ctx, "", "libcocaine-slave", "ar", "rcs", filepath.Join(tmp, "libcocaine-slave.a"), obj); err != nil {
		return "", fmt.Errorf("%s: %w", n.name(), err)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, statErr := os.Stat(lib); statErr != nil {
			return "", err
		}
	}
	return lib, nil
}

func (n *Native) build(ctx context.Context, app App, rt, lib string, flags []string, bin string) error {
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	tmp := bin + ".tmp"
	if app.Logger != nil {
		app.Logger.Info("building "+n.Lang+" app", "binary", bin)
	}
	if makefile(app.Dir) {
		work, err := os.MkdirTemp("", "cocaine-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		if err := os.CopyFS(work, os.DirFS(app.Dir)); err != nil {
			return fmt.Errorf("%s: copy sources: %w", n.name(), err)
		}
		cc, cxx := "cc", "c++"
		if n.Lang == "cpp" {
			cxx = n.compiler()
		} else {
			cc = n.compiler()
		}
		err = run(ctx, work, "make", "make", "-j2", "CC="+cc, "CXX="+cxx,
			"COCAINE_CFLAGS=-I"+filepath.Join(rt, "include")+" -pthread", "COCAINE_LIBS="+lib+" -pthread")
		if err != nil {
			return fmt.Errorf("%s: %w", n.name(), err)
		}
		out, ok := app.Manifest.ArgString("binary")
		if !ok {
			out = "app"
		}
		st, err := os.Stat(filepath.Join(work, out))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s: make did not produce the executable %q (args.binary)", n.name(), out)
		}
		if err := copyFile(filepath.Join(work, out), tmp); err != nil {
			return err
		}
		return os.Rename(tmp, bin)
	}
	srcs, err := n.sources(app.Dir)
	if err != nil {
		return err
	}
	argv := []string{"-O2", "-pthread", "-I", filepath.Join(rt, "include")}
	if n.Lang == "cpp" {
		argv = append(argv, "-std=c++17")
	}
	argv = append(argv, flags...)
	argv = append(argv, "-o", tmp)
	argv = append(argv, srcs...)
	argv = append(argv, lib, "-pthread")
	if err := run(ctx, app.Dir, "compile", n.compiler(), argv...); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", n.name(), err)
	}
	return os.Rename(tmp, bin)
}

// sources lists the package's source files, relative to its root.
func (n *Native) sources(dir string) ([]string, error) {
	exts := map[string]bool{".c": true}
	if n.Lang == "cpp" {
		for _, e := range []string{".cc", ".cpp", ".cxx", ".C"} {
			exts[e] = true
		}
	}
	var srcs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && exts[filepath.Ext(p)] {
			rel, _ := filepath.Rel(dir, p)
			srcs = append(srcs, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.name(), err)
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("%s: the package has neither a Makefile nor source files (%s)", n.name(), strings.Join(sortedKeys(exts), ", "))
	}
	sort.Strings(srcs)
	return srcs, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, "*"+k)
	}
	sort.Strings(out)
	return out
}

func makefile(dir string) bool {
	for _, f := range []string{"GNUmakefile", "makefile", "Makefile"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// run runs a build step; its error carries the step's output for the
// crash log.
func run(ctx context.Context, dir, what, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = slaveEnv(nil)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		text := out.Bytes()
		if len(text) > maxBuildOutput {
			text = append(text[:maxBuildOutput:maxBuildOutput], "\n[output truncated]"...)
		}
		return fmt.Errorf("%s failed: %w\n%s", what, err, strings.TrimSpace(string(text)))
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}
