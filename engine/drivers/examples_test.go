package drivers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/cocaine-cloud/cocaine/storage"
)

// The examples are run for real here: each is built, started as the slave
// of a real pool, and driven by the drivers its manifest declares.

const examplesDir = "../../examples"

func exampleManifest(t *testing.T, name string) *manifest.Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, name, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(data, manifest.WithDriverCheck(Validate))
	if err != nil {
		t.Fatalf("examples/%s/manifest.json: %v", name, err)
	}
	return m
}

func TestExampleManifests(t *testing.T) {
	for _, name := range []string{"timer", "watcher", "zmq-echo"} {
		exampleManifest(t, name)
	}
}

// example is a built example running in a pool, its output collected.
type example struct {
	*pool.Pool
	dir string // the "unpacked package": the slaves' working directory

	mu   sync.Mutex
	logs []string
}

type binSpawner struct{ bin, dir string }

func (s binSpawner) Command(string) (*exec.Cmd, error) {
	cmd := exec.Command(s.bin)
	cmd.Dir = s.dir
	return cmd, nil
}

func runExample(t *testing.T, name string, m *manifest.Manifest) *example {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	tmp, err := os.MkdirTemp("", "ex") // short: the pool's socket lives here
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	bin := filepath.Join(tmp, "app")
	// As the go sandbox builds apps: no cgo.
	build := exec.Command(gobin, "build", "-o", bin, "./"+filepath.ToSlash(filepath.Join(examplesDir, name)))
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/%s: %v\n%s", name, err, out)
	}
	ex := &example{dir: filepath.Join(tmp, "pkg")}
	if err := os.Mkdir(ex.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := m.Engine
	e.StartupTimeout, e.TerminationTimeout = 5*time.Second, 500*time.Millisecond
	p, err := pool.New(pool.Config{
		App: name, Engine: e, Socket: filepath.Join(tmp, "s"), Spawner: binSpawner{bin, ex.dir},
		OnLog: func(l storage.LogLine) { ex.mu.Lock(); ex.logs = append(ex.logs, l.Text); ex.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ex.Pool = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return ex
}

// startDrivers starts what the manifest declares, after tweak.
func (ex *example) startDrivers(t *testing.T, m *manifest.Manifest, tweak func(*manifest.Driver)) map[string]Driver {
	t.Helper()
	out := map[string]Driver{}
	for name, md := range m.Drivers {
		if tweak != nil {
			tweak(&md)
		}
		env, _ := testEnv(t, ex)
		env.Spool = ex.dir
		out[name] = start(t, md, env)
	}
	return out
}

func (ex *example) awaitLog(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found string
	defer func() {
		if found == "" {
			ex.mu.Lock()
			t.Logf("the app's log:\n%s", strings.Join(ex.logs, "\n"))
			ex.mu.Unlock()
		}
	}()
	eventually(t, 10*time.Second, "a log line matching "+re, func() bool {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		for _, l := range ex.logs {
			if rx.MatchString(l) {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

func TestExampleTimer(t *testing.T) {
	m := exampleManifest(t, "timer")
	ex := runExample(t, "timer", m)
	ex.startDrivers(t, m, func(d *manifest.Driver) { d.Settings["interval"] = 50 })
	ex.awaitLog(t, `^tick 3 at `)
}

func TestExampleWatcher(t *testing.T) {
	m := exampleManifest(t, "watcher")
	ex := runExample(t, "watcher", m)
	ex.startDrivers(t, m, nil)
	spool := filepath.Join(ex.dir, "spool")
	if err := os.MkdirAll(filepath.Join(spool, "inbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spool, "inbox", "report.txt"), []byte("twelve bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	// [create write], or [create] when the file was written before the
	// watch on the new folder existed and was found by the scan.
	ex.awaitLog(t, `^create spool/inbox/report.txt \(12 bytes\) \[create( write)?\]$`)
	if err := os.Remove(filepath.Join(spool, "inbox", "report.txt")); err != nil {
		t.Fatal(err)
	}
	ex.awaitLog(t, `^remove spool/inbox/report.txt `)
}

// The README's Python snippets, run against the example.
func TestExampleZMQEchoReadme(t *testing.T) {
	const python = "/usr/bin/python3" // the pyenv python3 on PATH cannot import Debian's modules
	if out, err := exec.Command(python, "-c", "import zmq").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import zmq (apt-get install -y python3-zmq): %v\n%s", python, err, out)
	}
	readme, err := os.ReadFile(filepath.Join(examplesDir, "zmq-echo", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	snippets := regexp.MustCompile("(?s)```python\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(snippets) != 2 {
		t.Fatalf("README has %d python snippets, want 2", len(snippets))
	}
	m := exampleManifest(t, "zmq-echo")
	ex := runExample(t, "zmq-echo", m)
	// Any free ports rather than the README's fixed ones.
	drivers := ex.startDrivers(t, m, func(d *manifest.Driver) { d.Settings["endpoint"] = "tcp://127.0.0.1:*" })
	ports := map[string]string{
		"tcp://127.0.0.1:5555": drivers["rpc"].Info()["bound"].(string),
		"tcp://127.0.0.1:5556": drivers["words"].Info()["bound"].(string),
	}
	want := []string{"hello\n", "req-1 one\nreq-1 two\nreq-1 three\n"}
	for i, s := range snippets {
		code := s[1]
		for from, to := range ports {
			code = strings.ReplaceAll(code, from, to)
		}
		script := filepath.Join(t.TempDir(), fmt.Sprintf("snippet%d.py", i))
		if err := os.WriteFile(script, []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, python, script).CombinedOutput()
		cancel()
		if err != nil || string(out) != want[i] {
			t.Fatalf("README snippet %d: %v\n%s\nwant %q", i+1, err, out, want[i])
		}
	}
}
