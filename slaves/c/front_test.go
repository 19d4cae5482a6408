package c_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestThroughTheFront deploys examples/hello-c and examples/hello-cpp on a
// real node, which builds them, and calls their raw events through the
// HTTP front: a 5 MB binary body echoed intact, a streamed answer arriving
// in parts, and kill -9 of the slave running a request losing nothing.
func TestThroughTheFront(t *testing.T) {
	requireCompilers(t)
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"hello-c", "hello-cpp"}, Front: true, Verbose: true})
	for _, app := range []string{"hello-c", "hello-cpp"} {
		t.Run(app, func(t *testing.T) { checkNative(t, "http://"+n.HTTP+"/"+app) })
	}
}

func post(t *testing.T, url string, body []byte) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func checkNative(t *testing.T, base string) {
	testcluster.Eventually(t, 60*time.Second, base+" built and running", func() bool {
		resp, err := http.Post(base+"/hello", "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	payload := make([]byte, 5<<20)
	rand.Read(payload)
	payload[0], payload[1] = 0, 0xff // a NUL and a byte that is never UTF-8
	resp := post(t, base+"/echo", payload)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Fatalf("echo of 5 MB: %d, %d bytes back (%v)", resp.StatusCode, len(got), err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("raw answer with Content-Type %q", ct)
	}

	// Part 0 arrives while the handler waits for the gate: streamed.
	gate := testcluster.NewGate(t)
	resp = post(t, base+"/stream", []byte(gate.Path))
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "part 0\n" {
		t.Fatalf("first streamed part: %q %v", line, err)
	}
	gate.Open(t)
	rest, err := io.ReadAll(br)
	resp.Body.Close()
	if err != nil || string(rest) != "part 1\npart 2\n" {
		t.Fatalf("rest of stream: %q %v", rest, err)
	}

	// kill -9 of the slave running a request: the engine runs it again.
	marks := testcluster.NewMarks(t)
	done := make(chan string, 1)
	go func() {
		resp, err := http.Post(base+"/slow", "text/plain", strings.NewReader("1500 "+marks.Dir))
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- resp.Status + " " + string(b)
	}()
	killed := marks.KillRunning(t)
	if r := <-done; r != "200 OK slept" {
		t.Fatalf("request whose slave was killed: %q", r)
	}
	marks.CheckRerun(t, killed)
}
