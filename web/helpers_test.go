package web_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cocaine-cloud/cocaine/engine"
	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/files"
	"github.com/cocaine-cloud/cocaine/web"
)

const (
	token        = "s3cret-token"
	goodManifest = `{"type": "binary", "args": {"path": "run"}, "drivers": {"x": {"type": "native-server"}}}`
)

// env is an API over files storage in a folder laid out so that a
// package escaping its scratch folder lands in outside/:
//
//	root/storage  root/scratch/cocaine-check-*  root/outside
type env struct {
	srv     *web.Server
	st      storage.Storage
	root    string
	scratch string
	outside string
	nodes   *fakeNodes

	mu      sync.Mutex
	changed []string
}

type fakeNodes struct {
	mu    sync.Mutex
	nodes []wire.NodeInfo
}

func (f *fakeNodes) Nodes() []wire.NodeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wire.NodeInfo(nil), f.nodes...)
}

func newEnv(t testing.TB, cfg web.Config) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{root: root, scratch: filepath.Join(root, "scratch"), outside: filepath.Join(root, "outside"), nodes: &fakeNodes{}}
	for _, d := range []string{e.scratch, e.outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	st, err := files.Open(filepath.Join(root, "storage"), files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	if cfg.Tokens == nil {
		cfg.Tokens = []string{"another-token", token}
	}
	store := appstore.New(st, appstore.Options{Keep: 3, Validate: appstore.CheckPackage(engine.ParseManifest, archive.DefaultLimits(), e.scratch)})
	e.srv, err = web.New(cfg, web.Options{Store: store, Nodes: e.nodes, Logger: slog.New(slog.DiscardHandler), Changed: func(app string) {
		e.mu.Lock()
		e.changed = append(e.changed, app)
		e.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.srv.Close)
	return e
}

// do serves one request; auth is the Authorization header ("" for none).
func (e *env) do(method, path, auth, contentType string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

func (e *env) upload(name string, pkg []byte) *httptest.ResponseRecorder {
	return e.do(http.MethodPut, "/api/v1/apps/"+name, "Bearer "+token, "application/gzip", bytes.NewReader(pkg))
}

// assertUntouched checks that nothing was written outside storage: the
// outside folder is empty and no scratch folder was left behind.
func (e *env) assertUntouched(t testing.TB) {
	t.Helper()
	for _, dir := range []string{e.outside, e.scratch} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Fatalf("%s holds %v after an upload", dir, entries)
		}
	}
	// Nothing beside the store's own folders in root.
	entries, _ := os.ReadDir(e.root)
	for _, en := range entries {
		if n := en.Name(); n != "storage" && n != "scratch" && n != "outside" {
			t.Fatalf("%s written beside the storage", n)
		}
	}
}

type errorBody struct {
	Code    int    `json:"code"`
	Error   string `json:"error"`
	Details []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"details"`
}

func decodeError(t testing.TB, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	if b.Code != rec.Code || b.Error == "" {
		t.Fatalf("error body %+v for status %d", b, rec.Code)
	}
	return b
}

// entry is one raw tar entry, for packages Pack would never make.
type entry struct {
	name, link, body string
	typ              byte
}

func rawPackage(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, en := range entries {
		typ := en.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: en.name, Linkname: en.link, Typeflag: typ, Mode: 0o644}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(en.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(en.body))
		}
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

func goodPackage(t testing.TB, run string) []byte {
	return rawPackage(t, entry{name: "manifest.json", body: goodManifest}, entry{name: "run", body: run})
}
