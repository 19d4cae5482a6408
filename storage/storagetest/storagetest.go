// Package storagetest is the conformance suite every storage backend must
// pass. A backend's own tests call Run (and RunLogBound with the bounds it
// was opened with); the suite talks to the backend only through
// storage.Storage, so it holds every backend to the same contract.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// opener returns a fresh, empty store.
type opener = func(t *testing.T) storage.Storage

// Run checks objects and logs against the storage.Storage contract.
//
// open must return a fresh, empty store each time it is called: every
// subtest opens its own, so backends need no cleanup between them. The suite
// closes each store when its subtest ends (and fails if Close does), so open
// must not close it itself.
//
// Beyond what the interface comments say, the suite holds backends to:
// errors from a done context wrap ctx.Err(); a Put whose blob reader fails
// wraps the reader's error; and namespaces, keys and app names outside
// storage.NamePattern fail with storage.ErrInvalidName. The log checks
// assume the store keeps at least 1000 lines and an hour of log per app;
// trimming itself is checked by RunLogBound.
func Run(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Helper()
	t.Run("Objects", func(t *testing.T) { runObjects(t, open) })
	t.Run("Logs", func(t *testing.T) { runLogs(t, open) })
}

func runObjects(t *testing.T, open opener) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, open) })
	t.Run("Stat", func(t *testing.T) { testStat(t, open) })
	t.Run("MetaIsCopied", func(t *testing.T) { testMetaIsCopied(t, open) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, open) })
	t.Run("List", func(t *testing.T) { testList(t, open) })
	t.Run("NamespaceIsolation", func(t *testing.T) { testNamespaceIsolation(t, open) })
	t.Run("InvalidNames", func(t *testing.T) { testInvalidNames(t, open) })
	t.Run("Remove", func(t *testing.T) { testRemove(t, open) })
	t.Run("ContextCancelled", func(t *testing.T) { testContextCancelled(t, open) })
	t.Run("FailingReader", func(t *testing.T) { testFailingReader(t, open) })
	t.Run("ConcurrentPutGet", func(t *testing.T) { testConcurrentPutGet(t, open) })
}

// openStore opens a store and closes it when t ends, failing t if Close does.
func openStore(t *testing.T, open opener) storage.Storage {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func put(t *testing.T, s storage.Storage, ns, key string, meta storage.Meta, blob []byte) {
	t.Helper()
	if err := s.Put(context.Background(), ns, key, meta, bytes.NewReader(blob)); err != nil {
		t.Fatalf("Put(%s, %s): %v", ns, key, err)
	}
}

// get reads a whole object, failing t on any error.
func get(t *testing.T, s storage.Storage, ns, key string) (storage.Info, []byte) {
	t.Helper()
	info, blob, err := tryGet(s, ns, key)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", ns, key, err)
	}
	return info, blob
}

func tryGet(s storage.Storage, ns, key string) (storage.Info, []byte, error) {
	info, rc, err := s.Get(context.Background(), ns, key)
	if err != nil {
		return info, nil, err
	}
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	return info, blob, err
}

func list(t *testing.T, s storage.Storage, ns, prefix string) []string {
	t.Helper()
	keys, err := s.List(context.Background(), ns, prefix)
	if err != nil {
		t.Fatalf("List(%s, %q): %v", ns, prefix, err)
	}
	return keys
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: err = %v, want storage.ErrNotFound", what, err)
	}
}

func wantKeys(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) || (len(want) > 0 && strings.Join(got, "\x00") != strings.Join(want, "\x00")) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// wantMeta compares metadata, treating nil and empty as the same.
func wantMeta(t *testing.T, what string, got, want storage.Meta) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s meta = %v, want %v", what, got, want)
	}
}

func wantBlob(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s blob: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
}

// wantModified accepts Modified within a second of the Put, so backends
// that keep coarse timestamps (seconds, milliseconds) still pass.
func wantModified(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Before(before.Add(-time.Second)) || got.After(after.Add(time.Second)) {
		t.Errorf("%s Modified = %v, want between %v and %v", what, got, before, after)
	}
}
