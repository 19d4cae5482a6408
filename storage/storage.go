// Package storage defines where the platform keeps what must outlive a
// process: app manifests and packages, logs, crash logs and node records.
//
// An object is namespace/key → (metadata, blob), as in Cocaine 0.9. Backends
// register themselves by URI scheme (file://, mongodb://) and every backend
// must pass the conformance suite in storage/storagetest.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"sync"
	"time"
)

// Namespaces used by the platform.
const (
	NSApps      = "apps"      // key: app name; meta: manifest and version; blob: package tar.gz
	NSCrashlogs = "crashlogs" // key: app:unixnano:slave; blob: last output of a crashed slave
	NSNodes     = "nodes"     // key: node id; meta: endpoints
)

// ErrNotFound is returned when an object (or a log) does not exist.
var ErrNotFound = errors.New("storage: not found")

// ErrInvalidName is returned for a namespace or key outside NamePattern.
var ErrInvalidName = errors.New("storage: invalid name")

// ErrUnavailable wraps backend failures that may heal on their own
// (a lost database connection); callers may retry later.
var ErrUnavailable = errors.New("storage: unavailable")

// NamePattern is what namespaces and keys may look like in every backend.
// It keeps keys safe as file names and as GridFS names alike.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$`)

// ValidName reports whether s may be used as a namespace or key.
func ValidName(s string) bool { return NamePattern.MatchString(s) }

// Meta is an object's metadata. Strings only, so that every backend
// round-trips it exactly.
type Meta map[string]string

// Info describes a stored object.
type Info struct {
	Key      string
	Meta     Meta
	Size     int64     // blob size in bytes
	Modified time.Time // last Put
}

// LogLine is one line of an app's log.
type LogLine struct {
	Time   time.Time `json:"time"`
	App    string    `json:"app"`
	Slave  string    `json:"slave,omitempty"`
	Stream string    `json:"stream,omitempty"` // stdout, stderr or engine
	Text   string    `json:"text"`
}

// Storage is an object store. Implementations are safe for concurrent use.
//
// Put is atomic: a reader sees the old object or the complete new one, never
// a partial blob. Get returns a reader the caller must close.
type Storage interface {
	Put(ctx context.Context, ns, key string, meta Meta, blob io.Reader) error
	Get(ctx context.Context, ns, key string) (Info, io.ReadCloser, error)
	Stat(ctx context.Context, ns, key string) (Info, error)
	// List returns the keys of ns that start with prefix, sorted.
	List(ctx context.Context, ns, prefix string) ([]string, error)
	Remove(ctx context.Context, ns, key string) error

	// AppendLog adds lines to app's log. Backends bound the log (by count,
	// age and, where they can, bytes); the oldest lines go first. app must be a ValidName.
	AppendLog(ctx context.Context, app string, lines []LogLine) error
	// ReadLog returns up to limit lines of app's log, oldest first, with
	// Time after since. limit <= 0 means all that are kept. An app with no
	// log has no lines: an empty slice and a nil error, not ErrNotFound.
	ReadLog(ctx context.Context, app string, since time.Time, limit int) ([]LogLine, error)
	// RemoveLog forgets app's log; ErrNotFound if there is none.
	RemoveLog(ctx context.Context, app string) error

	Close() error
}

// LogWatcher is implemented by backends that can tell when an app's log
// grows, so that a follower waits for it instead of polling.
type LogWatcher interface {
	// LogChanged returns a channel closed when lines may have been
	// appended to app's log after the call (it may close without any).
	LogChanged(app string) (<-chan struct{}, error)
}

// Opener opens a backend from its URI.
type Opener func(ctx context.Context, u *url.URL) (Storage, error)

var (
	mu       sync.RWMutex
	backends = map[string]Opener{}
)

// Register makes a backend available under a URI scheme. It is meant to be
// called from a backend's init and panics on a duplicate, like database/sql.
func Register(scheme string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := backends[scheme]; dup {
		panic("storage: Register called twice for scheme " + scheme)
	}
	backends[scheme] = open
}

// Schemes lists the registered backends.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(backends))
	for s := range backends {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open opens the storage named by uri, e.g. file:///var/lib/cocaine or
// mongodb://127.0.0.1:27017/cocaine.
func Open(ctx context.Context, uri string) (Storage, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("storage: parse uri %q: %w", uri, err)
	}
	mu.RLock()
	open, ok := backends[u.Scheme]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("storage: no backend for scheme %q (have %v)", u.Scheme, Schemes())
	}
	return open(ctx, u)
}

// CheckNames validates a namespace and key the same way in every backend.
func CheckNames(ns, key string) error {
	if !ValidName(ns) {
		return fmt.Errorf("%w: namespace %q", ErrInvalidName, ns)
	}
	if !ValidName(key) {
		return fmt.Errorf("%w: key %q", ErrInvalidName, key)
	}
	return nil
}
