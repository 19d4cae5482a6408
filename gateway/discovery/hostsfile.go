package discovery

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// HostsFile is a file of announce endpoints, re-read when it changes. The
// format is 0.9's: one "host", "host:port" or "tcp://host:port" per line,
// "#" starts a comment, blank lines are ignored; defaultPort (0 means
// DefaultPort) completes a host given without one. A missing file is an
// empty set, logged once each time it goes missing; a malformed line is
// skipped with a warning naming its number.
func HostsFile(path string, defaultPort int) Source {
	if defaultPort <= 0 {
		defaultPort = DefaultPort
	}
	return &hostsFile{path: path, port: defaultPort, every: 500 * time.Millisecond}
}

type hostsFile struct {
	path  string
	port  int
	every time.Duration
	log   *slog.Logger // nil: slog.Default() when Run starts
	polls atomic.Int64 // lets tests wait for polls instead of sleeping
}

func (h *hostsFile) String() string { return "file:" + h.path }

// racyWindow: a file whose mtime is this close to when it was read may
// be written again without its mtime, size or inode changing (mtimes come
// from a coarse clock), so it is re-read even if its stat looks the same —
// git's "racily clean" problem.
const racyWindow = 2 * time.Second

func (h *hostsFile) Run(ctx context.Context, update func([]string)) error {
	log := h.log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("source", h.String())
	var (
		seen      fs.FileInfo // stat of the contents in data
		readAt    time.Time
		data      []byte
		haveData  bool
		set       []string
		published bool
		missing   bool   // the missing file was logged
		lastErr   string // the last other error logged, to log each once
	)
	publish := func(s []string) {
		if published && slices.Equal(s, set) {
			return
		}
		published, set = true, s
		update(append([]string{}, s...))
	}
	poll := func() {
		defer h.polls.Add(1)
		fi, err := os.Stat(h.path)
		if err == nil && fi.IsDir() {
			err = errors.New("is a directory")
		}
		if errors.Is(err, fs.ErrNotExist) {
			if !missing {
				log.Warn("hosts file missing: no endpoints from it until it appears")
				missing = true
			}
			seen, haveData, lastErr = nil, false, ""
			publish([]string{})
			return
		}
		if err != nil {
			// Unreadable is not empty: keep the last set, it is likelier
			// right than nothing while someone fixes the permissions.
			if err.Error() != lastErr {
				log.Error("cannot read hosts file; keeping its last endpoints", "err", err)
				lastErr = err.Error()
			}
			return
		}
		if missing {
			log.Info("hosts file appeared")
			missing = false
		}
		if seen != nil && os.SameFile(seen, fi) && seen.ModTime().Equal(fi.ModTime()) &&
			seen.Size() == fi.Size() && fi.ModTime().Before(readAt.Add(-racyWindow)) {
			return
		}
		now := time.Now()
		b, err := os.ReadFile(h.path)
		if err != nil {
			if err.Error() != lastErr {
				log.Error("cannot read hosts file; keeping its last endpoints", "err", err)
				lastErr = err.Error()
			}
			return // gone between stat and read: the next poll sees why
		}
		seen, readAt, lastErr = fi, now, ""
		if haveData && bytes.Equal(b, data) {
			return
		}
		data, haveData = b, true
		publish(parseHosts(b, h.port, log))
	}
	poll()
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			poll()
		}
	}
}

// parseHosts reads a hosts file's contents, warning about each bad line.
func parseHosts(b []byte, port int, log *slog.Logger) []string {
	var set []string
	for i, line := range strings.Split(string(b), "\n") {
		text, _, _ := strings.Cut(line, "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		ep, err := Normalize(text, port)
		if err != nil {
			log.Warn("hosts file: skipping malformed line", "line", i+1, "text", strings.TrimSpace(line), "err", err)
			continue
		}
		set = append(set, ep)
	}
	return sortSet(set)
}
