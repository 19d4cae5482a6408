// Package bench_test checks that the apps bench/run.sh measures work
// through the front before anyone trusts their numbers: the Flask example
// and the plain WSGI hello, on a real `cocaine dev` node.
package bench_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// requireFlask fails rather than skips: a skipped test would let a machine
// without Flask pass `make test` without ever running the example.
func requireFlask(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import flask").CombinedOutput()
	if err != nil {
		t.Fatalf("examples/flask needs Debian's python3-flask for /usr/bin/python3 (`make test` installs it, "+
			"or apt-get install python3-flask): %v\n%s", err, out)
	}
}

func TestExamplesThroughTheFront(t *testing.T) {
	requireFlask(t)
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"flask", "wsgi-hello"}, Front: true})
	base := "http://" + n.HTTP
	client := &http.Client{Timeout: 30 * time.Second}

	get := func(t *testing.T, path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	// Deploying starts the Python slaves, which import Flask: until then
	// the front answers 404 or 503.
	for _, app := range []string{"/wsgi-hello/http/", "/flask/http/"} {
		testcluster.Eventually(t, 90*time.Second, app+" to answer 200", func() bool {
			resp, err := client.Get(base + app)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	t.Run("wsgi-hello", func(t *testing.T) {
		resp, body := get(t, "/wsgi-hello/http/any/path")
		if resp.StatusCode != 200 || body != "Hello, World!\n" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("got %d %q %q, want 200 text/plain %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, "Hello, World!\n")
		}
	})

	t.Run("flask index", func(t *testing.T) {
		resp, body := get(t, "/flask/http/")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("got %d %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		// The links prove SCRIPT_NAME reached Flask: url_for put the
		// prefix in front of them.
		for _, want := range []string{"<h1>Flask on cocaine</h1>", `href="/flask/http/form"`, `href="/flask/http/stream"`} {
			if !strings.Contains(body, want) {
				t.Errorf("index lacks %s:\n%s", want, body)
			}
		}
	})

	t.Run("flask form", func(t *testing.T) {
		resp, body := get(t, "/flask/http/form")
		if resp.StatusCode != 200 || !strings.Contains(body, `<form method="post" action="/flask/http/form">`) || strings.Contains(body, "greeting") {
			t.Fatalf("GET form: %d\n%s", resp.StatusCode, body)
		}
		resp, err := client.PostForm(base+"/flask/http/form", url.Values{"name": {"<Ann & Bob>"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if want := `<p id="greeting">Hello, &lt;Ann &amp; Bob&gt;!</p>`; resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("POST form: %d, want %s in:\n%s", resp.StatusCode, want, b)
		}
	})

	t.Run("flask json", func(t *testing.T) {
		resp, body := get(t, "/flask/http/api/info?q=a+b")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var got struct {
			App, Method, Path, Index string
			ScriptRoot               string `json:"script_root"`
			Args                     map[string]string
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v in %s", err, body)
		}
		if got.App != "flask" || got.Method != "GET" || got.ScriptRoot != "/flask/http" || got.Path != "/api/info" ||
			got.Index != "/flask/http/" || got.Args["q"] != "a b" {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("flask stream arrives in pieces", func(t *testing.T) {
		const lines, delay = 4, 300 * time.Millisecond
		start := time.Now()
		resp, err := client.Get(base + "/flask/http/stream?n=4&delay=0.3")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var got []string
		var at []time.Duration
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				got = append(got, line)
				at = append(at, time.Since(start))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(got) != lines || got[0] != "line 1 of 4 from /stream\n" || got[3] != "line 4 of 4 from /stream\n" {
			t.Fatalf("got %q", got)
		}
		// Generated over 3 × 300 ms: a buffered answer would bring every
		// line at once, at the end. Half the spread leaves room for a
		// loaded machine while still telling the two apart.
		if spread := at[lines-1] - at[0]; spread < (lines-1)*delay/2 {
			t.Fatalf("lines arrived at %v: not streamed (first and last %v apart, want ≥ %v)", at, spread, (lines-1)*delay/2)
		}
	})
}
