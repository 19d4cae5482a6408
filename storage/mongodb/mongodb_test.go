package mongodb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/storagetest"
)

// shared is the FerretDB most tests use; each store gets a database of its
// own on it, so tests never see each other's data.
var shared *ferret

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	bin, err := buildFerretDB()
	if err != nil {
		// Failing, not skipping: without the server these tests would
		// pass while checking nothing.
		fmt.Fprintf(os.Stderr, "mongodb tests: cannot build FerretDB, the test server: %v\n", err)
		return 1
	}
	ferretBin = bin
	dir, err := os.MkdirTemp("", "cocaine-mongodb-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mongodb tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	shared, err = startFerret(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mongodb tests: cannot start FerretDB: %v\n", err)
		return 1
	}
	code := m.Run()
	if err := shared.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "mongodb tests:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

var dbCounter atomic.Int64

// freshDB names a database no other store of this run uses.
func freshDB() string {
	return fmt.Sprintf("t%d_%d", os.Getpid(), dbCounter.Add(1))
}

// opener opens stores on fresh databases of f through storage.Open, so the
// scheme registration is exercised too.
func opener(f *ferret, params string) func(t *testing.T) storage.Storage {
	return func(t *testing.T) storage.Storage {
		t.Helper()
		s, err := storage.Open(context.Background(), f.uri(freshDB(), params))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
}

// mustOpen opens a Store and closes it when t ends.
func mustOpen(t *testing.T, uri string) *Store {
	t.Helper()
	s, err := Open(context.Background(), uri)
	if err != nil {
		t.Fatalf("Open(%s): %v", uri, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, opener(shared, ""))
}

func TestLogBound(t *testing.T) {
	t.Run("LinesAndAge", func(t *testing.T) {
		storagetest.RunLogBound(t, opener(shared, "max-log-lines=25&max-log-age=1h"),
			storagetest.LogBound{MaxLines: 25, MaxAge: time.Hour})
	})
	t.Run("LinesOnly", func(t *testing.T) {
		storagetest.RunLogBound(t, opener(shared, "max-log-lines=7&max-log-age=-1s"),
			storagetest.LogBound{MaxLines: 7})
	})
	t.Run("AgeOnly", func(t *testing.T) {
		storagetest.RunLogBound(t, opener(shared, "max-log-lines=-1&max-log-age=2m"),
			storagetest.LogBound{MaxAge: 2 * time.Minute})
	})
	t.Run("Defaults", func(t *testing.T) {
		if testing.Short() {
			t.Skip("appends 30000 lines")
		}
		storagetest.RunLogBound(t, opener(shared, ""),
			storagetest.LogBound{MaxLines: DefaultMaxLogLines, MaxAge: DefaultMaxLogAge})
	})
}

// The bound must hold in the database too, not just in what ReadLog
// returns, or a chatty app would fill the disk.
func TestLogCollectionStaysBounded(t *testing.T) {
	db := freshDB()
	s := mustOpen(t, shared.uri(db, "max-log-lines=40"))
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	for i := range 100 {
		batch := make([]storage.LogLine, 5)
		for j := range batch {
			batch[j] = storage.LogLine{Time: base.Add(time.Duration(i*5+j) * time.Millisecond), Text: fmt.Sprint(i*5 + j)}
		}
		if err := s.AppendLog(ctx, "app", batch); err != nil {
			t.Fatal(err)
		}
	}
	n, err := rawClient(t, shared).Database(db).Collection(logsName).CountDocuments(ctx, map[string]any{"app": "app"})
	if err != nil {
		t.Fatal(err)
	}
	// Trimmed once a quarter of the bound has piled up, in batches of 5.
	if n < 40 || n > 40+40/4+5 {
		t.Errorf("logs holds %d lines of app, want 40 to %d", n, 40+40/4+5)
	}
	lines, err := s.ReadLog(ctx, "app", time.Time{}, 0)
	if err != nil || len(lines) != 40 || lines[0].Text != "460" || lines[39].Text != "499" {
		t.Errorf("ReadLog = %d lines (%v), want 460..499", len(lines), err)
	}
}

// Several nodes share one database; what one writes the other reads.
func TestTwoStoresShareADatabase(t *testing.T) {
	db := freshDB()
	a := mustOpen(t, shared.uri(db, ""))
	b := mustOpen(t, shared.uri(db, ""))
	ctx := context.Background()
	if err := a.Put(ctx, "apps", "x", storage.Meta{"v": "1"}, strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "apps", "x", storage.Meta{"v": "2"}, strings.NewReader("two")); err != nil {
		t.Fatal(err)
	}
	info, blob := readAll(t, a, "apps", "x")
	if info.Meta["v"] != "2" || string(blob) != "two" {
		t.Errorf("a reads %v %q, want b's version", info.Meta, blob)
	}
	now := time.Now().Truncate(time.Millisecond)
	if err := a.AppendLog(ctx, "app", []storage.LogLine{{Time: now, Text: "from a"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.AppendLog(ctx, "app", []storage.LogLine{{Time: now.Add(time.Millisecond), Text: "from b"}}); err != nil {
		t.Fatal(err)
	}
	lines, err := b.ReadLog(ctx, "app", time.Time{}, 0)
	if err != nil || len(lines) != 2 || lines[0].Text != "from a" || lines[1].Text != "from b" {
		t.Errorf("ReadLog = %+v, %v", lines, err)
	}
}

func readAll(t *testing.T, s storage.Storage, ns, key string) (storage.Info, []byte) {
	t.Helper()
	info, rc, err := s.Get(context.Background(), ns, key)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", ns, key, err)
	}
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s, %s): read: %v", ns, key, err)
	}
	return info, blob
}

// wantUnavailable runs op until it fails, which must happen within a few
// seconds of the server going away, with an error wrapping ErrUnavailable.
func wantUnavailable(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	start := time.Now()
	err := op(context.Background())
	took := time.Since(start)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("%s with the server down: err = %v, want storage.ErrUnavailable", what, err)
	}
	if took > 6*time.Second {
		t.Errorf("%s with the server down took %v to fail, want a few seconds", what, took.Round(time.Millisecond))
	}
	t.Logf("%s failed after %v: %v", what, took.Round(time.Millisecond), err)
}

func TestLostConnection(t *testing.T) {
	f, err := startFerret(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the store closes while its server is up.
	t.Cleanup(f.kill)
	ctx := context.Background()
	s := mustOpen(t, f.uri("lost", ""))

	blob := bytes.Repeat([]byte("package "), 100<<10) // several GridFS chunks
	if err := s.Put(ctx, "apps", "app", storage.Meta{"version": "1"}, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Millisecond)
	if err := s.AppendLog(ctx, "app", []storage.LogLine{{Time: before, Text: "before"}}); err != nil {
		t.Fatal(err)
	}

	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	// All at once: each waits out the server selection timeout.
	var wg sync.WaitGroup
	check := func(what string, op func(ctx context.Context) error) {
		wg.Go(func() { wantUnavailable(t, what, op) })
	}
	check("Stat", func(ctx context.Context) error { _, err := s.Stat(ctx, "apps", "app"); return err })
	check("Get", func(ctx context.Context) error {
		_, rc, err := s.Get(ctx, "apps", "app")
		if rc != nil {
			rc.Close()
		}
		return err
	})
	check("Put", func(ctx context.Context) error {
		return s.Put(ctx, "apps", "app", storage.Meta{"version": "lost"}, strings.NewReader("lost"))
	})
	check("List", func(ctx context.Context) error { _, err := s.List(ctx, "apps", ""); return err })
	check("Remove", func(ctx context.Context) error { return s.Remove(ctx, "apps", "app") })
	check("AppendLog", func(ctx context.Context) error {
		return s.AppendLog(ctx, "app", []storage.LogLine{{Time: time.Now(), Text: "lost"}})
	})
	check("ReadLog", func(ctx context.Context) error { _, err := s.ReadLog(ctx, "app", time.Time{}, 0); return err })
	check("RemoveLog", func(ctx context.Context) error { return s.RemoveLog(ctx, "app") })
	check("Open", func(ctx context.Context) error {
		s2, err := Open(ctx, f.uri("other", ""))
		if err == nil {
			s2.Close()
		}
		return err
	})

	wg.Wait()

	// Same port, same data: the driver must find the server again by
	// itself, without the Store being reopened.
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var info storage.Info
	for {
		info, err = s.Stat(ctx, "apps", "app")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Stat 30 s after the server came back: %v", err)
	}
	t.Logf("back %v after the restart", time.Since(deadline.Add(-30*time.Second)).Round(time.Millisecond))
	if info.Meta["version"] != "1" || info.Size != int64(len(blob)) {
		t.Errorf("after the outage Stat = %+v, want version 1 of %d bytes (nothing of the failed calls)", info, len(blob))
	}
	if _, got := readAll(t, s, "apps", "app"); !bytes.Equal(got, blob) {
		t.Errorf("after the outage Get returned %d bytes, not the %d written before", len(got), len(blob))
	}
	lines, err := s.ReadLog(ctx, "app", time.Time{}, 0)
	if err != nil || len(lines) != 1 || lines[0].Text != "before" {
		t.Errorf("after the outage ReadLog = %+v, %v; want the one line written before", lines, err)
	}
	if err := s.Put(ctx, "apps", "app", storage.Meta{"version": "2"}, strings.NewReader("v2")); err != nil {
		t.Fatalf("Put after the outage: %v", err)
	}
	if info, got := readAll(t, s, "apps", "app"); info.Meta["version"] != "2" || string(got) != "v2" {
		t.Errorf("after the outage Put then Get = %v %q", info.Meta, got)
	}
}

// A download under way when the server goes away must fail, not end early
// as if the blob were shorter.
func TestLostConnectionMidDownload(t *testing.T) {
	f, err := startFerret(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.kill)
	ctx := context.Background()
	s := mustOpen(t, f.uri("middl", ""))
	// More chunks than a first batch carries (101 by default, and at most
	// 16 MiB on MongoDB), so the rest must come from the server after it is
	// gone.
	blob := bytes.Repeat([]byte{7}, 32<<20)
	if err := s.Put(ctx, "apps", "big", nil, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	_, rc, err := s.Get(ctx, "apps", "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	t.Logf("read %d more bytes, then: %v", n, err)
	if err == nil {
		t.Fatalf("download went on to the end (%d of %d bytes) with the server gone; the test needs a bigger blob", n+1000, len(blob))
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("download cut by the server going away: err = %v, want storage.ErrUnavailable", err)
	}
}
