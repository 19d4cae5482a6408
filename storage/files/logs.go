package files

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cocaine-cloud/cocaine/storage"
)

// An app's log is two JSON-lines segments: APP.log, appended to with
// O_APPEND, and APP.log.1, the one before it. When the current segment
// would pass half of MaxLogBytes, or hold MaxLogLines lines, it is renamed
// over the previous one and a new one starts: the bound holds on disk in
// bytes (both segments together stay within MaxLogBytes, plus one append)
// at the cost of a rename, and the newest MaxLogLines lines are always
// there to read (the previous segment holds at least that many, unless
// the byte bound cut it shorter).
//
// A read scans the segments backwards from the end and stops as soon as it
// has its limit or reaches a line at or before since, so that reading the
// newest lines costs what they weigh, not what the log weighs. Lines are
// stored in the order they are appended, which is their time order except
// for stragglers (a batch stamped before another but appended after it):
// a straggler just older than since may be missed by a read with since.
//
// Appends are not fsynced: a crash may lose the last lines, which is a fair
// price for not syncing on every line an app prints.

// appLog is what this Store knows about one app's current segment. mu
// serialises appends, rotations and the start of reads, so a reader never
// sees half an append.
type appLog struct {
	mu sync.Mutex
	// known says the fields below reflect the file; they are rebuilt by
	// reading the file after a failure left them in doubt.
	known bool
	size  int64 // bytes in the current segment
	lines int   // lines in the current segment
	// torn says the file ends without a newline (a crash mid-append), so
	// the next append must start a fresh line.
	torn bool
	// changed is closed and replaced whenever lines are appended, for
	// followers in this process (see LogChanged).
	changed chan struct{}
}

func (s *Store) appLog(app string) *appLog {
	s.logsMu.Lock()
	defer s.logsMu.Unlock()
	l, ok := s.logs[app]
	if !ok {
		l = &appLog{changed: make(chan struct{})}
		s.logs[app] = l
	}
	return l
}

