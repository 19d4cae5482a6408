package files

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/storagetest"
)

func opener(opts Options) func(t *testing.T) storage.Storage {
	return func(t *testing.T) storage.Storage {
		s, err := Open(t.TempDir(), opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, opener(Options{}))
}

func TestLogBound(t *testing.T) {
	t.Run("LinesAndAge", func(t *testing.T) {
		storagetest.RunLogBound(t, opener(Options{MaxLogLines: 25, MaxLogAge: time.Hour}),
			storagetest.LogBound{MaxLines: 25, MaxAge: time.Hour})
	})
	t.Run("LinesOnly", func(t *testing.T) {
		storagetest.RunLogBound(t, opener(Options{MaxLogLines: 7, MaxLogAge: -1}),
			storagetest.LogBound{MaxLines: 7})
	})
	t.Run("Defaults", func(t *testing.T) {
		if testing.Short() {
			t.Skip("appends 30000 lines")
		}
		storagetest.RunLogBound(t, opener(Options{}),
			storagetest.LogBound{MaxLines: DefaultMaxLogLines, MaxAge: DefaultMaxLogAge})
	})
}

func mustOpen(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func countFileLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		n++
	}
	return n
}

// The bound must hold on disk too, not just in what ReadLog returns.
func TestLogFileStaysBounded(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{MaxLogLines: 20, MaxLogAge: time.Hour})
	path := filepath.Join(s.Dir(), logsDirName, "app.log")
	most := 0
	for i := range 1000 {
		l := storage.LogLine{Time: time.Now(), App: "app", Text: strings.Repeat("x", i%50)}
		if err := s.AppendLog(ctx, "app", []storage.LogLine{l}); err != nil {
			t.Fatal(err)
		}
		most = max(most, countFileLines(t, path)+countFileLines(t, path+".1"))
	}
	if most > 2*20 {
		t.Errorf("log files grew to %d lines, want at most %d", most, 2*20)
	}

	// Lines already expired are not even written.
	old := storage.LogLine{Time: time.Now().Add(-3 * time.Hour), Text: "old"}
	for range 100 {
		if err := s.AppendLog(ctx, "aged", []storage.LogLine{old}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), logsDirName, "aged.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log of expired lines: %v, want none", err)
	}
}

