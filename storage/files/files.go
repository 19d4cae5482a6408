// Package files is the storage backend that keeps everything in a local
// directory, for single-node installs and tests. Import it for its side
// effect to make file:// URIs work with storage.Open:
//
//	file:///var/lib/cocaine
//	file://./state?max-log-lines=1000&max-log-age=24h
//
// Layout under the root directory:
//
//	<ns>/<key>       one file per object: header (meta) + blob, see objects.go
//	_logs/<app>.log  the JSON-lines log of each app (and <app>.log.1 before it), see logs.go
//	*/.tmp-*         writes in progress; left over only by a crash
//
// Valid names never start with '_' or '.', so neither the log directory nor
// temp files can collide with a namespace or a key.
//
// A directory must be used by one Store at a time: the log bound is kept
// with in-memory counters and a per-app mutex that other processes do not
// see.
package files

import (
	"github.com/fsnotify/fsnotify"

	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// Defaults for Options left zero.
const (
	DefaultMaxLogLines = 10000
	DefaultMaxLogAge   = 7 * 24 * time.Hour
	DefaultMaxLogBytes = 16 << 20
)

const (
	logsDirName = "_logs"
	tmpPrefix   = ".tmp-"
)

// Options tune a Store. Zero values mean the defaults; a negative value
// turns that bound off.
type Options struct {
	// MaxLogLines is how many of the newest lines are kept per app.
	MaxLogLines int
	// MaxLogAge is how old (by LogLine.Time) a kept line may be.
	MaxLogAge time.Duration
	// MaxLogBytes bounds an app's log on disk, in bytes: when it is
	// reached the oldest half goes, whatever MaxLogLines says.
	MaxLogBytes int64
}

func (o Options) withDefaults() Options {
	if o.MaxLogLines == 0 {
		o.MaxLogLines = DefaultMaxLogLines
	}
	if o.MaxLogAge == 0 {
		o.MaxLogAge = DefaultMaxLogAge
	}
	if o.MaxLogBytes == 0 {
		o.MaxLogBytes = DefaultMaxLogBytes
	}
	return o
}

// Store is a storage.Storage in a local directory.
type Store struct {
	dir    string
	opts   Options
	closed atomic.Bool

	// nsReady remembers namespace directories known to exist durably, so
	// that only the first Put into a namespace pays for syncing the root.
	nsReady sync.Map // ns → struct{}

	logsMu sync.Mutex
	logs   map[string]*appLog

	watchOnce sync.Once
	watcher   *fsnotify.Watcher // of the log directory, once a log is followed
	watchErr  error
}

var _ storage.Storage = (*Store)(nil)

func init() {
	storage.Register("file", func(ctx context.Context, u *url.URL) (storage.Storage, error) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("files: open: %w", err)
		}
		dir, opts, err := parseURI(u)
		if err != nil {
			return nil, err
		}
		s, err := Open(dir, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// Open opens (creating it if needed) the store rooted at dir and removes
// temp files a crash may have left behind.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("files: open: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("files: open %s: %w", dir, err)
	}
	s := &Store{dir: abs, opts: opts.withDefaults(), logs: map[string]*appLog{}}
	if err := os.MkdirAll(s.logsDir(), 0o750); err != nil {
		return nil, fmt.Errorf("files: open %s: %w", abs, err)
	}
	if err := s.removeTemps(); err != nil {
		return nil, fmt.Errorf("files: open %s: %w", abs, err)
	}
	return s, nil
}

// Dir returns the absolute root directory of the store.
func (s *Store) Dir() string { return s.dir }

// Close makes further calls fail. There is nothing to flush: every Put is
// on disk when it returns.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.watchOnce.Do(func() {}) // no watch may start after this
	if s.watcher != nil {
		s.watcher.Close()
	}
	return nil
}

var errClosed = errors.New("files: store is closed")

// ready reports why an operation may not start: a closed store or a done
// context.
func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

func (s *Store) logsDir() string { return filepath.Join(s.dir, logsDirName) }

// removeTemps deletes temp files one level down (in namespace directories
// and the log directory), which is the only place this package makes them.
func (s *Store) removeTemps() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || (e.Name() != logsDirName && !storage.ValidName(e.Name())) {
			continue
		}
		sub := filepath.Join(s.dir, e.Name())
		files, err := os.ReadDir(sub)
		if err != nil {
			return err
		}
		for _, f := range files {
			if f.Type().IsRegular() && strings.HasPrefix(f.Name(), tmpPrefix) {
				if err := os.Remove(filepath.Join(sub, f.Name())); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
		}
	}
	return nil
}
