package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/web"
)

// The dashboard's login: the token buys an HttpOnly, SameSite=Strict
// cookie, and a write made with that cookie needs the session's CSRF
// token as well.
func TestSessionCookieAndCSRF(t *testing.T) {
	e := newEnv(t, web.Config{})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)

	login := func(body, ctype string) *httptest.ResponseRecorder {
		return e.do(http.MethodPost, "/api/v1/session", "", ctype, strings.NewReader(body))
	}
	if rec := login(`{"token": "wrong"}`, "application/json"); rec.Code != http.StatusForbidden {
		t.Fatalf("wrong token: %d", rec.Code)
	}
	if rec := login("token=", "application/x-www-form-urlencoded"); rec.Code != http.StatusForbidden {
		t.Fatalf("empty token: %d", rec.Code)
	}
	rec := login("token="+token, "application/x-www-form-urlencoded")
	if rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != web.SessionCookie || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/" {
		t.Fatalf("cookie: %+v", cookies)
	}
	var st struct {
		Authenticated bool   `json:"authenticated"`
		CSRF          string `json:"csrf"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &st) != nil || !st.Authenticated || len(st.CSRF) < 32 {
		t.Fatalf("login answer: %s", rec.Body)
	}

	with := func(method, path, csrf string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.AddCookie(cookies[0])
		if csrf != "" {
			req.Header.Set(web.HeaderCSRF, csrf)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec
	}
	if rec := with(http.MethodGet, "/api/v1/session", ""); !strings.Contains(rec.Body.String(), st.CSRF) {
		t.Fatalf("session read back: %s", rec.Body)
	}
	for _, c := range []struct {
		csrf string
		want int
	}{{"", http.StatusForbidden}, {"forged", http.StatusForbidden}, {st.CSRF, http.StatusOK}} {
		if rec := with(http.MethodPost, "/api/v1/apps/app/stop", c.csrf); rec.Code != c.want {
			t.Errorf("stop with csrf %q: %d, want %d (%s)", c.csrf, rec.Code, c.want, rec.Body)
		}
	}
	if rec := with(http.MethodDelete, "/api/v1/session", ""); rec.Code != http.StatusOK {
		t.Fatalf("logout: %d", rec.Code)
	}
	if rec := with(http.MethodPost, "/api/v1/apps/app/start", st.CSRF); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a write after logout: %d", rec.Code)
	}
}

func TestDashboardAssets(t *testing.T) {
	e := newEnv(t, web.Config{})
	for path, ctype := range map[string]string{"/": "text/html", "/ui/app.js": "text/javascript", "/ui/app.css": "text/css"} {
		rec := e.do(http.MethodGet, path, "", "", nil)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype) || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header())
		}
	}
	for _, path := range []string{"/ui/nope.js", "/ui/..%2Fweb.go", "/index.html"} {
		if rec := e.do(http.MethodGet, path, "", "", nil); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d", path, rec.Code)
		}
	}
}

// An open event stream sends snapshots and ends when the server closes,
// so that shutting a server down never waits for an open dashboard.
func TestEventStreamEndsOnClose(t *testing.T) {
	e := newEnv(t, web.Config{})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)
	ts := httptest.NewServer(e.srv)
	resp, err := http.Get(ts.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), `"name":"app"`) {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("reading the stream: %v; so far %q", err, got.String())
		}
		got.Write(buf[:n])
	}
	if !strings.Contains(got.String(), "event: cluster\ndata: {") {
		t.Fatalf("stream: %q", got.String())
	}
	closed := make(chan struct{})
	go func() {
		e.srv.Close()
		ts.Close() // waits for the handlers: it must not hang on the stream
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close with an event stream open")
	}
}
