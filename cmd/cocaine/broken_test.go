package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestBrokenAppIs503AtOnce: an app whose build fails, and one whose driver
// cannot bind its port, are "not available here now": 503 with the reason
// over HTTP and in `cocaine call`, at once, never 404, 500 or a wait for
// the deadline; info shows them broken.
func TestBrokenAppIs503AtOnce(t *testing.T) {
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	apps := map[string]map[string]string{
		"badbuild": {
			"manifest.json": `{"type": "go", "drivers": {"x": {"type": "native-server"}}}`,
			"main.go":       "package main\n\nfunc main() { this is not go }\n",
		},
		"nobind": {
			"manifest.json": fmt.Sprintf(`{"type": "python", "args": {"module": "app"}, "drivers": {
				"x": {"type": "native-server", "emit": "hello"},
				"rpc": {"type": "zeromq-server", "emit": "hello", "endpoint": "tcp://%s"}}}`, taken.Addr()),
			"app.py": "def hello(request, response):\n    return 'hi'\n",
		},
	}
	var paths []string
	for name, files := range apps {
		for f, body := range files {
			p := filepath.Join(dir, name, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		paths = append(paths, filepath.Join(dir, name))
	}
	n := testcluster.StartNode(t, testcluster.Options{Apps: paths, Front: true})
	for _, c := range []struct{ app, reason string }{{"badbuild", "go build failed"}, {"nobind", "driver rpc"}} {
		t.Run(c.app, func(t *testing.T) {
			testcluster.Eventually(t, 120*time.Second, c.app+" broken in info", func() bool {
				out, _, _ := cli(t, nil, "info", "--discovery", "static:"+n.Announce)
				return strings.Contains(out, c.app) && strings.Contains(out, "broken")
			})
			start := time.Now()
			resp, err := http.Get("http://" + n.HTTP + "/" + c.app + "/x")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 503 || !strings.Contains(string(body), c.reason) {
				t.Fatalf("HTTP: %d %s, want 503 with %q", resp.StatusCode, body, c.reason)
			}
			_, stderr, code := cli(t, nil, "call", "--discovery", "static:"+n.Announce, c.app+"/x", "")
			if code == 0 || !strings.Contains(stderr, "error 503") || !strings.Contains(stderr, c.reason) {
				t.Fatalf("call: exit %d, %s", code, stderr)
			}
			// The call waits for discovery (up to 3 s) but not for the 30 s
			// deadline.
			if d := time.Since(start); d > 15*time.Second {
				t.Fatalf("answers took %v", d)
			}
		})
	}
}
