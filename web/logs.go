package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cocaine-cloud/cocaine/storage"
)

// defaultLogLimit is how many lines a log request returns when it names
// no limit; with follow, how many earlier lines come before the new ones.
const defaultLogLimit = 1000

// logs answers an app's log as NDJSON, one storage.LogLine per line,
// oldest first. With follow=1 it then keeps the response open and sends
// new lines as storage gets them, a batch (flushed) per poll.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.fail(w, r, fmt.Errorf("%w: since: %q is not an RFC 3339 time", errBadRequest, v))
			return
		}
		since = t
	}
	limit := defaultLogLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.fail(w, r, fmt.Errorf("%w: limit: %q is not a count", errBadRequest, v))
			return
		}
		limit = n
	}
	// A HEAD has no body to follow into.
	follow := (q.Get("follow") == "1" || q.Get("follow") == "true") && r.Method != http.MethodHead
	if ok, err := s.store.Exists(r.Context(), name); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("app %s: %w", name, storage.ErrNotFound)
		}
		s.fail(w, r, err)
		return
	}
	lines, err := s.store.Logs(r.Context(), name, since, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	enc := json.NewEncoder(w)
	if wantsEvents(r) {
		// The dashboard's live tail: the same lines as server-sent events.
		w.Header().Set("Content-Type", "text/event-stream")
		enc = json.NewEncoder(sseLines{w})
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	t := newTail(since)
	if err := t.write(enc, t.fresh(lines)); err != nil || !follow {
		return
	}
	s.follow(r.Context(), w, enc, name, t)
}

// followSafety is how often a follower whose storage notifies it of new
// lines reads anyway, to notice an app removed elsewhere.
const followSafety = 5 * time.Second

// follow sends lines newer than t has sent until the client leaves, the
// server closes or the app is removed. It waits for the storage to say
// the log changed where the storage can (files), else polls; each read
// asks only for lines after the last sent, which costs what they weigh.
func (s *Server) follow(ctx context.Context, w http.ResponseWriter, enc *json.Encoder, name string, t *tail) {
	rc := http.NewResponseController(w)
	// Headers and the first batch go out now: a follower must see that
	// the stream is open before the app prints anything.
	if rc.Flush() != nil {
		return
	}
	poll := s.cfg.FollowPoll
	if s.store.LogChanged(name) != nil {
		poll = followSafety
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	// Taken before each read, so a line appended after the read wakes
	// the next wait; closed at first, so the first read is at once (lines
	// may have come since the handler's read).
	changed := closedChan
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-changed:
		case <-tick.C:
		}
		changed = s.store.LogChanged(name)
		lines, err := s.store.Logs(ctx, name, t.since(), 0)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("following a log", "app", name, "err", err)
			}
			continue // storage may come back; the client keeps waiting
		}
		lines = t.fresh(lines)
		if len(lines) == 0 {
			// A removed app prints nothing more: end the stream rather
			// than follow it forever.
			if ok, err := s.store.Exists(ctx, name); err == nil && !ok {
				return
			}
			continue
		}
		if t.write(enc, lines) != nil || rc.Flush() != nil {
			return
		}
	}
}

var closedChan <-chan struct{} = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// tail remembers where a followed log is. Storage filters lines by time
// (strictly after since), and several lines may share a timestamp, some
// of them stored after a poll read the others: so each poll asks from
// just before the newest time sent and drops the lines at that time it
// has already sent. A line stored later with an older time than one
// already sent is not followed.
type tail struct {
	last   time.Time
	atLast map[lineKey]int // lines sent whose Time == last
}

type lineKey struct {
	nanos                    int64
	app, slave, stream, text string
}

func keyOf(l storage.LogLine) lineKey {
	return lineKey{l.Time.UnixNano(), l.App, l.Slave, l.Stream, l.Text}
}

func newTail(since time.Time) *tail {
	return &tail{last: since, atLast: map[lineKey]int{}}
}

func (t *tail) since() time.Time {
	if t.last.IsZero() {
		return t.last
	}
	return t.last.Add(-time.Nanosecond)
}

// fresh returns the lines not sent yet.
func (t *tail) fresh(lines []storage.LogLine) []storage.LogLine {
	seen := map[lineKey]int{}
	var out []storage.LogLine
	for _, l := range lines {
		if l.Time.Before(t.last) {
			continue
		}
		if l.Time.Equal(t.last) {
			k := keyOf(l)
			if seen[k]++; seen[k] <= t.atLast[k] {
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

// write sends lines (fresh ones) and moves the tail past them.
func (t *tail) write(enc *json.Encoder, lines []storage.LogLine) error {
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
		switch {
		case l.Time.After(t.last):
			t.last = l.Time
			clear(t.atLast)
			t.atLast[keyOf(l)]++
		case l.Time.Equal(t.last):
			t.atLast[keyOf(l)]++
		}
	}
	return nil
}

func (s *Server) crashes(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	list, err := s.store.Crashes(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(list) == 0 {
		// An app without crash logs and an app that does not exist look
		// alike otherwise.
		if ok, err := s.store.Exists(r.Context(), name); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("app %s: %w", name, storage.ErrNotFound)
			}
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"crashlogs": list})
}

func (s *Server) crashLog(w http.ResponseWriter, r *http.Request) {
	c, err := s.store.CrashLog(r.Context(), chi.URLParam(r, "name"), chi.URLParam(r, "key"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
