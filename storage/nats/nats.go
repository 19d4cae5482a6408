// Package nats is the replicated storage backend, in the place Elliptics
// had in Cocaine: every object is kept on several servers (a NATS JetStream
// cluster), and losing one of three servers stops nothing. Import it for
// its side effect to make nats:// URIs work with storage.Open:
//
//	nats://127.0.0.1:4222
//	nats://n1:4222,n2:4222,n3:4222?replicas=3&bucket=cocaine
//
// What it creates, for bucket B (default "cocaine"):
//
//	KV bucket    B_objects  key <ns>.<key> (encoded) → JSON {meta, size, modified, blob}
//	object store B_blobs    one object per blob version, named by a fresh id
//	stream       B_logs     subjects B.logs.<app> (encoded), one message per line
//
// Put is atomic without transactions in the same way as the MongoDB
// backend: the blob is uploaded under a fresh name, then the object's KV
// entry is switched to it with a compare-and-set on the entry's revision,
// then the old blob is retired (objects.go). Logs are bounded by the
// stream itself: at most max-log-lines messages per app subject, and
// max-log-age by store time, with ReadLog applying the age bound exactly by
// line time (logs.go).
//
// Reads go to each stream's Raft leader (direct gets from followers are
// turned off), so a read sees every write acknowledged before it. With a
// majority of the replicas down there is no leader: calls then fail with an
// error wrapping storage.ErrUnavailable once Options.Timeout has passed.
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cocaine-cloud/cocaine/storage"
)

// Defaults for Options left zero.
const (
	DefaultBucket      = "cocaine"
	DefaultMaxLogLines = 10000
	DefaultMaxLogAge   = 7 * 24 * time.Hour
	// DefaultTimeout bounds every call to the cluster. A Raft election
	// after a server dies takes a few seconds, so shorter timeouts turn
	// failovers into errors; much longer ones keep callers waiting when
	// the quorum is really gone.
	DefaultTimeout = 5 * time.Second
	// DefaultBlobGrace outlives any sane download of an app package, so a
	// reader that looked up the old version just before a Put still gets
	// it whole.
	DefaultBlobGrace = 2 * time.Minute
	// minRate is the slowest transfer a blob up- or download may make
	// before it counts as stalled: Put and Get get Timeout plus one second
	// per MiB.
	minRate = 1 << 20
	// openTimeout bounds Open, which may create streams.
	openTimeout = 10 * time.Second
	// maxEntry keeps a KV entry (meta) under the server's default 1 MiB
	// message limit with room for headers.
	maxEntry = 1000 << 10
)

// Options tune a Store. Zero values mean the defaults; a negative log
// bound turns it off, and a negative BlobGrace deletes old blobs at once.
type Options struct {
	// Bucket prefixes the names of the KV bucket, object store and log
	// stream, so that several clouds can share one NATS cluster.
	Bucket string
	// Replicas is how many servers keep each object and log line. Default:
	// 3 when the URI lists three servers or more, else 1.
	Replicas int
	// Timeout bounds each call to the cluster (Put and Get get one more
	// second per MiB of blob).
	Timeout time.Duration
	// MaxLogLines is how many of the newest lines are kept per app.
	MaxLogLines int
	// MaxLogAge is how old (by LogLine.Time) a line ReadLog returns may
	// be; the stream drops lines this long after they were appended.
	MaxLogAge time.Duration
	// BlobGrace is how long the blob of a replaced or removed object stays
	// readable for Gets that found it before the change.
	BlobGrace time.Duration
}

func (o Options) withDefaults(servers int) Options {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Replicas == 0 {
		o.Replicas = 1
		if servers >= 3 {
			o.Replicas = 3
		}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxLogLines == 0 {
		o.MaxLogLines = DefaultMaxLogLines
	}
	if o.MaxLogAge == 0 {
		o.MaxLogAge = DefaultMaxLogAge
	}
	if o.BlobGrace == 0 {
		o.BlobGrace = DefaultBlobGrace
	}
	return o
}

// Store is a storage.Storage in a NATS JetStream cluster. It is safe for
// concurrent use, and several Stores (on several nodes) may share a bucket.
type Store struct {
	nc *natsio.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue
	// kvStream is the KV bucket's stream, for listing and removing keys.
	kvStream jetstream.Stream
	obs      jetstream.ObjectStore
	// blobStream is the object store's stream, read chunk by chunk.
	blobStream jetstream.Stream
	logs       jetstream.Stream
	logSubj    string // B.logs
	opts       Options

	closed atomic.Bool

	// Blobs waiting out their grace period before deletion; see retire.
	retireMu sync.Mutex
	retiring map[string]*time.Timer
	deleting sync.WaitGroup
}

var _ storage.Storage = (*Store)(nil)

func init() {
	storage.Register("nats", func(ctx context.Context, u *url.URL) (storage.Storage, error) {
		s, err := open(ctx, u)
		if err != nil {
			return nil, err // not a nil *Store in a non-nil interface
		}
		return s, nil
	})
}

// Open connects to the servers of a nats:// URI (see parseURI) and creates
// the bucket, object store and log stream if they do not exist yet. It
// fails with an error wrapping storage.ErrUnavailable when no server
// answers or the cluster has no quorum.
func Open(ctx context.Context, uri string) (*Store, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("nats: parse uri: %w", err)
	}
	return open(ctx, u)
}

