package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// randomBytes is deterministic so a failure reproduces byte for byte.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	_, _ = r.Read(b)
	return b
}

func testRoundTrip(t *testing.T, open opener) {
	allBytes := make([]byte, 64<<10)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	cases := []struct {
		name, key string
		meta      storage.Meta
		blob      []byte
	}{
		{"Small", "app", storage.Meta{
			"version":       "1.2.3",
			"manifest":      `{"slave":"python","args":["-u"]}`,
			"unicode":       "héllo ✓ 日本",
			"empty":         "",
			"with\nnewline": "a\tb\nc",
		}, []byte("hello, world\n")},
		{"EmptyBlobNilMeta", "empty", nil, []byte{}},
		{"AllByteValues", "binary", storage.Meta{"k": "v"}, allBytes},
		{"MultiMegabyte", "large", storage.Meta{"size": "5MiB"}, randomBytes(5<<20+123, 1)},
		{"LongestKey", strings.Repeat("k", 200), storage.Meta{"long": "yes"}, []byte("x")},
		{"PunctuationKey", "app:1700000000000000000:slave-1@node.example", nil, []byte("crash")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, open)
			// HalfReader returns short reads, which backends must not
			// mistake for the end of the blob.
			err := s.Put(context.Background(), "ns", c.key, c.meta, iotest.HalfReader(bytes.NewReader(c.blob)))
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			info, blob := get(t, s, "ns", c.key)
			if info.Key != c.key {
				t.Errorf("Get Info.Key = %q, want %q", info.Key, c.key)
			}
			if info.Size != int64(len(c.blob)) {
				t.Errorf("Get Info.Size = %d, want %d", info.Size, len(c.blob))
			}
			wantMeta(t, "Get", info.Meta, c.meta)
			wantBlob(t, "Get", blob, c.blob)

			st, err := s.Stat(context.Background(), "ns", c.key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if st.Key != c.key || st.Size != info.Size || !st.Modified.Equal(info.Modified) {
				t.Errorf("Stat = %+v, want the Info Get returned: %+v", st, info)
			}
			wantMeta(t, "Stat", st.Meta, c.meta)
		})
	}
}

func testOverwrite(t *testing.T, open opener) {
	s := openStore(t, open)
	big := randomBytes(1<<20, 2)
	put(t, s, "ns", "k", storage.Meta{"a": "1", "b": "2"}, big)

	// The second version is shorter and has other meta keys: nothing of the
	// first may survive (no merged meta, no leftover tail).
	put(t, s, "ns", "k", storage.Meta{"c": "3"}, []byte("v2"))
	info, blob := get(t, s, "ns", "k")
	wantMeta(t, "after overwrite", info.Meta, storage.Meta{"c": "3"})
	wantBlob(t, "after overwrite", blob, []byte("v2"))
	if info.Size != 2 {
		t.Errorf("Size after overwrite = %d, want 2", info.Size)
	}

	put(t, s, "ns", "k", nil, big)
	info, blob = get(t, s, "ns", "k")
	wantMeta(t, "after second overwrite", info.Meta, nil)
	wantBlob(t, "after second overwrite", blob, big)
	wantKeys(t, "List", list(t, s, "ns", ""), "k")
}

func testStat(t *testing.T, open opener) {
	s := openStore(t, open)
	meta := storage.Meta{"version": "7"}
	before := time.Now()
	put(t, s, "ns", "k", meta, []byte("12345"))
	after := time.Now()

	info, err := s.Stat(context.Background(), "ns", "k")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != "k" || info.Size != 5 {
		t.Errorf("Stat = %+v, want Key k and Size 5", info)
	}
	wantMeta(t, "Stat", info.Meta, meta)
	wantModified(t, "Stat", info.Modified, before, after)

	time.Sleep(20 * time.Millisecond)
	before2 := time.Now()
	put(t, s, "ns", "k", storage.Meta{"version": "8"}, []byte("123"))
	after2 := time.Now()
	info2, err := s.Stat(context.Background(), "ns", "k")
	if err != nil {
		t.Fatalf("Stat after overwrite: %v", err)
	}
	if info2.Size != 3 || info2.Meta["version"] != "8" {
		t.Errorf("Stat after overwrite = %+v, want Size 3 and version 8", info2)
	}
	wantModified(t, "Stat after overwrite", info2.Modified, before2, after2)
	if info2.Modified.Before(info.Modified) {
		t.Errorf("Modified went back in time: %v then %v", info.Modified, info2.Modified)
	}
}

