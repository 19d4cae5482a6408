package fcgiproxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/httpmsg"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

func newTestFront(t testing.TB) *Front {
	f, err := New(Config{Routes: []Route{
		{Host: "echo.example.com", App: "echo", Event: "http"},
		{Prefix: "/api/", App: "api", Event: "rest"},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRoute(t *testing.T) {
	f := newTestFront(t)
	for _, c := range []struct {
		host, path string
		ok         bool
		want       target
	}{
		{"x", "/echo/http/a/b", true, target{"echo", "http", "/echo/http"}},
		{"x", "/echo/http", true, target{"echo", "http", "/echo/http"}},
		{"x", "/echo", false, target{}},
		{"x", "/", false, target{}},
		{"echo.example.com:8080", "/anything", true, target{"echo", "http", ""}},
		{"x", "/api/v2/users", true, target{"api", "rest", "/api"}},
		{"x", "/apix/y", true, target{"apix", "y", "/apix/y"}},
	} {
		got, ok := f.route(c.host, c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("route(%q, %q) = %+v %v, want %+v %v", c.host, c.path, got, ok, c.want, c.ok)
		}
	}
}

func TestPolicyLimits(t *testing.T) {
	f := newTestFront(t)
	now := time.Now()
	r, _ := http.NewRequest("GET", "/a/b", nil)
	r.Header.Set(HeaderDeadline, "999999999")
	r.Header.Set(HeaderTimeout, "250")
	r.Header.Set(HeaderRetries, "99")
	r.Header.Set(HeaderUrgent, "1")
	p, err := f.policy(r, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Deadline != now.Add(5*time.Minute) || p.Timeout != 250*time.Millisecond || p.Retries != 5 || !p.Urgent || p.FailFast {
		t.Fatalf("policy %+v: limits not applied", p)
	}
	r.Header = http.Header{}
	if p, _ = f.policy(r, now); p.Deadline != now.Add(30*time.Second) || !p.FailFast || p.Retries != 1 {
		t.Fatalf("default policy %+v", p)
	}
	for _, bad := range [][2]string{{HeaderDeadline, "-1"}, {HeaderTimeout, "x"}, {HeaderRetries, "-2"}} {
		r.Header = http.Header{bad[0]: {bad[1]}}
		if _, err := f.policy(r, now); wire.CodeOf(err) != wire.CodeBadRequest {
			t.Errorf("%s: %q accepted", bad[0], bad[1])
		}
	}
}

// FuzzRequestMapping feeds arbitrary hosts, paths and policy headers
// through the front's mapping: no panic, a routed request's SCRIPT_NAME
// is a prefix of its path, and the payload decodes back to the same meta.
func FuzzRequestMapping(f *testing.F) {
	f.Add("example.com", "/echo/http/x?y=1", "100", "5", "1")
	f.Add("echo.example.com", "/%2e%2e/a", "", "", "")
	f.Add("", "//", "-1", "x", "2")
	fr := newTestFront(f)
	f.Fuzz(func(t *testing.T, host, rawPath, deadline, timeout, retries string) {
		u, err := url.ParseRequestURI(rawPath)
		if err != nil {
			return
		}
		r := &http.Request{Method: "POST", URL: u, Host: host, Header: http.Header{}, RemoteAddr: "127.0.0.1:1"}
		r.Header.Set(HeaderDeadline, deadline)
		r.Header.Set(HeaderTimeout, timeout)
		r.Header.Set(HeaderRetries, retries)
		if _, err := fr.policy(r, time.Now()); err != nil && wire.CodeOf(err) != wire.CodeBadRequest {
			t.Fatalf("policy error without 400: %v", err)
		}
		tg, ok := fr.route(host, u.Path)
		if !ok {
			return
		}
		if tg.app == "" || tg.event == "" {
			t.Fatalf("routed to an empty app or event: %+v", tg)
		}
		if !strings.HasPrefix(u.Path, tg.scriptName) {
			t.Fatalf("script name %q is not a prefix of %q", tg.scriptName, u.Path)
		}
		meta := httpmsg.NewMeta(r, tg.scriptName)
		b, err := httpmsg.EncodeRequest(nil, meta, []byte("body"))
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, _, err := httpmsg.DecodeRequest(strings.NewReader(string(b)))
		if err != nil || back.ScriptName+back.PathInfo != meta.Path {
			t.Fatalf("payload round trip: %+v %v", back, err)
		}
	})
}
