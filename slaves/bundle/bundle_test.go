package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

func tree(version string) fstest.MapFS {
	return fstest.MapFS{
		"run.py":           {Data: []byte("print('" + version + "')\n")},
		"lib/util.py":      {Data: []byte("X = 1\n")},
		"lib/util_test.go": {Data: []byte("package lib\n")},
		"bin/tool":         {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
	}
}

func newBundle(version string) *Bundle {
	return &Bundle{Name: "rt", FS: tree(version), Keep: NotTests, Finish: func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "derived"), []byte("ok"), 0o644)
	}}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnpackPublishesAndReuses(t *testing.T) {
	root := t.TempDir()
	b := newBundle("v1")
	dir, err := b.Unpack(root)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := b.Hash()
	if want := filepath.Join(root, "rt-"+h[:hashLen]); dir != want {
		t.Fatalf("dir %s, want %s", dir, want)
	}
	if got := read(t, filepath.Join(dir, "run.py")); got != "print('v1')\n" {
		t.Fatalf("run.py = %q", got)
	}
	if got := read(t, filepath.Join(dir, "derived")); got != "ok" {
		t.Fatalf("Finish did not run: derived = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "lib", "util_test.go")); !os.IsNotExist(err) {
		t.Fatalf("a file Keep drops was unpacked: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, "bin", "tool")); err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("executable bit lost: %v %v", st, err)
	}
	// A second start finds the published copy and leaves it alone.
	marker := filepath.Join(dir, "touched-by-test")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := newBundle("v1").Unpack(root)
	if err != nil || again != dir {
		t.Fatalf("second unpack: %s, %v; want %s", again, err, dir)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the published copy was rewritten: %v", err)
	}
}

func TestHashCoversKeptContentOnly(t *testing.T) {
	h1, _ := newBundle("v1").Hash()
	h2, _ := newBundle("v2").Hash()
	if h1 == h2 {
		t.Fatal("different content, same hash")
	}
	fs := tree("v1")
	fs["lib/util_test.go"] = &fstest.MapFile{Data: []byte("package changed\n")}
	h3, _ := (&Bundle{Name: "rt", FS: fs, Keep: NotTests}).Hash()
	if h3 != h1 {
		t.Fatal("a file Keep drops changed the hash")
	}
}

// A newer binary brings its own copy, and its node (the owner of the
// folder) removes the older one; other bundles are left alone.
func TestNewerVersionReplacesOlder(t *testing.T) {
	root := t.TempDir()
	old, err := newBundle("v1").Unpack(root)
	if err != nil {
		t.Fatal(err)
	}
	other, err := (&Bundle{Name: "rt-extra", FS: tree("x")}).Unpack(root)
	if err != nil {
		t.Fatal(err)
	}
	v2 := newBundle("v2")
	dir, err := v2.Unpack(root)
	if err != nil {
		t.Fatal(err)
	}
	if dir == old {
		t.Fatal("new content unpacked into the old folder")
	}
	if got := read(t, filepath.Join(dir, "run.py")); got != "print('v2')\n" {
		t.Fatalf("run.py = %q", got)
	}
	// Unpack alone leaves the old copy: a process of the older build may
	// share the folder and still run it.
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("Unpack removed the old version: %v", err)
	}
	v2.Prune(root)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("old version still there after Prune: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Prune removed the current version: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("another bundle was pruned: %v", err)
	}
}

// Nodes starting at once on one machine: every unpack returns the one
// complete copy and no temporary folder is left.
func TestConcurrentUnpack(t *testing.T) {
	root := t.TempDir()
	const n = 8
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A Bundle per "node": each computes and writes on its own.
			dirs[i], errs[i] = newBundle("v1").Unpack(root)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("unpack %d: %s, %v; unpack 0: %s", i, dirs[i], errs[i], dirs[0])
		}
	}
	if got := read(t, filepath.Join(dirs[0], "derived")); got != "ok" {
		t.Fatalf("incomplete copy: derived = %q", got)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary folder left: %s", e.Name())
		}
	}
}

func TestEmptyBundleFails(t *testing.T) {
	if _, err := (&Bundle{Name: "none", FS: fstest.MapFS{}}).Unpack(t.TempDir()); err == nil {
		t.Fatal("a bundle without files unpacked")
	}
}
