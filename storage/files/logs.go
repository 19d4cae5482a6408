package files

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// Logs are JSON-lines files appended with O_APPEND. The bounds are enforced
// exactly when reading and lazily on disk: a log is rewritten (atomically,
// like an object) only once it holds a quarter more lines than the bound or
// its oldest line is a tenth of MaxLogAge past it, so appends stay cheap and
// a rewrite is paid for by many appends.
//
// Appends are not fsynced: a crash may lose the last lines, which is a fair
// price for not syncing on every line an app prints.

// appLog is what AppendLog knows about one app's log file. mu serialises
// appends, rewrites and reads, so a reader never sees half an append.
type appLog struct {
	mu sync.Mutex
	// known says the fields below reflect the file; they are rebuilt by
	// reading the file after a failure left them in doubt.
	known  bool
	lines  int
	oldest time.Time
	// torn says the file ends without a newline (a crash mid-append), so
	// the next append must start a fresh line.
	torn bool
}

func (s *Store) appLog(app string) *appLog {
	s.logsMu.Lock()
	defer s.logsMu.Unlock()
	l, ok := s.logs[app]
	if !ok {
		l = &appLog{}
		s.logs[app] = l
	}
	return l
}

// logPath maps a checked app name to its log file.
func (s *Store) logPath(app string) (string, error) {
	// Checked twice for the same reason as objectPath.
	if !storage.ValidName(app) || !filepath.IsLocal(app) || strings.ContainsAny(app, `/\`) {
		return "", fmt.Errorf("%w: app %q", storage.ErrInvalidName, app)
	}
	return filepath.Join(s.logsDir(), app+".log"), nil
}

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
	if len(lines) == 0 {
		return nil
	}
	var buf bytes.Buffer
	oldest := lines[0].Time
	for _, l := range lines {
		if l.App == "" {
			l.App = app
		}
		if err := encodeLine(&buf, l); err != nil {
			return err
		}
		if l.Time.Before(oldest) {
			oldest = l.Time
		}
	}

	al := s.appLog(app)
	al.mu.Lock()
	defer al.mu.Unlock()
	if !al.known {
		if err := al.load(path); err != nil {
			return err
		}
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
	if al.lines == 0 || oldest.Before(al.oldest) {
		al.oldest = oldest
	}
	al.lines += len(lines)

	if now := time.Now(); s.overBound(al, now) {
		// The lines are in; failing to trim is not a reason to tell the
		// caller (who might retry and duplicate them) that they are not.
		if err := s.compact(path, al, now); err != nil {
			al.known = false
			slog.Warn("files: trimming app log failed", "app", app, "path", path, "err", err)
		}
	}
	return nil
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

// load rebuilds al from the file at path.
func (al *appLog) load(path string) error {
	lines, torn, err := readLines(path)
	if err != nil {
		return err
	}
	al.lines, al.oldest, al.torn = len(lines), oldestOf(lines), torn
	al.known = true
	return nil
}

func oldestOf(lines []storage.LogLine) time.Time {
	var t time.Time
	for i, l := range lines {
		if i == 0 || l.Time.Before(t) {
			t = l.Time
		}
	}
	return t
}

// overBound says whether the file has drifted far enough past the bound to
// be worth rewriting.
func (s *Store) overBound(al *appLog, now time.Time) bool {
	if n := s.opts.MaxLogLines; n > 0 && al.lines > n+n/4+1 {
		return true
	}
	if age := s.opts.MaxLogAge; age > 0 && al.lines > 0 && al.oldest.Before(now.Add(-age-age/10)) {
		return true
	}
	return false
}

// compact rewrites the log at path to what the bound keeps.
func (s *Store) compact(path string, al *appLog, now time.Time) error {
	lines, _, err := readLines(path)
	if err != nil {
		return err
	}
	lines = s.trim(lines, now)
	err = writeAtomic(context.Background(), s.logsDir(), filepath.Base(path), func(w io.Writer) error {
		var buf bytes.Buffer
		for _, l := range lines {
			if err := encodeLine(&buf, l); err != nil {
				return err
			}
		}
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return err
	}
	al.lines, al.oldest, al.torn, al.known = len(lines), oldestOf(lines), false, true
	return nil
}

// trim keeps the lines the bound allows: those young enough, and of them
// the newest MaxLogLines.
func (s *Store) trim(lines []storage.LogLine, now time.Time) []storage.LogLine {
	if age := s.opts.MaxLogAge; age > 0 {
		cutoff := now.Add(-age)
		kept := lines[:0]
		for _, l := range lines {
			if !l.Time.Before(cutoff) {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	if n := s.opts.MaxLogLines; n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// readLines parses a log file, skipping lines that do not parse (such as
// one cut short by a crash), and reports whether the file ends mid-line.
// A missing file is an empty log.
func readLines(path string) ([]storage.LogLine, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	var lines []storage.LogLine
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		raw, err := r.ReadBytes('\n')
		if len(raw) > 0 {
			var l storage.LogLine
			if json.Unmarshal(raw, &l) == nil {
				lines = append(lines, l)
			}
		}
		if err == io.EOF {
			return lines, len(raw) > 0, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
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
	al := s.appLog(app)
	al.mu.Lock()
	lines, _, err := readLines(path)
	al.mu.Unlock()
	if err != nil {
		return nil, err
	}
	lines = s.trim(lines, time.Now())
	out := []storage.LogLine{}
	for _, l := range lines {
		if l.Time.After(since) {
			out = append(out, l)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
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
	if err := os.Remove(path); errors.Is(err, os.ErrNotExist) {
		return storage.ErrNotFound
	} else if err != nil {
		return err
	}
	al.lines, al.oldest, al.torn, al.known = 0, time.Time{}, false, true
	return syncDir(s.logsDir())
}
