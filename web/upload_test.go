package web_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cocaine-cloud/cocaine/engine"
	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/web"
)

func TestWritesNeedAToken(t *testing.T) {
	e := newEnv(t, web.Config{})
	if rec := e.upload("app", goodPackage(t, "v1")); rec.Code != http.StatusCreated {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	writes := []struct{ method, path string }{
		{http.MethodPut, "/api/v1/apps/app"},
		{http.MethodDelete, "/api/v1/apps/app"},
		{http.MethodPost, "/api/v1/apps/app/start"},
		{http.MethodPost, "/api/v1/apps/app/stop"},
		{http.MethodPost, "/api/v1/apps/app/rollback"},
	}
	for _, w := range writes {
		for _, c := range []struct {
			auth string
			want int
		}{
			{"", http.StatusUnauthorized},
			{"Basic dXNlcjpwYXNz", http.StatusUnauthorized},
			{"Bearer ", http.StatusUnauthorized},
			{"Bearer wrong", http.StatusForbidden},
			{"Bearer " + token + "x", http.StatusForbidden},
		} {
			rec := e.do(w.method, w.path, c.auth, "application/gzip", bytes.NewReader(goodPackage(t, "v2")))
			if rec.Code != c.want {
				t.Errorf("%s %s with %q: %d, want %d", w.method, w.path, c.auth, rec.Code, c.want)
				continue
			}
			decodeError(t, rec)
			if c.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		}
	}
	// Nothing changed: one version, running.
	ai := e.do(http.MethodGet, "/api/v1/apps/app", "", "", nil)
	if ai.Code != http.StatusOK || strings.Count(ai.Body.String(), `"current"`) != 1 || strings.Contains(ai.Body.String(), `"stopped": true`) {
		t.Fatalf("refused writes changed the app: %s", ai.Body)
	}
	// Reads are open; both configured tokens are accepted for writes.
	if rec := e.do(http.MethodGet, "/api/v1/apps", "", "", nil); rec.Code != http.StatusOK {
		t.Fatalf("open read: %d", rec.Code)
	}
	if rec := e.do(http.MethodPost, "/api/v1/apps/app/stop", "bearer another-token", "", nil); rec.Code != http.StatusOK {
		t.Fatalf("second token, lower-case scheme: %d %s", rec.Code, rec.Body)
	}
}

func TestPrivateReadsNeedAToken(t *testing.T) {
	e := newEnv(t, web.Config{PrivateReads: true})
	for _, path := range []string{"/api/v1/apps", "/api/v1/nodes", "/api/v1/apps/x/logs"} {
		if rec := e.do(http.MethodGet, path, "", "", nil); rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d", path, rec.Code)
		}
	}
	if rec := e.do(http.MethodGet, "/api/v1/apps", "Bearer "+token, "", nil); rec.Code != http.StatusOK {
		t.Errorf("GET /apps with the token: %d", rec.Code)
	}
	if rec := e.do(http.MethodGet, "/api/v1/openapi.json", "", "", nil); rec.Code != http.StatusOK {
		t.Errorf("openapi.json: %d", rec.Code)
	}
}

func TestNoTokenConfiguredRefusesEveryWrite(t *testing.T) {
	e := newEnv(t, web.Config{Tokens: []string{}})
	if rec := e.upload("app", goodPackage(t, "v1")); rec.Code != http.StatusForbidden {
		t.Fatalf("upload with no token configured: %d", rec.Code)
	}
}

