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

// Log lines are one message each on subject B.logs.<app> of stream B_logs,
// in append order. The stream enforces the bounds itself: it keeps at most
// MaxLogLines messages per subject (the oldest go first) and drops
// messages MaxLogAge after they were stored. ReadLog applies the age bound
// exactly, by each line's own time, since a line may be appended long
// after it was written.

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
	subj := s.logSubject(app)
	// All lines are sent before any acknowledgement is awaited, in order
	// on one connection, so the stream stores them in order and one
	// round trip serves the whole batch.
	acks := make([]jetstream.PubAckFuture, 0, len(lines))
	for _, l := range lines {
		l.App = app
		// JSON would replace invalid UTF-8 anyway; doing it here says so.
		l.Slave = strings.ToValidUTF8(l.Slave, "\uFFFD")
		l.Stream = strings.ToValidUTF8(l.Stream, "\uFFFD")
		l.Text = strings.ToValidUTF8(l.Text, "\uFFFD")
		data, err := json.Marshal(l)
		if err != nil {
			return err
		}
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

// fetchLog reads every stored line of app through a short-lived consumer.
func (s *Store) fetchLog(ctx context.Context, app string) ([]storage.LogLine, error) {
	cons, err := s.logs.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     s.logSubject(app),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: max(s.opts.Timeout, 5*time.Second),
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		// Best effort: the server drops the consumer after its inactive
		// threshold anyway.
		dctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.logs.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	pending := cons.CachedInfo().NumPending
	var out []storage.LogLine
	for pending > 0 {
		wait := time.Until(deadline(ctx))
		if wait <= 0 {
			return nil, context.DeadlineExceeded
		}
		batch, err := cons.Fetch(int(min(pending, 1000)), jetstream.FetchMaxWait(wait))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var l storage.LogLine
			if err := json.Unmarshal(m.Data(), &l); err != nil {
				return nil, fmt.Errorf("log message: %w", err)
			}
			l.App = app
			out = append(out, l)
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, natsio.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			// Nothing within the wait: the lines counted at the start
			// were trimmed meanwhile, or the cluster stalled.
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			break
		}
	}
	return out, nil
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(DefaultTimeout)
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
