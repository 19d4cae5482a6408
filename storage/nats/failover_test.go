package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// ownCluster starts a cluster for one test, which may kill its servers.
func ownCluster(t *testing.T) *cluster {
	t.Helper()
	c, err := startCluster(natsExe, t.TempDir())
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(c.stop)
	return c
}

func openOn(t *testing.T, c *cluster, params string) *Store {
	t.Helper()
	s, err := Open(context.Background(), "nats://"+c.hosts()+"?replicas=3&"+params)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// blobFor is the blob written under key: a few 128 KiB object chunks, so
// that a kill can land in the middle of one upload.
func blobFor(key string) []byte {
	seed := uint64(len(key))
	for _, c := range key {
		seed = seed*31 + uint64(c)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, 100<<10+r.IntN(300<<10))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// streamNames are the three streams of a store.
func streamNames(s *Store) []string {
	b := s.Bucket()
	return []string{"KV_" + b + "_objects", "OBJ_" + b + "_blobs", b + "_logs"}
}

// leaderOf names the server leading a stream's Raft group.
func leaderOf(t *testing.T, c *cluster, stream string) string {
	t.Helper()
	nc, js, err := c.client()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	if cl := st.CachedInfo().Cluster; cl != nil && cl.Leader != "" {
		return cl.Leader
	}
	t.Fatalf("stream %s has no leader", stream)
	return ""
}

// caughtUp reports whether every stream has all three replicas current,
// with nothing left to replicate.
func caughtUp(c *cluster, streams []string) error {
	nc, js, err := c.client()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, name := range streams {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		cl := st.CachedInfo().Cluster
		if cl == nil || cl.Leader == "" || len(cl.Replicas) != 2 {
			return fmt.Errorf("%s: cluster %+v", name, cl)
		}
		for _, r := range cl.Replicas {
			if !r.Current || r.Offline || r.Lag != 0 {
				return fmt.Errorf("%s: replica %s current=%v offline=%v lag=%d", name, r.Name, r.Current, r.Offline, r.Lag)
			}
		}
	}
	return nil
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// retryUnavailable calls f until it returns something other than
// storage.ErrUnavailable (a stream still electing its leader) or d passes.
func retryUnavailable(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if !errors.Is(err, storage.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkAcked reads back every acknowledged object and log line. A call the
// cluster cannot answer yet is retried; anything missing or wrong fails.
func checkAcked(t *testing.T, s *Store, keys []string, lines []string, what string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range keys {
		var info storage.Info
		var b []byte
		err := retryUnavailable(60*time.Second, func() error {
			var rc io.ReadCloser
			var err error
			if info, rc, err = s.Get(ctx, "apps", k); err != nil {
				return err
			}
			defer rc.Close()
			b, err = io.ReadAll(rc)
			return err
		})
		if err != nil {
			t.Fatalf("%s: acknowledged %s: %v", what, k, err)
		}
		if !bytes.Equal(b, blobFor(k)) || info.Meta["key"] != k {
			t.Fatalf("%s: acknowledged %s read back wrong (%d bytes, meta %v)", what, k, len(b), info.Meta)
		}
	}
	var listed []string
	err := retryUnavailable(60*time.Second, func() (err error) {
		listed, err = s.List(ctx, "apps", "")
		return err
	})
	if err != nil {
		t.Fatalf("%s: List: %v", what, err)
	}
	for _, k := range keys {
		if _, found := slices.BinarySearch(listed, k); !found {
			t.Fatalf("%s: acknowledged %s is not listed", what, k)
		}
	}
	var got []storage.LogLine
	err = retryUnavailable(60*time.Second, func() (err error) {
		got, err = s.ReadLog(ctx, "app", time.Time{}, 0)
		return err
	})
	if err != nil {
		t.Fatalf("%s: ReadLog: %v", what, err)
	}
	have := map[string]bool{}
	for _, l := range got {
		have[l.Text] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Fatalf("%s: acknowledged log line %q is missing (%d lines read)", what, l, len(got))
		}
	}
}

// TestKillOneServer kills the leader of the blob stream while uploads and
// reads run, checks that they go on and that every acknowledged object
// and log line survives, then brings the server back, waits for it to
// catch up, and shows it holds its share: with another server killed, the
// restarted one is half of the quorum every write now needs.
func TestKillOneServer(t *testing.T) {
	t.Parallel() // its own cluster; mostly waiting on elections
	c := ownCluster(t)
	s := openOn(t, c, "bucket=kill1")
	ctx := context.Background()

	var (
		mu         sync.Mutex
		acked      []string
		ackedLines []string
		killed     atomic.Bool
		afterKill  atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	var errs []error
	note := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%d", w, i)
				err := s.Put(ctx, "apps", k, storage.Meta{"key": k}, bytes.NewReader(blobFor(k)))
				line := "line " + k
				lerr := s.AppendLog(ctx, "app", []storage.LogLine{{Time: time.Now(), App: "app", Text: line}})
				mu.Lock()
				if err == nil {
					acked = append(acked, k)
				}
				if lerr == nil {
					ackedLines = append(ackedLines, line)
				}
				mu.Unlock()
				if err != nil {
					note(err)
				} else if killed.Load() {
					afterKill.Add(1)
				}
				if lerr != nil {
					note(lerr)
				}
			}
		})
	}
	// A reader of what was acknowledged, so reads meet the failover too.
	var reads atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			var k string
			if len(acked) > 0 {
				k = acked[rand.IntN(len(acked))]
			}
			mu.Unlock()
			if k == "" {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if _, err := s.List(ctx, "apps", "w"); err != nil {
				note(err)
			}
			_, rc, err := s.Get(ctx, "apps", k)
			if err != nil {
				note(err)
				continue
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(b, blobFor(k)) {
				note(fmt.Errorf("read %s: wrong bytes during failover", k))
				continue
			}
			reads.Add(1)
		}
	})

	waitFor(t, 30*time.Second, "10 acknowledged uploads before the kill", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 10 {
			return fmt.Errorf("%d so far", len(acked))
		}
		return nil
	})
	victim := c.byName(leaderOf(t, c, "OBJ_kill1_blobs"))
	victim.kill()
	killed.Store(true)
	start := time.Now()
	waitFor(t, 60*time.Second, "uploads going on after the leader was killed", func() error {
		if n := afterKill.Load(); n < 15 {
			return fmt.Errorf("%d acknowledged since the kill", n)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("killed %s (blob stream leader); 15 uploads acknowledged %v later; %d objects and %d lines acknowledged in all, %d reads, %d errors",
		victim.name, time.Since(start).Round(time.Millisecond), len(acked), len(ackedLines), reads.Load(), len(errs))
	// Failing calls during the election are allowed, but they must say
	// the cluster was unavailable, not something else.
	for _, err := range errs {
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("error during failover does not wrap storage.ErrUnavailable: %v", err)
		}
	}
	checkAcked(t, s, acked, ackedLines, "two servers up")

	// Back up; it must catch up with what was written while it was down.
	if err := victim.start(natsExe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "restarted server catching up", func() error { return caughtUp(c, streamNames(s)) })

	// Kill one of the two that stayed up: every write now needs the
	// restarted server's vote, and the reads come from whichever leads.
	var other *server
	for _, sv := range c.servers {
		if sv != victim {
			other = sv
			break
		}
	}
	other.kill()
	// Each stream elects its leader on its own, so a write to each, and a
	// log read, are waited for.
	waitFor(t, 60*time.Second, "writes with the restarted server in the quorum", func() error {
		if err := s.Put(ctx, "apps", "after-restart", storage.Meta{"key": "after-restart"}, bytes.NewReader(blobFor("after-restart"))); err != nil {
			return err
		}
		if err := s.AppendLog(ctx, "app", []storage.LogLine{{Time: time.Now(), App: "app", Text: "after-restart"}}); err != nil {
			return err
		}
		_, err := s.ReadLog(ctx, "app", time.Time{}, 0)
		return err
	})
	checkAcked(t, s, append(acked, "after-restart"), ackedLines, "restarted server and one other up")
}

// TestQuorumLost kills two of the three servers: every call must end
// within its timeout with an error wrapping storage.ErrUnavailable (a read
// may still be answered while the last server has not yet noticed it is
// alone, but then with the right data). With the servers back, the store
// works again without reopening.
func TestQuorumLost(t *testing.T) {
	t.Parallel() // its own cluster; mostly waiting on timeouts
	c := ownCluster(t)
	const timeout = time.Second
	s := openOn(t, c, "bucket=quorum&timeout=1s")
	ctx := context.Background()
	blob := blobFor("kept")
	if err := s.Put(ctx, "apps", "kept", storage.Meta{"key": "kept"}, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(ctx, "app", []storage.LogLine{{Time: time.Now(), App: "app", Text: "kept"}}); err != nil {
		t.Fatal(err)
	}

	c.servers[1].kill()
	c.servers[2].kill()

	// A call may take its timeout, plus as much again for a second step
	// (Get's lookup then download), plus a margin for a loaded machine.
	limit := 2*timeout + 3*time.Second
	check := func(op string, write bool, call func() error) {
		t.Helper()
		start := time.Now()
		err := call()
		took := time.Since(start)
		if took > limit {
			t.Errorf("%s took %v with two servers down, want under %v", op, took.Round(time.Millisecond), limit)
		}
		switch {
		case err == nil && write:
			t.Errorf("%s succeeded with two of three servers down", op)
		case err != nil && !errors.Is(err, storage.ErrUnavailable):
			t.Errorf("%s: err = %v, want storage.ErrUnavailable", op, err)
		}
		t.Logf("%s: %v after %v", op, err, took.Round(time.Millisecond))
	}
	// Writes first: the first one also waits out the client's reconnect
	// to the surviving server.
	check("Put", true, func() error {
		return s.Put(ctx, "apps", "new", nil, bytes.NewReader([]byte("x")))
	})
	check("AppendLog", true, func() error {
		return s.AppendLog(ctx, "app", []storage.LogLine{{Time: time.Now(), App: "app", Text: "lost"}})
	})
	check("Remove", true, func() error { return s.Remove(ctx, "apps", "kept") })
	check("RemoveLog", true, func() error { return s.RemoveLog(ctx, "app") })
	check("Get", false, func() error {
		_, rc, err := s.Get(ctx, "apps", "kept")
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(b, blob) {
				return fmt.Errorf("wrong bytes")
			}
		}
		return err
	})
	check("Stat", false, func() error { _, err := s.Stat(ctx, "apps", "kept"); return err })
	check("List", false, func() error { _, err := s.List(ctx, "apps", ""); return err })
	check("ReadLog", false, func() error { _, err := s.ReadLog(ctx, "app", time.Time{}, 0); return err })

	for _, sv := range c.servers[1:] {
		if err := sv.start(natsExe); err != nil {
			t.Fatal(err)
		}
	}
	// Each stream elects its leader on its own, so each kind of call is
	// waited for.
	waitFor(t, 60*time.Second, "calls working after the servers came back", func() error {
		if err := s.Put(ctx, "apps", "back", storage.Meta{"key": "back"}, bytes.NewReader(blobFor("back"))); err != nil {
			return err
		}
		if err := s.AppendLog(ctx, "app", []storage.LogLine{{Time: time.Now(), App: "app", Text: "back"}}); err != nil {
			return err
		}
		_, err := s.ReadLog(ctx, "app", time.Time{}, 0)
		return err
	})
	// Nothing acknowledged before the outage was lost, whatever the
	// failed calls in between did or did not get to do.
	_, rc, err := s.Get(ctx, "apps", "kept")
	if err != nil {
		// Remove may have been applied without its answer arriving; then
		// the object is gone, which is the one other allowed outcome.
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get after recovery: %v", err)
		}
	} else {
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(b, blob) {
			t.Fatalf("kept blob read back wrong after recovery")
		}
	}
	checkAcked(t, s, []string{"back"}, []string{"back"}, "after recovery")
}
