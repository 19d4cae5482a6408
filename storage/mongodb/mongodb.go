// Package mongodb is the storage backend for a cluster: every node talks to
// one MongoDB (or anything speaking its wire protocol, such as FerretDB).
// Import it for its side effect to make mongodb:// URIs work with
// storage.Open:
//
//	mongodb://127.0.0.1:27017/cocaine
//	mongodb://db1,db2,db3/cocaine?replicaSet=rs0&max-log-lines=5000
//
// Collections in the database:
//
//	objects        {ns, key, meta, size, modified, blob_id}, unique on (ns, key)
//	blobs.files    GridFS bucket "blobs": one file per object version
//	blobs.chunks
//	logs           {app, time, slave, stream, text, seq}, indexed on (app, time, seq)
//
// Only plain CRUD, unique indexes and GridFS are used: no transactions, TTL
// indexes or change streams, which FerretDB (the test server) lacks and
// which a standalone mongod does not all offer either. Put is made atomic
// without a transaction by writing the blob under a fresh id first and then
// switching the metadata document to it in one findAndModify (objects.go).
package mongodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/cocaine-cloud/cocaine/storage"
)

// Defaults for Options left zero.
const (
	DefaultMaxLogLines = 10000
	DefaultMaxLogAge   = 7 * 24 * time.Hour
	// DefaultBlobGrace outlives any sane download of an app package, so a
	// reader that looked up the old version just before a Put still gets it
	// whole.
	DefaultBlobGrace = 2 * time.Minute
	// DefaultOrphanAge is far longer than one upload takes, so that Open never
	// mistakes another node's Put in progress for debris.
	DefaultOrphanAge = 30 * time.Minute
	// DefaultServerSelectionTimeout is how long an operation waits for a
	// reachable server before failing with storage.ErrUnavailable. The
	// driver's own default (30 s) would stall every caller that long while
	// the database is down. The URI's serverSelectionTimeoutMS overrides it.
	DefaultServerSelectionTimeout = 2 * time.Second
)

// Collection and bucket names.
const (
	objectsName = "objects"
	logsName    = "logs"
	bucketName  = "blobs"
)

// Options tune a Store. Zero values mean the defaults; a negative value
// turns a log bound off, and a negative BlobGrace deletes old blobs at once.
type Options struct {
	// MaxLogLines is how many of the newest lines are kept per app.
	MaxLogLines int
	// MaxLogAge is how old (by LogLine.Time) a kept line may be.
	MaxLogAge time.Duration
	// BlobGrace is how long the blob of a replaced or removed object stays
	// readable for Gets that found it before the change.
	BlobGrace time.Duration
	// OrphanAge is how old an unreferenced blob must be before Open deletes
	// it as debris of a crashed Put.
	OrphanAge time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxLogLines == 0 {
		o.MaxLogLines = DefaultMaxLogLines
	}
	if o.MaxLogAge == 0 {
		o.MaxLogAge = DefaultMaxLogAge
	}
	if o.BlobGrace == 0 {
		o.BlobGrace = DefaultBlobGrace
	}
	if o.OrphanAge <= 0 {
		o.OrphanAge = DefaultOrphanAge
	}
	return o
}

// Store is a storage.Storage in a MongoDB database. It is safe for
// concurrent use, and several Stores (on several nodes) may share one
// database.
type Store struct {
	client  *mongo.Client
	db      *mongo.Database
	objects *mongo.Collection
	logs    *mongo.Collection
	files   *mongo.Collection // blobs.files
	chunks  *mongo.Collection // blobs.chunks
	// bucket is only used to download, which leaves its state alone; uploads
	// write the GridFS layout themselves (see blobs.go).
	bucket *mongo.GridFSBucket
	opts   Options

	closed atomic.Bool

	// Blobs waiting out their grace period before deletion; see retire.
	retireMu sync.Mutex
	retiring map[bson.ObjectID]*time.Timer
	deleting sync.WaitGroup

	lastSeq atomic.Int64 // see nextSeq

	trimMu sync.Mutex
	trims  map[string]*trimState
}

var _ storage.Storage = (*Store)(nil)

func init() {
	storage.Register("mongodb", func(ctx context.Context, u *url.URL) (storage.Storage, error) {
		s, err := open(ctx, u)
		if err != nil {
			return nil, err // not a nil *Store in a non-nil interface
		}
		return s, nil
	})
}

