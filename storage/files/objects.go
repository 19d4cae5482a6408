package files

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cocaine-cloud/cocaine/storage"
)

// An object is one file, so that meta and blob change together with a
// single rename:
//
//	magic    8 bytes  "cocobj1\n"
//	length   4 bytes  big-endian length of the header JSON
//	header   JSON     {"modified": RFC 3339 time, "meta": {...}}
//	blob     the rest of the file
//
// The blob's size is the file's size minus the header, so the blob can be
// streamed in without knowing its length up front.
const magic = "cocobj1\n"

const (
	prefixLen = len(magic) + 4
	// maxHeader bounds what a corrupt length field can make Get allocate.
	maxHeader = 1 << 20
)

type header struct {
	Modified time.Time    `json:"modified"`
	Meta     storage.Meta `json:"meta,omitempty"`
}

// encodeHeader rejects meta that JSON would not round-trip exactly: it
// replaces invalid UTF-8 with U+FFFD.
func encodeHeader(meta storage.Meta, modified time.Time) ([]byte, error) {
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("meta %q: not valid UTF-8", k)
		}
	}
	js, err := json.Marshal(header{Modified: modified, Meta: meta})
	if err != nil {
		return nil, err
	}
	if len(js) > maxHeader {
		return nil, fmt.Errorf("meta takes %d bytes, more than %d", len(js), maxHeader)
	}
	buf := make([]byte, 0, prefixLen+len(js))
	buf = append(buf, magic...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(js)))
	return append(buf, js...), nil
}

// readHeader reads the header from the start of r and returns it with the
// offset at which the blob starts.
func readHeader(r io.Reader) (header, int64, error) {
	var h header
	var prefix [prefixLen]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return h, 0, fmt.Errorf("corrupt object: short prefix: %w", err)
	}
	if string(prefix[:len(magic)]) != magic {
		return h, 0, errors.New("corrupt object: bad magic")
	}
	n := binary.BigEndian.Uint32(prefix[len(magic):])
	if n > maxHeader {
		return h, 0, fmt.Errorf("corrupt object: header length %d", n)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return h, 0, fmt.Errorf("corrupt object: short header: %w", err)
	}
	if err := json.Unmarshal(js, &h); err != nil {
		return h, 0, fmt.Errorf("corrupt object: header: %w", err)
	}
	return h, int64(prefixLen) + int64(n), nil
}

