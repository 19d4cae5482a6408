package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// client is a plain ZeroMQ client, as an app's user would write one.
type client struct {
	ctx *zmq.Context
	s   *zmq.Socket
}

func dial(t *testing.T, typ zmq.Type, endpoint string) *client {
	t.Helper()
	ctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ctx.NewSocket(typ)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{ctx, s}
	t.Cleanup(c.close)
	if err := s.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRcvtimeo(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *client) close() {
	if c.s != nil {
		c.s.Close()
		c.ctx.Term()
		c.s = nil
	}
}

func (c *client) send(t *testing.T, parts ...string) {
	t.Helper()
	if _, err := c.s.SendMessage(parts); err != nil {
		t.Fatal(err)
	}
}

func (c *client) recv(t *testing.T) []string {
	t.Helper()
	msg, err := c.s.RecvMessage(0)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	return msg
}

func zmqDriver(t *testing.T, emit string, target Target, settings map[string]any) (Driver, string) {
	t.Helper()
	if settings == nil {
		settings = map[string]any{"endpoint": "tcp://127.0.0.1:*"}
	}
	env, _ := testEnv(t, target)
	d := start(t, drv(ZeroMQServer, emit, settings), env)
	ep, _ := d.Info()["bound"].(string)
	if ep == "" {
		t.Fatalf("no bound endpoint in %v", d.Info())
	}
	return d, ep
}

func expect(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func TestZMQReqClient(t *testing.T) {
	tp := newPool(t, engine(nil))
	_, echo := zmqDriver(t, "echo", tp, nil)
	_, stream := zmqDriver(t, "stream", tp, nil)
	_, fail := zmqDriver(t, "fail", tp, nil)

	c := dial(t, zmq.REQ, echo)
	for _, body := range []string{"hello", "", strings.Repeat("x", 1<<20)} {
		c.send(t, body)
		got := c.recv(t)
		if len(got) != 2 || got[0] != "ok" || got[1] != body {
			t.Fatalf("echo of %d bytes: got %d frames, status %q", len(body), len(got), got[0])
		}
	}
	c = dial(t, zmq.REQ, stream)
	c.send(t, "")
	expect(t, "chunks joined for REQ", c.recv(t), "ok", "chunk0;chunk1;chunk2;chunk3;chunk4;")

	c = dial(t, zmq.REQ, fail)
	c.send(t, "")
	got := c.recv(t)
	if len(got) != 2 || got[0] != "error 502" || !strings.Contains(got[1], "handler says no") {
		t.Fatalf("handler failure: %q", got)
	}
}

func TestZMQDealerClient(t *testing.T) {
	tp := newPool(t, engine(nil))
	_, stream := zmqDriver(t, "stream", tp, nil)
	_, echo := zmqDriver(t, "echo", tp, nil)

	c := dial(t, zmq.DEALER, stream)
	c.send(t, "go")
	for i := range 5 {
		expect(t, "chunk", c.recv(t), "chunk", fmt.Sprintf("chunk%d;", i))
	}
	expect(t, "end", c.recv(t), "end", "")

	// Frames before the body come back first: a request id lets the
	// client tell apart replies to requests in flight together.
	c = dial(t, zmq.DEALER, echo)
	c.send(t, "id-1", "one")
	c.send(t, "id-2", "two")
	got := map[string][]string{}
	for range 4 {
		m := c.recv(t)
		got[m[0]] = append(got[m[0]], strings.Join(m[1:], "="))
	}
	expect(t, "id-1", got["id-1"], "chunk=one", "end=")
	expect(t, "id-2", got["id-2"], "chunk=two", "end=")
}

// A full queue answers the client with an error instead of leaving it
// waiting.
func TestZMQFullQueue(t *testing.T) {
	tp := newPool(t, engine(func(e *manifest.Engine) { e.PoolLimit, e.QueueLimit, e.GrowThreshold = 1, 1, 1 }))
	d, ep := zmqDriver(t, "nap", tp, nil)
	const n = 4
	replies := make([][]string, n)
	var wg sync.WaitGroup
	for i := range n {
		c := dial(t, zmq.REQ, ep)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.s.SendMessage("300"); err != nil {
				return
			}
			replies[i], _ = c.s.RecvMessage(0)
		}()
	}
	wg.Wait()
	var ok, full int
	for i, r := range replies {
		switch {
		case len(r) == 2 && r[0] == "ok" && r[1] == "ok":
			ok++
		case len(r) == 2 && r[0] == "error 503" && strings.Contains(r[1], "queue is full"):
			full++
		default:
			t.Fatalf("client %d: reply %q", i, r)
		}
	}
	if ok == 0 || full == 0 {
		t.Fatalf("%d answered, %d refused; want both", ok, full)
	}
	if got := counter(d.Info(), "refused"); got != uint64(full) {
		t.Fatalf("info counts %d refused, clients got %d errors", got, full)
	}
}

// The reply format is plain enough for any language: Debian's Python
// with python3-zmq.
func TestZMQPythonClient(t *testing.T) {
	const python = "/usr/bin/python3" // the pyenv python3 on PATH cannot import Debian's modules
	if out, err := exec.Command(python, "-c", "import zmq").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import zmq (apt-get install -y python3-zmq): %v\n%s", python, err, out)
	}
	tp := newPool(t, engine(nil))
	_, ep := zmqDriver(t, "stream", tp, nil)
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(`
import json, sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 10000)
s.connect(sys.argv[1])
s.send(b"from python")
status, body = s.recv_multipart()
print(json.dumps([status.decode(), body.decode()]))
s.close()
ctx.term()
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, script, ep).CombinedOutput()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python client printed %q: %v", out, err)
	}
	expect(t, "python REQ", got, "ok", "chunk0;chunk1;chunk2;chunk3;chunk4;")
}

func TestZMQChecks(t *testing.T) {
	cases := []struct {
		settings map[string]any
		want     []string
	}{
		{map[string]any{"endpoint": "tcp://127.0.0.1:5555"}, nil},
		{map[string]any{"endpoint": "ipc:///tmp/x.sock", "backlog": json.Number("100")}, nil},
		{map[string]any{}, []string{"endpoint: required"}},
		{map[string]any{"endpoint": "127.0.0.1:5555"}, []string{"endpoint: expected tcp://HOST:PORT or ipc://PATH"}},
		{map[string]any{"endpoint": "inproc://x"}, []string{"endpoint: expected tcp://HOST:PORT or ipc://PATH"}},
		{map[string]any{"endpoint": "tcp://x:1", "backlog": json.Number("0")}, []string{"backlog: must be greater than 0"}},
	}
	for _, c := range cases {
		ps := Validate(drv(ZeroMQServer, "x", c.settings))
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

// A taken endpoint fails Start, and the failed driver leaves nothing.
func TestZMQBindConflict(t *testing.T) {
	f := &fakeTarget{}
	_, ep := zmqDriver(t, "x", f, nil)
	env, _ := testEnv(t, f)
	d, err := New(drv(ZeroMQServer, "y", map[string]any{"endpoint": ep}), env)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "bind") {
		t.Fatalf("second bind of %s: %v", ep, err)
	}
	d.Stop()
}

// Stopped servers release their port, sockets, context and goroutines,
// even with jobs still out; a new one binds the same port.
func TestZMQRestartWithoutLeaks(t *testing.T) {
	env, _ := testEnv(t, nil)
	endpoint := "tcp://127.0.0.1:*"
	// Kept reachable: zmq4 and os.File finalizers would otherwise close
	// what a driver leaked at the next GC and hide the leak.
	var stopped []Driver
	cycle := func() {
		f := &fakeTarget{delay: time.Millisecond}
		env.Target = f
		d, err := New(drv(ZeroMQServer, "z", map[string]any{"endpoint": endpoint}), env)
		if err != nil {
			t.Fatal(err)
		}
		stopped = append(stopped, d)
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		endpoint = d.Info()["bound"].(string)
		req := dial(t, zmq.REQ, endpoint)
		req.send(t, "ping")
		expect(t, "REQ", req.recv(t), "ok", "ping")
		dealer := dial(t, zmq.DEALER, endpoint)
		dealer.send(t, "pong")
		expect(t, "DEALER chunk", dealer.recv(t), "chunk", "pong")
		expect(t, "DEALER end", dealer.recv(t), "end", "")

		// Jobs still out at Stop end later, into nothing.
		f.mu.Lock()
		f.hold = true
		f.mu.Unlock()
		req.send(t, "stuck")
		dealer.send(t, "stuck")
		eventually(t, 5*time.Second, "held jobs", func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return len(f.held) == 2
		})
		done := make(chan struct{})
		go func() { d.Stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Stop hangs")
		}
		released := make(chan struct{})
		go func() { f.release(); close(released) }()
		select {
		case <-released:
		case <-time.After(5 * time.Second):
			t.Fatal("a job ending after Stop blocked its sink")
		}
		req.close()
		dealer.close()
	}
	cycle()
	base := measure(t)
	for range 3 {
		cycle()
	}
	backToBaseline(t, base)
	runtime.KeepAlive(stopped)
}