// Open connects to the database named by a mongodb:// URI (see parseURI for
// the parameters), creates the indexes and clears blobs left by crashed
// Puts. It fails with an error wrapping storage.ErrUnavailable when no
// server answers.
func Open(ctx context.Context, uri string) (*Store, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("mongodb: parse uri: %w", err)
	}
	return open(ctx, u)
}

func open(ctx context.Context, u *url.URL) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mongodb: open: %w", err)
	}
	c, err := parseURI(u)
	if err != nil {
		return nil, err
	}
	s, err := connect(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("mongodb: open %s: %w", u.Redacted(), err)
	}
	return s, nil
}

func connect(ctx context.Context, c config) (*Store, error) {
	copts := options.Client().ApplyURI(c.clientURI)
	if copts.ServerSelectionTimeout == nil {
		copts.SetServerSelectionTimeout(DefaultServerSelectionTimeout)
	}
	if copts.ConnectTimeout == nil {
		// A black-holed host would otherwise hold a connection attempt (and
		// the operation waiting on it) for the driver's 30 s.
		copts.SetConnectTimeout(2 * DefaultServerSelectionTimeout)
	}
	if err := copts.Validate(); err != nil {
		return nil, err
	}
	client, err := mongo.Connect(copts)
	if err != nil {
		return nil, err
	}
	db := client.Database(c.db)
	s := &Store{
		client:   client,
		db:       db,
		objects:  db.Collection(objectsName),
		logs:     db.Collection(logsName),
		files:    db.Collection(bucketName + ".files"),
		chunks:   db.Collection(bucketName + ".chunks"),
		bucket:   db.GridFSBucket(options.GridFSBucket().SetName(bucketName)),
		opts:     c.opts.withDefaults(),
		retiring: map[bson.ObjectID]*time.Timer{},
		trims:    map[string]*trimState{},
	}
	if err := s.createIndexes(ctx); err != nil {
		s.disconnect()
		return nil, err
	}
	// Debris is harmless to correctness (nothing references it), so failing
	// to clear it must not keep the platform from starting.
	if err := s.sweepOrphans(ctx, time.Now()); err != nil {
		if ctx.Err() != nil {
			s.disconnect()
			return nil, s.fail(ctx, err)
		}
		slog.Warn("mongodb: clearing orphaned blobs failed", "db", c.db, "err", err)
	}
	return s, nil
}

// createIndexes makes the indexes every operation relies on: the unique
// (ns, key) is what makes concurrent first Puts of a key end in one
// document. The GridFS ones are those the driver's own uploader would make,
// by the same names, so other GridFS tools find them.
func (s *Store) createIndexes(ctx context.Context) error {
	sets := []struct {
		coll   *mongo.Collection
		models []mongo.IndexModel
	}{
		{s.objects, []mongo.IndexModel{{
			Keys:    bson.D{{Key: "ns", Value: 1}, {Key: "key", Value: 1}},
			Options: options.Index().SetUnique(true),
		}}},
		{s.logs, []mongo.IndexModel{{
			Keys: bson.D{{Key: "app", Value: 1}, {Key: "time", Value: 1}, {Key: "seq", Value: 1}},
		}}},
		{s.files, []mongo.IndexModel{{
			Keys: bson.D{{Key: "filename", Value: 1}, {Key: "uploadDate", Value: 1}},
		}}},
		{s.chunks, []mongo.IndexModel{{
			Keys:    bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}},
			Options: options.Index().SetUnique(true),
		}}},
	}
	for _, set := range sets {
		if _, err := set.coll.Indexes().CreateMany(ctx, set.models); err != nil {
			return fmt.Errorf("create indexes on %s: %w", set.coll.Name(), s.fail(ctx, err))
		}
	}
	return nil
}

// Database returns the name of the database the store uses.
func (s *Store) Database() string { return s.db.Name() }

var errClosed = errors.New("mongodb: store is closed")

// ready reports why an operation may not start: a closed store or a done
// context. Checking up front means a cancelled call has no effect at all,
// rather than whatever part of it the driver got to.
func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// Close deletes the blobs still in their grace period (this process's
// readers of them end with the connection anyway) and disconnects. Further
// calls fail; a second Close does nothing.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.flushRetired()
	s.deleting.Wait()
	return s.disconnect()
}

func (s *Store) disconnect() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
		return fmt.Errorf("mongodb: close: %w", err)
	}
	return nil
}
