package engine

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// TestRedeployLeaksNothing updates, stops and starts an app with every
// kind of driver several times: goroutines, file descriptors (sockets,
// inotify watches) and slaves all come back to where they were.
func TestRedeployLeaksNothing(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	spool := t.TempDir()
	manifest := `{"type": "testself", "engine": {"pool-limit": 2},
	  "drivers": {"echo": {"type": "native-server"},
	    "tick": {"type": "recurring-timer", "emit": "echo", "interval": 20},
	    "drift": {"type": "drifting-timer", "emit": "echo", "interval": 20},
	    "cron": {"type": "cron", "emit": "echo", "schedule": "@every 50ms"},
	    "watch": {"type": "filesystem-monitor", "emit": "echo", "path": "` + spool + `"},
	    "zmq": {"type": "zeromq-server", "emit": "echo", "endpoint": "tcp://127.0.0.1:*"}}}`
	pkg := pack(t, map[string]string{"manifest.json": manifest})
	cycle := func() {
		if _, err := n.Upload(ctx, "churn", pkg); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "timer jobs processed", func() bool {
			a := n.App("churn")
			return a != nil && a.Info().Jobs["processed"] > 3
		})
	}
	// Stopping goes through storage, as the API does: the node's
	// reconcile loop would otherwise deploy a stored app again.
	stop := func() {
		if err := n.store.Remove(ctx, storage.NSApps, "churn"); err != nil {
			t.Fatal(err)
		}
		if err := n.Undeploy(ctx, "churn"); err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the app to stop", func() bool { return n.App("churn") == nil })
	}
	settle := func() (int, int) {
		runtime.GC()
		fds, _ := os.ReadDir("/proc/self/fd")
		return runtime.NumGoroutine(), len(fds)
	}
	// One full cycle first, so lazily started runtime pieces exist.
	cycle()
	stop()
	g0, f0 := settle()
	for range 4 {
		cycle() // deploy, or update the running version
	}
	stop()
	cycle() // start again
	stop()
	var g, f int
	deadline := time.Now().Add(15 * time.Second)
	for {
		g, f = settle()
		if g <= g0+2 && f <= f0+2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if g > g0+2 || f > f0+2 {
		var buf strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		links := []string{}
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, e := range fds {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			links = append(links, l)
		}
		t.Fatalf("after 6 deploys and stops: %d goroutines (was %d), %d fds (was %d)\nfds: %v\n%s", g, g0, f, f0, links, buf.String())
	}
}
