package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Blobs are GridFS files in the bucket "blobs", written in the standard
// layout (blobs.files + blobs.chunks) so that mongofiles and every driver
// read them. Each version of an object is a new file under a fresh id;
// nothing ever rewrites a file, so a reader holding an id sees one version
// whole until that file is deleted.
//
// The upload is done here rather than with the driver's GridFS uploader,
// which buffers 16 MiB per upload before writing anything and keeps state in
// the bucket that concurrent uploads would race on.

const (
	chunkSize = int(mongo.DefaultGridFSChunkSize) // 255 KiB, as every GridFS tool expects
	// chunksPerInsert bounds what one upload holds in memory (about 1 MiB)
	// while still writing in few round trips.
	chunksPerInsert = 4
	// cleanupTimeout bounds best-effort deletions done on the way out of a
	// failed call, whose own context may already be done.
	cleanupTimeout = 10 * time.Second
)

// ctxReader fails reads once ctx is done, so that a cancelled Put stops
// uploading even if the caller's reader would go on forever.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// upload writes r as a new GridFS file and returns its id and size. On
// failure it deletes what it wrote if it can; what it cannot is unreferenced
// and left to sweepOrphans.
func (s *Store) upload(ctx context.Context, ns, key string, r io.Reader) (bson.ObjectID, int64, error) {
	id := bson.NewObjectID()
	if r == nil {
		r = eofReader{}
	}
	r = ctxReader{ctx, r}

	var (
		size    int64
		n       int32
		wrote   bool // some chunk insert was attempted, so chunks may exist
		buf     = make([]byte, chunksPerInsert*chunkSize)
		pending []any
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		wrote = true
		_, err := s.chunks.InsertMany(ctx, pending)
		pending = pending[:0]
		return err
	}
	cleanup := func() {
		if !wrote {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, err := s.chunks.DeleteMany(cctx, bson.D{{Key: "files_id", Value: id}}); err != nil {
			slog.Warn("mongodb: deleting chunks of a failed upload", "id", id.Hex(), "err", err)
		}
	}

	for done := false; !done; {
		slot := buf[int(n)%chunksPerInsert*chunkSize:][:chunkSize]
		k, err := io.ReadFull(r, slot)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			done = true
		case err != nil:
			cleanup()
			return id, 0, fmt.Errorf("read blob: %w", err)
		}
		if k > 0 {
			pending = append(pending, bson.D{
				{Key: "_id", Value: bson.NewObjectID()},
				{Key: "files_id", Value: id},
				{Key: "n", Value: n},
				{Key: "data", Value: bson.Binary{Data: slot[:k]}},
			})
			n++
			size += int64(k)
		}
		// The buffer is reused once its chunks are written, so a full
		// buffer must be flushed before the next read overwrites it.
		if len(pending) == chunksPerInsert || done {
			if err := flush(); err != nil {
				// Unreachable, the cleanup would only wait out another
				// server selection; the sweep gets what may have landed.
				if !unavailable(err) {
					cleanup()
				}
				return id, 0, fmt.Errorf("write blob chunks: %w", s.fail(ctx, err))
			}
		}
	}

	if err := ctx.Err(); err != nil {
		cleanup()
		return id, 0, err
	}
	file := bson.D{
		{Key: "_id", Value: id},
		{Key: "length", Value: size},
		{Key: "chunkSize", Value: int32(chunkSize)},
		{Key: "uploadDate", Value: time.Now()},
		{Key: "filename", Value: ns + "/" + key},
		{Key: "metadata", Value: bson.D{{Key: "ns", Value: ns}, {Key: "key", Value: key}}},
	}
	if _, err := s.files.InsertOne(ctx, file); err != nil {
		if definitelyNotApplied(err) {
			cleanup()
		}
		return id, 0, fmt.Errorf("write blob file: %w", s.fail(ctx, err))
	}
	return id, size, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// blobReader is a download in progress. Errors are classified like every
// other call's, so a connection lost mid-download reads as
// storage.ErrUnavailable.
type blobReader struct {
	s      *Store
	ctx    context.Context
	ds     *mongo.GridFSDownloadStream
	closed bool
}

func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.ds.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("mongodb: read blob: %w", b.s.fail(b.ctx, err))
	}
	return n, err
}

// Close may be called more than once, as callers of io.ReadCloser expect.
func (b *blobReader) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.ds.Close(); err != nil && !errors.Is(err, mongo.ErrStreamClosed) {
		return fmt.Errorf("mongodb: close blob: %w", err)
	}
	return nil
}

// retire schedules the deletion of a blob no object references any more.
// The grace period lets Gets that looked the object up just before it was
// replaced or removed finish reading the version they found: deleting at
// once would cut their download short.
func (s *Store) retire(id bson.ObjectID) {
	if s.opts.BlobGrace >= 0 {
		s.retireMu.Lock()
		// Checked under the lock that flushRetired takes after Close sets
		// closed, so no timer is added once the flush has run.
		if !s.closed.Load() {
			s.retiring[id] = time.AfterFunc(s.opts.BlobGrace, func() { s.retireFired(id) })
			s.retireMu.Unlock()
			return
		}
		s.retireMu.Unlock()
	}
	s.deleteNow(id)
}

func (s *Store) retireFired(id bson.ObjectID) {
	s.retireMu.Lock()
	if _, ok := s.retiring[id]; !ok { // flushRetired took it over
		s.retireMu.Unlock()
		return
	}
	delete(s.retiring, id)
	// Added under the lock, before flushRetired can run, so Close's Wait
	// sees it.
	s.deleting.Add(1)
	s.retireMu.Unlock()
	defer s.deleting.Done()
	s.deleteNow(id)
}

