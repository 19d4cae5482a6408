package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/cocaine-cloud/cocaine/storage"
)

// objectDoc is an object's entry in the objects collection. The blob lives
// in GridFS under BlobID; the document is switched to a new blob in one
// findAndModify, which is what makes Put atomic.
type objectDoc struct {
	NS   string     `bson:"ns"`
	Key  string     `bson:"key"`
	Meta []metaPair `bson:"meta"`
	// Size is kept here (as well as in the GridFS file) so that Stat and
	// List need not touch GridFS.
	Size     int64         `bson:"size"`
	Modified time.Time     `bson:"modified"`
	BlobID   bson.ObjectID `bson:"blob_id"`
}

// metaPair stores one metadata entry. Meta is a list of pairs rather than a
// subdocument because meta keys are arbitrary strings, and field names with
// dots, a leading '$' or nothing at all are refused or misread by some
// servers (FerretDB among them).
type metaPair struct {
	K string `bson:"k"`
	V string `bson:"v"`
}

func encodeMeta(meta storage.Meta) ([]metaPair, error) {
	pairs := make([]metaPair, 0, len(meta))
	for k, v := range meta {
		// BSON strings must be UTF-8; a server may reject or mangle others.
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("meta %q: not valid UTF-8", k)
		}
		pairs = append(pairs, metaPair{k, v})
	}
	// Sorted, so that equal meta makes equal documents.
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].K < pairs[j].K })
	return pairs, nil
}

func (d *objectDoc) info() storage.Info {
	meta := make(storage.Meta, len(d.Meta))
	for _, p := range d.Meta {
		meta[p.K] = p.V
	}
	return storage.Info{Key: d.Key, Meta: meta, Size: d.Size, Modified: d.Modified}
}

func objectFilter(ns, key string) bson.D {
	return bson.D{{Key: "ns", Value: ns}, {Key: "key", Value: key}}
}

