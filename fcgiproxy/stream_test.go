package fcgiproxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestStreamingAndFlowControl runs with the front's local route to the
// engine (cocaine dev's default) and over ZeroMQ, as a separate gateway
// reaches engines: the request body reaches the app as it is sent, the
// answer comes back as it is made, and a client that stops reading holds
// the app back instead of filling the platform's memory.
func TestStreamingAndFlowControl(t *testing.T) {
	for _, mode := range []struct {
		name string
		args []string
	}{{"local", nil}, {"zeromq", []string{"--no-local-route"}}} {
		t.Run(mode.name, func(t *testing.T) {
			n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"echo"}, Front: true,
				Args: append([]string{"--max-body", "4294967296"}, mode.args...)})
			base := "http://" + n.HTTP
			testcluster.Eventually(t, 120*time.Second, "echo/echo to answer", func() bool {
				resp, err := http.Post(base+"/echo/echo", "", bytes.NewReader([]byte("x")))
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
			t.Run("both ways", func(t *testing.T) { testInterleaved(t, base) })
			t.Run("slow reader", func(t *testing.T) { testSlowReader(t, n, base) })
		})
	}
}

// testInterleaved sends 1 MiB and holds the body open until half of it
// has come back: that only happens if nothing on the path waits for the
// whole body, and if the answer flows while the request still does.
func testInterleaved(t *testing.T, base string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/echo/echo", pr)
	body := make([]byte, 1<<20)
	rand.Read(body)
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	go func() { resp, err := http.DefaultClient.Do(req); got <- result{resp, err} }()
	if _, err := pw.Write(body); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		t.Fatal("no answer while the body was still being sent: the body does not stream")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.resp.Body.Close()
	if r.resp.StatusCode != 200 || r.resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("raw event answered %d %v", r.resp.StatusCode, r.resp.Header)
	}
	half := make([]byte, len(body)/2)
	if _, err := io.ReadFull(r.resp.Body, half); err != nil {
		t.Fatalf("reading the first half of the echo while the body is open: %v", err)
	}
	if !bytes.Equal(half, body[:len(half)]) {
		t.Fatal("the echo's first half differs")
	}
	more := make([]byte, 300<<10)
	rand.Read(more)
	if _, err := pw.Write(more); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	rest, err := io.ReadAll(r.resp.Body)
	if err != nil || !bytes.Equal(rest, append(body[len(half):], more...)) {
		t.Fatalf("rest of the echo: %d bytes, %v", len(rest), err)
	}
}

// testSlowReader streams a body to the echo app and never reads the
// answer: the platform must push back (the client's writes stall) while
// its memory stays bounded.
func testSlowReader(t *testing.T, n *testcluster.Node, base string) {
	const limit = 150 << 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/echo/echo", pr)
	var sent atomic.Int64
	go func() {
		buf := make([]byte, 256<<10)
		for {
			if _, err := pw.Write(buf); err != nil {
				return
			}
			sent.Add(int64(len(buf)))
		}
	}()
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			<-ctx.Done() // hold the answer unread
			resp.Body.Close()
		}
	}()
	// Wait until the sender stalls: no progress for a second.
	var last int64 = -1
	testcluster.Eventually(t, 60*time.Second, "the sender to be held back", func() bool {
		now := sent.Load()
		stalled := now == last && now > 0
		last = now
		if !stalled {
			time.Sleep(time.Second)
		}
		return stalled
	})
	if rss := n.RSS(t); rss > limit {
		t.Fatalf("platform RSS %d MB with a client that does not read", rss>>20)
	}
	for _, pid := range n.SlavePIDs("echo") {
		if rss := testcluster.ProcRSS(t, pid); rss > limit {
			t.Fatalf("slave %d RSS %d MB with a client that does not read", pid, rss>>20)
		}
	}
	// What may be in flight: socket buffers on each hop, a window in the
	// dealer, the slave's read-ahead, the app's own buffer.
	if s := sent.Load(); s > 64<<20 {
		t.Fatalf("the client sent %d MB into an answer nobody reads: no backpressure", s>>20)
	}
	t.Logf("the client was held back after %d MB; platform RSS %d MB", sent.Load()>>20, n.RSS(t)>>20)
	cancel()
	pw.CloseWithError(context.Canceled)
}
