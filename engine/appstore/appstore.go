// Package appstore is the deployment store: it keeps each app's current
// package in storage namespace "apps" (what engines deploy), its previous
// versions in namespace "versions", and answers for the app's logs and
// crash logs. The REST API, the CLI's dev bootstrap and engine.PutApp all
// go through it, so every path to storage versions apps the same way.
//
// Engines never read "versions": they deploy the object in "apps" whenever
// its meta "version" differs from the one they run, and skip it while its
// meta "stopped" is "true". Every operation here is therefore expressed as
// a rewrite of that one object.
//
// Versions are decimal numbers that only grow (the upload time in
// nanoseconds, or one past the largest known should the clock step back),
// so history is ordered by number, never by storage timestamps.
//
// Rollback steps one version back in history each time it is called: the
// newest kept version older than the current one becomes current (its
// package, manifest and number are copied into "apps"), so two rollbacks
// go back two versions. The versions rolled past stay in history until
// trimmed; an upload after a rollback gets a number above all of them and
// becomes the newest.
//
// Stop and start only flip the current object's meta "stopped"; uploads
// and rollbacks keep it, so a stopped app stays stopped until started.
//
// Operations on one app are serialized within a Store. Two processes
// writing the same app at once (two gateways) may interleave; the last
// write of the current object wins and history may keep both versions.
package appstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/storage"
)

// NSVersions holds previous packages under key NAME@VERSION, with the same
// meta as the current object had.
const NSVersions = "versions"

// DefaultKeep is how many versions Put keeps per app when Options.Keep is 0.
const DefaultKeep = 5

// Meta keys of the current and version objects.
const (
	MetaVersion  = "version"  // decimal, grows with every upload
	MetaManifest = "manifest" // the manifest JSON, compacted
	MetaUploaded = "uploaded" // RFC 3339 time of the upload
	MetaStopped  = "stopped"  // "true" while the app must not run
	// MetaSeq counts uploads of an app from 1: the version as people
	// count them ("v3"), shown beside the number that orders history.
	MetaSeq = "seq"
)

var (
	// ErrInvalidName is returned for an app name outside NamePattern.
	ErrInvalidName = errors.New("invalid app name")
	// ErrNoPrevious is returned by Rollback when history holds no version
	// older than the current one.
	ErrNoPrevious = errors.New("no previous version")
	// ErrNoManifest is returned by CheckPackage for a package without a
	// manifest.json at its root.
	ErrNoManifest = errors.New("package has no manifest.json")
)

// NamePattern is what app names look like. Narrower than storage's
// pattern: ':' and '@' separate the parts of crash log and version keys,
// and the length leaves room for those suffixes within storage's 200.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidName reports whether name may be an app's name.
func ValidName(name string) bool { return NamePattern.MatchString(name) }

// Validator checks a package before it is stored and returns its manifest
// (with Raw set). It returns *manifest.Error for an invalid manifest and
// wraps archive's sentinels for a hostile or corrupt package.
type Validator func(pkg []byte) (*manifest.Manifest, error)

// Options configure a Store.
type Options struct {
	// Validate checks packages in Put. Required.
	Validate Validator
	// Keep is how many versions of an app are kept, the current one
	// included. Default DefaultKeep; the current one is never trimmed.
	Keep int
}

// Store is the deployment store over a storage.Storage.
type Store struct {
	st    storage.Storage
	opts  Options
	mu    sync.Mutex
	locks map[string]*appLock
}

type appLock struct {
	sync.Mutex
	users int
}

// New makes a Store.
func New(st storage.Storage, opts Options) *Store {
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	return &Store{st: st, opts: opts, locks: map[string]*appLock{}}
}

// lock serializes operations on one app; the entry goes away with its
// last user so that the map does not grow with every name ever asked for.
func (s *Store) lock(name string) func() {
	s.mu.Lock()
	l := s.locks[name]
	if l == nil {
		l = &appLock{}
		s.locks[name] = l
	}
	l.users++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.locks, name)
		}
		s.mu.Unlock()
	}
}

func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return nil
}

func versionKey(name, version string) string { return name + "@" + version }

func notFound(name string) error { return fmt.Errorf("app %s: %w", name, storage.ErrNotFound) }

// current stats the app's current object.
func (s *Store) current(ctx context.Context, name string) (storage.Info, error) {
	info, err := s.st.Stat(ctx, storage.NSApps, name)
	if errors.Is(err, storage.ErrNotFound) {
		return info, notFound(name)
	}
	if err != nil {
		return info, fmt.Errorf("app %s: %w", name, err)
	}
	return info, nil
}
