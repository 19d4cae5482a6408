package nats

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/cocaine-cloud/cocaine/storage"
)

// entry is an object's value in the KV bucket. The blob lives in the object
// store under Blob; switching Blob with a compare-and-set on the entry's
// revision is what makes Put atomic.
type entry struct {
	Meta     storage.Meta `json:"meta,omitempty"`
	Size     int64        `json:"size"`
	Modified time.Time    `json:"modified"`
	Blob     string       `json:"blob"`
}

func (e *entry) info(key string) storage.Info {
	return storage.Info{Key: key, Meta: maps.Clone(e.Meta), Size: e.Size, Modified: e.Modified}
}

func checkMeta(meta storage.Meta) error {
	for k, v := range meta {
		// JSON would silently turn invalid UTF-8 into U+FFFD, and the
		// object would no longer read back as written.
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("meta %q: not valid UTF-8", k)
		}
	}
	return nil
}

// Put reads the whole blob, uploads it under a fresh name, then switches
// the object's KV entry to it and retires the blob it pointed at before.
// Until the switch readers get the old version; after it, the new one,
// complete. A failure before the switch leaves the old object untouched.
//
// The blob is read into memory first: an upload must not hold the
// cluster's publish window open while a slow client trickles the body in,
// and app packages are bounded by the API's upload limit.
func (s *Store) Put(ctx context.Context, ns, key string, meta storage.Meta, blob io.Reader) error {
	if err := s.put(ctx, ns, key, meta, blob); err != nil {
		return fmt.Errorf("nats: put %s/%s: %w", ns, key, err)
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
	if err := checkMeta(meta); err != nil {
		return err
	}
	data, err := io.ReadAll(blob)
	if err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	// The reader may have taken long, or cancelled the context meanwhile.
	if err := ctx.Err(); err != nil {
		return err
	}
	e := entry{Meta: maps.Clone(meta), Size: int64(len(data)), Modified: time.Now().UTC(), Blob: nuid.Next()}
	if len(e.Meta) == 0 {
		e.Meta = nil
	}
	value, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if len(value) > maxEntry {
		return fmt.Errorf("meta is %d bytes, more than the %d a KV entry may hold", len(value), maxEntry)
	}

	octx, cancel := s.opContext(ctx, e.Size)
	defer cancel()
	// The object store's own meta names the object for whoever looks at the
	// bucket with the nats CLI; the KV entry stays the only authority on
	// which blob is current.
	_, err = s.obs.Put(octx, jetstream.ObjectMeta{
		Name:     e.Blob,
		Metadata: map[string]string{"ns": ns, "key": key},
	}, bytes.NewReader(data))
	if err != nil {
		// In the background: with the cluster gone the delete would wait
		// out another Timeout, and a blob left over harms nothing.
		s.deleting.Add(1)
		go func() {
			defer s.deleting.Done()
			s.deleteBlob(e.Blob)
		}()
		return fmt.Errorf("upload blob: %w", s.fail(ctx, octx, err))
	}
	prev, err := s.swap(octx, objectKey(ns, key), value)
	if err != nil {
		// The switch may have been applied even though its answer was
		// lost, and then the entry names the new blob: it is left alone.
		// At worst that leaves a blob nothing names, which costs space.
		return fmt.Errorf("write metadata: %w", s.fail(ctx, octx, err))
	}
	if prev != "" {
		s.retire(prev)
	}
	return nil
}

// swap sets the KV entry k to value and returns the blob the entry named
// before ("" for a new object). Each attempt is a compare-and-set on the
// revision it read, so when Puts of one key race, each knows exactly which
// blob it replaced and none is leaked or retired twice.
func (s *Store) swap(ctx context.Context, k string, value []byte) (string, error) {
	for {
		cur, err := s.kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = s.kv.Create(ctx, k, value)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // created meanwhile by another Put
			}
			return "", err
		case err != nil:
			return "", err
		}
		var old entry
		if err := json.Unmarshal(cur.Value(), &old); err != nil {
			return "", fmt.Errorf("entry %s: %w", k, err)
		}
		_, err = s.kv.Update(ctx, k, value, cur.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return "", err
		}
		return old.Blob, nil
	}
}

// lookup reads an object's KV entry.
func (s *Store) lookup(ctx context.Context, ns, key string) (entry, uint64, error) {
	var e entry
	kve, err := s.kv.Get(ctx, objectKey(ns, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return e, 0, storage.ErrNotFound
	}
	if err != nil {
		return e, 0, err
	}
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return e, 0, fmt.Errorf("entry %s/%s: %w", ns, key, err)
	}
	return e, kve.Revision(), nil
}

