package drivers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
)

// FilesystemMonitor submits an event per change under a path. The body is
// a MessagePack map:
//
//	{"path": "/abs/path/of/file", "op": "write", "ops": ["create", "write"]}
//
// op is one of create, write, remove, rename, chmod: what the change
// amounts to. Changes to one path within the "coalesce" window (ms after
// its last change, at most ten windows after its first) become one event;
// ops lists every kind seen in it, in order of first appearance, and op
// is the summary: remove or rename when the path ended gone, else create
// when it was new, else write, else chmod.
//
// "path" is relative to the app's spool folder unless absolute. It may be
// a directory (changes inside it; "recursive" follows subdirectories) or
// a file. A path that does not exist yet is watched through its nearest
// existing parent until it appears, and again after it is removed.
const FilesystemMonitor = "filesystem-monitor"

const (
	defaultCoalesce = 100 * time.Millisecond
	maxCoalesceMS   = 60 * 1000
	// A path written to without pause still gets an event this many
	// windows after its first change.
	coalesceCap = 10
)

type fsConfig struct {
	path      string
	recursive bool
	coalesce  time.Duration
}

func parseFS(d manifest.Driver) (fsConfig, []manifest.Problem) {
	s := newSettings(d)
	c := fsConfig{
		path:      s.str("path", true, "the file or directory to watch, relative to the app's spool folder or absolute"),
		recursive: s.boolean("recursive", false),
		coalesce:  s.millis("coalesce", false, "", defaultCoalesce, 0, maxCoalesceMS),
	}
	return c, s.done()
}

type fsMonitor struct {
	d      manifest.Driver
	target Target
	log    *slog.Logger
	cfg    fsConfig
	root   string // absolute and clean: fsnotify names are compared to it
	life   lifecycle
	stats  counters

	mu      sync.Mutex
	mode    fsMode
	watches int
}

var _ Driver = (*fsMonitor)(nil)

func init() {
	Register(FilesystemMonitor, newFSMonitor, func(d manifest.Driver) []manifest.Problem {
		_, ps := parseFS(d)
		return ps
	})
}

func newFSMonitor(d manifest.Driver, env Env) (Driver, error) {
	cfg, ps := parseFS(d)
	if err := problemsError(d, ps); err != nil {
		return nil, err
	}
	if env.Target == nil {
		return nil, errNoTarget(d)
	}
	root := cfg.path
	if !filepath.IsAbs(root) {
		root = filepath.Join(env.Spool, root)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("drivers: %s driver %q: %w", d.Type, d.Name, err)
	}
	m := &fsMonitor{d: d, target: env.Target, log: driverLogger(d, env), cfg: cfg, root: root}
	m.stats.log = m.log
	return m, nil
}

type fsMode uint8

const (
	fsWaiting fsMode = iota // root does not exist: its nearest existing parent is watched
	fsFile                  // root is a file: its directory is watched, other names ignored
	fsDir                   // root is a directory: it (and with recursive, its tree) is watched
)

func (m fsMode) String() string {
	return [...]string{"waiting", "file", "directory"}[m]
}

// Start sets up the watches before returning, so that a change made
// right after Start is seen.
func (m *fsMonitor) Start(context.Context) error {
	if err := m.life.begin(); err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("drivers: %s: %w", m.d.Name, err)
	}
	st := &fsState{m: m, w: w, watched: map[string]bool{}, pending: map[string]*pendingChange{}}
	if err := st.arm(false); err != nil {
		w.Close()
		return fmt.Errorf("drivers: %s: watch %s: %w", m.d.Name, m.root, err)
	}
	m.life.goRun(st.loop)
	return nil
}

func (m *fsMonitor) Stop() { m.life.end() }

func (m *fsMonitor) Info() map[string]any {
	info := m.stats.into(BaseInfo(m.d))
	m.mu.Lock()
	defer m.mu.Unlock()
	info["root"] = m.root
	info["mode"] = m.mode.String()
	info["watches"] = m.watches
	return info
}

// fsState belongs to the loop goroutine (and to Start before the loop).
type fsState struct {
	m       *fsMonitor
	w       *fsnotify.Watcher
	mode    fsMode
	watched map[string]bool
	pending map[string]*pendingChange
	seq     uint64
}

type pendingChange struct {
	ops           []string
	lastOp        string
	first, lastAt time.Time
	seq           uint64 // events leave in the order their first change came
}

// fsEvent is the body of an event.
type fsEvent struct {
	Path string   `msgpack:"path"`
	Op   string   `msgpack:"op"`
	Ops  []string `msgpack:"ops"`
}

