package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/web"
)

type appJSON struct {
	Name     string             `json:"name"`
	Version  string             `json:"version"`
	Stopped  bool               `json:"stopped"`
	Manifest json.RawMessage    `json:"manifest"`
	Versions []appstore.Version `json:"versions"`
	Nodes    []struct {
		Endpoint string `json:"endpoint"`
		State    string `json:"state"`
		Version  string `json:"version"`
		Slaves   struct {
			Total int `json:"total"`
		} `json:"slaves"`
	} `json:"nodes"`
}

func getApp(t *testing.T, e *env, name string) appJSON {
	t.Helper()
	rec := e.do(http.MethodGet, "/api/v1/apps/"+name, "", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", name, rec.Code, rec.Body)
	}
	var a appJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func uploadVersion(t *testing.T, e *env, name, run string, want int) string {
	t.Helper()
	rec := e.upload(name, goodPackage(t, run))
	if rec.Code != want {
		t.Fatalf("upload %s: %d %s", run, rec.Code, rec.Body)
	}
	var res struct{ Version string }
	json.Unmarshal(rec.Body.Bytes(), &res)
	return res.Version
}

func TestAppLifecycle(t *testing.T) {
	e := newEnv(t, web.Config{})
	auth := "Bearer " + token
	v1 := uploadVersion(t, e, "app", "v1", http.StatusCreated)
	v2 := uploadVersion(t, e, "app", "v2", http.StatusOK)
	e.nodes.nodes = []wire.NodeInfo{{Endpoint: "tcp://n1:5000", ID: "n1", Apps: map[string]wire.AppInfo{
		"app": {State: "running", Version: v2, Slaves: wire.SlaveCounts{Total: 2}},
	}}}

	a := getApp(t, e, "app")
	if a.Version != v2 || len(a.Versions) != 2 || !a.Versions[0].Current || a.Versions[1].Version != v1 {
		t.Fatalf("info: %+v", a)
	}
	if len(a.Nodes) != 1 || a.Nodes[0].State != "running" || a.Nodes[0].Slaves.Total != 2 || !strings.Contains(string(a.Manifest), `"binary"`) {
		t.Fatalf("info nodes or manifest: %+v", a)
	}

	rec := e.do(http.MethodPost, "/api/v1/apps/app/rollback", auth, "", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), v1) {
		t.Fatalf("rollback: %d %s", rec.Code, rec.Body)
	}
	if a := getApp(t, e, "app"); a.Version != v1 || a.Versions[0].Current || !a.Versions[1].Current {
		t.Fatalf("after rollback: %+v", a)
	}
	if rec := e.do(http.MethodPost, "/api/v1/apps/app/rollback", auth, "", nil); rec.Code != http.StatusConflict {
		t.Fatalf("rollback past the oldest: %d %s", rec.Code, rec.Body)
	}

	for _, op := range []struct {
		path    string
		stopped bool
	}{{"stop", true}, {"stop", true}, {"start", false}} {
		if rec := e.do(http.MethodPost, "/api/v1/apps/app/"+op.path, auth, "", nil); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", op.path, rec.Code, rec.Body)
		}
		if a := getApp(t, e, "app"); a.Stopped != op.stopped || a.Version != v1 {
			t.Fatalf("after %s: %+v", op.path, a)
		}
	}

	var list struct {
		Apps []appJSON `json:"apps"`
	}
	rec = e.do(http.MethodGet, "/api/v1/apps", "", "", nil)
	if json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Apps) != 1 || len(list.Apps[0].Nodes) != 1 {
		t.Fatalf("list: %s", rec.Body)
	}
	if rec := e.do(http.MethodGet, "/api/v1/nodes", "", "", nil); !strings.Contains(rec.Body.String(), "tcp://n1:5000") {
		t.Fatalf("nodes: %s", rec.Body)
	}

	if rec := e.do(http.MethodDelete, "/api/v1/apps/app", auth, "", nil); rec.Code != http.StatusOK {
		t.Fatalf("remove: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/api/v1/apps/app", "/api/v1/apps/app/logs", "/api/v1/apps/app/crashlogs"} {
		if rec := e.do(http.MethodGet, path, "", "", nil); rec.Code != http.StatusNotFound {
			t.Fatalf("GET %s after remove: %d", path, rec.Code)
		}
		decodeError(t, e.do(http.MethodGet, path, "", "", nil))
	}
	for _, op := range []string{"start", "stop", "rollback"} {
		if rec := e.do(http.MethodPost, "/api/v1/apps/app/"+op, auth, "", nil); rec.Code != http.StatusNotFound {
			t.Fatalf("%s after remove: %d", op, rec.Code)
		}
	}
	if rec := e.do(http.MethodDelete, "/api/v1/apps/app", auth, "", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("second remove: %d", rec.Code)
	}
	e.mu.Lock()
	changed := strings.Join(e.changed, ",")
	e.mu.Unlock()
	if changed != "app,app,app,app,app,app,app" { // 2 uploads, rollback, stop ×2, start, remove
		t.Fatalf("change notices: %s", changed)
	}
}