// objectPath maps a checked name to its file. storage.NamePattern already
// keeps names free of separators and dots, but it is an exported variable,
// so the path is checked again rather than trusted to stay inside the root.
func (s *Store) objectPath(ns, key string) (string, error) {
	if err := storage.CheckNames(ns, key); err != nil {
		return "", err
	}
	if !filepath.IsLocal(ns) || !filepath.IsLocal(key) || strings.ContainsAny(ns+key, `/\`) {
		return "", fmt.Errorf("%w: %q/%q is not a local path", storage.ErrInvalidName, ns, key)
	}
	return filepath.Join(s.dir, ns, key), nil
}

// Put writes the object to a temp file and renames it over the old one;
// see writeAtomic.
func (s *Store) Put(ctx context.Context, ns, key string, meta storage.Meta, blob io.Reader) error {
	if err := s.put(ctx, ns, key, meta, blob); err != nil {
		return fmt.Errorf("files: put %s/%s: %w", ns, key, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, ns, key string, meta storage.Meta, blob io.Reader) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if _, err := s.objectPath(ns, key); err != nil {
		return err
	}
	hdr, err := encodeHeader(meta, time.Now().UTC())
	if err != nil {
		return err
	}
	dir := filepath.Join(s.dir, ns)
	if err := s.ensureNamespace(ns, dir); err != nil {
		return err
	}
	return writeAtomic(ctx, dir, key, func(w io.Writer) error {
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		if blob == nil {
			return nil
		}
		_, err := io.Copy(w, ctxReader{ctx, blob})
		return err
	})
}

// ensureNamespace creates the namespace directory and syncs the root so
// that the directory itself survives a crash along with the first object
// renamed into it.
func (s *Store) ensureNamespace(ns, dir string) error {
	if _, ok := s.nsReady.Load(ns); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.nsReady.Store(ns, struct{}{})
	return nil
}

// objectReader is the blob of an open object file. Being a SectionReader
// it also seeks, so callers such as http.ServeContent can use it directly.
type objectReader struct {
	*io.SectionReader
	f *os.File
}

func (r objectReader) Close() error { return r.f.Close() }

// open opens an object and reads its header. The open file keeps this
// version readable even if a Put renames another over it meanwhile.
func (s *Store) open(ctx context.Context, ns, key string) (storage.Info, *os.File, int64, error) {
	var info storage.Info
	if err := s.ready(ctx); err != nil {
		return info, nil, 0, err
	}
	path, err := s.objectPath(ns, key)
	if err != nil {
		return info, nil, 0, err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return info, nil, 0, storage.ErrNotFound
	}
	if err != nil {
		return info, nil, 0, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	var h header
	var off int64
	if err == nil {
		h, off, err = readHeader(f)
	}
	if err == nil && fi.Size() < off {
		err = errors.New("corrupt object: file shorter than its header")
	}
	if err != nil {
		f.Close()
		return info, nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	info = storage.Info{Key: key, Meta: h.Meta, Size: fi.Size() - off, Modified: h.Modified}
	if info.Meta == nil {
		info.Meta = storage.Meta{}
	}
	return info, f, off, nil
}

// Get returns the object's info and its blob; the caller closes the reader.
func (s *Store) Get(ctx context.Context, ns, key string) (storage.Info, io.ReadCloser, error) {
	info, f, off, err := s.open(ctx, ns, key)
	if err != nil {
		return storage.Info{}, nil, fmt.Errorf("files: get %s/%s: %w", ns, key, err)
	}
	return info, objectReader{io.NewSectionReader(f, off, info.Size), f}, nil
}

// Stat returns the object's info without its blob.
func (s *Store) Stat(ctx context.Context, ns, key string) (storage.Info, error) {
	info, f, _, err := s.open(ctx, ns, key)
	if err != nil {
		return storage.Info{}, fmt.Errorf("files: stat %s/%s: %w", ns, key, err)
	}
	f.Close()
	return info, nil
}

// List returns the keys of ns starting with prefix, sorted. Entries that are
// not valid names (temp files, strays) are not objects and are skipped.
func (s *Store) List(ctx context.Context, ns, prefix string) ([]string, error) {
	keys, err := s.list(ctx, ns, prefix)
	if err != nil {
		return nil, fmt.Errorf("files: list %s: %w", ns, err)
	}
	return keys, nil
}

func (s *Store) list(ctx context.Context, ns, prefix string) ([]string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	// Any valid key will do: only the namespace is being checked.
	if _, err := s.objectPath(ns, "x"); err != nil {
		return nil, err
	}
	// os.ReadDir sorts by name, which is the byte order List promises.
	entries, err := os.ReadDir(filepath.Join(s.dir, ns))
	if errors.Is(err, os.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	keys := []string{}
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(name, prefix) && storage.ValidName(name) {
			keys = append(keys, name)
		}
	}
	return keys, nil
}

// Remove deletes the object.
func (s *Store) Remove(ctx context.Context, ns, key string) error {
	if err := s.remove(ctx, ns, key); err != nil {
		return fmt.Errorf("files: remove %s/%s: %w", ns, key, err)
	}
	return nil
}

func (s *Store) remove(ctx context.Context, ns, key string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	path, err := s.objectPath(ns, key)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return storage.ErrNotFound
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := os.Remove(path); errors.Is(err, os.ErrNotExist) {
		return storage.ErrNotFound
	} else if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
