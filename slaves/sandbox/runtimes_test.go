package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every runtime unpacks on its own, with what its sandbox looks for, and
// the Node runtime with its npm dependencies installed from the binary.
func TestRuntimesUnpackComplete(t *testing.T) {
	cache := t.TempDir()
	dirs, err := UnpackRuntimes(cache)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"python": {"cocaine_slave.py", "cocaine/worker.py"},
		"go-sdk": {"go.mod", "go.sum", "slaves/go/run.go", "slaves/protocol/frame.go", "internal/httpmsg/httpmsg.go"},
		"c":      {"include/cocaine/slave.h", "include/cocaine/slave.hpp", "src/slave.c"},
		"node":   {"cocaine_slave.js", "lib/worker.js", "node_modules/@msgpack/msgpack/package.json", "node_modules/@msgpack/msgpack/dist.cjs/index.cjs"},
		"perl":   {"cocaine_slave.pl", "lib/Cocaine/Slave.pm"},
	}
	for name, files := range want {
		dir, ok := dirs[name]
		if !ok {
			t.Errorf("runtime %s not unpacked", name)
			continue
		}
		if !strings.HasPrefix(dir, RuntimesDir(cache)) {
			t.Errorf("runtime %s in %s, outside the cache", name, dir)
		}
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
				t.Errorf("runtime %s: %v", name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "c_test.go")); err == nil {
			t.Errorf("runtime %s carries a test file", name)
		}
	}
	if len(dirs) != len(Runtimes) {
		t.Errorf("%d folders for %d runtimes", len(dirs), len(Runtimes))
	}
	// The SDK's go.mod is its own: only the SDK's dependencies.
	mod, err := os.ReadFile(filepath.Join(dirs["go-sdk"], "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mod), "mongo-driver") || !strings.Contains(string(mod), "github.com/vmihailenco/msgpack/v5") {
		t.Errorf("the SDK's go.mod:\n%s", mod)
	}
}