func testMetaIsCopied(t *testing.T, open opener) {
	s := openStore(t, open)
	meta := storage.Meta{"a": "1"}
	put(t, s, "ns", "k", meta, []byte("x"))
	meta["a"] = "changed"
	meta["b"] = "added"

	info, _ := get(t, s, "ns", "k")
	wantMeta(t, "after caller changed its map", info.Meta, storage.Meta{"a": "1"})
	if info.Meta != nil {
		info.Meta["a"] = "changed again"
	}
	info, _ = get(t, s, "ns", "k")
	wantMeta(t, "after caller changed the returned map", info.Meta, storage.Meta{"a": "1"})
}

func testNotFound(t *testing.T, open opener) {
	s := openStore(t, open)
	ctx := context.Background()

	_, rc, err := s.Get(ctx, "ns", "missing")
	if rc != nil {
		rc.Close()
		t.Errorf("Get of a missing object returned a reader")
	}
	wantNotFound(t, "Get in an empty store", err)
	_, err = s.Stat(ctx, "ns", "missing")
	wantNotFound(t, "Stat in an empty store", err)
	wantNotFound(t, "Remove in an empty store", s.Remove(ctx, "ns", "missing"))
	wantKeys(t, "List of a namespace never written", list(t, s, "ns", ""))

	put(t, s, "ns", "present", nil, []byte("x"))
	_, _, err = tryGet(s, "ns", "missing")
	wantNotFound(t, "Get of a missing key", err)
	_, _, err = tryGet(s, "other", "present")
	wantNotFound(t, "Get of a key from another namespace", err)
	_, err = s.Stat(ctx, "ns", "missing")
	wantNotFound(t, "Stat of a missing key", err)
	wantNotFound(t, "Remove of a missing key", s.Remove(ctx, "ns", "missing"))
	// A key that is a prefix of a stored one is still a different key.
	_, _, err = tryGet(s, "ns", "pres")
	wantNotFound(t, "Get of a prefix of a key", err)
}

func testList(t *testing.T, open opener) {
	s := openStore(t, open)
	keys := []string{"b", "a", "app:2", "app:10", "app:1", "B", "0", "apple", "ap", "Zed"}
	for i, k := range keys {
		put(t, s, "ns", k, storage.Meta{"i": string(rune('a' + i))}, []byte(k))
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)

	wantKeys(t, `List("")`, list(t, s, "ns", ""), sorted...)
	wantKeys(t, `List("app")`, list(t, s, "ns", "app"), "app:1", "app:10", "app:2", "apple")
	wantKeys(t, `List("app:")`, list(t, s, "ns", "app:"), "app:1", "app:10", "app:2")
	wantKeys(t, `List("ap")`, list(t, s, "ns", "ap"), "ap", "app:1", "app:10", "app:2", "apple")
	wantKeys(t, `List("app:10")`, list(t, s, "ns", "app:10"), "app:10")
	wantKeys(t, `List("B")`, list(t, s, "ns", "B"), "B")
	wantKeys(t, `List("b")`, list(t, s, "ns", "b"), "b")
	wantKeys(t, `List("A")`, list(t, s, "ns", "A")) // prefixes are case-sensitive
	wantKeys(t, `List("zzz")`, list(t, s, "ns", "zzz"))
	wantKeys(t, `List("apple:")`, list(t, s, "ns", "apple:"))
}

