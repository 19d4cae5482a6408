package fcgiproxy_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestFront runs the same checks through plain HTTP and through a real
// nginx with fastcgi_pass to the front, against a real node.
func TestFront(t *testing.T) {
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"echo", "hello-python"}, Front: true, Args: []string{"--max-body", "12582912"}})
	nginx := testcluster.Nginx(t, n.FastCGI)
	for name, base := range map[string]string{"http": "http://" + n.HTTP, "nginx": nginx} {
		t.Run(name, func(t *testing.T) {
			testcluster.Eventually(t, 120*time.Second, "echo/http to answer", func() bool {
				resp, err := http.Get(base + "/echo/http/")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
			testcluster.Eventually(t, 120*time.Second, "hello-python/upper to answer", func() bool {
				resp, err := http.Post(base+"/hello-python/upper", "text/plain", strings.NewReader("x"))
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
			checkFront(t, base)
		})
	}
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func checkFront(t *testing.T, base string) {
	t.Run("ping", func(t *testing.T) {
		resp, body := do(t, must(http.NewRequest("GET", base+"/ping", nil)))
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
			t.Fatalf("ping: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("status headers body", func(t *testing.T) {
		req := must(http.NewRequest("PUT", base+"/echo/http/some/path?x=1", strings.NewReader("payload")))
		resp, body := do(t, req)
		if resp.StatusCode != 200 || resp.Header.Get("X-Echo-Method") != "PUT" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
		}
		// The app sees SCRIPT_NAME /echo/http and the rest as its path.
		if string(body) != "PUT /some/path\npayload" {
			t.Fatalf("body %q", body)
		}
	})
	t.Run("streamed chunk by chunk", func(t *testing.T) {
		gate := testcluster.NewGate(t)
		resp, err := http.Get(base + "/echo/http/?chunks=3&gate=" + gate.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		line, err := r.ReadString('\n')
		if err != nil || line != "chunk 0\n" {
			t.Fatalf("first line %q %v", line, err)
		}
		gate.Open(t) // chunk 0 came while the app waited: streamed
		rest, _ := io.ReadAll(r)
		if string(rest) != "chunk 1\nchunk 2\n" {
			t.Fatalf("rest %q", rest)
		}
	})
	t.Run("10 MB upload", func(t *testing.T) {
		payload := make([]byte, 10<<20)
		rand.Read(payload)
		resp, body := do(t, must(http.NewRequest("POST", base+"/echo/http/up", bytes.NewReader(payload))))
		want := append([]byte("POST /up\n"), payload...)
		if resp.StatusCode != 200 || sha256.Sum256(body) != sha256.Sum256(want) {
			t.Fatalf("upload: %d, %d bytes back", resp.StatusCode, len(body))
		}
	})
	// Raw events (no "payload": "http" in the manifest) take the body as
	// it is and answer their chunks as a 200 application/octet-stream.
	t.Run("raw event", func(t *testing.T) {
		resp, body := do(t, must(http.NewRequest("POST", base+"/hello-python/upper", strings.NewReader("hi"))))
		if resp.StatusCode != 200 || string(body) != "HI" || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("raw python event: %d %v %q", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("raw 10 MB", func(t *testing.T) {
		payload := make([]byte, 10<<20)
		rand.Read(payload)
		resp, body := do(t, must(http.NewRequest("POST", base+"/echo/echo", bytes.NewReader(payload))))
		if resp.StatusCode != 200 || !bytes.Equal(body, payload) {
			t.Fatalf("raw echo of 10 MB: %d, %d bytes back", resp.StatusCode, len(body))
		}
	})
	t.Run("413", func(t *testing.T) {
		req := must(http.NewRequest("POST", base+"/echo/http/", bytes.NewReader(make([]byte, 13<<20))))
		// As curl does for a large body: the 413 comes before the body is
		// sent. Without it the client may still be writing when the front
		// closes the connection, and sees a reset instead of the answer.
		req.Header.Set("Expect", "100-continue")
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized body: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("404 unknown app", func(t *testing.T) {
		resp, body := do(t, must(http.NewRequest("GET", base+"/nope/http/", nil)))
		var e struct {
			Code  int    `json:"code"`
			Error string `json:"error"`
		}
		if resp.StatusCode != 404 || resp.Header.Get("X-Cocaine-Error") != "404" || json.Unmarshal(body, &e) != nil || e.Code != 404 {
			t.Fatalf("unknown app: %d %v %s", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("huge deadline and timeout are clamped", func(t *testing.T) {
		for _, v := range []string{"9223372036855", "9223372036854775807", "99999999999999999999"} {
			req := must(http.NewRequest("GET", base+"/echo/http/", nil))
			req.Header.Set("X-Cocaine-Deadline", v)
			req.Header.Set("X-Cocaine-Timeout", v)
			if resp, body := do(t, req); resp.StatusCode != 200 {
				t.Fatalf("deadline and timeout %s: %d %s", v, resp.StatusCode, body)
			}
		}
	})
	t.Run("deadline header gives 504 on time", func(t *testing.T) {
		req := must(http.NewRequest("GET", base+"/echo/http/?sleep=10000", nil))
		req.Header.Set("X-Cocaine-Deadline", "400")
		start := time.Now()
		resp, body := do(t, req)
		el := time.Since(start)
		if resp.StatusCode != 504 || resp.Header.Get("X-Cocaine-Error") != "520" {
			t.Fatalf("slow call with deadline: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		// Not early; and well before the app's own 10 s, however loaded.
		if el < 400*time.Millisecond || el > 5*time.Second {
			t.Fatalf("504 after %v for a 400ms deadline", el)
		}
	})
	t.Run("bad policy header", func(t *testing.T) {
		req := must(http.NewRequest("GET", base+"/echo/http/", nil))
		req.Header.Set("X-Cocaine-Timeout", "soon")
		if resp, _ := do(t, req); resp.StatusCode != 400 {
			t.Fatalf("bad header: %d", resp.StatusCode)
		}
	})
}

func must(r *http.Request, err error) *http.Request {
	if err != nil {
		panic(err)
	}
	return r
}