func TestInvalidManifestListsEveryProblem(t *testing.T) {
	e := newEnv(t, web.Config{})
	bad := `{"type": "nope", "engine": {"pool-limit": -1, "idle-timeout": "x"},
	         "drivers": {"t": {"type": "recurring-timer"}, "u": {"type": "bogus"}}}`
	_, perr := engine.ParseManifest([]byte(bad))
	var want *manifest.Error
	if !errors.As(perr, &want) {
		t.Fatal(perr)
	}
	rec := e.upload("app", rawPackage(t, entry{name: "manifest.json", body: bad}))
	if rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	b := decodeError(t, rec)
	if len(b.Details) != len(want.Problems) || len(b.Details) < 5 {
		t.Fatalf("details %+v, want all %d problems", b.Details, len(want.Problems))
	}
	paths := map[string]bool{}
	for _, d := range b.Details {
		paths[d.Path] = d.Message != ""
	}
	for _, p := range []string{"type", "engine.pool-limit", "engine.idle-timeout", "drivers.t.interval", "drivers.u.type"} {
		if !paths[p] {
			t.Errorf("no problem at %s in %+v", p, b.Details)
		}
	}

	// The same through multipart: a valid package, an invalid manifest part.
	body, ctype := multipartBody(t, map[string][]byte{"package": goodPackage(t, "v1"), "manifest": []byte(bad)})
	rec = e.do(http.MethodPut, "/api/v1/apps/app", "Bearer "+token, ctype, body)
	if rec.Code != http.StatusUnprocessableEntity || len(decodeError(t, rec).Details) != len(want.Problems) {
		t.Fatalf("multipart: %d %s", rec.Code, rec.Body)
	}
	// No manifest at all: 422 naming manifest.json.
	rec = e.upload("app", rawPackage(t, entry{name: "readme", body: "hi"}))
	if b := decodeError(t, rec); rec.Code != http.StatusUnprocessableEntity || len(b.Details) != 1 || b.Details[0].Path != "manifest.json" {
		t.Fatalf("no manifest: %d %s", rec.Code, rec.Body)
	}
	assertNothingStored(t, e)
	e.assertUntouched(t)
}

func TestHostilePackagesAreRefusedWithNothingWrittenOutside(t *testing.T) {
	e := newEnv(t, web.Config{})
	man := entry{name: "manifest.json", body: goodManifest}
	cases := map[string][]byte{
		"dot-dot":            rawPackage(t, man, entry{name: "../../outside/pwned", body: "x"}),
		"dot-dot inside":     rawPackage(t, man, entry{name: "a/../../../outside/pwned", body: "x"}),
		"absolute":           rawPackage(t, man, entry{name: e.outside + "/pwned", body: "x"}),
		"symlink out":        rawPackage(t, man, entry{name: "link", link: "../../outside", typ: tar.TypeSymlink}),
		"write through link": rawPackage(t, man, entry{name: "link", link: "../../outside", typ: tar.TypeSymlink}, entry{name: "link/pwned", body: "x"}),
		"absolute symlink":   rawPackage(t, man, entry{name: "link", link: e.outside, typ: tar.TypeSymlink}, entry{name: "link/pwned", body: "x"}),
		"hard link out":      rawPackage(t, man, entry{name: "hl", link: "../../outside/pwned", typ: tar.TypeLink}),
		"device":             rawPackage(t, man, entry{name: "dev", typ: tar.TypeChar}),
	}
	for name, pkg := range cases {
		t.Run(name, func(t *testing.T) {
			rec := e.upload("app", pkg)
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			b := decodeError(t, rec)
			t.Log(b.Error)
			if len(b.Details) == 0 {
				t.Fatalf("no details: %s", rec.Body)
			}
			// The same package as the multipart package part, with a
			// manifest part, must be refused the same way.
			body, ctype := multipartBody(t, map[string][]byte{"package": pkg, "manifest": []byte(goodManifest)})
			if rec := e.do(http.MethodPut, "/api/v1/apps/app", "Bearer "+token, ctype, body); rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("multipart: %d %s", rec.Code, rec.Body)
			}
			e.assertUntouched(t)
			assertNothingStored(t, e)
		})
	}
	if rec := e.upload("app", []byte("this is no tar.gz")); rec.Code != http.StatusBadRequest {
		t.Fatalf("garbage: %d %s", rec.Code, rec.Body)
	}
}

func assertNothingStored(t testing.TB, e *env) {
	t.Helper()
	for _, ns := range []string{storage.NSApps, appstore.NSVersions} {
		if keys, _ := e.st.List(context.Background(), ns, ""); len(keys) != 0 {
			t.Fatalf("refused upload stored in %s: %v", ns, keys)
		}
	}
}