// logPath maps a checked app name to its current segment; the previous
// one is that path with ".1" added.
func (s *Store) logPath(app string) (string, error) {
	// Checked twice for the same reason as objectPath.
	if !storage.ValidName(app) || !filepath.IsLocal(app) || strings.ContainsAny(app, `/\`) {
		return "", fmt.Errorf("%w: app %q", storage.ErrInvalidName, app)
	}
	return filepath.Join(s.logsDir(), app+".log"), nil
}

func prevPath(path string) string { return path + ".1" }

// AppendLog appends lines to app's log. Lines with no App get app.
func (s *Store) AppendLog(ctx context.Context, app string, lines []storage.LogLine) error {
	if err := s.appendLog(ctx, app, lines); err != nil {
		return fmt.Errorf("files: append log %s: %w", app, err)
	}
	return nil
}

func (s *Store) appendLog(ctx context.Context, app string, lines []storage.LogLine) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	path, err := s.logPath(app)
	if err != nil {
		return err
	}
	cutoff := s.cutoff(time.Now())
	var buf bytes.Buffer
	n := 0
	for _, l := range lines {
		if l.Time.Before(cutoff) {
			continue // already past the age bound: never to be read
		}
		if l.App == "" {
			l.App = app
		}
		if err := encodeLine(&buf, l); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return nil
	}

	al := s.appLog(app)
	al.mu.Lock()
	defer al.mu.Unlock()
	if !al.known {
		if err := al.load(path); err != nil {
			return err
		}
	}
	if al.lines > 0 && s.full(al, int64(buf.Len()), n) {
		if err := os.Rename(path, prevPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			al.known = false
			return err
		}
		al.size, al.lines, al.torn = 0, 0, false
	}
	data := buf.Bytes()
	if al.torn {
		data = append([]byte{'\n'}, data...)
	}
	if err := appendFile(path, data); err != nil {
		// Part of the data may have made it; recount before trusting
		// the counters again.
		al.known = false
		return err
	}
	al.torn = false
	al.size += int64(len(data))
	al.lines += n
	close(al.changed)
	al.changed = make(chan struct{})
	return nil
}

// full says whether adding size bytes in n lines would take the current
// segment past its share of the bound.
func (s *Store) full(al *appLog, size int64, n int) bool {
	if b := s.opts.MaxLogBytes; b > 0 && al.size+size > b/2 {
		return true
	}
	if m := s.opts.MaxLogLines; m > 0 && al.lines+n > m {
		return true
	}
	return false
}

// cutoff is the time before which lines are past the age bound.
func (s *Store) cutoff(now time.Time) time.Time {
	if age := s.opts.MaxLogAge; age > 0 {
		return now.Add(-age)
	}
	return time.Time{}
}

func encodeLine(buf *bytes.Buffer, l storage.LogLine) error {
	js, err := json.Marshal(l)
	if err != nil {
		return err
	}
	buf.Write(js)
	buf.WriteByte('\n')
	return nil
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// load rebuilds al from the current segment at path: one pass over at
// most half the byte bound, once per app and process.
func (al *appLog) load(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		al.size, al.lines, al.torn, al.known = 0, 0, false, true
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var size int64
	lines, last := 0, byte('\n')
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		chunk, err := r.ReadSlice('\n')
		size += int64(len(chunk))
		if len(chunk) > 0 {
			last = chunk[len(chunk)-1]
			if last == '\n' {
				lines++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
	al.size, al.lines, al.torn, al.known = size, lines, last != '\n', true
	return nil
}

// ReadLog returns up to limit of the newest kept lines of app's log after
// since, oldest first. An app without a log has no lines.
func (s *Store) ReadLog(ctx context.Context, app string, since time.Time, limit int) ([]storage.LogLine, error) {
	lines, err := s.readLog(ctx, app, since, limit)
	if err != nil {
		return nil, fmt.Errorf("files: read log %s: %w", app, err)
	}
	return lines, nil
}

func (s *Store) readLog(ctx context.Context, app string, since time.Time, limit int) ([]storage.LogLine, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	path, err := s.logPath(app)
	if err != nil {
		return nil, err
	}
	want := limit
	if m := s.opts.MaxLogLines; m > 0 && (want <= 0 || want > m) {
		want = m
	}
	// Open both segments and note their sizes under the lock: the files
	// stay readable through a later rename, and the sizes exclude an
	// append still being written.
	al := s.appLog(app)
	al.mu.Lock()
	segs, err := openSegments(path)
	al.mu.Unlock()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, sg := range segs {
			sg.f.Close()
		}
	}()
	cutoff := s.cutoff(time.Now())
	var out []storage.LogLine
	done := false
	for _, sg := range segs {
		err := scanBack(sg.f, sg.size, func(raw []byte) bool {
			var l storage.LogLine
			if json.Unmarshal(raw, &l) != nil {
				return true // a line cut short by a crash
			}
			if !l.Time.After(since) {
				done = true
				return false
			}
			if l.Time.Before(cutoff) {
				return true
			}
			out = append(out, l)
			done = want > 0 && len(out) >= want
			return !done
		})
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	// Newest first so far.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if out == nil {
		out = []storage.LogLine{}
	}
	return out, nil
}

type segment struct {
	f    *os.File
	size int64
}

// openSegments opens the current segment, then the previous one, skipping
// those that do not exist.
func openSegments(path string) ([]segment, error) {
	var segs []segment
	for _, p := range []string{path, prevPath(path)} {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil {
				segs = append(segs, segment{f, fi.Size()})
				continue
			}
			f.Close()
		}
		for _, sg := range segs {
			sg.f.Close()
		}
		return nil, err
	}
	return segs, nil
}

// scanBack calls fn with each line of the first size bytes of f (without
// its newline), last line first, until fn returns false. A trailing piece
// without a newline counts as a line.
func scanBack(f *os.File, size int64, fn func([]byte) bool) error {
	const block = 64 << 10
	buf := make([]byte, 0, block)
	end := size     // f[end:] has been consumed
	var tail []byte // the start of a line whose end was in a later block
	for end > 0 {
		n := min(int64(block), end)
		start := end - n
		buf = buf[:n]
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		end = start
		chunk := append(buf, tail...)
		// Lines that end in this chunk; the first may begin before it.
		for {
			i := bytes.LastIndexByte(chunk, '\n')
			if i < 0 {
				break
			}
			if line := chunk[i+1:]; len(line) > 0 && !fn(line) {
				return nil
			}
			chunk = chunk[:i]
		}
		tail = append([]byte(nil), chunk...)
		buf = make([]byte, 0, block) // chunk may alias buf through tail
	}
	if len(tail) > 0 {
		fn(tail)
	}
	return nil
}

// LogChanged returns a channel closed when lines are appended to app's
// log after the call, by this process or (seen through the file system)
// another one, for followers that would otherwise poll. It may close
// without new lines.
func (s *Store) LogChanged(app string) (<-chan struct{}, error) {
	if _, err := s.logPath(app); err != nil {
		return nil, err
	}
	if err := s.watchLogs(); err != nil {
		return nil, err
	}
	al := s.appLog(app)
	al.mu.Lock()
	defer al.mu.Unlock()
	return al.changed, nil
}

// watchLogs starts, once, a watch on the log directory that wakes the
// followers of a log another process appends to.
func (s *Store) watchLogs() error {
	s.watchOnce.Do(func() {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			if err = w.Add(s.logsDir()); err != nil {
				w.Close()
			}
		}
		if err != nil {
			s.watchErr = fmt.Errorf("files: watch logs: %w", err)
			return
		}
		s.watcher = w
		go func() {
			for {
				select {
				case ev, ok := <-w.Events:
					if !ok {
						return
					}
					name := filepath.Base(ev.Name)
					app, ok := strings.CutSuffix(name, ".log")
					if !ok || !ev.Has(fsnotify.Write|fsnotify.Create) {
						continue
					}
					s.logsMu.Lock()
					al := s.logs[app]
					s.logsMu.Unlock()
					if al != nil {
						al.mu.Lock()
						close(al.changed)
						al.changed = make(chan struct{})
						al.mu.Unlock()
					}
				case _, ok := <-w.Errors:
					if !ok {
						return
					}
				}
			}
		}()
	})
	return s.watchErr
}

// RemoveLog deletes app's log; storage.ErrNotFound if there is none.
func (s *Store) RemoveLog(ctx context.Context, app string) error {
	if err := s.removeLog(ctx, app); err != nil {
		return fmt.Errorf("files: remove log %s: %w", app, err)
	}
	return nil
}

func (s *Store) removeLog(ctx context.Context, app string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	path, err := s.logPath(app)
	if err != nil {
		return err
	}
	al := s.appLog(app)
	al.mu.Lock()
	defer al.mu.Unlock()
	found := false
	for _, p := range []string{path, prevPath(path)} {
		if err := os.Remove(p); err == nil {
			found = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if !found {
		return storage.ErrNotFound
	}
	al.size, al.lines, al.torn, al.known = 0, 0, false, true
	close(al.changed)
	al.changed = make(chan struct{})
	return syncDir(s.logsDir())
}
