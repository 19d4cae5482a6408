package perl_test

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

// requirePerl fails, not skips: a machine without the runtime's
// dependencies must not pass the suite by skipping it.
func requirePerl(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/perl", "-MData::MessagePack", "-MPlack::Util", "-Mthreads", "-e1").CombinedOutput()
	if err != nil {
		t.Fatalf("the perl runtime needs /usr/bin/perl with threads, Data::MessagePack and Plack: %v\n%s(apt-get install -y libdata-messagepack-perl libplack-perl)", err, out)
	}
}

// starter prepares the app in dir with the node sandbox, as the engine
// does, and starts its slaves.
func starter(t *testing.T, dir string) conformance.StartFunc {
	t.Helper()
	requirePerl(t)
	dir, _ = filepath.Abs(dir)
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(raw, manifest.WithSandboxes("perl"))
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := filepath.Abs(".")
	l, err := (&sandbox.Perl{RuntimeDir: rt}).Prepare(context.Background(), sandbox.App{Name: filepath.Base(dir), Dir: dir, Manifest: m})
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
	conformance.Run(t, starter(t, "testdata/conformance"))
}