func open(ctx context.Context, u *url.URL) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats: open: %w", err)
	}
	c, err := parseURI(u)
	if err != nil {
		return nil, err
	}
	s, err := connect(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("nats: open %s: %w", u.Redacted(), err)
	}
	return s, nil
}

func connect(ctx context.Context, c config) (*Store, error) {
	opts := c.opts
	copts := []natsio.Option{
		natsio.Name("cocaine"),
		natsio.Timeout(min(opts.Timeout, 2*time.Second)),
		// Keep reconnecting for as long as the Store lives: a server
		// coming back must be picked up without reopening.
		natsio.MaxReconnects(-1),
		natsio.ReconnectWait(250 * time.Millisecond),
		natsio.ReconnectJitter(100*time.Millisecond, time.Second),
		// While disconnected, fail publishes at once rather than buffer
		// them: the caller's call is bounded by Timeout either way, and an
		// acknowledged write must really be in the cluster.
		natsio.ReconnectBufSize(-1),
		natsio.DisconnectErrHandler(func(_ *natsio.Conn, err error) {
			if err != nil {
				slog.Warn("nats: disconnected", "err", err)
			}
		}),
		natsio.ReconnectHandler(func(nc *natsio.Conn) {
			slog.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if c.user != "" {
		copts = append(copts, natsio.UserInfo(c.user, c.pass))
	}
	nc, err := natsio.Connect(c.servers, copts...)
	if err != nil {
		return nil, fmt.Errorf("%w: connect: %w", storage.ErrUnavailable, err)
	}
	// The async publish timeout expires log appends whose acknowledgement
	// never comes, so they do not pile up while the cluster has no quorum.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(opts.Timeout), jetstream.WithPublishAsyncTimeout(opts.Timeout))
	if err != nil {
		nc.Close()
		return nil, err
	}
	s := &Store{
		nc:       nc,
		js:       js,
		opts:     opts,
		logSubj:  opts.Bucket + ".logs",
		retiring: map[string]*time.Timer{},
	}
	// Creating a replicated stream elects a Raft group, which on a busy
	// machine takes longer than a short per-call Timeout: Open gets at
	// least openTimeout.
	octx, cancel := context.WithTimeout(ctx, max(opts.Timeout, openTimeout))
	defer cancel()
	if err := s.createStreams(octx); err != nil {
		nc.Close()
		return nil, s.fail(ctx, octx, err)
	}
	return s, nil
}

// createStreams makes (or updates to this Store's options) the three
// streams. The KV and object store streams are the ones nats.go would
// create, but made here so that AllowDirect can be off: direct gets are
// answered by any replica, including one that is behind, and a Get right
// after a Put could then miss it.
func (s *Store) createStreams(ctx context.Context) error {
	b, r := s.opts.Bucket, s.opts.Replicas
	kvName := b + "_objects"
	var err error
	s.kvStream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              "KV_" + kvName,
		Subjects:          []string{"$KV." + kvName + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          r,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        2 * time.Minute,
		Discard:           jetstream.DiscardNew,
	})
	if err != nil {
		return fmt.Errorf("create KV bucket %s: %w", kvName, err)
	}
	if s.kv, err = s.js.KeyValue(ctx, kvName); err != nil {
		return fmt.Errorf("bind KV bucket %s: %w", kvName, err)
	}

	obsName := b + "_blobs"
	s.blobStream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        "OBJ_" + obsName,
		Subjects:    []string{"$O." + obsName + ".C.>", "$O." + obsName + ".M.>"},
		MaxBytes:    -1,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		Discard:     jetstream.DiscardNew,
		AllowRollup: true,
	})
	if err != nil {
		return fmt.Errorf("create object store %s: %w", obsName, err)
	}
	if s.obs, err = s.js.ObjectStore(ctx, obsName); err != nil {
		return fmt.Errorf("bind object store %s: %w", obsName, err)
	}

	lines, age := int64(s.opts.MaxLogLines), s.opts.MaxLogAge
	if lines <= 0 {
		lines = -1
	}
	if age < 0 {
		age = 0
	}
	s.logs, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              b + "_logs",
		Subjects:          []string{s.logSubj + ".>"},
		MaxMsgsPerSubject: lines,
		MaxAge:            age,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		Storage:           jetstream.FileStorage,
		Replicas:          r,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("create log stream %s_logs: %w", b, err)
	}
	return nil
}

// Bucket returns the prefix of the store's bucket and stream names.
func (s *Store) Bucket() string { return s.opts.Bucket }

var errClosed = errors.New("nats: store is closed")

// opContext bounds one call: the caller's context, cut to Timeout plus a
// second per MiB of payload.
func (s *Store) opContext(ctx context.Context, payload int64) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.Timeout+time.Duration(payload/minRate)*time.Second)
}

// ready reports why an operation may not start: a closed store or a done
// context. Checking up front means a cancelled call has no effect at all.
func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// Close deletes the blobs still in their grace period and disconnects.
// Further calls fail; a second Close does nothing.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.flushRetired()
	s.deleting.Wait()
	// Drain would wait for the server; a Store closing because the cluster
	// is gone must not hang on it.
	s.nc.Close()
	return nil
}
