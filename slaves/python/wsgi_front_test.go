package python_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestWSGIThroughTheFront: a WSGI app behind the HTTP front — a 10 MB
// upload, a streamed page, an exception answered 502 with the traceback
// only in the log, and a slave killed mid-request recovered by the pool.
func TestWSGIThroughTheFront(t *testing.T) {
	app, _ := filepath.Abs("testdata/pyhttp")
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{app}, Front: true, Verbose: true})
	base := "http://" + n.HTTP + "/pyhttp/http"
	testcluster.Eventually(t, 60*time.Second, "the WSGI app", func() bool {
		resp, err := http.Post(base+"/", "text/plain", strings.NewReader("x"))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	payload := make([]byte, 10<<20)
	rand.Read(payload)
	resp, err := http.Post(base+"/upload", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Length") != "10485760" || sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("10 MB through WSGI: %d, %d bytes back", resp.StatusCode, len(got))
	}

	gate := testcluster.NewGate(t)
	resp, err = http.Get(base + "/stream?gate=" + gate.Path)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "part 0\n" {
		t.Fatalf("first streamed part: %q %v", line, err)
	}
	gate.Open(t) // part 0 came while the app waited: streamed
	rest, err := io.ReadAll(br)
	resp.Body.Close()
	if err != nil || string(rest) != "part 1\npart 2\n" {
		t.Fatalf("rest of the stream: %q %v", rest, err)
	}

	resp, err = http.Get(base + "/fail")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || strings.Contains(string(body), "Traceback") || !strings.Contains(string(body), "RuntimeError") {
		t.Fatalf("exception: %d %s, want 502 naming the error without the traceback", resp.StatusCode, body)
	}
	testcluster.Eventually(t, 10*time.Second, "the traceback in the app log", func() bool {
		return strings.Contains(n.Log(), "Traceback") && strings.Contains(n.Log(), "the WSGI app failed on purpose")
	})

	marks := testcluster.NewMarks(t)
	var wg sync.WaitGroup
	var slowCode int
	var slowBody string
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := http.Get(base + "/slow?1.5&" + marks.Dir)
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowCode, slowBody = resp.StatusCode, string(b)
	}()
	killed := marks.KillRunning(t)
	wg.Wait()
	if slowCode != 200 || slowBody != "slept" {
		t.Fatalf("request whose slave was killed: %d %q", slowCode, slowBody)
	}
	marks.CheckRerun(t, killed)
}