// countingReader is an endless body that counts what the server reads.
type countingReader struct{ n atomic.Int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n.Add(int64(len(p)))
	return len(p), nil
}

func (c *countingReader) Close() error { return nil }

func TestOversizedUploadIsRefusedBeforeItIsRead(t *testing.T) {
	const limit = 1 << 20
	e := newEnv(t, web.Config{MaxUpload: limit})

	t.Run("content-length", func(t *testing.T) {
		body := &countingReader{}
		req := httptest.NewRequest(http.MethodPut, "/api/v1/apps/big", nil)
		req.Body, req.ContentLength = body, 10*limit
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		decodeError(t, rec)
		if n := body.n.Load(); n != 0 {
			t.Fatalf("%d bytes of the body read before refusing it", n)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		// No length announced: the limit stops reading just past it.
		body := &countingReader{}
		req := httptest.NewRequest(http.MethodPut, "/api/v1/apps/big", nil)
		req.Body, req.ContentLength = body, -1
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if n := body.n.Load(); n > limit+64<<10 {
			t.Fatalf("%d bytes read for a limit of %d", n, limit)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		body, ctype := multipartBody(t, map[string][]byte{"package": bytes.Repeat([]byte("x"), 2*limit)})
		rec := e.do(http.MethodPut, "/api/v1/apps/big", "Bearer "+token, ctype, body)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("over the wire", func(t *testing.T) {
		ts := httptest.NewServer(e.srv)
		defer ts.Close()
		const total = 256 << 20
		body := &countingReader{}
		req, _ := http.NewRequest(http.MethodPut, ts.URL+"/api/v1/apps/big", io.LimitReader(body, total))
		req.ContentLength = total
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		// Whether the client saw the answer or a reset, it never got to
		// send the body.
		if n := body.n.Load(); n >= total/2 {
			t.Fatalf("client sent %d of %d bytes", n, total)
		}
	})
	assertNothingStored(t, e)
}

func TestUploadNames(t *testing.T) {
	e := newEnv(t, web.Config{})
	for _, name := range []string{"api", "metrics", "ui", "a:b", "a@b", ".x"} {
		if rec := e.upload(name, goodPackage(t, "v1")); rec.Code != http.StatusBadRequest {
			t.Errorf("name %q: %d %s", name, rec.Code, rec.Body)
		}
	}
	if rec := e.upload("a.b_c-1", goodPackage(t, "v1")); rec.Code != http.StatusCreated {
		t.Errorf("valid name: %d %s", rec.Code, rec.Body)
	}
}

func TestMultipartManifestReplacesThePackages(t *testing.T) {
	e := newEnv(t, web.Config{})
	other := `{"type": "binary", "args": {"path": "run"}, "drivers": {"y": {"type": "native-server"}}}`
	body, ctype := multipartBody(t, map[string][]byte{"package": goodPackage(t, "v1"), "manifest": []byte(other)})
	rec := e.do(http.MethodPut, "/api/v1/apps/mp", "Bearer "+token, ctype, body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	info, _ := e.st.Stat(context.Background(), storage.NSApps, "mp")
	if !strings.Contains(info.Meta[appstore.MetaManifest], `"y"`) {
		t.Fatalf("stored manifest %s", info.Meta[appstore.MetaManifest])
	}
	// A manifest alone is a package too.
	body, ctype = multipartBody(t, map[string][]byte{"manifest": []byte(goodManifest)})
	if rec := e.do(http.MethodPut, "/api/v1/apps/mp", "Bearer "+token, ctype, body); rec.Code != http.StatusOK {
		t.Fatalf("manifest only: %d %s", rec.Code, rec.Body)
	}
	body, ctype = multipartBody(t, map[string][]byte{"other": []byte("x")})
	if rec := e.do(http.MethodPut, "/api/v1/apps/mp", "Bearer "+token, ctype, body); rec.Code != http.StatusBadRequest {
		t.Fatalf("unknown part: %d %s", rec.Code, rec.Body)
	}
}

func multipartBody(t testing.TB, parts map[string][]byte) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for name, data := range parts {
		w, err := mw.CreateFormFile(name, name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}
