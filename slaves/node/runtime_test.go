package node_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocaine-cloud/cocaine/slaves/node"
)

// copyRuntime writes the embedded runtime to a folder, as the node's
// unpack does before Install.
func copyRuntime(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, node.Files); err != nil {
		t.Fatal(err)
	}
	return dir
}

// deps/ holds a tarball for every package of package-lock.json, each
// matching the lock's integrity, and Install puts them in node_modules.
func TestNodeRuntimeInstalls(t *testing.T) {
	dir := copyRuntime(t)
	if err := node.Install(dir); err != nil {
		t.Fatalf("%v\n(after changing package-lock.json, run `npm pack NAME@VERSION` in slaves/node/deps for each package)", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "node_modules", "@msgpack", "msgpack", "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Name, Version string }
	if err := json.Unmarshal(raw, &pkg); err != nil || pkg.Name != "@msgpack/msgpack" {
		t.Fatalf("installed package.json: %v %+v", err, pkg)
	}
	// Nothing in deps/ that the lock does not ask for.
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	raw, _ = os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err := json.Unmarshal(raw, &lock); err != nil {
		t.Fatal(err)
	}
	wanted := map[string]bool{}
	for key, p := range lock.Packages {
		if i := strings.LastIndex(key, "node_modules/"); i >= 0 {
			wanted[node.TarballName(key[i+len("node_modules/"):], p.Version)] = true
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "deps"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tgz") && !wanted[e.Name()] {
			t.Errorf("deps/%s is not in package-lock.json", e.Name())
		}
	}
}

// A tarball that does not match the lock is refused.
func TestNodeRuntimeRefusesATamperedTarball(t *testing.T) {
	dir := copyRuntime(t)
	tgzs, _ := filepath.Glob(filepath.Join(dir, "deps", "*.tgz"))
	if len(tgzs) == 0 {
		t.Fatal("no tarball in deps/")
	}
	tgz := tgzs[0]
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(tgz, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := node.Install(dir); err == nil || !strings.Contains(err.Error(), "integrity mismatch") {
		t.Fatalf("a tampered tarball: %v", err)
	}
}
