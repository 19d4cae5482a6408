package engine

import (
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"

	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/files"
)

var freePort = testcluster.FreePort

type testNode struct {
	*Node
	store storage.Storage
	conn  *gateway.Conn
}

// startNode runs a real node on loopback ports with files storage.
func startNode(t testing.TB) *testNode {
	t.Helper()
	data, err := os.MkdirTemp("", "node") // short: app sockets live under it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	st, err := files.Open(filepath.Join(data, "storage"), files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Listen:            fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
		Announce:          fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
		AnnounceInterval:  Duration{Duration: 100 * time.Millisecond},
		ReconcileInterval: Duration{Duration: 200 * time.Millisecond},
		DataDir:           data,
		Security:          zmqsec.Config{Insecure: true},
	}
	// The test binary doubles as a slave: it lives in a folder only root
	// may enter, and under -race needs more address space than a default.
	cfg.Sandbox.Isolate, cfg.Sandbox.DefaultMemory = "off", "0"
	// Tests watch folders of their own.
	cfg.Drivers.WatchRoots = []string{os.TempDir()}
	n, err := New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node run: %v", err)
			}
		case <-time.After(20 * time.Second):
			var buf strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Errorf("node did not stop; goroutines:\n%s", buf.String())
		}
		st.Close()
	})
	<-n.Ready()
	c, err := gateway.Dial(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &testNode{Node: n, store: st, conn: c}
}

