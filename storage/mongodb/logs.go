package mongodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/cocaine-cloud/cocaine/storage"
)

// Log lines are one document each in the logs collection, ordered by
// (time, seq): by the line's own time, and among lines of the same
// millisecond by the order they were appended in.
//
// The bounds are enforced exactly when reading and lazily in the database:
// without TTL indexes (FerretDB has none) old lines must be deleted by hand,
// and doing that on every append would double its cost. Each Store trims an
// app's log on its first append to it, then whenever it has appended a
// quarter of MaxLogLines since its last trim, or a tenth of MaxLogAge has
// passed. With several nodes appending, each trims on its own count, so the
// excess stays within a quarter of the bound per node.

type logDoc struct {
	App    string    `bson:"app"`
	Time   time.Time `bson:"time"`
	Slave  string    `bson:"slave,omitempty"`
	Stream string    `bson:"stream,omitempty"`
	Text   string    `bson:"text"`
	Seq    int64     `bson:"seq"`
}

// trimState is what a Store knows about its own appends to one app's log.
type trimState struct {
	appended int       // lines appended since the last trim
	last     time.Time // when the last trim finished; zero before the first
	running  bool
}

// nextSeq reserves n sequence numbers. They follow wall-clock nanoseconds,
// so lines appended by different nodes in the same millisecond still
// interleave roughly as they happened, and they strictly increase within
// the process, so one appender's lines keep their order.
func (s *Store) nextSeq(n int) int64 {
	for {
		last := s.lastSeq.Load()
		first := max(last+1, time.Now().UnixNano())
		if s.lastSeq.CompareAndSwap(last, first+int64(n)-1) {
			return first
		}
	}
}

func checkApp(app string) error {
	if !storage.ValidName(app) {
		return fmt.Errorf("%w: app %q", storage.ErrInvalidName, app)
	}
	return nil
}

// AppendLog adds lines to app's log. Times are kept to the millisecond; a
// line's App is always the log it was appended to.
func (s *Store) AppendLog(ctx context.Context, app string, lines []storage.LogLine) error {
	if err := s.appendLog(ctx, app, lines); err != nil {
		return fmt.Errorf("mongodb: append log %s: %w", app, err)
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
	seq := s.nextSeq(len(lines))
	docs := make([]any, len(lines))
	for i, l := range lines {
		docs[i] = logDoc{
			App:  app,
			Time: l.Time,
			// BSON strings must be UTF-8. Apps print anything; the files
			// backend's JSON makes the same substitution.
			Slave:  strings.ToValidUTF8(l.Slave, "\uFFFD"),
			Stream: strings.ToValidUTF8(l.Stream, "\uFFFD"),
			Text:   strings.ToValidUTF8(l.Text, "\uFFFD"),
			Seq:    seq + int64(i),
		}
	}
	// One insert command carries the whole batch, so a batch is not split
	// between two appends from elsewhere.
	if _, err := s.logs.InsertMany(ctx, docs); err != nil {
		return s.fail(ctx, err)
	}

	now := time.Now()
	if !s.trimDue(app, len(lines), now) {
		return nil
	}
	// The lines are in; failing to trim is not a reason to tell the caller
	// (who might retry and duplicate them) that they are not. The next
	// append tries again.
	err := s.trim(ctx, app, now)
	s.trimDone(app, err == nil, now)
	if err != nil && ctx.Err() == nil {
		slog.Warn("mongodb: trimming app log failed", "db", s.db.Name(), "app", app, "err", err)
	}
	return nil
}

// trimDue counts n appended lines and says whether this call should trim;
// if so, it marks the trim running so that concurrent appends do not pile
// on.
func (s *Store) trimDue(app string, n int, now time.Time) bool {
	maxLines, maxAge := s.opts.MaxLogLines, s.opts.MaxLogAge
	if maxLines <= 0 && maxAge <= 0 {
		return false
	}
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	st := s.trims[app]
	if st == nil {
		st = &trimState{}
		s.trims[app] = st
	}
	st.appended += n
	if st.running {
		return false
	}
	due := st.last.IsZero() ||
		(maxLines > 0 && st.appended > maxLines/4) ||
		(maxAge > 0 && now.Sub(st.last) > maxAge/10)
	if due {
		st.running = true
	}
	return due
}

func (s *Store) trimDone(app string, ok bool, now time.Time) {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	st := s.trims[app]
	if st == nil { // RemoveLog forgot it meanwhile
		return
	}
	st.running = false
	if ok {
		st.appended, st.last = 0, now
	}
}

// trim deletes the lines of app that the bound no longer keeps: those older
// than MaxLogAge, then all but the newest MaxLogLines.
func (s *Store) trim(ctx context.Context, app string, now time.Time) error {
	if age := s.opts.MaxLogAge; age > 0 {
		filter := bson.D{{Key: "app", Value: app}, {Key: "time", Value: bson.D{{Key: "$lt", Value: ageCutoff(now, age)}}}}
		if _, err := s.logs.DeleteMany(ctx, filter); err != nil {
			return fmt.Errorf("drop expired lines: %w", s.fail(ctx, err))
		}
	}
	if n := s.opts.MaxLogLines; n > 0 {
		// The newest line past the bound; it and everything older go.
		var edge logDoc
		err := s.logs.FindOne(ctx, bson.D{{Key: "app", Value: app}},
			options.FindOne().
				SetSort(bson.D{{Key: "time", Value: -1}, {Key: "seq", Value: -1}}).
				SetSkip(int64(n)).
				SetProjection(bson.D{{Key: "time", Value: 1}, {Key: "seq", Value: 1}})).Decode(&edge)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find the oldest kept line: %w", s.fail(ctx, err))
		}
		filter := bson.D{{Key: "app", Value: app}, {Key: "$or", Value: bson.A{
			bson.D{{Key: "time", Value: bson.D{{Key: "$lt", Value: edge.Time}}}},
			bson.D{{Key: "time", Value: edge.Time}, {Key: "seq", Value: bson.D{{Key: "$lte", Value: edge.Seq}}}},
		}}}
		if _, err := s.logs.DeleteMany(ctx, filter); err != nil {
			return fmt.Errorf("drop lines over the bound: %w", s.fail(ctx, err))
		}
	}
	return nil
}

