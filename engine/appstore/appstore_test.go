package appstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/files"
)

const goodManifest = `{"type": "binary", "args": {"path": "run"}, "drivers": {"x": {"type": "native-server"}}}`

func parse(raw []byte) (*manifest.Manifest, error) {
	return manifest.Parse(raw, manifest.WithSandboxes("binary"))
}

func newStore(t *testing.T, keep int) (*appstore.Store, storage.Storage) {
	t.Helper()
	st, err := files.Open(filepath.Join(t.TempDir(), "storage"), files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return appstore.New(st, appstore.Options{Keep: keep, Validate: appstore.CheckPackage(parse, archive.DefaultLimits(), t.TempDir())}), st
}

// pkg packs a package whose "run" file says which upload it is.
func pkg(t *testing.T, tag string) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"manifest.json": goodManifest, "run": tag} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := archive.Pack(dir, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func put(t *testing.T, s *appstore.Store, name, tag string) string {
	t.Helper()
	up, err := s.Put(context.Background(), name, pkg(t, tag))
	if err != nil {
		t.Fatalf("put %s %s: %v", name, tag, err)
	}
	return up.Version
}

// currentTag reads the "run" file of the app's current package.
func currentTag(t *testing.T, st storage.Storage, name string) (storage.Meta, string) {
	t.Helper()
	info, rc, err := st.Get(context.Background(), storage.NSApps, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	run, err := archive.ReadFile(bytes.NewReader(raw), "run", 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	return info.Meta, string(run)
}

func versions(t *testing.T, s *appstore.Store, name string) []string {
	t.Helper()
	ai, err := s.Info(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range ai.Versions {
		out = append(out, v.Version)
	}
	return out
}

func TestPutKeepsAndTrimsVersions(t *testing.T) {
	s, st := newStore(t, 3)
	ctx := context.Background()
	var vs []string
	for _, tag := range []string{"v1", "v2", "v3", "v4", "v5"} {
		vs = append(vs, put(t, s, "app", tag))
	}
	for i := 1; i < len(vs); i++ {
		if vs[i] <= vs[i-1] || len(vs[i]) != len(vs[i-1]) {
			t.Fatalf("versions do not grow: %v", vs)
		}
	}
	if got, want := versions(t, s, "app"), []string{vs[4], vs[3], vs[2]}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("kept versions %v, want the newest three %v", got, want)
	}
	keys, _ := st.List(ctx, appstore.NSVersions, "")
	if len(keys) != 3 {
		t.Fatalf("version objects %v", keys)
	}
	meta, tag := currentTag(t, st, "app")
	if meta[appstore.MetaVersion] != vs[4] || tag != "v5" || !strings.Contains(meta[appstore.MetaManifest], `"binary"`) {
		t.Fatalf("current: %v %q", meta, tag)
	}
	ai, err := s.Info(ctx, "app")
	if err != nil || ai.Version != vs[4] || !ai.Versions[0].Current || ai.Versions[1].Current || string(ai.Manifest) == "" {
		t.Fatalf("info: %+v %v", ai, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "app" || list[0].Version != vs[4] {
		t.Fatalf("list: %+v %v", list, err)
	}
}

func TestDefaultKeepIsFive(t *testing.T) {
	s, _ := newStore(t, 0)
	for i := range 7 {
		put(t, s, "app", string(rune('a'+i)))
	}
	if got := versions(t, s, "app"); len(got) != appstore.DefaultKeep {
		t.Fatalf("kept %d versions, want %d", len(got), appstore.DefaultKeep)
	}
}

func TestRollbackStepsBackOneVersionEachTime(t *testing.T) {
	s, st := newStore(t, 5)
	ctx := context.Background()
	v1 := put(t, s, "app", "v1")
	v2 := put(t, s, "app", "v2")
	v3 := put(t, s, "app", "v3")

	for _, want := range []struct{ version, tag string }{{v2, "v2"}, {v1, "v1"}} {
		got, err := s.Rollback(ctx, "app")
		if err != nil || got != want.version {
			t.Fatalf("rollback: %q %v, want %s", got, err, want.version)
		}
		meta, tag := currentTag(t, st, "app")
		if meta[appstore.MetaVersion] != want.version || tag != want.tag {
			t.Fatalf("after rollback current is %s %q, want %s %q", meta[appstore.MetaVersion], tag, want.version, want.tag)
		}
	}
	if _, err := s.Rollback(ctx, "app"); !errors.Is(err, appstore.ErrNoPrevious) {
		t.Fatalf("rollback past the oldest: %v", err)
	}
	// History is not rewritten by a rollback, and an upload after one is
	// the newest version.
	if got := versions(t, s, "app"); len(got) != 3 {
		t.Fatalf("versions after rollbacks: %v", got)
	}
	v4 := put(t, s, "app", "v4")
	if v4 <= v3 {
		t.Fatalf("upload after rollback got %s, not above %s", v4, v3)
	}
	if got, err := s.Rollback(ctx, "app"); err != nil || got != v3 {
		t.Fatalf("rollback from the new upload: %s %v, want %s", got, err, v3)
	}
}

func TestStopStartKeepPackageAndVersion(t *testing.T) {
	s, st := newStore(t, 5)
	ctx := context.Background()
	v1 := put(t, s, "app", "v1")
	for range 2 { // stopping twice is no error
		if err := s.Stop(ctx, "app"); err != nil {
			t.Fatal(err)
		}
	}
	meta, tag := currentTag(t, st, "app")
	if meta[appstore.MetaStopped] != "true" || meta[appstore.MetaVersion] != v1 || tag != "v1" {
		t.Fatalf("stopped: %v %q", meta, tag)
	}
	// An upload or a rollback while stopped keeps the app stopped.
	up, err := s.Put(ctx, "app", pkg(t, "v2"))
	if err != nil || !up.Stopped || up.Created {
		t.Fatalf("upload while stopped: %+v %v", up, err)
	}
	if _, err := s.Rollback(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if meta, _ := currentTag(t, st, "app"); meta[appstore.MetaStopped] != "true" {
		t.Fatalf("rollback started the app: %v", meta)
	}
	if ai, _ := s.Info(ctx, "app"); !ai.Stopped {
		t.Fatalf("info of a stopped app: %+v", ai)
	}
	if err := s.Start(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	meta, tag = currentTag(t, st, "app")
	if _, ok := meta[appstore.MetaStopped]; ok || meta[appstore.MetaVersion] != v1 || tag != "v1" {
		t.Fatalf("started: %v %q", meta, tag)
	}
	if err := s.Stop(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stop of an unknown app: %v", err)
	}
}

func TestRemoveForgetsEverythingOfTheAppOnly(t *testing.T) {
	s, st := newStore(t, 5)
	ctx := context.Background()
	put(t, s, "app", "v1")
	put(t, s, "app", "v2")
	put(t, s, "app.b", "other") // shares a prefix, must survive
	now := time.Now()
	for _, app := range []string{"app", "app.b"} {
		if err := st.AppendLog(ctx, app, []storage.LogLine{{Time: now, App: app, Text: "hi"}}); err != nil {
			t.Fatal(err)
		}
		key := app + ":1:s1"
		if err := st.Put(ctx, storage.NSCrashlogs, key, storage.Meta{"app": app}, strings.NewReader("boom")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{storage.NSApps, appstore.NSVersions, storage.NSCrashlogs} {
		keys, _ := st.List(ctx, ns, "")
		for _, k := range keys {
			if !strings.HasPrefix(k, "app.b") {
				t.Errorf("%s/%s left after remove", ns, k)
			}
		}
		if len(keys) == 0 {
			t.Errorf("%s: the other app's objects were removed too", ns)
		}
	}
	if lines, _ := st.ReadLog(ctx, "app", time.Time{}, 0); len(lines) != 0 {
		t.Errorf("log left: %v", lines)
	}
	if lines, _ := st.ReadLog(ctx, "app.b", time.Time{}, 0); len(lines) != 1 {
		t.Errorf("other app's log: %v", lines)
	}
	if err := s.Remove(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := s.Info(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("info after remove: %v", err)
	}
}

func TestCrashLogs(t *testing.T) {
	s, st := newStore(t, 5)
	ctx := context.Background()
	put(t, s, "app", "v1")
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, app := range []string{"app", "app", "other"} {
		at := base.Add(time.Duration(i) * time.Second)
		key := app + ":" + at.Format("20060102150405") + ":s"
		meta := storage.Meta{"app": app, "slave": "s", "reason": "exit", "status": "exit status 1", "time": at.Format(time.RFC3339Nano), "node": "n1"}
		if err := st.Put(ctx, storage.NSCrashlogs, key, meta, strings.NewReader("last words "+key)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.Crashes(ctx, "app")
	if err != nil || len(list) != 2 || !list[0].Time.After(list[1].Time) || list[0].Status != "exit status 1" {
		t.Fatalf("crashes: %+v %v", list, err)
	}
	c, err := s.CrashLog(ctx, "app", list[0].Key)
	if err != nil || c.Output != "last words "+list[0].Key || c.Node != "n1" {
		t.Fatalf("crash log: %+v %v", c, err)
	}
	other, _ := st.List(ctx, storage.NSCrashlogs, "other:")
	if _, err := s.CrashLog(ctx, "app", other[0]); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another app's crash log through this one: %v", err)
	}
}

func TestPutRefusesBadInput(t *testing.T) {
	s, st := newStore(t, 5)
	ctx := context.Background()
	for _, name := range []string{"", "../x", "a:b", "a@b", ".hidden", strings.Repeat("a", 101)} {
		if _, err := s.Put(ctx, name, pkg(t, "x")); !errors.Is(err, appstore.ErrInvalidName) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	_, err := s.Put(ctx, "app", []byte("not a package"))
	if !errors.Is(err, archive.ErrCorrupt) {
		t.Errorf("garbage: %v", err)
	}
	var me *manifest.Error
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"type": "nope", "engine": {"pool-limit": -1}}`), 0o644)
	var b bytes.Buffer
	archive.Pack(dir, &b)
	if _, err := s.Put(ctx, "app", b.Bytes()); !errors.As(err, &me) || len(me.Problems) < 2 {
		t.Errorf("bad manifest: %v", err)
	}
	os.Remove(filepath.Join(dir, "manifest.json"))
	os.WriteFile(filepath.Join(dir, "readme"), []byte("no manifest"), 0o644)
	b.Reset()
	archive.Pack(dir, &b)
	if _, err := s.Put(ctx, "app", b.Bytes()); !errors.Is(err, appstore.ErrNoManifest) {
		t.Errorf("no manifest: %v", err)
	}
	for _, ns := range []string{storage.NSApps, appstore.NSVersions} {
		if keys, _ := st.List(ctx, ns, ""); len(keys) != 0 {
			t.Errorf("refused uploads stored in %s: %v", ns, keys)
		}
	}
}

// failApps fails every write of a current object.
type failApps struct{ storage.Storage }

func (f failApps) Put(ctx context.Context, ns, key string, meta storage.Meta, blob io.Reader) error {
	if ns == storage.NSApps {
		return errors.New("disk full")
	}
	return f.Storage.Put(ctx, ns, key, meta, blob)
}

func TestPutWritesTheVersionBeforeTheCurrentObject(t *testing.T) {
	_, st := newStore(t, 5)
	s := appstore.New(failApps{st}, appstore.Options{Validate: appstore.CheckPackage(parse, archive.DefaultLimits(), t.TempDir())})
	if _, err := s.Put(context.Background(), "app", pkg(t, "v1")); err == nil {
		t.Fatal("put succeeded with the current object unwritable")
	}
	keys, _ := st.List(context.Background(), appstore.NSVersions, "")
	if len(keys) != 1 {
		t.Fatalf("version objects: %v", keys)
	}
	if _, err := st.Stat(context.Background(), storage.NSApps, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("current object: %v", err)
	}
}