func (s *fsState) loop(stop <-chan struct{}) {
	defer s.w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time
	for {
		select {
		case <-stop:
			// The changes already seen happened while the driver ran.
			s.flush(time.Time{})
			return
		case ev, ok := <-s.w.Events:
			if !ok {
				return
			}
			s.handle(ev)
		case err, ok := <-s.w.Errors:
			if !ok {
				return
			}
			// An overflow means lost events; nothing can recover them, but
			// the app should be able to find out.
			s.m.stats.fail(fmt.Errorf("watching %s: %w", s.m.root, err))
		case now := <-due:
			s.flush(now)
		}
		if at, ok := s.nextDue(); ok {
			timer.Reset(time.Until(at))
			due = timer.C
		} else {
			timer.Stop()
			due = nil
		}
	}
}

func (s *fsState) handle(ev fsnotify.Event) {
	name := filepath.Clean(ev.Name)
	root := s.m.root
	gone := ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
	switch s.mode {
	case fsWaiting:
		switch {
		case s.watched[name] && gone:
			s.forget(name)
			s.rearm(false)
		case ev.Has(fsnotify.Create) && (name == root || under(root, name)):
			s.rearm(false)
		}
	case fsFile:
		switch {
		case name == root:
			s.record(name, ev.Op)
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(root); err == nil && fi.IsDir() {
					s.rearm(false)
				}
			}
		case s.watched[name] && gone: // the directory holding root
			s.forget(name)
			s.rearm(true)
		}
	case fsDir:
		switch {
		case name == root:
			s.record(name, ev.Op)
			if gone {
				s.forget(root)
				s.rearm(true)
			}
		case under(name, root):
			s.record(name, ev.Op)
			if gone {
				s.forget(name)
			}
			if s.m.cfg.recursive && ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(name); err == nil && fi.IsDir() {
					// Files written into it before its watch existed
					// would otherwise go unseen.
					s.watchTree(name, true)
				}
			}
		}
	}
}

// rearm chooses the watches again after root appeared, vanished or
// changed kind. When root (re)appears, its creation and whatever it
// already holds are reported: they came before any watch could see them.
func (s *fsState) rearm(rootGone bool) {
	if err := s.arm(s.mode == fsWaiting || rootGone); err != nil {
		s.m.stats.fail(fmt.Errorf("watching %s: %w", s.m.root, err))
	}
}

// arm watches what root's current state calls for. It tries again when
// the tree changes under it, so that it does not settle on a parent
// whose child toward root was created meanwhile. With report, an
// existing root and what it holds are reported as created.
func (s *fsState) arm(report bool) error {
	root := s.m.root
	var err error
	for range 8 {
		want := map[string]bool{}
		var mode fsMode
		var primary string
		fi, serr := os.Stat(root)
		switch {
		case serr == nil && fi.IsDir():
			mode, primary = fsDir, root
			// Subdirectories already watched stay; watchTree adds the rest.
			for p := range s.watched {
				if s.m.cfg.recursive && under(p, root) {
					want[p] = true
				}
			}
		case serr == nil:
			mode, primary = fsFile, filepath.Dir(root)
		case errors.Is(serr, fs.ErrNotExist) || errors.Is(serr, syscall.ENOTDIR):
			mode, primary = fsWaiting, nearestDir(root)
		default:
			return serr
		}
		want[primary] = true
		err = s.apply(want, primary)
		if err == nil && s.settled(mode) {
			s.setMode(mode)
			if report && mode != fsWaiting {
				s.record(root, fsnotify.Create)
			}
			if mode == fsDir {
				s.watchTree(root, report)
			}
			return nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("the tree keeps changing: %w", err)
	}
	return nil
}

// settled reports whether root is still in the state mode was chosen for.
func (s *fsState) settled(mode fsMode) bool {
	fi, err := os.Stat(s.m.root)
	switch mode {
	case fsDir:
		return err == nil && fi.IsDir()
	case fsFile:
		return err == nil && !fi.IsDir()
	}
	return err != nil && s.watched[nearestDir(s.m.root)]
}

func (s *fsState) setMode(mode fsMode) {
	s.mode = mode
	s.m.mu.Lock()
	s.m.mode, s.m.watches = mode, len(s.watched)
	s.m.mu.Unlock()
}

// apply makes the watched set equal to want. Only a failure on primary,
// the directory the mode depends on, is returned; a subdirectory that
// vanished meanwhile is no longer there to watch.
func (s *fsState) apply(want map[string]bool, primary string) error {
	for p := range s.watched {
		if !want[p] {
			s.unwatch(p)
		}
	}
	var first error
	for p := range want {
		if s.watched[p] {
			continue
		}
		if err := s.w.Add(p); err != nil {
			switch {
			case p == primary:
				first = err
			case !errors.Is(err, fs.ErrNotExist):
				s.m.stats.fail(fmt.Errorf("watch %s: %w", p, err))
			}
			continue
		}
		s.watched[p] = true
	}
	return first
}

func (s *fsState) unwatch(p string) {
	// The kernel drops the watch of a removed directory by itself.
	if err := s.w.Remove(p); err != nil && !errors.Is(err, fsnotify.ErrNonExistentWatch) && !errors.Is(err, fsnotify.ErrClosed) {
		s.m.log.Debug("unwatch", "path", p, "err", err)
	}
	delete(s.watched, p)
}

// forget drops the watches on p and below it: it was removed or moved.
func (s *fsState) forget(p string) {
	for w := range s.watched {
		if w == p || under(w, p) {
			s.unwatch(w)
		}
	}
	s.setMode(s.mode)
}

// watchTree watches dir (and with recursive, every directory below it)
// and, with report, reports what they hold as created. Each directory is
// watched before it is listed, so that an entry made meanwhile is either
// listed or seen by the watch (or both; coalescing merges the two): a
// directory made with "mkdir -p" and filled at once is not missed.
func (s *fsState) watchTree(dir string, report bool) {
	defer s.setMode(s.mode)
	if !s.m.cfg.recursive {
		if report {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				s.record(filepath.Join(dir, e.Name()), fsnotify.Create)
			}
		}
		return
	}
	// WalkDir calls back for a directory before it reads its entries.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() && p != dir {
				return fs.SkipDir // unreadable: skipped rather than failing the tree
			}
			return nil
		}
		if report && p != dir {
			s.record(p, fsnotify.Create)
		}
		if !d.IsDir() || s.watched[p] {
			return nil
		}
		if err := s.w.Add(p); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.m.stats.fail(fmt.Errorf("watch %s: %w", p, err))
			}
			return fs.SkipDir
		}
		s.watched[p] = true
		return nil
	})
}

