package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// cli runs the cocaine binary from an empty folder (so no ./var/token is
// found by accident) and returns its output and exit code.
func cli(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testcluster.Binary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "COCAINE_TOKEN=", "COCAINE_API=")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// callFront posts to APP/http/load through the front and returns the
// status and body, or an error for a failed round trip.
func callFront(hc *http.Client, front, app string) (int, string, error) {
	resp, err := hc.Post("http://"+front+"/"+app+"/http/load", "text/plain", strings.NewReader("hi"))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestAppLifecycleThroughCLIAndFront drives a real `cocaine dev` with the
// CLI: upload, call through the front, update under load without a failed
// request, rollback, stop, start, remove.
func TestAppLifecycleThroughCLIAndFront(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cocaine dev and builds a Go app twice")
	}
	const tok = "itest-token"
	n := testcluster.StartNode(t, testcluster.Options{Front: true, Env: []string{"COCAINE_TOKEN=" + tok}})
	api := "http://" + n.Admin
	env := []string{"COCAINE_API=" + api, "COCAINE_TOKEN=" + tok}
	hc := &http.Client{Timeout: 30 * time.Second}
	testcluster.Eventually(t, 60*time.Second, "the API to answer", func() bool {
		resp, err := hc.Get(api + "/api/v1/apps")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	src := filepath.Join(t.TempDir(), "echo-src")
	if err := os.CopyFS(src, os.DirFS(filepath.Join(testcluster.Root(), "examples", "echo"))); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, []string{"COCAINE_API=" + api}, "app", "upload", src, "--name", "itest"); code != exitFailure || !strings.Contains(errOut, "Bearer") {
		t.Fatalf("upload without a token: exit %d: %s", code, errOut)
	}
	out, errOut, code := cli(t, env, "app", "upload", src, "--name", "itest")
	if code != 0 || !strings.Contains(out, "uploaded itest (new app") {
		t.Fatalf("upload: exit %d: %s %s", code, out, errOut)
	}
	version := func() string {
		t.Helper()
		out, errOut, code := cli(t, env, "app", "info", "itest", "--json")
		var info struct {
			Version string `json:"version"`
			Stopped bool   `json:"stopped"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
			t.Fatalf("info: exit %d: %s %s", code, out, errOut)
		}
		return info.Version
	}
	v1 := version()
	answers := func(pred func(status int, body string) bool) func() bool {
		return func() bool {
			status, body, err := callFront(hc, n.HTTP, "itest")
			return err == nil && pred(status, body)
		}
	}
	isV1 := func(status int, body string) bool { return status == 200 && strings.HasPrefix(body, "POST ") }
	isV2 := func(status int, body string) bool { return status == 200 && strings.HasPrefix(body, "v2 POST ") }
	testcluster.Eventually(t, 3*time.Minute, "the uploaded app to answer through the front", answers(isV1))

	// Version 2 answers with a prefix, so the switch is visible.
	httpGo := filepath.Join(src, "http.go")
	code0, err := os.ReadFile(httpGo)
	if err != nil {
		t.Fatal(err)
	}
	const line = `fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)`
	if !bytes.Contains(code0, []byte(line)) {
		t.Fatalf("examples/echo/http.go no longer has %s", line)
	}
	v2src := bytes.Replace(code0, []byte(line), []byte(`fmt.Fprintf(w, "v2 %s %s\n", r.Method, r.URL.Path)`), 1)
	if err := os.WriteFile(httpGo, v2src, 0o644); err != nil {
		t.Fatal(err)
	}

	// Load through the front for the whole update.
	var (
		stop          atomic.Bool
		total, sawV2  atomic.Int64
		failMu        sync.Mutex
		failures      []string
		wg            sync.WaitGroup
		loadClient    = &http.Client{Timeout: 30 * time.Second}
		recordFailure = func(s string) { failMu.Lock(); failures = append(failures, s); failMu.Unlock() }
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				status, body, err := callFront(loadClient, n.HTTP, "itest")
				total.Add(1)
				switch {
				case err != nil:
					recordFailure(err.Error())
				case isV2(status, body):
					sawV2.Add(1)
				case !isV1(status, body):
					recordFailure(fmt.Sprintf("%d %q", status, body))
				}
			}
		}()
	}
	out, errOut, code = cli(t, env, "app", "upload", src, "--name", "itest")
	if code != 0 || !strings.Contains(out, "new version of") {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("update: exit %d: %s %s", code, out, errOut)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for sawV2.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during the update, first: %v", len(failures), total.Load(), failures[:min(5, len(failures))])
	}
	if sawV2.Load() < 50 {
		t.Fatalf("version 2 answered %d of %d requests", sawV2.Load(), total.Load())
	}
	t.Logf("update under load: %d requests, none failed, %d answered by version 2", total.Load(), sawV2.Load())
	v2 := version()
	if v2 == v1 {
		t.Fatal("the update kept the version number")
	}

	out, errOut, code = cli(t, env, "app", "rollback", "itest")
	if code != 0 {
		t.Fatalf("rollback: exit %d: %s %s", code, out, errOut)
	}
	if v := version(); v != v1 {
		t.Fatalf("after rollback version %s, want %s", v, v1)
	}
	testcluster.Eventually(t, time.Minute, "version 1 to answer again", answers(isV1))

	// Stopped: the engine undeploys the app and the dealer has no node for
	// it, so the front answers 404 (no such app), at once.
	if _, errOut, code = cli(t, env, "app", "stop", "itest"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, errOut)
	}
	testcluster.Eventually(t, 30*time.Second, "calls to a stopped app to answer 404",
		answers(func(status int, _ string) bool { return status == http.StatusNotFound }))
	// The route goes at once; the node lists the app as stopping until its
	// slaves have left.
	testcluster.Eventually(t, 30*time.Second, "the list to show the app stopped", func() bool {
		out, _, _ = cli(t, env, "app", "list")
		return strings.Contains(out, "stopped")
	})

	if _, errOut, code = cli(t, env, "app", "start", "itest"); code != 0 {
		t.Fatalf("start: exit %d: %s", code, errOut)
	}
	testcluster.Eventually(t, time.Minute, "the started app to answer", answers(isV1))

	if _, errOut, code = cli(t, env, "app", "remove", "itest"); code != 0 {
		t.Fatalf("remove: exit %d: %s", code, errOut)
	}
	testcluster.Eventually(t, 30*time.Second, "calls to a removed app to answer 404",
		answers(func(status int, _ string) bool { return status == http.StatusNotFound }))
	if _, _, code = cli(t, env, "app", "info", "itest"); code != exitNotFound {
		t.Fatalf("info of a removed app: exit %d, want %d", code, exitNotFound)
	}
}