// TestLogBytesBoundAndReadCost: lines count for nothing against bytes. A
// log fed three times its byte bound stays within it on disk, and reading
// its newest line costs a block, not the log.
func TestLogBytesBoundAndReadCost(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{MaxLogLines: -1})
	path := filepath.Join(s.Dir(), logsDirName, "app.log")
	text := strings.Repeat("y", 1000)
	var last string
	batch := make([]storage.LogLine, 100)
	for written := 0; written < 3*DefaultMaxLogBytes; written += len(batch) * len(text) {
		for i := range batch {
			last = fmt.Sprintf("%d %s", written+i, text)
			batch[i] = storage.LogLine{Time: time.Now(), App: "app", Text: last}
		}
		if err := s.AppendLog(ctx, "app", batch); err != nil {
			t.Fatal(err)
		}
		if size := fileSize(t, path) + fileSize(t, path+".1"); size > DefaultMaxLogBytes+200*1024 {
			t.Fatalf("log takes %d bytes on disk, bound %d", size, DefaultMaxLogBytes)
		}
	}
	best := time.Hour
	for range 5 {
		start := time.Now()
		got, err := s.ReadLog(ctx, "app", time.Time{}, 1)
		best = min(best, time.Since(start))
		if err != nil || len(got) != 1 || got[0].Text != last {
			t.Fatalf("ReadLog limit 1: %v %d lines", err, len(got))
		}
	}
	t.Logf("ReadLog limit 1 of a %d-byte log: %v (best of 5)", DefaultMaxLogBytes, best)
	if best > 50*time.Millisecond {
		t.Fatalf("ReadLog limit 1 of a %d-byte log took %v", DefaultMaxLogBytes, best)
	}
	all, err := s.ReadLog(ctx, "app", time.Time{}, 0)
	if err != nil || len(all) < DefaultMaxLogBytes/2/1100 || all[len(all)-1].Text != last {
		t.Fatalf("ReadLog all: %v, %d lines", err, len(all))
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestLogSurvivesTornLine(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	ctx := context.Background()
	first := storage.LogLine{Time: time.Now().Add(-time.Minute).UTC(), App: "app", Text: "before crash"}
	if err := s.AppendLog(ctx, "app", []storage.LogLine{first}); err != nil {
		t.Fatal(err)
	}
	// A crash mid-append leaves half a line and no newline.
	path := filepath.Join(dir, logsDirName, "app.log")
	if err := appendFile(path, []byte(`{"time":"2024-01-01T00:00:00Z","app":"app","te`)); err != nil {
		t.Fatal(err)
	}

	s2 := mustOpen(t, dir, Options{})
	second := storage.LogLine{Time: time.Now().UTC(), App: "app", Text: "after crash"}
	if err := s2.AppendLog(ctx, "app", []storage.LogLine{second}); err != nil {
		t.Fatal(err)
	}
	got, err := s2.ReadLog(ctx, "app", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Text != first.Text || got[1].Text != second.Text {
		t.Errorf("ReadLog after a torn line = %+v, want the lines before and after it", got)
	}
}

func TestOpenRemovesTemps(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	ctx := context.Background()
	if err := s.Put(ctx, "ns", "kept", storage.Meta{"a": "b"}, strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(ctx, "app", []storage.LogLine{{Time: time.Now(), Text: "x"}}); err != nil {
		t.Fatal(err)
	}
	temps := []string{
		filepath.Join(dir, "ns", tmpPrefix+"123"),
		filepath.Join(dir, "ns", tmpPrefix+"kept"),
		filepath.Join(dir, logsDirName, tmpPrefix+"456"),
	}
	for _, p := range temps {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Not ours to delete: only temp files are cleaned.
	stray := filepath.Join(dir, "ns", ".stray")
	if err := os.WriteFile(stray, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	keys, err := s.List(ctx, "ns", "")
	if err != nil || !slices.Equal(keys, []string{"kept"}) {
		t.Errorf("List with temp files around = %q, %v; want [kept]", keys, err)
	}

	s2 := mustOpen(t, dir, Options{})
	for _, p := range temps {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived Open (err %v)", p, err)
		}
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("Open removed a file that is not a temp file: %v", err)
	}
	_, rc, err := s2.Get(ctx, "ns", "kept")
	if err != nil {
		t.Fatalf("Get after cleanup: %v", err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "data" {
		t.Errorf("blob after cleanup = %q, want data", b)
	}
}

func TestParseURI(t *testing.T) {
	good := []struct {
		uri  string
		dir  string
		opts Options
	}{
		{"file:///var/lib/cocaine", "/var/lib/cocaine", Options{}},
		{"file://localhost/var/lib/cocaine", "/var/lib/cocaine", Options{}},
		{"file://./state", "./state", Options{}},
		{"file://../state/x", "../state/x", Options{}},
		{"file://.", ".", Options{}},
		{"file:state", "state", Options{}},
		{"file:///with%20space", "/with space", Options{}},
		{"file:///d?max-log-lines=1000&max-log-age=24h", "/d", Options{MaxLogLines: 1000, MaxLogAge: 24 * time.Hour}},
		{"file:///d?max-log-lines=-1", "/d", Options{MaxLogLines: -1}},
		{"file:///d?max-log-age=90m", "/d", Options{MaxLogAge: 90 * time.Minute}},
	}
	for _, c := range good {
		u, err := url.Parse(c.uri)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", c.uri, err)
		}
		dir, opts, err := parseURI(u)
		if err != nil || dir != c.dir || opts != c.opts {
			t.Errorf("parseURI(%q) = %q, %+v, %v; want %q, %+v", c.uri, dir, opts, err, c.dir, c.opts)
		}
	}
	bad := []string{
		"file://",
		"file://host.example/d",
		"file://user@/d",
		"file:///d#frag",
		"file:///d?max-log-lines=lots",
		"file:///d?max-log-lines=0",
		"file:///d?max-log-lines=1&max-log-lines=2",
		"file:///d?max-log-age=7",
		"file:///d?max-log-age=0s",
		"file:///d?max-lines=5",
		"file:///d?max-log-lines=%zz",
		"mongodb:///d",
	}
	for _, uri := range bad {
		u, err := url.Parse(uri)
		if err != nil {
			continue // already refused by storage.Open
		}
		if dir, opts, err := parseURI(u); err == nil {
			t.Errorf("parseURI(%q) = %q, %+v, nil; want an error", uri, dir, opts)
		}
	}
}

func TestStorageOpen(t *testing.T) {
	if !slices.Contains(storage.Schemes(), "file") {
		t.Fatalf("Schemes() = %v, want file among them", storage.Schemes())
	}
	ctx := context.Background()
	dir := t.TempDir()
	st, err := storage.Open(ctx, "file://"+filepath.ToSlash(dir)+"?max-log-lines=5")
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	defer st.Close()
	s, ok := st.(*Store)
	if !ok {
		t.Fatalf("storage.Open returned %T, want *files.Store", st)
	}
	if s.Dir() != dir || s.opts.MaxLogLines != 5 || s.opts.MaxLogAge != DefaultMaxLogAge {
		t.Errorf("store at %s with %+v, want %s with 5 lines and the default age", s.Dir(), s.opts, dir)
	}

	// Relative paths are resolved once, at open.
	t.Chdir(dir)
	rel, err := storage.Open(ctx, "file://./rel")
	if err != nil {
		t.Fatalf("storage.Open(file://./rel): %v", err)
	}
	defer rel.Close()
	if got, want := rel.(*Store).Dir(), filepath.Join(dir, "rel"); got != want {
		t.Errorf("file://./rel opened %s, want %s", got, want)
	}

	if _, err := storage.Open(ctx, "file://remote/x"); err == nil {
		t.Error("storage.Open(file://remote/x) succeeded, want an error")
	}
}

// tree lists every file and directory under root, relative to it.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var hostileNames = []string{
	"..", "../x", "../../escape", "a/b", "a/../../b", "/abs", `..\x`, ".", "", "x\x00y",
	"%2e%2e", "~", strings.Repeat("a", 300),
}

func tryEverything(s *Store, name string) {
	ctx := context.Background()
	for _, nk := range [][2]string{{name, "k"}, {"ns", name}, {name, name}} {
		s.Put(ctx, nk[0], nk[1], storage.Meta{"a": "b"}, strings.NewReader("escaped"))
		s.Remove(ctx, nk[0], nk[1])
		s.Stat(ctx, nk[0], nk[1])
	}
	s.List(ctx, name, "")
	s.AppendLog(ctx, name, []storage.LogLine{{Time: time.Now(), Text: "escaped"}})
	s.ReadLog(ctx, name, time.Time{}, 0)
	s.RemoveLog(ctx, name)
}

func TestNamesStayInsideRoot(t *testing.T) {
	outer := t.TempDir()
	root := filepath.Join(outer, "root")
	s := mustOpen(t, root, Options{})
	// A legitimate object, to check the layout it lands in.
	if err := s.Put(context.Background(), "ns", "key", storage.Meta{"m": "1"}, strings.NewReader("blob")); err != nil {
		t.Fatal(err)
	}

	// outside lists what is under outer but not under root.
	outside := func(t *testing.T) []string {
		var out []string
		for _, p := range tree(t, outer) {
			if p != "root" && !strings.HasPrefix(p, "root/") {
				out = append(out, p)
			}
		}
		return out
	}
	check := func(t *testing.T, strict bool) {
		t.Helper()
		if got, want := outside(t), []string{"_logs", "ns", "ns/key"}; !slices.Equal(got, want) {
			t.Errorf("files outside the root = %q, want %q", got, want)
		}
		// With the real NamePattern, nothing at all was written.
		if got, want := tree(t, root), []string{"_logs", "ns", "ns/key"}; strict && !slices.Equal(got, want) {
			t.Errorf("files in the root = %q, want %q", got, want)
		}
	}
	// Files that look like the targets of an escape, to show they were
	// not overwritten.
	for _, p := range []string{"_logs", "ns"} {
		if err := os.Mkdir(filepath.Join(outer, p), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outer, "ns", "key"), []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, name := range hostileNames {
		tryEverything(s, name)
	}
	check(t, true)

	// storage.NamePattern is an exported variable; even if someone loosens
	// it, paths must stay inside the root.
	t.Run("LooseNamePattern", func(t *testing.T) {
		saved := storage.NamePattern
		storage.NamePattern = regexp.MustCompile(`^.*$`)
		t.Cleanup(func() { storage.NamePattern = saved })
		for _, name := range hostileNames {
			tryEverything(s, name)
		}
		check(t, false)
	})

	raw, err := os.ReadFile(filepath.Join(root, "ns", "key"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte(magic)) || !bytes.HasSuffix(raw, []byte("blob")) {
		t.Errorf("object file = %q, want the magic, a header and the blob", raw)
	}
	if b, _ := os.ReadFile(filepath.Join(outer, "ns", "key")); string(b) != "outside" {
		t.Errorf("file outside the root changed to %q", b)
	}
}

func TestCorruptObjects(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	ctx := context.Background()
	if err := s.Put(ctx, "ns", "good", nil, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	hugeLen := append([]byte(magic), 0xff, 0xff, 0xff, 0xff)
	shortHeader := append([]byte(magic), 0, 0, 0, 100, '{')
	badJSON := append([]byte(magic), 0, 0, 0, 3, 'n', 'o', '!')
	for name, content := range map[string][]byte{
		"empty":       nil,
		"garbage":     []byte("not an object at all"),
		"hugelen":     hugeLen,
		"shortheader": shortHeader,
		"badjson":     badJSON,
	} {
		path := filepath.Join(dir, "ns", name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, rc, err := s.Get(ctx, "ns", name)
		if err == nil {
			rc.Close()
			t.Errorf("Get of a %s object succeeded", name)
		} else if errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), path) {
			t.Errorf("Get of a %s object: err = %v, want a corruption error naming %s", name, err, path)
		}
		if _, err := s.Stat(ctx, "ns", name); err == nil {
			t.Errorf("Stat of a %s object succeeded", name)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "ns", "adir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "ns", "adir"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a directory: err = %v, want an error other than not found", err)
	}
	if err := s.Remove(ctx, "ns", "adir"); err == nil {
		t.Error("Remove of a directory succeeded")
	}
	keys, err := s.List(ctx, "ns", "")
	if err != nil || slices.Contains(keys, "adir") {
		t.Errorf("List = %q, %v; want no directories", keys, err)
	}
}

func TestPutEdgeCases(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	ctx := context.Background()

	if err := s.Put(ctx, "ns", "nilblob", storage.Meta{"a": "b"}, nil); err != nil {
		t.Fatalf("Put with a nil blob: %v", err)
	}
	if info, err := s.Stat(ctx, "ns", "nilblob"); err != nil || info.Size != 0 {
		t.Errorf("Stat of a nil-blob object = %+v, %v; want size 0", info, err)
	}

	err := s.Put(ctx, "ns", "badmeta", storage.Meta{"k": "\xff\xfe"}, strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "ns/badmeta") {
		t.Errorf("Put with invalid UTF-8 meta: err = %v, want an error naming ns/badmeta", err)
	}
	if _, err := s.Stat(ctx, "ns", "badmeta"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("object with rejected meta exists: Stat err = %v", err)
	}

	huge := storage.Meta{"big": strings.Repeat("x", maxHeader)}
	if err := s.Put(ctx, "ns", "hugemeta", huge, strings.NewReader("x")); err == nil {
		t.Error("Put with meta over the header limit succeeded")
	}

	entries, err := os.ReadDir(filepath.Join(dir, "ns"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Errorf("failed Put left temp file %s", e.Name())
		}
	}
}

func TestClosed(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "ns", "k", nil, strings.NewReader("x")); !errors.Is(err, errClosed) {
		t.Errorf("Put after Close: err = %v, want errClosed", err)
	}
	if _, err := s.ReadLog(ctx, "app", time.Time{}, 0); !errors.Is(err, errClosed) {
		t.Errorf("ReadLog after Close: err = %v, want errClosed", err)
	}
}