// pack makes a package from files (name → content; a name ending in *
// is made executable).
func pack(t testing.TB, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := archive.Pack(dir, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (n *testNode) call(t testing.TB, app, event, body string, p wire.Policy) (string, error) {
	t.Helper()
	s, err := n.conn.Send(app, event, []byte(body), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := s.Collect(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s/%s: no answer", app, event)
	}
	return string(out), err
}

func wantCode(t *testing.T, err error, code wire.Code) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != code {
		t.Fatalf("got %v, want error %d", err, code)
	}
}

const selfManifest = `{"type": "testself",
  "engine": {"pool-limit": 2},
  "resource-limits": {"memory": "2GiB", "open-files": 123, "cpu-time": 3600},
  "drivers": {"echo": {"type": "native-server"}, "lim": {"type": "native-server", "emit": "limits"},
              "cwd": {"type": "native-server"}, "print": {"type": "native-server"}}}`

func TestNodeServesAndRoutes(t *testing.T) {
	n := startNode(t)
	if _, err := n.Upload(context.Background(), "self", pack(t, map[string]string{"manifest.json": selfManifest})); err != nil {
		t.Fatal(err)
	}
	if got, err := n.call(t, "self", "echo", "hello", wire.Policy{}); err != nil || got != "hello" {
		t.Fatalf("echo: %q %v", got, err)
	}
	// The driver name routes, the emit reaches the app.
	got, err := n.call(t, "self", "lim", "", wire.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Max open files            123", "Max address space         2147483648", "Max cpu time              3600"} {
		if !strings.Contains(got, want) {
			t.Errorf("slave limits lack %q:\n%s", want, got)
		}
	}
	got, err = n.call(t, "self", "cwd", "", wire.Policy{})
	if err != nil || !strings.Contains(got, filepath.Join(n.cfg.SpoolDir(), "self.")) || !strings.HasSuffix(got, "|self") {
		t.Fatalf("cwd/app of slave: %q %v", got, err)
	}
	_, err = n.call(t, "self", "limits", "", wire.Policy{}) // an emit is not a route
	wantCode(t, err, wire.CodeNotFound)
	_, err = n.call(t, "nope", "echo", "", wire.Policy{})
	wantCode(t, err, wire.CodeNotFound)
	_, err = n.call(t, "self", "echo", "", wire.Policy{Deadline: time.Now().Add(-time.Second)})
	wantCode(t, err, wire.CodeDeadline)

	// Slaves' output is the app's log.
	if _, err := n.call(t, "self", "print", "a line for the log", wire.Policy{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the line in the app log", func() bool {
		lines, _ := n.store.ReadLog(context.Background(), "self", time.Time{}, 0)
		for _, l := range lines {
			if l.Text == "a line for the log" && l.Slave != "" && l.Stream == "stdout" {
				return true
			}
		}
		return false
	})

	info, err := n.conn.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a, ok := info.Apps["self"]
	if !ok || a.State != "running" || a.Drivers["lim"]["emit"] != "limits" || a.Drivers["lim"]["type"] != "native-server" {
		t.Fatalf("info: %+v", info)
	}
}

func TestGoAndBinarySandboxes(t *testing.T) {
	n := startNode(t)
	root, _ := filepath.Abs("..")
	// The go sandbox builds examples/echo from source.
	var pkg bytes.Buffer
	if err := archive.Pack(filepath.Join(root, "examples", "echo"), &pkg); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Upload(context.Background(), "echo", pkg.Bytes()); err != nil {
		t.Fatal(err)
	}
	if got, err := n.call(t, "echo", "echo", "built from source", wire.Policy{}); err != nil || got != "built from source" {
		t.Fatalf("go app: %q %v", got, err)
	}
	if got, err := n.call(t, "echo", "sleep", "10", wire.Policy{}); err != nil || got != "ok" {
		t.Fatalf("go app sleep: %q %v", got, err)
	}
	// The binary sandbox runs a prebuilt executable shipped in the package.
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "server"), "./examples/echo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"type": "binary", "args": {"path": "server"},
		"drivers": {"echo": {"type": "native-server"}}}`), 0o644)
	pkg.Reset()
	if err := archive.Pack(dir, &pkg); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Upload(context.Background(), "bin", pkg.Bytes()); err != nil {
		t.Fatal(err)
	}
	if got, err := n.call(t, "bin", "echo", "prebuilt", wire.Policy{}); err != nil || got != "prebuilt" {
		t.Fatalf("binary app: %q %v", got, err)
	}
}

func TestBrokenBuildIsReportedWithCrashLog(t *testing.T) {
	n := startNode(t)
	_, err := n.Upload(context.Background(), "bad", pack(t, map[string]string{
		"manifest.json": `{"type": "go", "drivers": {"x": {"type": "native-server"}}}`,
		"main.go":       "package main\n\nfunc main() { this is not go }\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.call(t, "bad", "x", "", wire.Policy{})
	wantCode(t, err, wire.CodeUnavailable)
	info := n.Info()
	if a := info.Apps["bad"]; a.State != "broken" || !strings.Contains(a.Reason, "go build failed") {
		t.Fatalf("broken app info: %+v", a)
	}
	keys, err := n.store.List(context.Background(), storage.NSCrashlogs, "bad:")
	if err != nil || len(keys) != 1 {
		t.Fatalf("crash logs: %v %v", keys, err)
	}
}

func TestUploadRejectsBadPackages(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	_, err := n.Upload(ctx, "m", pack(t, map[string]string{"manifest.json": `{"type": "nope", "engine": {"pool-limit": -1}}`}))
	if err == nil || !strings.Contains(err.Error(), "engine.pool-limit") || !strings.Contains(err.Error(), "type") {
		t.Fatalf("bad manifest: %v", err)
	}
	_, err = n.Upload(ctx, "m", pack(t, map[string]string{"manifest.json": `{"type": "binary", "args": {"path": "../x"}}`}))
	if err == nil || !strings.Contains(err.Error(), "args.path") {
		t.Fatalf("bad binary args: %v", err)
	}
	_, err = n.Upload(ctx, "m", pack(t, map[string]string{"readme": "no manifest"}))
	if err == nil {
		t.Fatal("package without manifest accepted")
	}
	_, err = n.Upload(ctx, "../evil", pack(t, map[string]string{"manifest.json": selfManifest}))
	wantCode(t, err, wire.CodeBadRequest)
	if keys, _ := n.store.List(ctx, storage.NSApps, ""); len(keys) != 0 {
		t.Fatalf("refused uploads were stored: %v", keys)
	}
}

func TestReconcilePicksUpStorageChanges(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	// Stored by someone else (another node, the API): deployed within a
	// reconcile interval, no restart.
	if _, _, err := PutApp(ctx, n.store, "late", pack(t, map[string]string{"manifest.json": selfManifest})); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the app to be deployed", func() bool { return n.App("late") != nil })
	if got, err := n.call(t, "late", "echo", "hi", wire.Policy{}); err != nil || got != "hi" {
		t.Fatalf("late app: %q %v", got, err)
	}
	if err := n.store.Remove(ctx, storage.NSApps, "late"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the app to be undeployed", func() bool { return n.App("late") == nil })
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartSweepsSpoolAndRun: unpacked copies and sockets an earlier run
// left behind are gone once a node starts on the same data directory.
func TestStartSweepsSpoolAndRun(t *testing.T) {
	data := t.TempDir()
	cfg := Config{DataDir: data, Security: zmqsec.Config{Insecure: true}}
	cfg.Default()
	var stale []string
	for _, d := range []string{cfg.SpoolDir(), cfg.RunDir()} {
		p := filepath.Join(d, "old.123", "file")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, filepath.Dir(p))
	}
	st, err := files.Open(filepath.Join(data, "storage"), files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(cfg, st, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after start: %v", p, err)
		}
	}
}

// TestDriverPolicy: an app may not bind every interface, a port the node
// uses, or watch outside its folder; such an app is deployed broken with
// the reason (503), while one that asks for what the node allows runs.
func TestDriverPolicy(t *testing.T) {
	n := startNode(t)
	_, listenPort, _ := strings.Cut(strings.TrimPrefix(n.cfg.Listen, "tcp://127.0.0.1"), ":")
	for _, c := range []struct{ app, driver, reason string }{
		{"wildcard", `{"type": "zeromq-server", "endpoint": "tcp://0.0.0.0:` + fmt.Sprint(freePort(t)) + `"}`, "bind only"},
		{"taken", `{"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:` + listenPort + `"}`, "reserved"},
		{"root", `{"type": "filesystem-monitor", "path": "/", "recursive": true}`, "watch only"},
		{"fine", `{"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:` + fmt.Sprint(freePort(t)) + `"}`, ""},
	} {
		m := `{"type": "testself", "drivers": {"echo": {"type": "native-server"}, "d": ` + c.driver + `}}`
		if _, err := n.Upload(context.Background(), c.app, pack(t, map[string]string{"manifest.json": m})); err != nil {
			t.Fatalf("%s: %v", c.app, err)
		}
		a := n.Info().Apps[c.app]
		if c.reason == "" {
			if a.State != "running" {
				t.Errorf("%s: %+v, want running", c.app, a)
			}
			continue
		}
		if a.State != "broken" || !strings.Contains(a.Reason, c.reason) {
			t.Errorf("%s: state %q reason %q, want broken with %q", c.app, a.State, a.Reason, c.reason)
		}
		_, err := n.call(t, c.app, "echo", "x", wire.Policy{})
		wantCode(t, err, wire.CodeUnavailable)
	}
}
