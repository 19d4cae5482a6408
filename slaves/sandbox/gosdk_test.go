package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	cocaine "github.com/cocaine-cloud/cocaine"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// offlineGo is a go command that runs in a network namespace of its own,
// with no interface but loopback: a build through it that needs the
// network fails.
func offlineGo(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("this test needs the go toolchain on PATH: %v", err)
	}
	if out, err := exec.Command("unshare", "-n", "true").CombinedOutput(); err != nil {
		t.Fatalf("this test builds with no network through `unshare -n` (util-linux, run as root): %v %s", err, out)
	}
	script := filepath.Join(t.TempDir(), "go-offline")
	body := "#!/bin/sh\nexec unshare -n " + goBin + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

func goManifest(t *testing.T) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse([]byte(`{"type": "go", "drivers": {"e": {"type": "native-server"}}}`), manifest.WithSandboxes("go"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A Go app builds from the SDK inside the binary alone: no network, an
// empty module cache, GOPROXY=off, no checkout on the way.
func TestGoAppsBuildOfflineAgainstTheEmbeddedSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two Go apps")
	}
	modcache := t.TempDir()
	t.Setenv("GOMODCACHE", modcache)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "")
	t.Cleanup(func() { // the module cache is read-only
		c := exec.Command("go", "clean", "-modcache")
		c.Env = append(os.Environ(), "GOMODCACHE="+modcache)
		_ = c.Run()
	})
	// The SDK is unpacked outside the checkout, as a node does it.
	cache := t.TempDir()
	g := &Go{Toolchain: offlineGo(t), CacheDir: cache}

	watcher := t.TempDir() // no go.mod; imports msgpack besides the SDK
	if err := os.CopyFS(watcher, os.DirFS(filepath.Join(root(), "examples", "watcher"))); err != nil {
		t.Fatal(err)
	}
	ownMod := t.TempDir() // its own go.mod, requiring an SDK version that does not exist
	files := map[string]string{
		"go.mod": "module example.com/own\n\ngo 1.26\n\nrequire github.com/cocaine-cloud/cocaine v0.9.9\n",
		"main.go": `package main

import (
	"context"
	"log"

	slave "github.com/cocaine-cloud/cocaine/slaves/go"
)

func main() {
	slave.HandleFunc("e", func(ctx context.Context, req *slave.Request, w *slave.Response) error { return nil })
	log.Fatal(slave.Run())
}
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(ownMod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, dir string }{{"without go.mod", watcher}, {"with its own go.mod", ownMod}} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := filepath.Glob(filepath.Join(cache, "*", "app"))
			if _, err := g.Prepare(context.Background(), App{Name: "app", Dir: tc.dir, Manifest: goManifest(t)}); err != nil {
				t.Fatal(err)
			}
			after, _ := filepath.Glob(filepath.Join(cache, "*", "app"))
			if len(after) != len(before)+1 {
				t.Fatalf("binaries in the cache: %v before, %v after", before, after)
			}
			// The app runs, and says it is a slave missing its engine.
			var bin string
			for _, a := range after {
				if !slices.Contains(before, a) {
					bin = a
				}
			}
			out, err := exec.Command(bin).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "COCAINE_") {
				t.Fatalf("the built app, run alone: %v\n%s", err, out)
			}
		})
	}
	sdk, err := GoSDK.Dir(RuntimesDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sdk); err != nil {
		t.Fatalf("the SDK was not unpacked into the cache: %v", err)
	}
}

// slaves/go/proxy holds exactly the modules slaves/go depends on, at the
// versions of go.mod.
func TestSDKProxyCurrent(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}", "./slaves/go")
	cmd.Dir = root()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !slices.Contains(want, l) {
			want = append(want, l)
		}
	}
	slices.Sort(want)
	mods, err := sdkModules(cocaine.SDK)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mods {
		got = append(got, m.Path+" "+m.Version)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("slaves/go/proxy holds %q, slaves/go needs %q: run `go generate .` at the repository root", got, want)
	}
}

func TestChecksNameWhatToInstall(t *testing.T) {
	if err := (&Go{Toolchain: "/nonexistent/go"}).Check(); !errors.Is(err, ErrNoGo) || !strings.Contains(err.Error(), "install Go") {
		t.Errorf("Go without a toolchain: %v", err)
	}
	if err := (&Python{Interpreter: "/nonexistent/python3"}).Check(); !errors.Is(err, ErrNoPython) || !strings.Contains(err.Error(), "apt-get install python3 python3-msgpack") {
		t.Errorf("Python without an interpreter: %v", err)
	}
	// An interpreter that cannot import msgpack.
	fake := filepath.Join(t.TempDir(), "python3")
	script := "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'msgpack'\" >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	err := (&Python{Interpreter: fake}).Check()
	if !errors.Is(err, ErrNoPython) || !strings.Contains(err.Error(), "python3-msgpack") || !strings.Contains(err.Error(), "No module named") {
		t.Errorf("Python without msgpack: %v", err)
	}
	if err := (&Python{}).Check(); err != nil {
		t.Errorf("the default interpreter: %v (scripts/deps.sh installs python3-msgpack)", err)
	}
}

func TestOtherSandboxesNameWhatToInstall(t *testing.T) {
	cases := []struct {
		sb   Checker
		want string
	}{
		{&Native{Lang: "c", Compiler: "/nonexistent/cc"}, "apt-get install gcc make"},
		{&Native{Lang: "cpp", Compiler: "/nonexistent/c++"}, "apt-get install g++ make"},
		{&Node{Interpreter: "/nonexistent/node"}, "apt-get install nodejs"},
		{&Perl{Interpreter: "/nonexistent/perl"}, "apt-get install perl libdata-messagepack-perl"},
	}
	for _, c := range cases {
		if err := c.sb.Check(); !errors.Is(err, ErrNoToolchain) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%T: %v, want %q", c.sb, err, c.want)
		}
	}
	fake := filepath.Join(t.TempDir(), "perl")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"Can't locate Data/MessagePack.pm in @INC\" >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := (&Perl{Interpreter: fake}).Check(); !errors.Is(err, ErrNoToolchain) || !strings.Contains(err.Error(), "Can't locate") {
		t.Errorf("perl without Data::MessagePack: %v", err)
	}
	for _, sb := range []Checker{&Native{Lang: "c"}, &Native{Lang: "cpp"}, &Node{}, &Perl{}} {
		if err := sb.Check(); err != nil {
			t.Errorf("%T on this machine: %v (scripts/deps.sh installs it)", sb, err)
		}
	}
}
