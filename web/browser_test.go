package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// The dashboard in headless Chromium (Debian's chromium, installed by
// scripts/deps.sh test) against a real `cocaine dev`: one browser and one
// node for all the subtests, each in a tab of its own that saves a
// screenshot in its artifact folder (go test -artifacts keeps them).

const chromiumPath = "/usr/bin/chromium"

// browser starts Chromium headless with a fresh profile and no
// background traffic (the machine's network is closed).
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the dashboard tests need Chromium at %s: run scripts/deps.sh test (Debian package chromium)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// tab is one page under test: what its console reported, kept for the
// end of the subtest.
type tab struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newTab(t *testing.T, b context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b)
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	tb := &tab{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	logs := chromedp.Events(ctx, cdplog.EntryAdded)
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for ev, err := range console {
			if err != nil {
				return
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				tb.add("console." + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			tb.add("exception: " + msg)
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range logs {
			if err != nil {
				return
			}
			if e := ev.Entry; e != nil && e.Level == cdplog.EntryLevelError {
				tb.add("log: " + e.Text + " " + e.URL)
			}
		}
	}()
	t.Cleanup(func() {
		// A screenshot of how the page ended, whatever happened.
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			name := filepath.Join(t.ArtifactDir(), "screen.png")
			if err := os.WriteFile(name, png, 0o644); err == nil {
				t.Logf("screenshot: %s", name)
			}
		}
		tb.mu.Lock()
		errs := tb.errors
		tb.mu.Unlock()
		if len(errs) > 0 {
			t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
		}
		cancelT()
		cancel()
		wg.Wait()
	})
	return tb
}

func (tb *tab) add(s string) {
	tb.mu.Lock()
	tb.errors = append(tb.errors, s)
	tb.mu.Unlock()
}

func (tb *tab) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitJS polls a JavaScript predicate every 50 ms until it is true.
func (tb *tab) waitJS(t *testing.T, what, expr string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(tb.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		text, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.getElementById("main").innerText.slice(0, 2000)`))
		t.Fatalf("waiting %v for %s: %v\npage:\n%s", timeout, what, err, text)
	}
}

func (tb *tab) eval(t *testing.T, expr string) string {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (tb *tab) login(t *testing.T) {
	t.Helper()
	// Tabs share the browser's cookies: an earlier subtest may have logged in.
	tb.waitJS(t, "the session", `!!document.getElementById("btn-login") || !!document.getElementById("btn-logout")`, 10*time.Second)
	if tb.eval(t, `document.getElementById("btn-logout") ? "in" : "out"`) == "in" {
		return
	}
	tb.do(t, "log in",
		chromedp.Click(chromedp.ID("btn-login")),
		chromedp.SendKeys(chromedp.ID("login-token"), browserToken),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	tb.waitJS(t, "the logout button", `!!document.getElementById("btn-logout")`, 10*time.Second)
}

const browserToken = "browser-test-token"

// dashNode is the `cocaine dev` the browser tests look at.
type dashNode struct {
	*testcluster.Node
	admin string
}

func (n *dashNode) api(t *testing.T, method, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, n.admin+path, body)
	req.Header.Set("Authorization", "Bearer "+browserToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// running reports whether the API shows every app running on a node.
// It is polled from the node's start, so a listener not up yet is "not
// yet", not a failure.
func (n *dashNode) running(t *testing.T, apps ...string) bool {
	req, _ := http.NewRequest(http.MethodGet, n.admin+"/api/v1/apps", nil)
	req.Header.Set("Authorization", "Bearer "+browserToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	var list struct {
		Apps []struct {
			Name  string `json:"name"`
			Nodes []struct {
				State string `json:"state"`
			} `json:"nodes"`
		} `json:"apps"`
	}
	if json.Unmarshal(b, &list) != nil {
		return false
	}
	up := map[string]bool{}
	for _, a := range list.Apps {
		up[a.Name] = len(a.Nodes) > 0 && a.Nodes[0].State == "running"
	}
	for _, a := range apps {
		if !up[a] {
			return false
		}
	}
	return true
}

func TestDashboard(t *testing.T) {
	examples := []string{"echo", "timer", "hello-python"}
	n := &dashNode{Node: testcluster.StartNode(t, testcluster.Options{Apps: examples, Front: true, Env: []string{"COCAINE_TOKEN=" + browserToken}})}
	n.admin = "http://" + n.Admin
	b := browser(t)
	testcluster.Eventually(t, 3*time.Minute, "the example apps running", func() bool { return n.running(t, examples...) })

	t.Run("overview lists the apps", func(t *testing.T) {
		tb := newTab(t, b)
		tb.do(t, "open the overview", chromedp.Navigate(n.admin+"/"))
		for _, a := range examples {
			tb.waitJS(t, "the row of "+a, fmt.Sprintf(`(() => { const r = document.querySelector('tr[data-app=%q] .state'); return r && r.textContent.startsWith("running"); })()`, a), 10*time.Second)
		}
		tb.waitJS(t, "the node", `document.querySelectorAll("#nodes tr[data-node]").length === 1`, 10*time.Second)
		if v := tb.eval(t, `document.getElementById("live").textContent`); v != "live" {
			t.Errorf("live indicator %q", v)
		}
	})

	t.Run("an upload appears without a reload", func(t *testing.T) {
		tb := newTab(t, b)
		tb.do(t, "open the overview", chromedp.Navigate(n.admin+"/"))
		tb.waitJS(t, "the apps", `!!document.querySelector('tr[data-app="echo"]')`, 10*time.Second)
		var pkg bytes.Buffer
		if err := archive.Pack(filepath.Join(testcluster.Root(), "examples", "hello-python"), &pkg); err != nil {
			t.Fatal(err)
		}
		if code, body := n.api(t, http.MethodPut, "/api/v1/apps/fresh", &pkg); code != http.StatusCreated {
			t.Fatalf("upload: %d %s", code, body)
		}
		// The promise: within 3 s, without a reload.
		tb.waitJS(t, "the uploaded app on the page", `!!document.querySelector('tr[data-app="fresh"]')`, 3*time.Second)
		if v := tb.eval(t, `document.querySelector('tr[data-app="fresh"] td:nth-child(3)').textContent`); !strings.HasPrefix(v, "v1 ") {
			t.Errorf("version cell %q, want v1 …", v)
		}
	})

	t.Run("stop from the page", func(t *testing.T) {
		testcluster.Eventually(t, time.Minute, "fresh running", func() bool { return n.running(t, "fresh") })
		tb := newTab(t, b)
		tb.do(t, "open the app", chromedp.Navigate(n.admin+"/#/app/fresh"))
		tb.login(t)
		tb.waitJS(t, "running", `document.getElementById("app-state").textContent === "running"`, 10*time.Second)
		tb.do(t, "stop", chromedp.Click(chromedp.ID("btn-stop")))
		tb.waitJS(t, "stopped on the page", `document.getElementById("app-state").textContent === "stopped"`, 30*time.Second)
		code, body := n.api(t, http.MethodGet, "/api/v1/apps/fresh", nil)
		var a struct {
			Stopped bool `json:"stopped"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &a) != nil || !a.Stopped {
			t.Fatalf("the API after a stop from the page: %d %s", code, body)
		}
		if v := tb.eval(t, `document.getElementById("btn-start").hidden ? "hidden" : "shown"`); v != "shown" {
			t.Errorf("the start button is %s", v)
		}
	})

	t.Run("upload from the page", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.tar.gz")
		os.WriteFile(bad, rawPackage(t, entry{name: "manifest.json", body: `{"type": "python", "args": {"module": "app"}, "engine": {"pool-limit": -1}, "drivers": {"x": {"type": "native-server"}}}`}), 0o644)
		var good bytes.Buffer
		if err := archive.Pack(filepath.Join(testcluster.Root(), "examples", "hello-python"), &good); err != nil {
			t.Fatal(err)
		}
		goodPath := filepath.Join(dir, "good.tar.gz")
		os.WriteFile(goodPath, good.Bytes(), 0o644)

		tb := newTab(t, b)
		tb.do(t, "open the overview", chromedp.Navigate(n.admin+"/"))
		tb.login(t)
		tb.waitJS(t, "the upload button", `!document.getElementById("btn-upload").disabled`, 10*time.Second)
		tb.do(t, "upload a package with a bad manifest",
			chromedp.Click(chromedp.ID("btn-upload")),
			chromedp.SendKeys(chromedp.ID("upload-name"), "paged"),
			chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{bad}),
			chromedp.Click(chromedp.ID("upload-submit")))
		tb.waitJS(t, "the manifest problem", `[...document.querySelectorAll("#upload-details li")].some(li => li.textContent.startsWith("engine.pool-limit: must be greater than 0"))`, 10*time.Second)
		// The browser logs the 422 as a failed resource load: expected here.
		tb.mu.Lock()
		tb.errors = nil
		tb.mu.Unlock()
		tb.do(t, "upload a good one",
			chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{goodPath}),
			chromedp.Click(chromedp.ID("upload-submit")))
		tb.waitJS(t, "the app page of the upload", `location.hash === "#/app/paged" && document.getElementById("app-version").textContent.includes("v1")`, 10*time.Second)
	})

	t.Run("the log tail shows new lines", func(t *testing.T) {
		tb := newTab(t, b)
		opened := time.Now()
		tb.do(t, "open the timer", chromedp.Navigate(n.admin+"/#/app/timer"))
		// timer prints "tick N at TIME (pid P)" every second.
		at := regexp.MustCompile(`tick \d+ at (\S+) \(pid`)
		deadline := time.Now().Add(30 * time.Second)
		for {
			var lines []string
			_ = json.Unmarshal([]byte(tb.eval(t, `JSON.stringify([...document.querySelectorAll("#log .line")].map(e => e.textContent))`)), &lines)
			fresh := false
			for _, l := range lines {
				if m := at.FindStringSubmatch(l); m != nil {
					if ts, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && ts.After(opened) {
						fresh = true
					}
				}
			}
			if fresh {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no line printed after the page opened; the tail shows %d lines: %q", len(lines), lines)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("the request panel shows the answer", func(t *testing.T) {
		tb := newTab(t, b)
		tb.do(t, "open echo", chromedp.Navigate(n.admin+"/#/app/echo"))
		tb.login(t)
		tb.waitJS(t, "the http event", `[...document.querySelectorAll("#call-event option")].some(o => o.value === "http") && !document.getElementById("call-send").disabled`, 10*time.Second)
		tb.do(t, "fill the panel",
			chromedp.SetValue(chromedp.ID("call-event"), "http"),
			chromedp.SendKeys(chromedp.ID("call-path"), "/x"),
			chromedp.SendKeys(chromedp.ID("call-input"), "hello panel"),
			chromedp.Click(chromedp.ID("call-send")))
		tb.waitJS(t, "the answer", `(document.getElementById("call-body") || {}).textContent === "POST /x\nhello panel"`, 15*time.Second)
		if v := tb.eval(t, `document.getElementById("call-status").textContent`); v != "200" {
			t.Errorf("status %q", v)
		}
		if v := tb.eval(t, `document.getElementById("call-time").textContent`); !strings.HasSuffix(v, " ms") {
			t.Errorf("time %q", v)
		}
	})

	t.Run("the node page lists slaves", func(t *testing.T) {
		tb := newTab(t, b)
		tb.do(t, "open the overview", chromedp.Navigate(n.admin+"/"))
		tb.waitJS(t, "the node link", `!!document.querySelector("#nodes a")`, 10*time.Second)
		tb.do(t, "open the node", chromedp.Click(chromedp.CSS("#nodes a")))
		tb.waitJS(t, "timer's slave with its pid and memory", `(() => { const r = document.querySelector('#node-apps section[data-app="timer"] tr[data-slave]'); return r && /^\d+$/.test(r.cells[0].textContent) && r.cells[5].textContent.endsWith("iB"); })()`, 15*time.Second)
	})

	t.Run("a phone-width overview", func(t *testing.T) {
		tb := newTab(t, b)
		tb.do(t, "open the overview on a phone",
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
			chromedp.Navigate(n.admin+"/"))
		long := strings.Repeat("a-long-app-name-", 6) + "end"
		var pkg bytes.Buffer
		if err := archive.Pack(filepath.Join(testcluster.Root(), "examples", "hello-python"), &pkg); err != nil {
			t.Fatal(err)
		}
		if code, body := n.api(t, http.MethodPut, "/api/v1/apps/"+long, &pkg); code != http.StatusCreated {
			t.Fatalf("upload: %d %s", code, body)
		}
		tb.waitJS(t, "the apps", `!!document.querySelector('tr[data-app="echo"]') && !!document.querySelector('tr[data-app="`+long+`"]')`, 10*time.Second)
		if w := tb.eval(t, `String(document.documentElement.scrollWidth)`); w != "390" {
			t.Errorf("the page is %s px wide on a 390 px screen", w)
		}
	})
}