// Put uploads the blob under a fresh id, then points the object's document
// at it, then retires the blob it pointed at before. Until the switch
// readers get the old version; after it, the new one, complete. A failure
// before the switch leaves the old object untouched.
func (s *Store) Put(ctx context.Context, ns, key string, meta storage.Meta, blob io.Reader) error {
	if err := s.put(ctx, ns, key, meta, blob); err != nil {
		return fmt.Errorf("mongodb: put %s/%s: %w", ns, key, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, ns, key string, meta storage.Meta, blob io.Reader) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if err := storage.CheckNames(ns, key); err != nil {
		return err
	}
	pairs, err := encodeMeta(meta)
	if err != nil {
		return err
	}
	id, size, err := s.upload(ctx, ns, key, blob)
	if err != nil {
		return err
	}
	doc := objectDoc{
		NS: ns, Key: key, Meta: pairs, Size: size, BlobID: id,
		// BSON dates keep milliseconds; cutting here makes what Put
		// returns agree with what Stat reads back.
		Modified: time.Now().UTC().Truncate(time.Millisecond),
	}
	if err := ctx.Err(); err != nil {
		s.deleteNow(id)
		return err
	}
	prev, replaced, err := s.swap(ctx, doc)
	if err != nil {
		if definitelyNotApplied(err) {
			s.deleteNow(id)
		}
		return fmt.Errorf("write metadata: %w", s.fail(ctx, err))
	}
	if replaced && prev != id {
		s.retire(prev)
	}
	return nil
}

// swap upserts doc and returns the blob id the object had before, if any.
func (s *Store) swap(ctx context.Context, doc objectDoc) (bson.ObjectID, bool, error) {
	// No projection: FerretDB does not implement one on findAndModify, and
	// the document is small.
	opts := options.FindOneAndReplace().SetUpsert(true).SetReturnDocument(options.Before)
	var err error
	// Two first Puts of a key may both try to insert; the unique index lets
	// one win and the other fails with a duplicate key, after which a retry
	// finds the document and replaces it like any later Put.
	for range 3 {
		var old objectDoc
		err = s.objects.FindOneAndReplace(ctx, objectFilter(doc.NS, doc.Key), doc, opts).Decode(&old)
		switch {
		case err == nil:
			return old.BlobID, true, nil
		case errors.Is(err, mongo.ErrNoDocuments):
			return bson.ObjectID{}, false, nil
		case !mongo.IsDuplicateKeyError(err):
			return bson.ObjectID{}, false, err
		}
	}
	return bson.ObjectID{}, false, err
}

// find reads an object's document.
func (s *Store) find(ctx context.Context, ns, key string) (objectDoc, error) {
	var doc objectDoc
	if err := s.ready(ctx); err != nil {
		return doc, err
	}
	if err := storage.CheckNames(ns, key); err != nil {
		return doc, err
	}
	err := s.objects.FindOne(ctx, objectFilter(ns, key)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return doc, storage.ErrNotFound
	}
	if err != nil {
		return doc, fmt.Errorf("read metadata: %w", s.fail(ctx, err))
	}
	return doc, nil
}

// Get returns the object's info and its blob; the caller closes the reader.
// The reader streams from the database and fails with an error wrapping
// storage.ErrUnavailable if the connection is lost midway.
func (s *Store) Get(ctx context.Context, ns, key string) (storage.Info, io.ReadCloser, error) {
	info, rc, err := s.get(ctx, ns, key)
	if err != nil {
		return storage.Info{}, nil, fmt.Errorf("mongodb: get %s/%s: %w", ns, key, err)
	}
	return info, rc, nil
}

func (s *Store) get(ctx context.Context, ns, key string) (storage.Info, io.ReadCloser, error) {
	// The blob found through the document can be gone by the time it is
	// opened only if the object changed in between and the old blob's grace
	// ran out (or there is none); looking again finds the new version.
	for range 3 {
		doc, err := s.find(ctx, ns, key)
		if err != nil {
			return storage.Info{}, nil, err
		}
		ds, err := s.bucket.OpenDownloadStream(ctx, doc.BlobID)
		if errors.Is(err, mongo.ErrFileNotFound) {
			continue
		}
		if err != nil {
			return storage.Info{}, nil, fmt.Errorf("open blob: %w", s.fail(ctx, err))
		}
		if got := ds.GetFile().Length; got != doc.Size {
			ds.Close()
			return storage.Info{}, nil, fmt.Errorf("corrupt object: blob %s has %d bytes, metadata says %d", doc.BlobID.Hex(), got, doc.Size)
		}
		return doc.info(), &blobReader{s: s, ctx: ctx, ds: ds}, nil
	}
	return storage.Info{}, nil, errors.New("blob keeps disappearing: the object is being replaced faster than it can be opened")
}

// Stat returns the object's info without touching its blob.
func (s *Store) Stat(ctx context.Context, ns, key string) (storage.Info, error) {
	doc, err := s.find(ctx, ns, key)
	if err != nil {
		return storage.Info{}, fmt.Errorf("mongodb: stat %s/%s: %w", ns, key, err)
	}
	return doc.info(), nil
}

// List returns the keys of ns starting with prefix, sorted.
func (s *Store) List(ctx context.Context, ns, prefix string) ([]string, error) {
	keys, err := s.list(ctx, ns, prefix)
	if err != nil {
		return nil, fmt.Errorf("mongodb: list %s: %w", ns, err)
	}
	return keys, nil
}

func (s *Store) list(ctx context.Context, ns, prefix string) ([]string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if !storage.ValidName(ns) {
		return nil, fmt.Errorf("%w: namespace %q", storage.ErrInvalidName, ns)
	}
	filter := bson.D{{Key: "ns", Value: ns}}
	if prefix != "" {
		// Valid keys are ASCII, so a prefix with any other byte matches
		// nothing; for the rest, bumping the last byte bounds the range
		// without a regex, whose escaping and index use vary by server.
		if strings.IndexFunc(prefix, func(r rune) bool { return r >= 0x7f }) >= 0 {
			return []string{}, nil
		}
		upper := prefix[:len(prefix)-1] + string(prefix[len(prefix)-1]+1)
		filter = append(filter, bson.E{Key: "key", Value: bson.D{
			{Key: "$gte", Value: prefix}, {Key: "$lt", Value: upper},
		}})
	}
	cur, err := s.objects.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "key", Value: 1}, {Key: "_id", Value: 0}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	keys := []string{}
	for cur.Next(ctx) {
		key, ok := cur.Current.Lookup("key").StringValueOK()
		// The range is rechecked because servers differ in how they compare
		// strings; the byte order Go sorts by is what List promises.
		if ok && strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Remove deletes the object's document, then retires its blob.
func (s *Store) Remove(ctx context.Context, ns, key string) error {
	if err := s.remove(ctx, ns, key); err != nil {
		return fmt.Errorf("mongodb: remove %s/%s: %w", ns, key, err)
	}
	return nil
}

func (s *Store) remove(ctx context.Context, ns, key string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if err := storage.CheckNames(ns, key); err != nil {
		return err
	}
	var old objectDoc
	err := s.objects.FindOneAndDelete(ctx, objectFilter(ns, key)).Decode(&old)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return storage.ErrNotFound
	}
	if err != nil {
		return s.fail(ctx, err)
	}
	s.retire(old.BlobID)
	return nil
}
