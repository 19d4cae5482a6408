package node_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/slaves/conformance"
	"github.com/cocaine-cloud/cocaine/slaves/sandbox"
)

// requireNode fails, not skips: a machine without the runtime's
// dependencies must not pass the suite by skipping it.
func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("the node runtime needs node: %v (apt-get install -y nodejs)", err)
	}
	if _, err := os.Stat("node_modules/@msgpack/msgpack"); err != nil {
		t.Fatalf("the node runtime's npm dependencies are not installed: run `make deps-test` (npm ci in slaves/node)")
	}
}

// starter prepares the app in dir with the node sandbox, as the engine
// does, and starts its slaves.
func starter(t *testing.T, dir string) conformance.StartFunc {
	t.Helper()
	requireNode(t)
	dir, _ = filepath.Abs(dir)
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(raw, manifest.WithSandboxes("node"))
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := filepath.Abs(".")
	l, err := (&sandbox.Node{RuntimeDir: rt}).Prepare(context.Background(), sandbox.App{Name: filepath.Base(dir), Dir: dir, Manifest: m})
	if err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T, env []string) *exec.Cmd {
		cmd, err := l.Command("conformance")
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, env...)
		return cmd
	}
}

func TestConformance(t *testing.T) {
	conformance.RunWithOptions(t, conformance.Options{Concurrent: true}, starter(t, "testdata/conformance"))
}
