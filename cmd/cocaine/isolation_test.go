package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

const snoopApp = `import os, resource


def probe(request, response):
    path = request.read().decode()
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        return "read"
    except OSError as e:
        return "denied: %s" % e


def whoami(request, response):
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/oom_score_adj") as f:
        oom = f.read().strip()
    return "%d %d %s %d" % (os.getuid(), os.getgid(), oom, soft)
`

// TestAppsAreIsolated: under `cocaine dev` as root, with no set-up by
// hand, an app's handler runs as its own unprivileged user with the node's
// default memory limit and a raised OOM score (the engine's lowered), and
// cannot read the API token, /etc/shadow, the storage or another app's
// package, while its own package is readable.
func TestAppsAreIsolated(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test checks isolation, which needs the engine to run as root: run the tests as root")
	}
	dir := filepath.Join(t.TempDir(), "snoop")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"type": "python", "args": {"module": "app"},
		"drivers": {"probe": {"type": "native-server"}, "whoami": {"type": "native-server"}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "app.py"), []byte(snoopApp), 0o644)
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{dir, "hello-python"}})
	call := func(event, body string) string {
		out, stderr, code := cli(t, nil, "call", "--discovery", "static:"+n.Announce, "snoop/"+event, body)
		if code != 0 {
			t.Fatalf("call snoop/%s %q: exit %d: %s", event, body, code, stderr)
		}
		return out
	}
	testcluster.Eventually(t, 120*time.Second, "snoop to answer", func() bool {
		_, _, code := cli(t, nil, "call", "--discovery", "static:"+n.Announce, "snoop/whoami", "")
		return code == 0
	})
	var uid, gid, oom int
	var as uint64
	if _, err := fmt.Sscanf(call("whoami", ""), "%d %d %d %d", &uid, &gid, &oom, &as); err != nil {
		t.Fatal(err)
	}
	if uid == 0 || gid == 0 || oom != 500 || as != 4<<30 {
		t.Fatalf("slave runs as uid %d gid %d, oom_score_adj %d, RLIMIT_AS %d; want non-root, 500, 4 GiB", uid, gid, oom, as)
	}
	// -900 needs CAP_SYS_RESOURCE, which containers often drop; the
	// order is what counts.
	var engineOOM int
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", n.Pid())); err != nil {
		t.Fatal(err)
	} else if _, err := fmt.Sscan(string(b), &engineOOM); err != nil || engineOOM > 0 {
		t.Fatalf("engine oom_score_adj %q, want at most 0 (below its slaves')", b)
	}

	// The token stays in its file, never in the log.
	if tok, err := os.ReadFile(filepath.Join(n.DataDir, "token")); err != nil || len(tok) < 32 {
		t.Fatalf("token: %q %v", tok, err)
	} else if strings.Contains(n.Log(), strings.TrimSpace(string(tok))) {
		t.Errorf("cocaine dev printed its API token:\n%s", n.Log())
	}

	spool := filepath.Join(n.DataDir, "spool")
	own, _ := filepath.Glob(filepath.Join(spool, "snoop.*", "app.py"))
	other, _ := filepath.Glob(filepath.Join(spool, "hello-python.*", "app.py"))
	if len(own) != 1 || len(other) != 1 {
		t.Fatalf("packages in %s: %v %v", spool, own, other)
	}
	if got := call("probe", own[0]); got != "read" {
		t.Fatalf("its own package: %s", got)
	}
	for _, path := range []string{
		filepath.Join(n.DataDir, "token"),
		"/etc/shadow",
		filepath.Join(n.DataDir, "storage"),
		filepath.Join(n.DataDir, "storage", "apps"),
		spool,
		other[0],
		filepath.Dir(other[0]),
	} {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s should exist for this check: %v", path, err)
		}
		if got := call("probe", path); !strings.HasPrefix(got, "denied") {
			t.Errorf("the app read %s: %s", path, got)
		}
	}
}
