package python_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cocaine-cloud/cocaine/slaves/conformance"
	"github.com/cocaine-cloud/cocaine/slaves/protocol"
	"github.com/vmihailenco/msgpack/v5"
)

// Python is the interpreter the runtime runs on: Debian's, which sees the
// python3-msgpack package (a python3 earlier on PATH may not).
const Python = "/usr/bin/python3"

// requirePython fails, not skips: a machine without the runtime's
// dependencies must not pass the suite by skipping it.
func requirePython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		t.Fatalf("the Python runtime needs %s: %v (apt-get install -y python3 python3-msgpack)", Python, err)
	}
	if out, err := exec.Command(Python, "-c", "import msgpack").CombinedOutput(); err != nil {
		t.Fatalf("the Python runtime needs msgpack for %s: %v\n%s(apt-get install -y python3-msgpack)", Python, err, out)
	}
}

// starter runs the launcher in an app package, as the engine does.
func starter(t *testing.T, appDir string) conformance.StartFunc {
	launcher, err := filepath.Abs("cocaine_slave.py")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs(appDir)
	if err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T, env []string) *exec.Cmd {
		cmd := exec.Command(Python, launcher)
		cmd.Dir = dir
		// Keep the source tree free of __pycache__ folders.
		cmd.Env = append(append(os.Environ(), env...), "PYTHONDONTWRITEBYTECODE=1")
		return cmd
	}
}

func TestConformance(t *testing.T) {
	requirePython(t)
	conformance.Run(t, starter(t, "testdata/conformance"))
}

// TestConformanceThreads runs the suite against the handler threads of an
// app whose manifest asks for engine.concurrency 4: sessions run at once.
func TestConformanceThreads(t *testing.T) {
	requirePython(t)
	conformance.RunWithOptions(t, conformance.Options{Concurrent: true}, starter(t, "testdata/conformance-threads"))
}

func TestPythonUnittests(t *testing.T) {
	requirePython(t)
	cmd := exec.Command(Python, "-m", "unittest", "discover", "-s", "tests")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python unittests: %v\n%s", err, out)
	}
}

// TestWSGI sends an HTTP request in the payload format of README.md: the
// head map with part of the body, then more body as a chunk of its own.
func TestWSGI(t *testing.T) {
	requirePython(t)
	head, err := msgpack.Marshal(map[string]any{
		"meta": map[string]any{
			"method": "POST", "url": "http://example.com/web/http/a%20b?x=1", "path": "/web/http/a%20b",
			"query": "x=1", "host": "example.com", "remote_addr": "127.0.0.1:5000", "secure": false,
			"headers": map[string][]string{"Content-Type": {"text/plain"}}, "cookies": map[string]string{},
			"script_name": "/web/http", "path_info": "/a%20b",
		},
		"body": []byte("hello, "),
	})
	if err != nil {
		t.Fatal(err)
	}
	body, end := conformance.Call(t, starter(t, "testdata/wsgi"), "http", head, []byte("world"))
	if end.Type != protocol.Choke {
		t.Fatalf("ended in %s %d %q", end.Type, end.Code, end.Message)
	}
	// The answer is one stream here: a msgpack map, then the body.
	dec := msgpack.NewDecoder(bytes.NewReader(body))
	var got struct {
		Code    int        `msgpack:"code"`
		Headers [][]string `msgpack:"headers"`
	}
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("answer head: %v in %q", err, body)
	}
	rest, _ := io.ReadAll(dec.Buffered())
	if got.Code != 200 || len(got.Headers) != 2 || got.Headers[1][0] != "X-Path" || got.Headers[1][1] != "/a b" {
		t.Errorf("head %+v", got)
	}
	if want := "POST /web/http/a b?x=1 hello, world"; string(rest) != want {
		t.Errorf("body %q, want %q", rest, want)
	}
}

// TestHelloExample runs examples/hello-python as the engine would.
func TestHelloExample(t *testing.T) {
	requirePython(t)
	for _, c := range []struct{ event, body, want string }{
		{"hello", "", "Hello from Python!\n"},
		{"upper", "shout, please", "SHOUT, PLEASE"},
	} {
		t.Run(c.event, func(t *testing.T) {
			body, end := conformance.Call(t, starter(t, "../../examples/hello-python"), c.event, []byte(c.body))
			if end.Type != protocol.Choke || !bytes.Equal(body, []byte(c.want)) {
				t.Fatalf("%s: got %q ending in %s %q, want %q", c.event, body, end.Type, end.Message, c.want)
			}
		})
	}
}
