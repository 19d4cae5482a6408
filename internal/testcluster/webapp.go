package testcluster

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CheckWebApp runs the checks every language's web-app example passes
// through the HTTP front (examples/express, examples/psgi): a route with a
// path parameter, a query parameter and a cookie; a JSON body answered
// with JSON and a Set-Cookie; a streamed answer arriving in parts; and a
// kill -9 of every slave while requests run, which loses none of them.
// The app serves /hello/NAME, POST /sum, /stream and /slow?ms=N under its
// driver "http".
func CheckWebApp(t *testing.T, n *Node, app string) {
	t.Helper()
	base := "http://" + n.HTTP + "/" + app + "/http"
	Eventually(t, 60*time.Second, "the "+app+" app", func() bool {
		resp, err := http.Get(base + "/hello/x")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	req, _ := http.NewRequest("GET", base+"/hello/ann?greeting=hi%20there", nil)
	req.AddCookie(&http.Cookie{Name: "visits", Value: "3"})
	var hello struct {
		Hello, Greeting, Visits string
	}
	resp := do(t, req, &hello)
	if resp.StatusCode != 200 || hello.Hello != "ann" || hello.Greeting != "hi there" || hello.Visits != "3" {
		t.Fatalf("GET /hello/ann?greeting=hi%%20there with a cookie: %d %+v", resp.StatusCode, hello)
	}

	req, _ = http.NewRequest("POST", base+"/sum", strings.NewReader(`{"numbers": [1, 2, 39]}`))
	req.Header.Set("Content-Type", "application/json")
	var sum struct{ Sum int }
	resp = do(t, req, &sum)
	if resp.StatusCode != 200 || sum.Sum != 42 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("POST /sum: %d %q %+v", resp.StatusCode, resp.Header.Get("Content-Type"), sum)
	}
	if c := resp.Cookies(); len(c) != 1 || c[0].Name != "last" || c[0].Value != "3" {
		t.Fatalf("POST /sum set cookies %v, want last=3", resp.Header.Values("Set-Cookie"))
	}

	start := time.Now()
	sresp, err := http.Get(base + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(sresp.Body)
	line, err := br.ReadString('\n')
	first := time.Since(start)
	rest, _ := io.ReadAll(br)
	sresp.Body.Close()
	// The parts are 300 ms apart: the first one must come before the rest
	// were even written.
	if err != nil || line != "part 0\n" || string(rest) != "part 1\npart 2\n" || first > 500*time.Millisecond {
		t.Fatalf("stream: first %q after %v (%v), then %q", line, first, err, rest)
	}

	// kill -9 of every slave while requests run: the engine runs them again.
	const inflight = 4
	var wg sync.WaitGroup
	results := make([]string, inflight)
	for i := range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(base + "/slow?ms=1500")
			if err != nil {
				results[i] = err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results[i] = resp.Status + " " + string(b)
		}()
	}
	time.Sleep(400 * time.Millisecond) // the requests are running
	pids := n.SlavePIDs(app)
	if len(pids) == 0 {
		t.Fatalf("found no slave of %s to kill", app)
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	wg.Wait()
	for i, r := range results {
		if r != "200 OK slept" {
			t.Errorf("request %d whose slave was killed: %q, want \"200 OK slept\"", i, r)
		}
	}
}

func do(t *testing.T, req *http.Request, into any) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON: %v", req.Method, req.URL.Path, resp.StatusCode, body, err)
	}
	return resp
}
