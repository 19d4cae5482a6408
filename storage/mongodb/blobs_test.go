package mongodb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/cocaine-cloud/cocaine/storage"
)

// counts returns how many GridFS files and chunks db holds.
func counts(t *testing.T, db *mongo.Database) (files, chunks int64) {
	t.Helper()
	ctx := context.Background()
	files, err := db.Collection(bucketName+".files").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	chunks, err = db.Collection(bucketName+".chunks").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return files, chunks
}

func wantCounts(t *testing.T, what string, db *mongo.Database, files, chunks int64) {
	t.Helper()
	if f, c := counts(t, db); f != files || c != chunks {
		t.Errorf("%s: %d files and %d chunks in GridFS, want %d and %d", what, f, c, files, chunks)
	}
}

// chunksOf is how many GridFS chunks a blob of n bytes takes.
func chunksOf(n int) int64 { return int64((n + chunkSize - 1) / chunkSize) }

func TestBlobsAreDeletedWithoutGrace(t *testing.T) {
	name := freshDB()
	s := mustOpen(t, shared.uri(name, "blob-grace=0s"))
	db := rawClient(t, shared).Database(name)
	ctx := context.Background()

	v1 := bytes.Repeat([]byte{1}, 3*chunkSize+5)
	if err := s.Put(ctx, "ns", "k", nil, bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "after the first Put", db, 1, chunksOf(len(v1)))
	v2 := []byte("short")
	if err := s.Put(ctx, "ns", "k", nil, bytes.NewReader(v2)); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "after an overwrite", db, 1, 1)
	if err := s.Put(ctx, "ns", "empty", nil, nil); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "after a Put of an empty blob", db, 2, 1)
	for _, k := range []string{"k", "empty"} {
		if err := s.Remove(ctx, "ns", k); err != nil {
			t.Fatal(err)
		}
	}
	wantCounts(t, "after Remove", db, 0, 0)
}

