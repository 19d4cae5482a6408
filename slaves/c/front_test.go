package c_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/gateway/discovery"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// TestThroughTheEngine deploys examples/hello-c and examples/hello-cpp on a
// real node, which builds them, and calls them through the dealer: a 5 MB
// binary body echoed intact on a raw event, a streamed answer arriving in
// parts, and kill -9 of a busy slave losing no request.
func TestThroughTheEngine(t *testing.T) {
	requireCompilers(t)
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"hello-c", "hello-cpp"}, Verbose: true})
	d, err := gateway.New(gateway.Config{Sources: []gateway.Source{discovery.Static(n.Announce)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for _, app := range []string{"hello-c", "hello-cpp"} {
		t.Run(app, func(t *testing.T) { checkNative(t, n, d, app) })
	}
}

func checkNative(t *testing.T, n *testcluster.Node, d *gateway.Dealer, app string) {
	testcluster.Eventually(t, 60*time.Second, app+" built and running", func() bool { return d.Routes()[app+"/hello"] == 1 })
	call := func(event string, body []byte) ([]byte, error) {
		r, err := d.Send(app, event, body, wire.Policy{Deadline: time.Now().Add(30 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Collect(context.Background())
	}

	payload := make([]byte, 5<<20)
	rand.Read(payload)
	payload[0], payload[1] = 0, 0xff // a NUL and a byte that is never UTF-8
	if got, err := call("echo", payload); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo of 5 MB: %d bytes back, %v", len(got), err)
	}

	// Part 0 arrives while the handler waits for the gate: streamed.
	gate := testcluster.NewGate(t)
	r, _ := d.Send(app, "stream", []byte(gate.Path), wire.Policy{Deadline: time.Now().Add(60 * time.Second)})
	ev, err := r.Next(context.Background())
	if err != nil || ev.Kind != gateway.EventChunk || string(ev.Data) != "part 0\n" {
		t.Fatalf("first streamed part: %+v %v", ev, err)
	}
	gate.Open(t)
	rest, err := r.Collect(context.Background())
	if err != nil || string(rest) != "part 1\npart 2\n" {
		t.Fatalf("rest of stream: %q %v", rest, err)
	}

	// kill -9 of the slave running a request: the engine runs it again.
	marks := testcluster.NewMarks(t)
	done := make(chan string, 1)
	go func() {
		got, err := call("slow", []byte("1500 "+marks.Dir))
		done <- fmt.Sprintf("%s %v", got, err)
	}()
	killed := marks.KillRunning(t)
	if r := <-done; r != "slept <nil>" {
		t.Fatalf("request whose slave was killed: %q", r)
	}
	marks.CheckRerun(t, killed)
}
