package perl_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestPSGIThroughTheFront runs examples/psgi, a plain PSGI app on Plack,
// unchanged behind the HTTP front: routes, query, JSON, cookies, a
// streamed answer, kill -9 of busy slaves, and an exception answered 502
// with the details in the app's log.
func TestPSGIThroughTheFront(t *testing.T) {
	requirePerl(t)
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"psgi"}, Front: true, Verbose: true})
	testcluster.CheckWebApp(t, n, "psgi")

	resp, err := http.Get("http://" + n.HTTP + "/psgi/http/fail")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || strings.Contains(string(body), "line ") {
		t.Fatalf("exception: %d %q, want 502 without the file and line", resp.StatusCode, body)
	}
	testcluster.Eventually(t, 10*time.Second, "the error in the app log", func() bool {
		return strings.Contains(n.Log(), "the PSGI app failed on purpose")
	})
}