func testNamespaceIsolation(t *testing.T, open opener) {
	s := openStore(t, open)
	put(t, s, storage.NSApps, "k", storage.Meta{"ns": "apps"}, []byte("one"))
	put(t, s, storage.NSNodes, "k", storage.Meta{"ns": "nodes"}, []byte("two"))
	put(t, s, storage.NSApps, "only-apps", nil, []byte("x"))

	wantKeys(t, "List(apps)", list(t, s, storage.NSApps, ""), "k", "only-apps")
	wantKeys(t, "List(nodes)", list(t, s, storage.NSNodes, ""), "k")
	wantKeys(t, "List(crashlogs)", list(t, s, storage.NSCrashlogs, ""))

	info, blob := get(t, s, storage.NSApps, "k")
	wantMeta(t, "apps/k", info.Meta, storage.Meta{"ns": "apps"})
	wantBlob(t, "apps/k", blob, []byte("one"))
	info, blob = get(t, s, storage.NSNodes, "k")
	wantMeta(t, "nodes/k", info.Meta, storage.Meta{"ns": "nodes"})
	wantBlob(t, "nodes/k", blob, []byte("two"))

	if err := s.Remove(context.Background(), storage.NSApps, "k"); err != nil {
		t.Fatalf("Remove(apps, k): %v", err)
	}
	_, blob = get(t, s, storage.NSNodes, "k")
	wantBlob(t, "nodes/k after removing apps/k", blob, []byte("two"))
}

// badNames are rejected by storage.NamePattern; several would escape a
// directory or collide with a backend's own files if taken literally.
var badNames = []string{
	"", ".", "..", "../x", "a/b", "/abs", "a\\b", ".hidden", "-dash", "a b",
	"a\x00b", "x/../../y", strings.Repeat("a", 201), "é",
}

func testInvalidNames(t *testing.T, open opener) {
	s := openStore(t, open)
	ctx := context.Background()
	for _, bad := range badNames {
		for _, nk := range [][2]string{{bad, "key"}, {"ns", bad}} {
			ns, key := nk[0], nk[1]
			what := func(op string) string { return op + "(" + quote(ns) + ", " + quote(key) + ")" }
			err := s.Put(ctx, ns, key, storage.Meta{"a": "b"}, strings.NewReader("data"))
			wantInvalid(t, what("Put"), err)
			_, rc, err := s.Get(ctx, ns, key)
			if rc != nil {
				rc.Close()
			}
			wantInvalid(t, what("Get"), err)
			_, err = s.Stat(ctx, ns, key)
			wantInvalid(t, what("Stat"), err)
			wantInvalid(t, what("Remove"), s.Remove(ctx, ns, key))
		}
		_, err := s.List(ctx, bad, "")
		wantInvalid(t, "List("+quote(bad)+")", err)
	}
	// Nothing may have been written under a name the backend could map to
	// the valid side of the pair.
	wantKeys(t, "List(ns) after invalid Puts", list(t, s, "ns", ""))
	_, _, err := tryGet(s, "ns", "key")
	wantNotFound(t, "Get(ns, key) after invalid Puts", err)
}

func quote(s string) string {
	if len(s) > 20 {
		return strings.ReplaceAll(s[:10], "\x00", `\0`) + "…"
	}
	return `"` + strings.ReplaceAll(s, "\x00", `\0`) + `"`
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrInvalidName) {
		t.Errorf("%s: err = %v, want storage.ErrInvalidName", what, err)
	}
}

func testRemove(t *testing.T, open opener) {
	s := openStore(t, open)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		put(t, s, "ns", k, storage.Meta{"k": k}, []byte(k))
	}
	if err := s.Remove(ctx, "ns", "b"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	wantKeys(t, "List after Remove", list(t, s, "ns", ""), "a", "c")
	_, _, err := tryGet(s, "ns", "b")
	wantNotFound(t, "Get after Remove", err)
	_, err = s.Stat(ctx, "ns", "b")
	wantNotFound(t, "Stat after Remove", err)
	wantNotFound(t, "second Remove", s.Remove(ctx, "ns", "b"))

	put(t, s, "ns", "b", storage.Meta{"again": "yes"}, []byte("b2"))
	info, blob := get(t, s, "ns", "b")
	wantMeta(t, "Put after Remove", info.Meta, storage.Meta{"again": "yes"})
	wantBlob(t, "Put after Remove", blob, []byte("b2"))
	wantKeys(t, "List after Put again", list(t, s, "ns", ""), "a", "b", "c")

	for _, k := range []string{"a", "b", "c"} {
		if err := s.Remove(ctx, "ns", k); err != nil {
			t.Fatalf("Remove(%s): %v", k, err)
		}
	}
	wantKeys(t, "List after removing everything", list(t, s, "ns", ""))
}

func wantCanceled(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", what, err)
	}
}

