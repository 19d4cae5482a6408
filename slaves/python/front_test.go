package python_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/gateway/discovery"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// TestPythonThroughTheEngine runs a Python app on a real node and calls it
// through the dealer: handlers, streaming both ways, a 10 MB body, an
// exception answered 502 with the traceback in the log only, and a slave
// killed mid-request replaced by the pool.
func TestPythonThroughTheEngine(t *testing.T) {
	app, _ := filepath.Abs("testdata/pyfront")
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{app}, Verbose: true})
	d, err := gateway.New(gateway.Config{Sources: []gateway.Source{discovery.Static(n.Announce)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	testcluster.Eventually(t, 60*time.Second, "the python app", func() bool { return d.Routes()["pyfront/hello"] == 1 })
	call := func(event string, body []byte, p wire.Policy) ([]byte, error) {
		if p.Deadline.IsZero() {
			p.Deadline = time.Now().Add(30 * time.Second)
		}
		r, err := d.Send("pyfront", event, body, p)
		if err != nil {
			t.Fatal(err)
		}
		return r.Collect(context.Background())
	}

	if got, err := call("hello", nil, wire.Policy{}); err != nil || string(got) != "Hello from Python!" {
		t.Fatalf("hello: %q %v", got, err)
	}
	big := bytes.Repeat([]byte("abc"), 4<<20) // 12 MB: several chunks each way
	if got, err := call("upper", big, wire.Policy{}); err != nil || !bytes.Equal(got, bytes.ToUpper(big)) {
		t.Fatalf("upper of 12 MB: %d bytes, %v", len(got), err)
	}
	payload := make([]byte, 10<<20)
	rand.Read(payload)
	if got, err := call("upper", payload, wire.Policy{}); err != nil || !bytes.Equal(got, asciiUpper(payload)) {
		t.Fatalf("10 MB binary: %d bytes, %v", len(got), err)
	}

	// A streamed answer arrives in parts, before the handler is done.
	gate := testcluster.NewGate(t)
	r, _ := d.Send("pyfront", "stream", []byte(gate.Path), wire.Policy{Deadline: time.Now().Add(30 * time.Second)})
	ev, err := r.Next(context.Background())
	if err != nil || ev.Kind != gateway.EventChunk || string(ev.Data) != "part 0\n" {
		t.Fatalf("first streamed part: %+v %v", ev, err)
	}
	gate.Open(t)
	rest, err := r.Collect(context.Background())
	if err != nil || string(rest) != "part 1\npart 2\n" {
		t.Fatalf("rest of stream: %q %v", rest, err)
	}

	_, err = call("fail", nil, wire.Policy{})
	var we *wire.Error
	if !asWire(err, &we) || we.Code != wire.CodeApp || strings.Contains(we.Message, "Traceback") || !strings.Contains(we.Message, "KeyError") {
		t.Fatalf("exception: %v, want 502 naming KeyError without the traceback", err)
	}
	testcluster.Eventually(t, 10*time.Second, "the traceback in the app log", func() bool {
		return strings.Contains(n.Log(), "Traceback") && strings.Contains(n.Log(), "no such thing in the test app")
	})

	// kill -9 of the slave running a request: the pool runs it again.
	marks := testcluster.NewMarks(t)
	var wg sync.WaitGroup
	var slowGot []byte
	var slowErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		slowGot, slowErr = call("slow", []byte("1.5 "+marks.Dir), wire.Policy{})
	}()
	killed := marks.KillRunning(t)
	wg.Wait()
	if slowErr != nil || string(slowGot) != "slept" {
		t.Fatalf("request whose slave was killed: %q %v", slowGot, slowErr)
	}
	marks.CheckRerun(t, killed)
	if got, err := call("hello", nil, wire.Policy{}); err != nil || string(got) != "Hello from Python!" {
		t.Fatalf("after kill: %q %v", got, err)
	}
}

func asWire(err error, target **wire.Error) bool {
	we, ok := err.(*wire.Error)
	if ok {
		*target = we
	}
	return ok
}

// asciiUpper is Python's bytes.upper: only ASCII letters change.
func asciiUpper(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
