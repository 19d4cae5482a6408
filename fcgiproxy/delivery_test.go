package fcgiproxy_test

// Delivery rules as an HTTP client meets them through the front of a
// real `cocaine dev` node: error codes mapped to statuses, the policy
// headers, and a client that goes away. The app is
// gateway/testdata/deliveryapp; every run leaves a mark the test counts.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/httpmsg"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

var (
	appOnce sync.Once
	appDir  string
	appErr  error
)

// deliveryApps builds the delivery test app once per test binary: "dapp"
// (roomy) and "tight" (one slave, one job at a time, a queue of one).
func deliveryApps(t testing.TB) string {
	t.Helper()
	appOnce.Do(func() {
		if appDir, appErr = os.MkdirTemp("", "deliveryapps"); appErr != nil {
			return
		}
		// One build; both apps link to it.
		bin := filepath.Join(appDir, "app")
		cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "./gateway/testdata/deliveryapp")
		cmd.Dir = testcluster.Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			appErr = fmt.Errorf("go build deliveryapp: %v\n%s", err, out)
			return
		}
		for name, eng := range map[string]string{
			"dapp":  `{"pool-limit": 2, "concurrency": 16, "grow-threshold": 2, "queue-limit": 100, "termination-timeout": 2}`,
			"tight": `{"pool-limit": 1, "concurrency": 1, "queue-limit": 1, "termination-timeout": 2}`,
		} {
			dir := filepath.Join(appDir, name)
			if appErr = os.MkdirAll(dir, 0o755); appErr != nil {
				return
			}
			if appErr = os.Link(bin, filepath.Join(dir, "app")); appErr != nil {
				return
			}
			m := `{"type": "binary", "args": {"path": "app"}, "engine": ` + eng + `, "drivers": {"web": {"type": "native-server", "payload": "http"}}}`
			if appErr = os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(m), 0o644); appErr != nil {
				return
			}
		}
	})
	if appErr != nil {
		t.Fatal(appErr)
	}
	return appDir
}

// runMarks counts the app's marks of one kind ("start", "cancelled").
func runMarks(dir, kind string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "."+kind) {
			n++
		}
	}
	return n
}

func marksDir(t *testing.T) string {
	t.Helper()
	return testcluster.AppDir(t, "fmarks")
}

// errorAnswer checks an error answer: status, code header and JSON body.
func errorAnswer(t *testing.T, resp *http.Response, body []byte, status int, code wire.Code) {
	t.Helper()
	var e struct {
		Code int `json:"code"`
	}
	if resp.StatusCode != status || resp.Header.Get("X-Cocaine-Error") != fmt.Sprint(int(code)) || json.Unmarshal(body, &e) != nil || e.Code != int(code) {
		t.Fatalf("got %d, X-Cocaine-Error %q, body %s; want %d with code %d", resp.StatusCode, resp.Header.Get("X-Cocaine-Error"), body, status, code)
	}
}

