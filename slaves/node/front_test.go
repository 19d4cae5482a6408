package node_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestExpressThroughTheFront runs examples/express, an Express app,
// unchanged behind the HTTP front: routes, query, JSON, cookies, a
// streamed answer, kill -9 of busy slaves, and a handler's exception.
func TestExpressThroughTheFront(t *testing.T) {
	requireNode(t)
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"express"}, Front: true, Verbose: true})
	testcluster.CheckWebApp(t, n, "express")

	// Express answers its own errors (500, no stack outside development)
	// and logs the stack: the app's log.
	resp, err := http.Get("http://" + n.HTTP + "/express/http/fail")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || strings.Contains(string(body), "failed on purpose") {
		t.Fatalf("exception: %d %q, want 500 without the error", resp.StatusCode, body)
	}
	testcluster.Eventually(t, 10*time.Second, "the stack in the app log", func() bool {
		return strings.Contains(n.Log(), "the Express app failed on purpose")
	})
}
