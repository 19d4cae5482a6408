package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	cocaine "github.com/cocaine-cloud/cocaine"
	"github.com/cocaine-cloud/cocaine/internal/buildinfo"
	"github.com/cocaine-cloud/cocaine/slaves/bundle"
)

// FrameworkModule is the module apps import slaves/go from.
const FrameworkModule = "github.com/cocaine-cloud/cocaine"

// sdkProxy is where, inside the unpacked SDK, its dependencies lie as a
// module proxy serves them.
const sdkProxy = "slaves/go/proxy"

// GoSDK is the Go SDK the go sandbox builds apps against: the module's
// root, with a go.mod that requires only the SDK's dependencies, a go.sum
// with their checksums, and those dependencies under slaves/go/proxy.
var GoSDK = &bundle.Bundle{
	Name:    "go-sdk",
	Version: sdkVersion(),
	FS:      cocaine.SDK,
	Keep:    bundle.NotTests,
	Finish:  finishSDK,
}

// sdkModule is a module the SDK depends on, found in its proxy.
type sdkModule struct{ Path, Version string }

// sdkModules lists the modules in the embedded proxy.
func sdkModules(fsys fs.FS) ([]sdkModule, error) {
	var mods []sdkModule
	err := fs.WalkDir(fsys, sdkProxy, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".zip" || path.Base(path.Dir(p)) != "@v" {
			return nil
		}
		mod := strings.TrimPrefix(path.Dir(path.Dir(p)), sdkProxy+"/")
		mods = append(mods, sdkModule{Path: unescape(mod), Version: strings.TrimSuffix(path.Base(p), ".zip")})
		return nil
	})
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, err
}

func sdkVersion() string {
	s := FrameworkModule + " " + buildinfo.Version
	mods, _ := sdkModules(cocaine.SDK)
	for _, m := range mods {
		s += ", " + m.Path + " " + m.Version
	}
	return s
}

// finishSDK turns the copy of the repository's go.mod and go.sum into the
// SDK's own: the full go.mod requires the whole platform (storage drivers,
// metrics), which a build would then need to download, while the SDK
// needs only what its proxy holds. It also writes the proxy's version
// lists, which the go command asks for.
func finishSDK(dir string) error {
	mods, err := sdkModules(os.DirFS(dir))
	if err != nil {
		return fmt.Errorf("go sdk: %w", err)
	}
	goVersion := "1.26"
	full, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("go sdk: %w", err)
	}
	for _, line := range strings.Split(string(full), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	var mod bytes.Buffer
	fmt.Fprintf(&mod, "module %s\n\ngo %s\n", FrameworkModule, goVersion)
	if len(mods) > 0 {
		mod.WriteString("\nrequire (\n")
		for _, m := range mods {
			fmt.Fprintf(&mod, "\t%s %s\n", m.Path, m.Version)
		}
		mod.WriteString(")\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), mod.Bytes(), 0o644); err != nil {
		return err
	}
	sums, err := sdkSums(filepath.Join(dir, "go.sum"), mods)
	if err != nil {
		return fmt.Errorf("go sdk: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		return err
	}
	for _, m := range mods {
		list := filepath.Join(dir, filepath.FromSlash(sdkProxy), filepath.FromSlash(escape(m.Path)), "@v", "list")
		if err := os.WriteFile(list, []byte(m.Version+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sdkSums keeps the lines of go.sum for mods, and fails when one of them
// has none: the build could not verify it.
func sdkSums(gosum string, mods []sdkModule) ([]byte, error) {
	f, err := os.Open(gosum)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := map[string]bool{}
	for _, m := range mods {
		want[m.Path+" "+m.Version] = true
	}
	found := map[string]bool{}
	var out bytes.Buffer
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		key := fields[0] + " " + strings.TrimSuffix(fields[1], "/go.mod")
		if want[key] {
			found[key] = true
			out.WriteString(sc.Text() + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for k := range want {
		if !found[k] {
			return nil, fmt.Errorf("go.sum has no checksum for %s", k)
		}
	}
	return out.Bytes(), nil
}

// escape and unescape are the module proxy's case encoding: an upper-case
// letter is '!' and its lower case.
func escape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unescape(p string) string {
	var b strings.Builder
	bang := false
	for _, r := range p {
		switch {
		case r == '!':
			bang = true
			continue
		case bang && r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		bang = false
		b.WriteRune(r)
	}
	return b.String()
}
