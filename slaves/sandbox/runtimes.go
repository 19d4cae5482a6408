package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cocaine-cloud/cocaine/internal/buildinfo"
	"github.com/cocaine-cloud/cocaine/slaves/bundle"
	"github.com/cocaine-cloud/cocaine/slaves/c"
	"github.com/cocaine-cloud/cocaine/slaves/node"
	"github.com/cocaine-cloud/cocaine/slaves/perl"
	"github.com/cocaine-cloud/cocaine/slaves/python"
)

// Runtimes are the files sandboxes need beside an app, carried inside the
// binary and unpacked by the node at start (UnpackRuntimes). A language
// whose runtime is not a single file adds one entry here, its files an
// embed.FS in its own package, and reads its folder from the map
// UnpackRuntimes returns.
var Runtimes = []*bundle.Bundle{
	PythonRuntime,
	GoSDK,
	{Name: "c", Version: buildinfo.Version, FS: c.Files},
	{Name: "node", Version: buildinfo.Version + ", " + npmDeps(), FS: node.Files, Finish: node.Install},
	{Name: "perl", Version: buildinfo.Version, FS: perl.Files},
}

// PythonRuntime is the runtime the python sandbox runs apps with.
var PythonRuntime = &bundle.Bundle{Name: "python", Version: buildinfo.Version, FS: python.Files}

// npmDeps names the npm packages the Node runtime carries, for `cocaine
// version`.
func npmDeps() string {
	entries, _ := fs.ReadDir(node.Files, "deps")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".tgz"); ok {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// RuntimesDir is the folder under a node's cache folder the runtimes
// unpack into.
func RuntimesDir(cacheDir string) string { return filepath.Join(cacheDir, "runtimes") }

// defaultCacheDir serves sandboxes made without a node (tests, tools).
// Processes of different builds share it, so nothing is pruned there.
func defaultCacheDir() string { return filepath.Join(os.TempDir(), "cocaine-cache") }

// UnpackRuntimes unpacks every runtime under cacheDir, a node's own cache,
// removes the versions older binaries left there (see bundle.Unpack and
// Prune) and returns the folders by name.
func UnpackRuntimes(cacheDir string) (map[string]string, error) {
	dirs := make(map[string]string, len(Runtimes))
	for _, b := range Runtimes {
		dir, err := b.Unpack(RuntimesDir(cacheDir))
		if err != nil {
			return nil, fmt.Errorf("sandbox: unpack runtime: %w", err)
		}
		b.Prune(RuntimesDir(cacheDir))
		dirs[b.Name] = dir
	}
	return dirs, nil
}

// runtimeNamed is the entry of Runtimes called name, or nil.
func runtimeNamed(name string) *bundle.Bundle {
	for _, b := range Runtimes {
		if b.Name == name {
			return b
		}
	}
	return nil
}