// Get returns the object and its blob, read whole and checked against its
// SHA-256 before Get returns, so a reader never sees part of a blob.
func (s *Store) Get(ctx context.Context, ns, key string) (storage.Info, io.ReadCloser, error) {
	info, data, err := s.get(ctx, ns, key)
	if err != nil {
		return storage.Info{}, nil, fmt.Errorf("nats: get %s/%s: %w", ns, key, err)
	}
	return info, io.NopCloser(bytes.NewReader(data)), nil
}

func (s *Store) get(ctx context.Context, ns, key string) (storage.Info, []byte, error) {
	if err := s.ready(ctx); err != nil {
		return storage.Info{}, nil, err
	}
	if err := storage.CheckNames(ns, key); err != nil {
		return storage.Info{}, nil, err
	}
	for attempt := 0; ; attempt++ {
		octx, cancel := s.opContext(ctx, 0)
		e, _, err := s.lookup(octx, ns, key)
		cancel()
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return storage.Info{}, nil, err
			}
			return storage.Info{}, nil, s.fail(ctx, octx, err)
		}
		data, err := s.download(ctx, e)
		// The blob is gone only when the object was replaced or removed
		// after the lookup, and its grace ran out (or was off): look again.
		if errors.Is(err, jetstream.ErrObjectNotFound) && attempt < 3 {
			continue
		}
		if err != nil {
			return storage.Info{}, nil, fmt.Errorf("read blob: %w", err)
		}
		return e.info(key), data, nil
	}
}

// download reads a blob's chunks one by one from the stream leader
// (STREAM.MSG.GET with next_by_subj) rather than through nats.go's object
// reader. That reader is fed by an ephemeral consumer, and on nats-server
// 2.9 one created just after a server died could be left without a
// working leader until the call timed out, in about one read in three;
// now and then it also handed back a chunk twice (a digest mismatch). A
// message get needs nothing but the stream's leader, like every other
// call here, and the digest is checked here all the same.
func (s *Store) download(ctx context.Context, e entry) ([]byte, error) {
	octx, cancel := s.opContext(ctx, e.Size)
	defer cancel()
	info, err := s.obs.GetInfo(octx, e.Blob)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, s.fail(ctx, octx, err)
	}
	if int64(info.Size) != e.Size {
		return nil, fmt.Errorf("blob %s has %d bytes, its entry says %d", e.Blob, info.Size, e.Size)
	}
	want, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", e.Blob, err)
	}
	subj := "$O." + info.Bucket + ".C." + info.NUID
	buf := make([]byte, 0, info.Size)
	h := sha256.New()
	seq := uint64(1)
	for range info.Chunks {
		m, err := s.blobStream.GetMsg(octx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			// Purged under us: the blob was retired meanwhile.
			return nil, jetstream.ErrObjectNotFound
		}
		if err != nil {
			return nil, s.fail(ctx, octx, err)
		}
		buf = append(buf, m.Data...)
		h.Write(m.Data)
		seq = m.Sequence + 1
	}
	if uint64(len(buf)) != info.Size || !bytes.Equal(h.Sum(nil), want) {
		return nil, fmt.Errorf("blob %s: %w (%d bytes read, %d stored)", e.Blob, jetstream.ErrDigestMismatch, len(buf), info.Size)
	}
	return buf, nil
}

// Stat returns an object's metadata without its blob.
func (s *Store) Stat(ctx context.Context, ns, key string) (storage.Info, error) {
	info, err := s.stat(ctx, ns, key)
	if err != nil {
		return storage.Info{}, fmt.Errorf("nats: stat %s/%s: %w", ns, key, err)
	}
	return info, nil
}

func (s *Store) stat(ctx context.Context, ns, key string) (storage.Info, error) {
	if err := s.ready(ctx); err != nil {
		return storage.Info{}, err
	}
	if err := storage.CheckNames(ns, key); err != nil {
		return storage.Info{}, err
	}
	octx, cancel := s.opContext(ctx, 0)
	defer cancel()
	e, _, err := s.lookup(octx, ns, key)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return storage.Info{}, err
		}
		return storage.Info{}, s.fail(ctx, octx, err)
	}
	return e.info(key), nil
}

