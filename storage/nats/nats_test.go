package nats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/storagetest"
)

// shared is the cluster the conformance tests use; each store gets buckets
// of its own on it. The failover tests, which kill servers, start their
// own so that the others never see a server missing.
var (
	shared  *cluster
	natsExe string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	bin, err := natsBin()
	if err != nil {
		// Failing, not skipping: without servers these tests would pass
		// while checking nothing.
		fmt.Fprintln(os.Stderr, "nats tests:", err)
		return 1
	}
	natsExe = bin
	dir, err := os.MkdirTemp("", "cocaine-nats-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	shared, err = startCluster(bin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats tests: cannot start the cluster:", err)
		return 1
	}
	defer shared.stop()
	return m.Run()
}

var (
	bucketMu sync.Mutex
	buckets  = map[string]string{} // URI parameters → bucket
)

// bucketFor names the bucket the stores opened with params use. Each set
// of parameters gets one bucket for the whole run, emptied before every
// Open: creating three replicated streams per store costs about a second
// (a Raft group each), purging them a few milliseconds.
func bucketFor(params string) string {
	bucketMu.Lock()
	defer bucketMu.Unlock()
	b, ok := buckets[params]
	if !ok {
		b = fmt.Sprintf("t%d_%d", os.Getpid(), len(buckets))
		buckets[params] = b
	}
	return b
}

// emptyBuckets purges a bucket's streams, if they exist, so that the next
// store opened on it starts empty.
func emptyBuckets(t *testing.T, c *cluster, bucket string) {
	t.Helper()
	nc, js, err := c.client()
	if err != nil {
		t.Fatalf("empty buckets %s: %v", bucket, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"KV_" + bucket + "_objects", "OBJ_" + bucket + "_blobs", bucket + "_logs"} {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err == nil {
			err = st.Purge(ctx)
		}
		if err != nil {
			t.Fatalf("empty stream %s: %v", name, err)
		}
	}
}

// opener opens stores on emptied buckets of c through storage.Open, so the
// scheme registration is exercised too.
func opener(c *cluster, params string) func(t *testing.T) storage.Storage {
	return func(t *testing.T) storage.Storage {
		t.Helper()
		b := bucketFor(params)
		emptyBuckets(t, c, b)
		uri := "nats://" + c.hosts() + "?replicas=3&bucket=" + b
		if params != "" {
			uri += "&" + params
		}
		s, err := storage.Open(context.Background(), uri)
		if err != nil {
			t.Fatalf("Open(%s): %v", uri, err)
		}
		return s
	}
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
}
