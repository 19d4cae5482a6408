package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cocaine-cloud/cocaine/storage"
)

// An app's log is subject B.logs.<app> of stream B_logs: each AppendLog
// is one message (or a few, for a batch over maxLogMsg), a JSON array of
// lines, in append order. The stream bounds the log: it keeps at most
// MaxLogLines messages per subject (the oldest go first), and drops
// messages MaxLogAge after they were stored. Since a message holds at
// least one line, that keeps at least the newest MaxLogLines lines, and
// ReadLog cuts to exactly the bound, applying the age bound by each
// line's own time (a line may be appended long after it was written).
//
// ReadLog reads the messages one by one from the stream leader
// (STREAM.MSG.GET with next_by_subj), not through a consumer: an
// ephemeral consumer lives on one replica, which may be behind the leader
// or, on nats-server 2.9 right after a server died, get no leader at all.

// maxLogMsg is the most JSON one log message carries, well under the
// server's default 1 MiB payload limit.
const maxLogMsg = 256 << 10

// maxLineText is the longest line text kept; longer ones are cut, so that
// one line always fits a message.
const maxLineText = 200 << 10

var logWarn = slog.Warn

func checkApp(app string) error {
	if !storage.ValidName(app) {
		return fmt.Errorf("%w: app %q", storage.ErrInvalidName, app)
	}
	return nil
}

func (s *Store) logSubject(app string) string { return s.logSubj + "." + encode(app) }

// AppendLog adds lines to app's log. A line's App is always the log it was
// appended to.
func (s *Store) AppendLog(ctx context.Context, app string, lines []storage.LogLine) error {
	if err := s.appendLog(ctx, app, lines); err != nil {
		return fmt.Errorf("nats: append log %s: %w", app, err)
	}
	return nil
}

func (s *Store) appendLog(ctx context.Context, app string, lines []storage.LogLine) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if err := checkApp(app); err != nil {
		return err
	}
	if len(lines) == 0 {
		return nil
	}
	octx, cancel := s.opContext(ctx, 0)
	defer cancel()
	msgs, err := packLines(app, lines)
	if err != nil {
		return err
	}
	subj := s.logSubject(app)
	// All messages are sent before any acknowledgement is awaited, in
	// order on one connection, so the stream stores them in order and one
	// round trip serves the whole batch.
	acks := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, data := range msgs {
		f, err := s.js.PublishMsgAsync(&natsio.Msg{Subject: subj, Data: data},
			jetstream.WithExpectStream(s.logs.CachedInfo().Config.Name))
		if err != nil {
			return s.fail(ctx, octx, err)
		}
		acks = append(acks, f)
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return s.fail(ctx, octx, err)
		case <-octx.Done():
			return s.fail(ctx, octx, octx.Err())
		}
	}
	return nil
}

// packLines encodes lines as JSON arrays of at most maxLogMsg bytes.
func packLines(app string, lines []storage.LogLine) ([][]byte, error) {
	var msgs [][]byte
	var cur []json.RawMessage
	size := 2
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		b, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		msgs = append(msgs, b)
		cur, size = nil, 2
		return nil
	}
	for _, l := range lines {
		l.App = app
		// JSON would replace invalid UTF-8 anyway; doing it here says so.
		l.Slave = strings.ToValidUTF8(l.Slave, "\uFFFD")
		l.Stream = strings.ToValidUTF8(l.Stream, "\uFFFD")
		l.Text = strings.ToValidUTF8(l.Text, "\uFFFD")
		if len(l.Text) > maxLineText {
			l.Text = strings.ToValidUTF8(l.Text[:maxLineText], "") + " [cut]"
		}
		b, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		if size+len(b)+1 > maxLogMsg {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		cur = append(cur, b)
		size += len(b) + 1
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return msgs, nil
}

// ReadLog returns up to limit of the newest kept lines of app's log after
// since, oldest first. An app without a log has no lines.
func (s *Store) ReadLog(ctx context.Context, app string, since time.Time, limit int) ([]storage.LogLine, error) {
	lines, err := s.readLog(ctx, app, since, limit)
	if err != nil {
		return nil, fmt.Errorf("nats: read log %s: %w", app, err)
	}
	return lines, nil
}

func (s *Store) readLog(ctx context.Context, app string, since time.Time, limit int) ([]storage.LogLine, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if err := checkApp(app); err != nil {
		return nil, err
	}
	octx, cancel := s.opContext(ctx, 0)
	defer cancel()
	all, err := s.fetchLog(octx, app)
	if err != nil {
		return nil, s.fail(ctx, octx, err)
	}
	// Oldest first by the line's own time; lines of the same instant keep
	// the order they were appended in.
	slices.SortStableFunc(all, func(a, b storage.LogLine) int { return a.Time.Compare(b.Time) })
	cutoff := since
	if age := s.opts.MaxLogAge; age > 0 {
		if c := time.Now().Add(-age); c.After(cutoff) {
			// Lines exactly at the age bound are kept, as in the other
			// backends, while since is exclusive.
			cutoff = c.Add(-time.Nanosecond)
		}
	}
	out := all[:0]
	for _, l := range all {
		if cutoff.IsZero() || l.Time.After(cutoff) {
			out = append(out, l)
		}
	}
	n := len(out)
	if m := s.opts.MaxLogLines; m > 0 && n > m {
		n = m
	}
	if limit > 0 && n > limit {
		n = limit
	}
	return slices.Clone(out[len(out)-n:]), nil
}

// fetchLog reads every stored line of app, in append order.
func (s *Store) fetchLog(ctx context.Context, app string) ([]storage.LogLine, error) {
	subj := s.logSubject(app)
	var out []storage.LogLine
	for seq := uint64(1); ; {
		m, err := s.logs.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var lines []storage.LogLine
		if err := json.Unmarshal(m.Data, &lines); err != nil {
			return nil, fmt.Errorf("log message %d: %w", m.Sequence, err)
		}
		for _, l := range lines {
			l.App = app
			out = append(out, l)
		}
		seq = m.Sequence + 1
	}
}

// RemoveLog deletes app's log; storage.ErrNotFound if there is none.
func (s *Store) RemoveLog(ctx context.Context, app string) error {
	if err := s.removeLog(ctx, app); err != nil {
		return fmt.Errorf("nats: remove log %s: %w", app, err)
	}
	return nil
}

func (s *Store) removeLog(ctx context.Context, app string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if err := checkApp(app); err != nil {
		return err
	}
	octx, cancel := s.opContext(ctx, 0)
	defer cancel()
	subj := s.logSubject(app)
	info, err := s.logs.Info(octx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return s.fail(ctx, octx, err)
	}
	if info.State.Subjects[subj] == 0 {
		return storage.ErrNotFound
	}
	if err := s.logs.Purge(octx, jetstream.WithPurgeSubject(subj)); err != nil {
		return s.fail(ctx, octx, err)
	}
	return nil
}