func testContextCancelled(t *testing.T, open opener) {
	s := openStore(t, open)
	put(t, s, "ns", "old", storage.Meta{"v": "old"}, []byte("old"))
	if err := s.AppendLog(context.Background(), "app", []storage.LogLine{line("app", time.Now(), "kept")}); err != nil {
		t.Fatalf("AppendLog: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantCanceled(t, "Put of a new key", s.Put(ctx, "ns", "new", nil, strings.NewReader("new")))
	wantCanceled(t, "Put over an existing key", s.Put(ctx, "ns", "old", storage.Meta{"v": "new"}, strings.NewReader("new")))
	_, rc, err := s.Get(ctx, "ns", "old")
	if rc != nil {
		rc.Close()
	}
	wantCanceled(t, "Get", err)
	_, err = s.Stat(ctx, "ns", "old")
	wantCanceled(t, "Stat", err)
	_, err = s.List(ctx, "ns", "")
	wantCanceled(t, "List", err)
	wantCanceled(t, "Remove", s.Remove(ctx, "ns", "old"))
	wantCanceled(t, "AppendLog", s.AppendLog(ctx, "app", []storage.LogLine{line("app", time.Now(), "dropped")}))
	_, err = s.ReadLog(ctx, "app", time.Time{}, 0)
	wantCanceled(t, "ReadLog", err)
	wantCanceled(t, "RemoveLog", s.RemoveLog(ctx, "app"))

	// None of the cancelled calls may have had an effect.
	info, blob := get(t, s, "ns", "old")
	wantMeta(t, "old after cancelled calls", info.Meta, storage.Meta{"v": "old"})
	wantBlob(t, "old after cancelled calls", blob, []byte("old"))
	_, _, err = tryGet(s, "ns", "new")
	wantNotFound(t, "Get of a key whose Put was cancelled", err)
	wantKeys(t, "List after cancelled calls", list(t, s, "ns", ""), "old")
	lines, err := s.ReadLog(context.Background(), "app", time.Time{}, 0)
	if err != nil {
		t.Fatalf("ReadLog: %v", err)
	}
	wantTexts(t, "log after cancelled calls", lines, "kept")
}

var errBoom = errors.New("storagetest: reader failed on purpose")

// failingReader yields n bytes and then fails, like an upload cut short.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBoom
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// cancellingReader cancels its context after the first read but keeps
// serving data, so only a backend that watches ctx notices.
type cancellingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel()
	return n, err
}

func testFailingReader(t *testing.T, open opener) {
	s := openStore(t, open)
	oldBlob := randomBytes(256<<10, 3)
	oldMeta := storage.Meta{"v": "old"}
	put(t, s, "ns", "k", oldMeta, oldBlob)
	newBlob := randomBytes(2<<20, 4)

	check := func(what string) {
		t.Helper()
		info, blob := get(t, s, "ns", "k")
		wantMeta(t, what, info.Meta, oldMeta)
		wantBlob(t, what, blob, oldBlob)
		if info.Size != int64(len(oldBlob)) {
			t.Errorf("%s: Size = %d, want %d", what, info.Size, len(oldBlob))
		}
		_, _, err := tryGet(s, "ns", "fresh")
		wantNotFound(t, what+": Get of a key whose only Put failed", err)
		wantKeys(t, what+": List", list(t, s, "ns", ""), "k")
	}

	for _, n := range []int{0, 1, 1 << 20} {
		err := s.Put(context.Background(), "ns", "k", storage.Meta{"v": "new"}, &failingReader{bytes.NewReader(newBlob), n})
		if !errors.Is(err, errBoom) {
			t.Errorf("Put from a reader failing after %d bytes: err = %v, want it to wrap the reader's error", n, err)
		}
		err = s.Put(context.Background(), "ns", "fresh", nil, &failingReader{bytes.NewReader(newBlob), n})
		if !errors.Is(err, errBoom) {
			t.Errorf("Put of a new key from a reader failing after %d bytes: err = %v, want the reader's error", n, err)
		}
		check("after a reader failed")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := s.Put(ctx, "ns", "k", storage.Meta{"v": "new"}, &cancellingReader{bytes.NewReader(newBlob), cancel})
	wantCanceled(t, "Put cancelled mid-upload", err)
	check("after a Put cancelled mid-upload")
}