func (s *Store) deleteNow(ids ...bson.ObjectID) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := s.deleteBlobs(ctx, ids); err != nil {
		// Unreferenced, so the next Open's sweep gets it.
		slog.Warn("mongodb: deleting old blobs failed", "db", s.db.Name(), "count", len(ids), "err", err)
	}
}

// flushRetired deletes the blobs still waiting out their grace period, so
// that a clean shutdown leaves no garbage behind.
func (s *Store) flushRetired() {
	s.retireMu.Lock()
	ids := make([]bson.ObjectID, 0, len(s.retiring))
	for id, t := range s.retiring {
		t.Stop()
		ids = append(ids, id)
	}
	clear(s.retiring)
	s.retireMu.Unlock()
	if len(ids) > 0 {
		s.deleteNow(ids...)
	}
}

// deleteBlobs deletes files before their chunks, so a blob is never found
// with chunks missing; chunks left by a failure here are swept later.
func (s *Store) deleteBlobs(ctx context.Context, ids []bson.ObjectID) error {
	if len(ids) == 0 {
		return nil
	}
	in := bson.D{{Key: "$in", Value: ids}}
	if _, err := s.files.DeleteMany(ctx, bson.D{{Key: "_id", Value: in}}); err != nil {
		return fmt.Errorf("delete blob files: %w", s.fail(ctx, err))
	}
	if _, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: in}}); err != nil {
		return fmt.Errorf("delete blob chunks: %w", s.fail(ctx, err))
	}
	return nil
}

// sweepBatch bounds the size of one $in query.
const sweepBatch = 500

// sweepOrphans deletes what crashed Puts left: files no object references
// and chunks with no file, both older than OrphanAge. Age is what tells
// debris from a Put in progress on another node, which has written its blob
// but not yet its object document.
func (s *Store) sweepOrphans(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-s.opts.OrphanAge)

	cur, err := s.files.Find(ctx,
		bson.D{{Key: "uploadDate", Value: bson.D{{Key: "$lt", Value: cutoff}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return fmt.Errorf("find old blobs: %w", s.fail(ctx, err))
	}
	old, err := decodeIDs(ctx, cur, "_id")
	if err != nil {
		return fmt.Errorf("find old blobs: %w", s.fail(ctx, err))
	}
	removed := 0
	for batch := range chunkIDs(old) {
		cur, err := s.objects.Find(ctx,
			bson.D{{Key: "blob_id", Value: bson.D{{Key: "$in", Value: batch}}}},
			options.Find().SetProjection(bson.D{{Key: "blob_id", Value: 1}}))
		if err != nil {
			return fmt.Errorf("find referenced blobs: %w", s.fail(ctx, err))
		}
		refs, err := decodeIDs(ctx, cur, "blob_id")
		if err != nil {
			return fmt.Errorf("find referenced blobs: %w", s.fail(ctx, err))
		}
		orphans := minus(batch, refs)
		if err := s.deleteBlobs(ctx, orphans); err != nil {
			return err
		}
		removed += len(orphans)
	}

	// Chunk ids are made when the chunk is written, so their time is the
	// chunk's age.
	res := s.chunks.Distinct(ctx, "files_id",
		bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: bson.NewObjectIDFromTimestamp(cutoff)}}}})
	arr, err := res.Raw()
	if err != nil {
		return fmt.Errorf("find old chunks: %w", s.fail(ctx, err))
	}
	vals, err := arr.Values()
	if err != nil {
		return fmt.Errorf("find old chunks: %w", err)
	}
	var owners []bson.ObjectID
	for _, v := range vals {
		if id, ok := v.ObjectIDOK(); ok {
			owners = append(owners, id)
		}
	}
	strays := 0
	for batch := range chunkIDs(owners) {
		cur, err := s.files.Find(ctx,
			bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: batch}}}},
			options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return fmt.Errorf("find files of old chunks: %w", s.fail(ctx, err))
		}
		have, err := decodeIDs(ctx, cur, "_id")
		if err != nil {
			return fmt.Errorf("find files of old chunks: %w", s.fail(ctx, err))
		}
		missing := minus(batch, have)
		if len(missing) == 0 {
			continue
		}
		if _, err := s.chunks.DeleteMany(ctx,
			bson.D{{Key: "files_id", Value: bson.D{{Key: "$in", Value: missing}}}}); err != nil {
			return fmt.Errorf("delete stray chunks: %w", s.fail(ctx, err))
		}
		strays += len(missing)
	}
	if removed > 0 || strays > 0 {
		slog.Info("mongodb: cleared debris of interrupted writes", "db", s.db.Name(),
			"blobs", removed, "chunkless_files", strays)
	}
	return nil
}

// decodeIDs reads field (an ObjectID) from every document of cur.
func decodeIDs(ctx context.Context, cur *mongo.Cursor, field string) ([]bson.ObjectID, error) {
	defer cur.Close(context.WithoutCancel(ctx))
	var ids []bson.ObjectID
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup(field).ObjectIDOK(); ok {
			ids = append(ids, id)
		}
	}
	return ids, cur.Err()
}

func chunkIDs(ids []bson.ObjectID) func(func([]bson.ObjectID) bool) {
	return func(yield func([]bson.ObjectID) bool) {
		for len(ids) > 0 {
			n := min(len(ids), sweepBatch)
			if !yield(ids[:n]) {
				return
			}
			ids = ids[n:]
		}
	}
}

// minus returns the ids of all that are not in some.
func minus(all, some []bson.ObjectID) []bson.ObjectID {
	skip := make(map[bson.ObjectID]bool, len(some))
	for _, id := range some {
		skip[id] = true
	}
	var out []bson.ObjectID
	for _, id := range all {
		if !skip[id] {
			out = append(out, id)
		}
	}
	return out
}