// ageCutoff is the oldest line time MaxLogAge keeps, rounded up to the
// millisecond that BSON dates have, so that "time >= cutoff" in the
// database means what it means in Go.
func ageCutoff(now time.Time, age time.Duration) time.Time {
	c := now.Add(-age)
	if t := c.Truncate(time.Millisecond); t.Before(c) {
		return t.Add(time.Millisecond)
	}
	return c
}

// ReadLog returns up to limit of the newest kept lines of app's log after
// since, oldest first. An app without a log has no lines.
func (s *Store) ReadLog(ctx context.Context, app string, since time.Time, limit int) ([]storage.LogLine, error) {
	lines, err := s.readLog(ctx, app, since, limit)
	if err != nil {
		return nil, fmt.Errorf("mongodb: read log %s: %w", app, err)
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
	filter := bson.D{{Key: "app", Value: app}}
	// Both bounds are on time, so the lines they keep are a run of the
	// newest lines in (time, seq) order, and so are the lines after since.
	// The newest min(limit, MaxLogLines) lines matching both are therefore
	// exactly what the bound keeps after since, in one query, however far
	// the database is behind on trimming.
	var timeCond bson.D
	if !since.IsZero() {
		// Stored times are whole milliseconds, so "after since" is "after
		// since cut to the millisecond".
		timeCond = bson.D{{Key: "$gt", Value: since.Truncate(time.Millisecond)}}
	}
	if age := s.opts.MaxLogAge; age > 0 {
		if cutoff := ageCutoff(time.Now(), age); since.IsZero() || cutoff.After(since) {
			timeCond = bson.D{{Key: "$gte", Value: cutoff}}
		}
	}
	if timeCond != nil {
		filter = append(filter, bson.E{Key: "time", Value: timeCond})
	}
	n := int64(0)
	if limit > 0 {
		n = int64(limit)
	}
	if m := s.opts.MaxLogLines; m > 0 && (n == 0 || int64(m) < n) {
		n = int64(m)
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "time", Value: -1}, {Key: "seq", Value: -1}}).
		SetProjection(bson.D{{Key: "_id", Value: 0}, {Key: "app", Value: 0}})
	if n > 0 {
		opts.SetLimit(n)
	}
	cur, err := s.logs.Find(ctx, filter, opts)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	var docs []logDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]storage.LogLine, len(docs))
	for i, d := range docs {
		out[i] = storage.LogLine{Time: d.Time, App: app, Slave: d.Slave, Stream: d.Stream, Text: d.Text}
	}
	slices.Reverse(out)
	return out, nil
}

// RemoveLog deletes app's log; storage.ErrNotFound if there is none.
func (s *Store) RemoveLog(ctx context.Context, app string) error {
	if err := s.removeLog(ctx, app); err != nil {
		return fmt.Errorf("mongodb: remove log %s: %w", app, err)
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
	res, err := s.logs.DeleteMany(ctx, bson.D{{Key: "app", Value: app}})
	if err != nil {
		return s.fail(ctx, err)
	}
	s.trimMu.Lock()
	delete(s.trims, app)
	s.trimMu.Unlock()
	if res.DeletedCount == 0 {
		return storage.ErrNotFound
	}
	return nil
}