// TestFrontDelivery runs the checks through both fronts: the one inside
// `cocaine dev`, which reaches its own engine by a local route, and a
// `cocaine gateway` process, which reaches the same engine over ZeroMQ.
func TestFrontDelivery(t *testing.T) {
	dir := deliveryApps(t)
	n := testcluster.StartNode(t, testcluster.Options{Front: true, Apps: []string{filepath.Join(dir, "dapp"), filepath.Join(dir, "tight")}})
	gw := fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "gateway.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[dealer]
discovery = ["static:%s"]
[front]
http = %q
fastcgi = ""
[api]
storage = "off"
[security]
insecure = true # cocaine dev's engine is insecure
[admin]
listen = "off"
`, n.Announce, gw)), 0o644); err != nil {
		t.Fatal(err)
	}
	testcluster.Start(t, "gateway", "-c", cfg)
	for _, front := range []struct{ name, addr string }{{"dev front, local route", n.HTTP}, {"gateway, ZeroMQ", gw}} {
		t.Run(front.name, func(t *testing.T) { checkFrontDelivery(t, n, "http://"+front.addr) })
	}
}

func checkFrontDelivery(t *testing.T, n *testcluster.Node, base string) {
	testcluster.Eventually(t, 120*time.Second, "both apps to answer through the front", func() bool {
		for _, app := range []string{"dapp", "tight"} {
			resp, err := http.Get(base + "/" + app + "/web/")
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return false
			}
		}
		return true
	})
	web := func(app string, q url.Values) string { return base + "/" + app + "/web/?" + q.Encode() }

	t.Run("X-Cocaine-Timeout ends the job in 504, not retried", func(t *testing.T) {
		m := marksDir(t)
		req := must(http.NewRequest("GET", web("dapp", url.Values{"marks": {m}, "hold": {"1"}}), nil))
		req.Header.Set("X-Cocaine-Timeout", "300")
		req.Header.Set("X-Cocaine-Retries", "3")
		resp, body := do(t, req)
		errorAnswer(t, resp, body, http.StatusGatewayTimeout, wire.CodeTimeout)
		testcluster.Eventually(t, 30*time.Second, "the engine to cancel the timed-out run", func() bool { return runMarks(m, "cancelled") == 1 })
		if runs := runMarks(m, "start"); runs != 1 {
			t.Fatalf("the handler ran %d times; a 504 is not retried", runs)
		}
	})

	t.Run("the app's 503 after the allowed retries is a 503", func(t *testing.T) {
		m := marksDir(t)
		req := must(http.NewRequest("GET", web("dapp", url.Values{"marks": {m}, "code": {"503"}}), nil))
		req.Header.Set("X-Cocaine-Retries", "1")
		// One node: the retry waits for it, which only a deadline asks for.
		req.Header.Set("X-Cocaine-Deadline", "60000")
		resp, body := do(t, req)
		errorAnswer(t, resp, body, http.StatusServiceUnavailable, wire.CodeUnavailable)
		if runs := runMarks(m, "start"); runs != 2 {
			t.Fatalf("the handler ran %d times; want the first run and one retry", runs)
		}
	})

	t.Run("no capacity waits for room until the deadline: then 504", func(t *testing.T) {
		// Fill tight: one job running, one queued; the node refuses more
		// with 503 until one ends.
		c, err := gateway.Dial(n.Listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		m := marksDir(t)
		var held []*gateway.Response
		release := func() {
			for _, s := range held {
				s.Close() // cancels the held job
			}
			held = nil
		}
		defer release()
		hold := func() {
			s, err := c.Send("tight", "web", holdPayload(t, m), wire.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, s)
		}
		hold()
		testcluster.Eventually(t, 30*time.Second, "tight busy", func() bool { return runMarks(m, "start") == 1 })
		hold()
		testcluster.Eventually(t, 30*time.Second, "tight's queue full", func() bool { return queueDepth(c, "tight") == 1 })

		req := must(http.NewRequest("GET", base+"/tight/web/", nil))
		req.Header.Set("X-Cocaine-Deadline", "1000")
		start := time.Now()
		resp, body := do(t, req)
		errorAnswer(t, resp, body, http.StatusGatewayTimeout, wire.CodeDeadline)
		if el := time.Since(start); el < time.Second {
			t.Fatalf("gave up after %v, before the 1s deadline", el)
		}

		// With room again before the deadline, the waiting request is served.
		refused := rejected(c, "tight")
		done := make(chan error, 1)
		go func() {
			req := must(http.NewRequest("GET", base+"/tight/web/", nil))
			req.Header.Set("X-Cocaine-Deadline", "60000")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != "ok" {
				err = fmt.Errorf("%d %s", resp.StatusCode, b)
			}
			done <- err
		}()
		testcluster.Eventually(t, 30*time.Second, "tight to refuse the waiting request", func() bool { return rejected(c, "tight") > refused })
		release()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("request waiting for room: %v; want 200 ok once room came back", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the waiting request was not served after room came back")
		}
	})

	for _, tc := range []struct{ name, chunk string }{{"before the answer", "0"}, {"in the middle of the answer", "1"}} {
		t.Run("a client that goes away "+tc.name+" cancels the job", func(t *testing.T) {
			m := marksDir(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := must(http.NewRequestWithContext(ctx, "GET", web("dapp", url.Values{"marks": {m}, "hold": {"1"}, "chunk": {tc.chunk}}), nil))
			// A deadline far past the wait below: only the client going
			// away can end the run in time.
			req.Header.Set("X-Cocaine-Deadline", "300000")
			done := make(chan struct{})
			first := make(chan string, 1)
			go func() {
				defer close(done)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				buf := make([]byte, len("first from "))
				if _, err := io.ReadFull(resp.Body, buf); err == nil {
					first <- string(buf)
				}
				io.Copy(io.Discard, resp.Body) // nothing more comes until the client goes
			}()
			testcluster.Eventually(t, 30*time.Second, "the run to start", func() bool { return runMarks(m, "start") == 1 })
			if tc.chunk == "1" {
				select {
				case got := <-first:
					if got != "first from " {
						t.Fatalf("first chunk %q", got)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("the first chunk never reached the client")
				}
			}
			cancel()
			<-done
			testcluster.Eventually(t, 30*time.Second, "the handler's context to be cancelled on the engine", func() bool {
				return runMarks(m, "cancelled") == 1
			})
		})
	}
}

// holdPayload is an HTTP request for the web event, as the front would
// send it, that holds its slave until cancelled.
func holdPayload(t *testing.T, marks string) []byte {
	t.Helper()
	r := must(http.NewRequest("GET", "http://x/tight/web/?"+url.Values{"marks": {marks}, "hold": {"1"}}.Encode(), nil))
	b, err := httpmsg.EncodeRequest(nil, httpmsg.NewMeta(r, "/tight/web"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func info(c *gateway.Conn, app string) wire.AppInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := c.Info(ctx)
	if err != nil {
		return wire.AppInfo{}
	}
	return in.Apps[app]
}

func queueDepth(c *gateway.Conn, app string) int { return info(c, app).QueueDepth }

func rejected(c *gateway.Conn, app string) uint64 { return info(c, app).Jobs["rejected"] }
