package discovery

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// step is how long one change may take to show: a few 500ms polls.
const step = 5 * time.Second

func TestHostsFile(t *testing.T) {
	base := runtime.NumGoroutine()
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts")
	s := HostsFile(path, 0)
	if s.String() != "file:"+path {
		t.Errorf("String() = %q", s.String())
	}
	h := s.(*hostsFile)
	log, logs := newLogger(t)
	h.log = log
	waitPolls := func(n int64) {
		t.Helper()
		want := h.polls.Load() + n
		if !poll(step, func() bool { return h.polls.Load() >= want }) {
			t.Fatalf("hosts file not polled %d more times", n)
		}
	}
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Missing at start: an empty set, logged once however long it stays so.
	r := start(t, s)
	r.waitFor(t, nil, step)
	waitPolls(3)
	if n := logs.count("hosts file missing"); n != 1 {
		t.Fatalf("missing file logged %d times, want once:\n%s", n, logs)
	}

	// Created later, with everything the format allows and some it doesn't.
	write(`# cocaine nodes

node-a
node-b:6001   # a comment after a host
  tcp://10.0.0.3:5001
TCP://10.0.0.4:7000
[::1]:5002
node-a:5001
bad host here
tcp://c:notaport
udp://d:5001
*:5001
	# indented comment
`)
	r.waitFor(t, []string{"tcp://10.0.0.3:5001", "tcp://10.0.0.4:7000", "tcp://[::1]:5002",
		"tcp://node-a:5001", "tcp://node-b:6001"}, step)
	for _, line := range []string{"line=9 ", "line=10 ", "line=11 ", "line=12 "} {
		if logs.count(" "+line) != 1 {
			t.Errorf("no single warning for %s in:\n%s", line, logs)
		}
	}
	if n := logs.count("skipping malformed line"); n != 4 {
		t.Errorf("%d malformed-line warnings, want 4:\n%s", n, logs)
	}
	if logs.count("hosts file appeared") != 1 {
		t.Errorf("appearance not logged:\n%s", logs)
	}

	// Edits: add a host, then remove one.
	write("node-a\nnode-b:6001\nnode-c\n")
	r.waitFor(t, []string{"tcp://node-a:5001", "tcp://node-b:6001", "tcp://node-c:5001"}, step)
	write("node-a\nnode-c\n")
	r.waitFor(t, []string{"tcp://node-a:5001", "tcp://node-c:5001"}, step)

	// Rewriting the same contents is no change.
	n := len(r.history())
	write("node-a\nnode-c\n")
	waitPolls(2)
	if h := r.history(); len(h) != n {
		t.Errorf("unchanged contents reported again: %q", h[n:])
	}

	// Replaced the way editors and config managers do it: rename over.
	tmp := filepath.Join(dir, "hosts.new")
	if err := os.WriteFile(tmp, []byte("node-r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, []string{"tcp://node-r:5001"}, step)

	// Two same-size writes in a row may share an mtime; the last must win.
	write("node-x\n")
	write("node-y\n")
	r.waitFor(t, []string{"tcp://node-y:5001"}, step)

	// Deleted: empty again, logged again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, nil, step)
	if n := logs.count("hosts file missing"); n != 2 {
		t.Errorf("missing file logged %d times over two absences, want 2:\n%s", n, logs)
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, set := range r.history() {
		for _, ep := range set {
			if !strings.HasPrefix(ep, "tcp://") {
				t.Errorf("endpoint %q not normalised", ep)
			}
		}
	}
	noLeak(t, base)
}

func TestHostsFileDefaultPort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("a\nb:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := start(t, HostsFile(path, 7000))
	r.waitFor(t, []string{"tcp://a:7000", "tcp://b:1"}, step)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
