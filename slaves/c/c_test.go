package c_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/slaves/conformance"
	"github.com/cocaine-cloud/cocaine/slaves/sandbox"
)

// cache is shared by the tests of this binary: libcocaine-slave and each
// app are built once.
var cache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cocaine-c-test-")
	if err != nil {
		panic(err)
	}
	cache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireCompilers fails, not skips: a machine without them must not pass
// by skipping.
func requireCompilers(t *testing.T) {
	t.Helper()
	for _, c := range []string{"cc", "c++", "ar", "make"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("the c and cpp sandboxes need %s: %v (apt-get install -y gcc g++ make)", c, err)
		}
	}
}

// prepare builds the app in dir with the sandbox of its manifest, as the
// engine does at deploy, and returns how to start its slaves.
func prepare(t *testing.T, dir string) (sandbox.Launcher, error) {
	t.Helper()
	requireCompilers(t)
	dir, _ = filepath.Abs(dir)
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(raw, manifest.WithSandboxes("c", "cpp"))
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := filepath.Abs(".")
	sb := &sandbox.Native{Lang: m.Type, CacheDir: cache, RuntimeDir: rt}
	return sb.Prepare(context.Background(), sandbox.App{Name: filepath.Base(dir), Dir: dir, Manifest: m})
}

func starter(t *testing.T, dir string) conformance.StartFunc {
	l, err := prepare(t, dir)
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

func TestConformanceC(t *testing.T) {
	conformance.RunWithOptions(t, conformance.Options{Concurrent: true}, starter(t, "testdata/conformance-c"))
}

func TestConformanceCpp(t *testing.T) {
	conformance.RunWithOptions(t, conformance.Options{Concurrent: true}, starter(t, "testdata/conformance-cpp"))
}

// TestBuildError: a package that does not compile is not deployed, and
// the compiler's message is in the error, which the engine keeps as the
// app's crash log.
func TestBuildError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"type": "c", "drivers": {"x": {"type": "native-server"}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "app.c"), []byte("int main(void) { return no_such_thing; }\n"), 0o644)
	_, err := prepare(t, dir)
	if err == nil || !strings.Contains(err.Error(), "no_such_thing") {
		t.Fatalf("build of a broken package: %v, want the compiler's error naming no_such_thing", err)
	}
}
