package testcluster

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
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

	// A 10 MB body of random bytes reaches the app whole and untouched.
	payload := make([]byte, 10<<20)
	rand.Read(payload)
	req, _ = http.NewRequest("POST", base+"/upload", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/octet-stream")
	var up struct {
		Bytes  int
		SHA256 string
	}
	resp = do(t, req, &up)
	if sum := sha256.Sum256(payload); resp.StatusCode != 200 || up.Bytes != len(payload) || up.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("POST /upload of 10 MB: %d %+v", resp.StatusCode, up)
	}

	// A streamed answer: part 0 arrives while the app waits for the gate.
	gate := NewGate(t)
	sresp, err := http.Get(base + "/stream?gate=" + url.QueryEscape(gate.Path))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(sresp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "part 0\n" {
		t.Fatalf("stream: first part %q, %v", line, err)
	}
	gate.Open(t)
	rest, _ := io.ReadAll(br)
	sresp.Body.Close()
	if string(rest) != "part 1\npart 2\n" {
		t.Fatalf("stream: then %q", rest)
	}

	// kill -9 of the slave running a request: the engine runs it again.
	marks := NewMarks(t)
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow?ms=1500&marks=" + url.QueryEscape(marks.Dir))
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
		t.Fatalf("request whose slave was killed: %q, want \"200 OK slept\"", r)
	}
	marks.CheckRerun(t, killed)
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
