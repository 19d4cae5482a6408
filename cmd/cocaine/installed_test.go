package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestInstalledBinaryRunsEveryExample is issue 18's acceptance test: the
// binary, copied alone into an empty folder outside the checkout, runs
// `cocaine dev --apps` on a copy of examples/ from there, with nothing in
// its environment or arguments pointing into the checkout, no module
// cache and GOPROXY=off, and every example answers: Go, Python, C, C++,
// Node and Perl apps; HTTP, timer, filesystem and ZeroMQ drivers.
func TestInstalledBinaryRunsEveryExample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cocaine dev with every example")
	}
	checkout := testcluster.Root()
	home := t.TempDir()
	if strings.HasPrefix(home, checkout) {
		t.Fatalf("the temporary folder %s is inside the checkout", home)
	}
	bin := filepath.Join(home, "cocaine")
	data, err := os.ReadFile(testcluster.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(checkout, "examples", "express", "node_modules")); err != nil {
		t.Fatal("examples/express has no node_modules: run `make deps-test` (npm ci there)")
	}
	apps := filepath.Join(home, "examples")
	if err := os.CopyFS(apps, os.DirFS(filepath.Join(checkout, "examples"))); err != nil {
		t.Fatal(err)
	}
	// zmq-echo's fixed ports could be taken on a shared machine.
	zmqEcho := testcluster.FreePort(t)
	zm := filepath.Join(apps, "zmq-echo", "manifest.json")
	m, err := os.ReadFile(zm)
	if err != nil {
		t.Fatal(err)
	}
	m = bytes.ReplaceAll(m, []byte("127.0.0.1:5555"), []byte(fmt.Sprintf("127.0.0.1:%d", zmqEcho)))
	m = bytes.ReplaceAll(m, []byte("127.0.0.1:5556"), []byte(fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))))
	if err := os.WriteFile(zm, m, 0o644); err != nil {
		t.Fatal(err)
	}

	modcache := t.TempDir()
	t.Cleanup(func() { // the go command makes its module cache read-only
		c := exec.Command("go", "clean", "-modcache")
		c.Env = append(os.Environ(), "GOMODCACHE="+modcache)
		_ = c.Run()
	})
	var env []string
	for _, kv := range os.Environ() {
		if !strings.Contains(kv, checkout) && !strings.HasPrefix(kv, "COCAINE_") && !strings.HasPrefix(kv, "GO") {
			env = append(env, kv)
		}
	}
	env = append(env, "GOPROXY=off", "GOMODCACHE="+modcache)
	front := fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))
	announce := fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t))
	args := []string{"dev", "--apps", "examples", "--http", front, "--announce", announce,
		"--listen", fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t)),
		"--fastcgi", fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t)), "--admin", admin}
	for _, s := range append(append([]string{}, env...), args...) {
		if strings.Contains(s, checkout) {
			t.Fatalf("%q points into the checkout", s)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = home, env
	node := testcluster.StartCmd(t, cmd)

	// Go apps are built at deploy; a cold build cache on a busy machine
	// takes a while.
	const deploy = 4 * time.Minute
	hc := &http.Client{Timeout: 30 * time.Second}
	answers := func(method, path, body, want string) func() bool {
		return func() bool {
			req, _ := http.NewRequest(method, "http://"+front+path, strings.NewReader(body))
			resp, err := hc.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == http.StatusOK && strings.Contains(string(b), want)
		}
	}
	// Raw events through the dealer, as `cocaine call` sends them.
	calls := func(event, body, want string) func() bool {
		return func() bool {
			c := exec.Command(bin, "call", "--discovery", "static:"+announce, event, body)
			c.Dir, c.Env = home, env
			out, err := c.Output()
			return err == nil && string(out) == want
		}
	}
	testcluster.Eventually(t, deploy, "echo (Go) to answer", calls("echo/echo", "hello", "hello"))
	testcluster.Eventually(t, deploy, "echo's HTTP event to answer", answers("POST", "/echo/http/some/path", "hi", "POST /some/path"))
	testcluster.Eventually(t, deploy, "hello-python to answer", calls("hello-python/upper", "loud", "LOUD"))
	testcluster.Eventually(t, deploy, "wsgi-hello to answer", answers("GET", "/wsgi-hello/http/", "", "Hello, World!"))
	testcluster.Eventually(t, deploy, "flask to answer", answers("GET", "/flask/http/", "", "Flask"))
	testcluster.Eventually(t, deploy, "zmq-echo to answer", func() bool { return zmqAnswers(t, zmqEcho, "ping") })
	for _, app := range []string{"hello-c", "hello-cpp"} { // built at deploy with libcocaine-slave from the binary
		testcluster.Eventually(t, deploy, app+" to answer", answers("POST", "/"+app+"/echo", "native", "native"))
	}
	testcluster.Eventually(t, deploy, "express (Node) to answer", answers("GET", "/express/http/hello/ann", "", `"hello":"ann"`))
	testcluster.Eventually(t, deploy, "psgi (Perl) to answer", answers("GET", "/psgi/http/hello/ann", "", "ann"))

	// timer and watcher answer in their logs, read through the CLI from
	// the folder `cocaine dev` keeps its token in.
	logs := func(app string) string {
		c := exec.Command(bin, "app", "logs", app)
		c.Dir, c.Env = home, append(env, "COCAINE_API=http://"+admin)
		out, _ := c.CombinedOutput()
		return string(out)
	}
	testcluster.Eventually(t, deploy, "timer to tick", func() bool { return strings.Contains(logs("timer"), "tick ") })
	spools, _ := filepath.Glob(filepath.Join(home, "var", "spool", "watcher.*"))
	if len(spools) != 1 {
		t.Fatalf("watcher's unpacked folders: %v", spools)
	}
	drop := filepath.Join(spools[0], "spool")
	if err := os.MkdirAll(drop, 0o755); err != nil {
		t.Fatal(err)
	}
	i := 0
	testcluster.Eventually(t, deploy, "watcher to see a file", func() bool {
		i++
		name := "dropped-" + strconv.Itoa(i)
		_ = os.WriteFile(filepath.Join(drop, name), []byte("x"), 0o644)
		time.Sleep(100 * time.Millisecond) // let the event through before the next file
		return strings.Contains(logs("watcher"), "dropped-")
	})

	// The slaves ran from the node's own folder, never from the checkout.
	slaves := 0
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		environ, err := os.ReadFile(filepath.Join(p, "environ"))
		if err != nil || !bytes.Contains(environ, []byte("COCAINE_SOCKET="+home)) {
			continue
		}
		slaves++
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		if bytes.Contains(environ, []byte(checkout)) || bytes.Contains(cmdline, []byte(checkout)) {
			t.Errorf("slave %s points into the checkout: %s", p, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
		if bytes.Contains(environ, []byte("COCAINE_APP=hello-python")) && !bytes.Contains(cmdline, []byte(filepath.Join(home, "var", "cache", "runtimes", "python-"))) {
			t.Errorf("hello-python's slave does not run the unpacked runtime: %s", bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
	if slaves == 0 {
		t.Error("no slave of this node found in /proc")
	}
	if strings.Contains(node.Log(), checkout) {
		t.Errorf("the node's log names the checkout:\n%s", node.Log())
	}
}

// zmqAnswers sends body to a zeromq-server driver from a REQ socket and
// reports whether it came back; a socket per try, since a REQ socket
// that timed out cannot send again.
func zmqAnswers(t *testing.T, port int, body string) bool {
	s, err := zmq.NewSocket(zmq.REQ)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetLinger(0)
	_ = s.SetRcvtimeo(2 * time.Second)
	if err := s.Connect(fmt.Sprintf("tcp://127.0.0.1:%d", port)); err != nil {
		return false
	}
	if _, err := s.Send(body, 0); err != nil {
		return false
	}
	reply, err := s.RecvMessage(0)
	return err == nil && len(reply) == 2 && reply[0] == "ok" && reply[1] == body
}

// An engine holding 100 idle apps (50 Go, 50 Python; slaves start on the
// first request) stays small: the runtimes inside the binary cost it
// nothing while unused. Measured at about 30 MB (docs/sandboxes.md).
func TestHundredIdleAppsStayUnder50MB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cocaine dev with 100 apps")
	}
	src := t.TempDir()
	var apps []string
	for i := range 50 {
		for _, ex := range []string{"echo", "hello-python"} {
			dst := filepath.Join(src, fmt.Sprintf("%s-%d", ex, i))
			if err := os.CopyFS(dst, os.DirFS(filepath.Join(testcluster.Root(), "examples", ex))); err != nil {
				t.Fatal(err)
			}
			apps = append(apps, dst)
		}
	}
	n := testcluster.StartNode(t, testcluster.Options{Apps: apps})
	testcluster.Eventually(t, 4*time.Minute, "100 apps to start", func() bool {
		return strings.Count(n.Log(), `msg="app started"`) >= len(apps)
	})
	rssKB := n.RSS(t) >> 10
	t.Logf("RSS with %d idle apps: %d kB", len(apps), rssKB)
	if rssKB > 50<<10 {
		t.Fatalf("RSS with %d idle apps: %d kB, want under 50 MB", len(apps), rssKB)
	}
}
