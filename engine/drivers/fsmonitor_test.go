package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// changes decodes the bodies the app received from a filesystem monitor.
type changes struct {
	t   *testing.T
	rec *recorder
}

func (c changes) all() []fsEvent {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	out := make([]fsEvent, 0, len(c.rec.bodies))
	for _, b := range c.rec.bodies {
		var ev fsEvent
		if err := msgpack.Unmarshal(b, &ev); err != nil {
			c.t.Fatalf("body %x is not a change: %v", b, err)
		}
		out = append(out, ev)
	}
	return out
}

func (c changes) of(path string) []fsEvent {
	var out []fsEvent
	for _, ev := range c.all() {
		if ev.Path == path {
			out = append(out, ev)
		}
	}
	return out
}

// await waits for an event on path with the given op, after the first
// `after` events.
func (c changes) await(after int, path, op string) fsEvent {
	c.t.Helper()
	var found fsEvent
	eventually(c.t, 5*time.Second, fmt.Sprintf("%s %s", op, path), func() bool {
		for _, ev := range c.all()[after:] {
			if ev.Path == path && ev.Op == op {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

func (c changes) n() int { return len(c.all()) }

func watch(t *testing.T, settings map[string]any) (Driver, changes, Env) {
	t.Helper()
	tp := newPool(t, engine(nil))
	rec := &recorder{next: tp}
	env, _ := testEnv(t, rec)
	return start(t, drv(FilesystemMonitor, "echo", settings), env), changes{t, rec}, env
}

func TestFSMonitorKinds(t *testing.T) {
	// A relative path resolves in the spool.
	d, ch, env := watch(t, map[string]any{"path": "spool", "coalesce": json.Number("20")})
	dir := filepath.Join(env.Spool, "spool")
	if info := d.Info(); info["root"] != dir || info["mode"] != "waiting" {
		t.Fatalf("info: %v", info)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ch.await(0, dir, "create")
	eventually(t, 5*time.Second, "directory mode", func() bool { return d.Info()["mode"] == "directory" })

	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	steps := []struct {
		what string
		do   func() error
		path string
		op   string
	}{
		{"create", func() error { f, err := os.Create(a); f.Close(); return err }, a, "create"},
		{"write", func() error { return appendTo(a, "hello") }, a, "write"},
		{"chmod", func() error { return os.Chmod(a, 0o600) }, a, "chmod"},
		{"rename", func() error { return os.Rename(a, b) }, a, "rename"},
		{"rename target", nil, b, "create"},
		{"remove", func() error { return os.Remove(b) }, b, "remove"},
	}
	for _, s := range steps {
		n := ch.n()
		if s.do != nil {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
		} else {
			n = 0
		}
		ev := ch.await(n, s.path, s.op)
		if !slices.Contains(ev.Ops, s.op) {
			t.Fatalf("%s: ops %v lack %s", s.what, ev.Ops, s.op)
		}
	}
	// The app's handler saw every change: the echo came back.
	_, ends, _, refused := ch.rec.snapshot()
	eventually(t, 5*time.Second, "every change handled", func() bool {
		_, ends, _, _ = ch.rec.snapshot()
		return len(ends) == ch.n()
	})
	if refused != 0 || counter(d.Info(), "events") != uint64(len(ends)) {
		t.Fatalf("info %v after %d changes", d.Info(), len(ends))
	}
}

func appendTo(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// marker makes a change and waits for it: every change made before it,
// and due before it, has been reported by then.
func marker(t *testing.T, ch changes, dir string) {
	t.Helper()
	m := filepath.Join(dir, fmt.Sprintf("marker-%d", time.Now().UnixNano()))
	n := ch.n()
	if err := os.WriteFile(m, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ch.await(n, m, "create")
}

func TestFSMonitorCoalescesBursts(t *testing.T) {
	dir := t.TempDir()
	_, ch, _ := watch(t, map[string]any{"path": dir, "coalesce": json.Number("200")})
	p := filepath.Join(dir, "burst")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		fmt.Fprintf(f, "line %d\n", i)
	}
	f.Close()
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	ev := ch.await(0, p, "create")
	if want := []string{"create", "write", "chmod"}; !slices.Equal(ev.Ops, want) {
		t.Fatalf("ops %v, want %v", ev.Ops, want)
	}
	marker(t, ch, dir)
	if got := ch.of(p); len(got) != 1 {
		t.Fatalf("%d events for one burst: %v", len(got), got)
	}

	// A path that ends gone says so, whatever came before.
	n := ch.n()
	if err := appendTo(p, "more"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	ev = ch.await(n, p, "remove")
	if !slices.Contains(ev.Ops, "write") {
		t.Fatalf("ops %v lack the write", ev.Ops)
	}
}

func TestFSMonitorWaitsForPath(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "a", "b", "watched")
	d, ch, _ := watch(t, map[string]any{"path": root, "coalesce": json.Number("10")})
	if d.Info()["mode"] != "waiting" {
		t.Fatalf("info: %v", d.Info())
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ch.await(0, root, "create")
	f := filepath.Join(root, "file")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch.await(0, f, "create")

	// Gone again: reported, and watched again once it comes back.
	if err := os.RemoveAll(filepath.Join(base, "a")); err != nil {
		t.Fatal(err)
	}
	ch.await(0, root, "remove")
	eventually(t, 5*time.Second, "waiting mode", func() bool { return d.Info()["mode"] == "waiting" })
	n := ch.n()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ch.await(n, root, "create")
	if err := os.WriteFile(f, []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch.await(n, f, "create")
}

// A file as the path: only its changes, including its replacement by an
// editor's rename.
func TestFSMonitorFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "config.json")
	_, ch, _ := watch(t, map[string]any{"path": p, "coalesce": json.Number("10")})
	if err := os.Mkdir(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch.await(0, p, "create")
	n := ch.n()
	if err := appendTo(p, " "); err != nil {
		t.Fatal(err)
	}
	ch.await(n, p, "write")
	// Write a sibling, then replace the file by renaming over it.
	tmp := filepath.Join(dir, "sub", "config.json.tmp")
	if err := os.WriteFile(tmp, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	n = ch.n()
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	ch.await(n, p, "create")
	if got := ch.of(tmp); len(got) != 0 {
		t.Fatalf("a sibling's changes were reported: %v", got)
	}
}

func TestFSMonitorRecursive(t *testing.T) {
	dir := t.TempDir()
	_, ch, _ := watch(t, map[string]any{"path": dir, "recursive": true, "coalesce": json.Number("10")})
	deep := filepath.Join(dir, "sub", "deeper")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	// Written at once: before the watch on the new directories can exist.
	f := filepath.Join(deep, "f")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch.await(0, filepath.Join(dir, "sub"), "create")
	ch.await(0, f, "create")
	// Later changes come from the watch itself.
	n := ch.n()
	if err := appendTo(f, "y"); err != nil {
		t.Fatal(err)
	}
	ch.await(n, f, "write")
	// A subtree moved out is no longer watched; moved in, it is.
	out := filepath.Join(t.TempDir(), "out")
	n = ch.n()
	if err := os.Rename(filepath.Join(dir, "sub"), out); err != nil {
		t.Fatal(err)
	}
	ch.await(n, filepath.Join(dir, "sub"), "rename")
	if err := appendTo(filepath.Join(out, "deeper", "f"), "z"); err != nil {
		t.Fatal(err)
	}
	n = ch.n()
	if err := os.Rename(out, filepath.Join(dir, "back")); err != nil {
		t.Fatal(err)
	}
	ch.await(n, filepath.Join(dir, "back"), "create")
	marker(t, ch, dir)
	for _, ev := range ch.all() {
		if strings.HasPrefix(ev.Path, out) {
			t.Fatalf("a change outside the tree was reported: %v", ev)
		}
	}
	n = ch.n()
	g := filepath.Join(dir, "back", "deeper", "g")
	if err := os.WriteFile(g, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ch.await(n, g, "create")
}

func TestFSMonitorNotRecursive(t *testing.T) {
	dir := t.TempDir()
	_, ch, _ := watch(t, map[string]any{"path": dir, "coalesce": json.Number("10")})
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	ch.await(0, sub, "create")
	if err := os.WriteFile(filepath.Join(sub, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	marker(t, ch, dir)
	if got := ch.of(filepath.Join(sub, "f")); len(got) != 0 {
		t.Fatalf("a change below a non-recursive watch was reported: %v", got)
	}
}

func TestFSMonitorChecks(t *testing.T) {
	cases := []struct {
		settings map[string]any
		want     []string
	}{
		{map[string]any{"path": "spool"}, nil},
		{map[string]any{"path": "/var/x", "recursive": true, "coalesce": json.Number("0")}, nil},
		{map[string]any{}, []string{"path: required"}},
		{map[string]any{"path": ""}, []string{"path: expected a non-empty string"}},
		{map[string]any{"path": "x", "recursive": "yes"}, []string{"recursive: expected true or false, got a string"}},
		{map[string]any{"path": "x", "coalesce": json.Number("-1")}, []string{"coalesce: must be at least 0"}},
		{map[string]any{"path": "x", "coalesce": json.Number("60001")}, []string{"coalesce: must be at most 60000"}},
	}
	for _, c := range cases {
		ps := Validate(drv(FilesystemMonitor, "x", c.settings))
		if len(ps) != len(c.want) {
			t.Errorf("%v: problems %v, want %v", c.settings, ps, c.want)
			continue
		}
		for i, p := range ps {
			if !strings.Contains(p.String(), c.want[i]) {
				t.Errorf("%v: problem %q, want %q", c.settings, p, c.want[i])
			}
		}
	}
}

// Stopped monitors release their inotify instances and goroutines, and a
// new one watches the same tree.
func TestFSMonitorRestartWithoutLeaks(t *testing.T) {
	dir := t.TempDir()
	f := &fakeTarget{delay: time.Millisecond}
	env, _ := testEnv(t, f)
	i := 0
	// Kept reachable: the os.File finalizer would otherwise close a leaked
	// inotify descriptor at the next GC and hide the leak.
	var stopped []Driver
	cycle := func() {
		d, err := New(drv(FilesystemMonitor, "w", map[string]any{"path": dir, "recursive": true, "coalesce": json.Number("0")}), env)
		if err != nil {
			t.Fatal(err)
		}
		stopped = append(stopped, d)
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		i++
		sub := filepath.Join(dir, fmt.Sprint("d", i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		before := f.count()
		if err := os.WriteFile(filepath.Join(sub, "f"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "an event", func() bool { return f.count() > before })
		if n := measure(t).inotify; n < 1 {
			t.Fatalf("%d inotify instances while watching", n)
		}
		d.Stop()
	}
	cycle()
	base := measure(t)
	for range 3 {
		cycle()
	}
	backToBaseline(t, base)
	runtime.KeepAlive(stopped)
	if base.inotify != 0 {
		t.Fatalf("%d inotify instances left after stop", base.inotify)
	}
}