// List returns the keys of ns starting with prefix, sorted.
func (s *Store) List(ctx context.Context, ns, prefix string) ([]string, error) {
	keys, err := s.list(ctx, ns, prefix)
	if err != nil {
		return nil, fmt.Errorf("nats: list %s: %w", ns, err)
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
	octx, cancel := s.opContext(ctx, 0)
	defer cancel()
	// Encoding does not keep the order or the prefixes of names (an
	// escape is three bytes), so the namespace is listed whole and
	// filtered here. The server has the subjects of the namespace in an
	// index, so this does not read the entries.
	all, err := s.listKeys(octx, encode(ns)+".*")
	if err != nil {
		return nil, s.fail(ctx, octx, err)
	}
	seen := map[string]bool{}
	out := []string{}
	for _, k := range all {
		_, tok, _ := strings.Cut(k, ".")
		key, err := decode(tok)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(key, prefix) && !seen[key] {
			seen[key] = true
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out, nil
}

// listKeys lists the KV keys matching filter (a key pattern, such as
// "ns.*"). It asks the stream's leader for the subjects that hold
// messages, rather than going through nats.go's key lister: that one is a
// watcher, an ephemeral consumer, which lives on one replica. It may be
// behind the leader, so a key put a moment ago can be missing. On
// nats-server 2.9, a consumer created just after a server died may also
// get no answer at all. Remove purges a key's subject, so that an
// unlisted key and a removed one are the same thing here.
func (s *Store) listKeys(ctx context.Context, filter string) ([]string, error) {
	pre := "$KV." + s.opts.Bucket + "_objects."
	info, err := s.kvStream.Info(ctx, jetstream.WithSubjectFilter(pre+filter))
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		keys = append(keys, strings.TrimPrefix(subj, pre))
	}
	return keys, nil
}

// Remove deletes an object; its blob is retired like a replaced one.
func (s *Store) Remove(ctx context.Context, ns, key string) error {
	if err := s.remove(ctx, ns, key); err != nil {
		return fmt.Errorf("nats: remove %s/%s: %w", ns, key, err)
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
	octx, cancel := s.opContext(ctx, 0)
	defer cancel()
	e, rev, err := s.lookup(octx, ns, key)
	if errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err != nil {
		return s.fail(ctx, octx, err)
	}
	// A purge of the key's subject up to the revision read, rather than
	// a KV delete: it leaves no marker behind, so List (which lists the
	// subjects holding messages) does not see removed keys, and a Put
	// that raced in after the lookup keeps its newer revision. Then
	// that Put simply comes after this Remove.
	err = s.kvStream.Purge(octx, jetstream.WithPurgeSubject("$KV."+s.opts.Bucket+"_objects."+objectKey(ns, key)),
		jetstream.WithPurgeSequence(rev+1))
	if err != nil {
		return s.fail(ctx, octx, err)
	}
	s.retire(e.Blob)
	return nil
}

// retire deletes a blob after BlobGrace, so that Gets that looked up the
// old entry just before a Put or Remove can still read it.
func (s *Store) retire(blob string) {
	if s.opts.BlobGrace < 0 || s.closed.Load() {
		s.deleteBlob(blob)
		return
	}
	s.retireMu.Lock()
	defer s.retireMu.Unlock()
	if _, dup := s.retiring[blob]; dup {
		return
	}
	s.retiring[blob] = time.AfterFunc(s.opts.BlobGrace, func() {
		s.retireMu.Lock()
		_, mine := s.retiring[blob]
		delete(s.retiring, blob)
		s.retireMu.Unlock()
		if mine {
			s.deleteBlob(blob)
		}
	})
}

// flushRetired deletes every blob waiting out its grace, for Close. All
// the deletes share one Timeout, so Close returns in bounded time even
// when the cluster is gone.
func (s *Store) flushRetired() {
	s.retireMu.Lock()
	blobs := make([]string, 0, len(s.retiring))
	for b, t := range s.retiring {
		if t.Stop() {
			blobs = append(blobs, b)
		}
		delete(s.retiring, b)
	}
	s.retireMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	for _, b := range blobs {
		s.deleteBlobCtx(ctx, b)
	}
}

// deleteBlob deletes a blob best effort: a blob left behind costs space,
// never correctness, since no entry names it.
func (s *Store) deleteBlob(blob string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	s.deleteBlobCtx(ctx, blob)
}

func (s *Store) deleteBlobCtx(ctx context.Context, blob string) {
	s.deleting.Add(1)
	defer s.deleting.Done()
	if ctx.Err() != nil {
		return
	}
	if err := s.obs.Delete(ctx, blob); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		logWarn("nats: deleting a retired blob failed", "bucket", s.opts.Bucket, "blob", blob, "err", err)
	}
}