// A Get that found the old version keeps reading it whole while a Put
// replaces it: the old blob outlives the switch by the grace period.
func TestReaderKeepsOldVersionDuringGrace(t *testing.T) {
	name := freshDB()
	s, err := Open(context.Background(), shared.uri(name, ""))
	if err != nil {
		t.Fatal(err)
	}
	db := rawClient(t, shared).Database(name)
	ctx := context.Background()

	v1 := bytes.Repeat([]byte("v1"), 3*chunkSize) // six chunks, more than one batch
	if err := s.Put(ctx, "ns", "k", storage.Meta{"v": "1"}, bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	info, rc, err := s.Get(ctx, "ns", "k")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "ns", "k", storage.Meta{"v": "2"}, strings.NewReader("v2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "ns", "k"); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("reading the old version after it was replaced: %v", err)
	}
	if got := append(head, rest...); info.Meta["v"] != "1" || !bytes.Equal(got, v1) {
		t.Errorf("old reader got %d bytes of meta %v, want all %d bytes of version 1", len(got), info.Meta, len(v1))
	}
	wantCounts(t, "during the grace period", db, 2, chunksOf(len(v1))+1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "after Close", db, 0, 0)
}

func TestFailedPutLeavesNothing(t *testing.T) {
	name := freshDB()
	s := mustOpen(t, shared.uri(name, ""))
	db := rawClient(t, shared).Database(name)
	ctx := context.Background()
	boom := errors.New("boom")
	// Far enough in that some chunks were written before the reader failed.
	r := io.MultiReader(bytes.NewReader(make([]byte, 3<<20)), iotestErrReader{boom})
	if err := s.Put(ctx, "ns", "k", nil, r); !errors.Is(err, boom) {
		t.Fatalf("Put from a failing reader: err = %v, want boom", err)
	}
	wantCounts(t, "after a failed Put", db, 0, 0)
	if err := s.Put(ctx, "ns", "k", storage.Meta{"\xff": "x"}, strings.NewReader("x")); err == nil {
		t.Error("Put with invalid UTF-8 meta succeeded")
	}
	wantCounts(t, "after a Put with bad meta", db, 0, 0)
	if _, err := s.Stat(ctx, "ns", "k"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after failed Puts: err = %v, want ErrNotFound", err)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// Meta keys are arbitrary strings, including ones MongoDB field names
// cannot be.
func TestAwkwardMetaKeys(t *testing.T) {
	s := mustOpen(t, shared.uri(freshDB(), ""))
	meta := storage.Meta{"": "empty", "a.b": "dot", "$set": "dollar", "nul\x00key": "nul", "k": "nul\x00value"}
	if err := s.Put(context.Background(), "ns", "k", meta, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(context.Background(), "ns", "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Meta) != len(meta) {
		t.Fatalf("meta = %q, want %q", info.Meta, meta)
	}
	for k, v := range meta {
		if info.Meta[k] != v {
			t.Errorf("meta[%q] = %q, want %q", k, info.Meta[k], v)
		}
	}
}

// Open clears what crashed Puts leave behind, but only once it is old
// enough not to be another node's Put in progress, and never a blob an
// object uses.
func TestOpenSweepsOrphans(t *testing.T) {
	name := freshDB()
	ctx := context.Background()
	db := rawClient(t, shared).Database(name)
	files, chunks := db.Collection(bucketName+".files"), db.Collection(bucketName+".chunks")
	old := time.Now().Add(-2 * time.Hour)

	s := mustOpen(t, shared.uri(name, ""))
	if err := s.Put(ctx, "ns", "used", nil, strings.NewReader("in use")); err != nil {
		t.Fatal(err)
	}
	// An object whose blob is old must keep it.
	if _, err := files.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "uploadDate", Value: old}}}}); err != nil {
		t.Fatal(err)
	}

	addFile := func(uploaded time.Time) bson.ObjectID {
		id := bson.NewObjectIDFromTimestamp(uploaded)
		_, err := files.InsertOne(ctx, bson.D{
			{Key: "_id", Value: id}, {Key: "length", Value: int64(3)}, {Key: "chunkSize", Value: int32(chunkSize)},
			{Key: "uploadDate", Value: uploaded}, {Key: "filename", Value: "ns/crashed"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	addChunk := func(fileID bson.ObjectID, written time.Time) {
		_, err := chunks.InsertOne(ctx, bson.D{
			{Key: "_id", Value: bson.NewObjectIDFromTimestamp(written)}, {Key: "files_id", Value: fileID},
			{Key: "n", Value: int32(0)}, {Key: "data", Value: bson.Binary{Data: []byte("abc")}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	oldOrphan := addFile(old) // a Put that crashed before writing its object
	addChunk(oldOrphan, old)
	youngOrphan := addFile(time.Now()) // perhaps another node's Put, about to write its object
	addChunk(youngOrphan, time.Now())
	addChunk(bson.NewObjectIDFromTimestamp(old), old)               // an upload that crashed before its file
	addChunk(bson.NewObjectIDFromTimestamp(time.Now()), time.Now()) // an upload in progress
	wantCounts(t, "before the sweep", db, 3, 5)

	s2 := mustOpen(t, shared.uri(name, "orphan-age=1h"))
	wantCounts(t, "after the sweep", db, 2, 3)
	for _, id := range []bson.ObjectID{oldOrphan} {
		if n, _ := files.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}}); n != 0 {
			t.Errorf("old orphan %s survived", id.Hex())
		}
	}
	if n, _ := files.CountDocuments(ctx, bson.D{{Key: "_id", Value: youngOrphan}}); n != 1 {
		t.Error("a young unreferenced blob was deleted")
	}
	if _, blob := readAll(t, s2, "ns", "used"); string(blob) != "in use" {
		t.Errorf("object with an old blob reads %q after the sweep", blob)
	}
}

func TestIndexes(t *testing.T) {
	name := freshDB()
	mustOpen(t, shared.uri(name, ""))
	db := rawClient(t, shared).Database(name)
	want := map[string]struct {
		keys   string
		unique bool
	}{
		objectsName:            {"ns,key", true},
		logsName:               {"app,time,seq", false},
		bucketName + ".files":  {"filename,uploadDate", false},
		bucketName + ".chunks": {"files_id,n", true},
	}
	for coll, w := range want {
		specs, err := db.Collection(coll).Indexes().ListSpecifications(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, sp := range specs {
			var keys []string
			elems, _ := sp.KeysDocument.Elements()
			for _, e := range elems {
				keys = append(keys, e.Key())
			}
			if strings.Join(keys, ",") == w.keys {
				found = true
				if unique := sp.Unique != nil && *sp.Unique; unique != w.unique {
					t.Errorf("%s index on %s: unique = %v, want %v", coll, w.keys, unique, w.unique)
				}
			}
		}
		if !found {
			t.Errorf("%s has no index on %s", coll, w.keys)
		}
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(context.Background(), shared.uri(freshDB(), ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "ns", "k", nil, strings.NewReader("x")); !errors.Is(err, errClosed) {
		t.Errorf("Put after Close: err = %v, want errClosed", err)
	}
	if _, err := s.ReadLog(ctx, "app", time.Time{}, 0); !errors.Is(err, errClosed) {
		t.Errorf("ReadLog after Close: err = %v, want errClosed", err)
	}
}