var opNames = []struct {
	op   fsnotify.Op
	name string
}{
	{fsnotify.Create, "create"},
	{fsnotify.Write, "write"},
	{fsnotify.Remove, "remove"},
	{fsnotify.Rename, "rename"},
	{fsnotify.Chmod, "chmod"},
}

func (s *fsState) record(p string, op fsnotify.Op) {
	now := time.Now()
	pc := s.pending[p]
	for _, o := range opNames {
		if !op.Has(o.op) {
			continue
		}
		if pc == nil {
			s.seq++
			pc = &pendingChange{first: now, seq: s.seq}
			s.pending[p] = pc
		}
		if !slices.Contains(pc.ops, o.name) {
			pc.ops = append(pc.ops, o.name)
		}
		pc.lastOp = o.name
	}
	if pc == nil {
		return // only kinds nobody asked for
	}
	pc.lastAt = now
	if s.m.cfg.coalesce == 0 {
		s.flush(time.Time{})
	}
}

func (s *fsState) dueAt(pc *pendingChange) time.Time {
	w := s.m.cfg.coalesce
	return minTime(pc.lastAt.Add(w), pc.first.Add(coalesceCap*w))
}

func (s *fsState) nextDue() (time.Time, bool) {
	var at time.Time
	for _, pc := range s.pending {
		if d := s.dueAt(pc); at.IsZero() || d.Before(at) {
			at = d
		}
	}
	return at, !at.IsZero()
}

// flush submits the changes due at now; all of them for a zero now.
func (s *fsState) flush(now time.Time) {
	var paths []string
	for p, pc := range s.pending {
		if now.IsZero() || !s.dueAt(pc).After(now) {
			paths = append(paths, p)
		}
	}
	sort.Slice(paths, func(i, j int) bool { return s.pending[paths[i]].seq < s.pending[paths[j]].seq })
	for _, p := range paths {
		pc := s.pending[p]
		delete(s.pending, p)
		s.emit(p, pc)
	}
}

func (s *fsState) emit(p string, pc *pendingChange) {
	body, err := msgpack.Marshal(fsEvent{Path: p, Op: summary(pc), Ops: pc.ops})
	if err != nil { // cannot happen for strings, but a lost change must show
		s.m.stats.fail(fmt.Errorf("encode change of %s: %w", p, err))
		return
	}
	_ = s.m.stats.submit(s.m.target, &pool.Job{Event: s.m.d.Emit, Body: body, Sink: &eventSink{c: &s.m.stats}})
}

// summary is what a burst of changes amounts to; see FilesystemMonitor.
func summary(pc *pendingChange) string {
	switch {
	case pc.lastOp == "remove" || pc.lastOp == "rename":
		return pc.lastOp
	case slices.Contains(pc.ops, "create"):
		return "create"
	case slices.Contains(pc.ops, "write"):
		return "write"
	}
	return pc.lastOp
}

// nearestDir is the closest existing directory above p.
func nearestDir(p string) string {
	for {
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		if fi, err := os.Stat(parent); err == nil && fi.IsDir() {
			return parent
		}
		p = parent
	}
}

// under reports whether p lies strictly inside dir.
func under(p, dir string) bool {
	if dir == "/" {
		return p != "/" && strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, dir+"/")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