func TestVersionsAreTrimmed(t *testing.T) {
	e := newEnv(t, web.Config{}) // keeps 3
	var last string
	for _, run := range []string{"1", "2", "3", "4", "5"} {
		last = uploadVersion(t, e, "app", run, map[bool]int{true: http.StatusCreated, false: http.StatusOK}[run == "1"])
	}
	a := getApp(t, e, "app")
	if len(a.Versions) != 3 || a.Versions[0].Version != last {
		t.Fatalf("versions: %+v", a.Versions)
	}
}

func TestCrashLogs(t *testing.T) {
	e := newEnv(t, web.Config{})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)
	ctx := context.Background()
	for _, key := range []string{"app:100:s1", "app:200:s2", "other:100:s1"} {
		meta := storage.Meta{"app": strings.Split(key, ":")[0], "slave": "s", "reason": "exit", "status": "exit status 2"}
		if err := e.st.Put(ctx, storage.NSCrashlogs, key, meta, strings.NewReader("output of "+key)); err != nil {
			t.Fatal(err)
		}
	}
	rec := e.do(http.MethodGet, "/api/v1/apps/app/crashlogs", "", "", nil)
	var list struct {
		Crashlogs []appstore.Crash `json:"crashlogs"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Crashlogs) != 2 || list.Crashlogs[0].Output != "" {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	rec = e.do(http.MethodGet, "/api/v1/apps/app/crashlogs/app:200:s2", "", "", nil)
	var c appstore.Crash
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &c) != nil || c.Output != "output of app:200:s2" || c.Status != "exit status 2" {
		t.Fatalf("one: %d %s", rec.Code, rec.Body)
	}
	for _, key := range []string{"other:100:s1", "app:300:s1", "..%2F..%2Fetc"} {
		if rec := e.do(http.MethodGet, "/api/v1/apps/app/crashlogs/"+key, "", "", nil); rec.Code != http.StatusNotFound {
			t.Errorf("crash log %s: %d %s", key, rec.Code, rec.Body)
		}
	}
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	e := newEnv(t, web.Config{})
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/api/v1/nope", http.StatusNotFound},
		{http.MethodGet, "/api", http.StatusNotFound},
		{http.MethodPatch, "/api/v1/apps/x", http.StatusMethodNotAllowed},
	} {
		rec := e.do(c.method, c.path, "", "", nil)
		if rec.Code != c.want {
			t.Errorf("%s %s: %d", c.method, c.path, rec.Code)
			continue
		}
		decodeError(t, rec)
	}
}

func TestMountRoutesAPIPathsOnly(t *testing.T) {
	e := newEnv(t, web.Config{})
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("front")) })
	h := e.srv.Mount(front)
	for path, api := range map[string]bool{"/api/v1/apps": true, "/metrics": true, "/apiary/echo": false, "/echo/http": false, "/ping": false} {
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Body.String() != "front"; got != api {
			t.Errorf("%s served by the API: %v, want %v", path, got, api)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, web.Config{})
	uploadVersion(t, e, "app", "v1", http.StatusCreated)
	e.do(http.MethodGet, "/api/v1/apps/nope", "", "", nil)
	rec := e.do(http.MethodGet, "/metrics", "", "", nil)
	for _, want := range []string{
		`cocaine_api_requests_total{code="201",method="PUT",route="/api/v1/apps/{name}"} 1`,
		`cocaine_api_requests_total{code="404",method="GET",route="/api/v1/apps/{name}"} 1`,
		`cocaine_api_upload_bytes_count 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
