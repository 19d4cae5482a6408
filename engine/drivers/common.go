package drivers

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// maxIntervalMS bounds timer intervals: anything rarer than daily is what
// cron schedules are for, and the bound keeps milliseconds well inside a
// time.Duration.
const maxIntervalMS = 24 * 60 * 60 * 1000

// settings reads a driver's settings, collecting every problem so that the
// manifest author sees all of them at once, as manifest.Parse does.
type settings struct {
	d        manifest.Driver
	known    map[string]bool
	problems []manifest.Problem
}

func newSettings(d manifest.Driver) *settings {
	return &settings{d: d, known: map[string]bool{}}
}

func (s *settings) add(key, format string, args ...any) {
	s.problems = append(s.problems, manifest.Problem{Path: keyPath(key), Message: fmt.Sprintf(format, args...)})
}

// get marks key as known and returns its value.
func (s *settings) get(key string, required bool, hint string) (any, bool) {
	s.known[key] = true
	v, ok := s.d.Settings[key]
	if !ok && required {
		s.add(key, "required: %s", hint)
	}
	return v, ok
}

// integer reads a whole number within [lo, hi], or def when absent.
func (s *settings) integer(key string, required bool, hint string, def, lo, hi int64) int64 {
	v, ok := s.get(key, required, hint)
	if !ok {
		return def
	}
	i, err := wholeNumber(v)
	switch {
	case err != nil:
		s.add(key, "%v", err)
	case i < lo && lo == 1:
		s.add(key, "must be greater than 0, got %d", i)
	case i < lo:
		s.add(key, "must be at least %d, got %d", lo, i)
	case i > hi:
		s.add(key, "must be at most %d, got %d", hi, i)
	default:
		return i
	}
	return def
}

// millis reads a duration given in whole milliseconds.
func (s *settings) millis(key string, required bool, hint string, def time.Duration, lo, hi int64) time.Duration {
	return time.Duration(s.integer(key, required, hint, int64(def/time.Millisecond), lo, hi)) * time.Millisecond
}

func (s *settings) str(key string, required bool, hint string) string {
	v, ok := s.get(key, required, hint)
	if !ok {
		return ""
	}
	str, isStr := v.(string)
	if !isStr || str == "" {
		s.add(key, "expected a non-empty string, got %s", describe(v))
		return ""
	}
	return str
}

func (s *settings) boolean(key string, def bool) bool {
	v, ok := s.get(key, false, "")
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		s.add(key, "expected true or false, got %s", describe(v))
		return def
	}
	return b
}

// done rejects the keys no reader asked for: a misspelt "intervall" would
// otherwise silently fall back to a default, and the manifest rejects
// unknown keys everywhere else for the same reason.
func (s *settings) done() []manifest.Problem {
	var unknown []string
	for k := range s.d.Settings {
		if !s.known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		known := make([]string, 0, len(s.known))
		for n := range s.known {
			known = append(known, n)
		}
		sort.Strings(known)
		s.add(k, "unknown setting for a %s driver (known: type, emit, %s)", s.d.Type, strings.Join(known, ", "))
	}
	return s.problems
}

// problemsError turns settings problems into the error a Factory returns
// when it is called without a prior Check.
func problemsError(d manifest.Driver, ps []manifest.Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return fmt.Errorf("drivers: %s driver %q: %w", d.Type, d.Name, &manifest.Error{Problems: ps})
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath writes a settings key as manifest paths do, so that a problem
// about "a.b" cannot be read as key "b" under "a".
func keyPath(key string) string {
	if plainKey.MatchString(key) {
		return key
	}
	return "[" + strconv.Quote(key) + "]"
}

func wholeNumber(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) >= math.MaxInt64 {
			return 0, fmt.Errorf("expected a whole number, got %s", x)
		}
		return int64(f), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) >= math.MaxInt64 {
			return 0, fmt.Errorf("expected a whole number, got %v", x)
		}
		return int64(x), nil
	}
	return 0, fmt.Errorf("expected a whole number, got %s", describe(v))
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if x == "" {
			return "an empty string"
		}
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, int, int64, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// driverLogger names the driver in its log lines. A logger given in Env
// is taken to name the app and driver already (the engine's does), so
// only the type is added rather than repeating them.
func driverLogger(d manifest.Driver, env Env) *slog.Logger {
	if env.Logger != nil {
		return env.Logger.With("type", d.Type)
	}
	return slog.Default().With("app", env.App, "driver", d.Name, "type", d.Type)
}

// counters are what every driver reports in Info beside its settings.
type counters struct {
	log *slog.Logger

	mu          sync.Mutex
	events      uint64 // jobs the target accepted
	refused     uint64 // jobs the target refused at once
	failed      uint64 // accepted jobs that ended with an error
	outstanding int    // accepted jobs that have not ended
	lastErr     string
	lastErrAt   time.Time
	// Refusals come in floods when a queue is full; one line a second
	// with a count keeps them visible without drowning the log.
	lastRefusalLog time.Time
	unlogged       uint64
}

// submit hands j to the target and counts the outcome. It returns the
// refusal, already counted and logged.
func (c *counters) submit(t Target, j *pool.Job) error {
	c.mu.Lock()
	c.outstanding++ // before Submit: the sink may end the job before Submit returns
	c.mu.Unlock()
	err := t.Submit(j)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.events++
		return nil
	}
	c.outstanding--
	c.refused++
	c.setErr(fmt.Sprintf("refused: %v", err))
	c.unlogged++
	if now := time.Now(); now.Sub(c.lastRefusalLog) >= time.Second {
		c.log.Warn("event refused", "event", j.Event, "err", err, "refused", c.unlogged)
		c.lastRefusalLog, c.unlogged = now, 0
	}
	return err
}

// ended records the end of an accepted job; code 0 is a success.
func (c *counters) ended(code wire.Code, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outstanding--
	if code != 0 {
		c.failed++
		c.setErr(fmt.Sprintf("job failed: %d %s: %s", int(code), code, msg))
		c.log.Warn("event failed", "code", int(code), "err", msg)
	}
}

// fail records a driver-side error, such as a lost watch.
func (c *counters) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setErr(err.Error())
	c.log.Error("driver error", "err", err)
}

func (c *counters) setErr(s string) {
	c.lastErr, c.lastErrAt = s, time.Now()
}

func (c *counters) running() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outstanding
}

func (c *counters) into(info map[string]any) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	info["events"] = c.events
	info["refused"] = c.refused
	info["failed"] = c.failed
	info["outstanding"] = c.outstanding
	if c.lastErr != "" {
		info["last-error"] = c.lastErr
		info["last-error-at"] = c.lastErrAt.UTC().Format(time.RFC3339Nano)
	}
	return info
}

// eventSink is the sink of a job nobody answers: a timer tick or a file
// change. The app's reply has nowhere to go, so only the end matters.
type eventSink struct {
	c     *counters
	onEnd func() // optional
}

func (s *eventSink) Chunk([]byte)                     {}
func (s *eventSink) Close()                           { s.end(0, "") }
func (s *eventSink) Error(code wire.Code, msg string) { s.end(code, msg) }

func (s *eventSink) end(code wire.Code, msg string) {
	s.c.ended(code, msg)
	if s.onEnd != nil {
		s.onEnd()
	}
}

// lifecycle is the start-once, stop-once frame of a driver's goroutines.
type lifecycle struct {
	mu      sync.Mutex
	started bool
	stopped bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

var errRestart = errors.New("a stopped driver cannot be started again; make a new one")

// begin checks that the driver may start and prepares its stop channel.
func (l *lifecycle) begin() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped:
		return errRestart
	case l.started:
		return errors.New("driver already started")
	}
	l.started = true
	l.stop = make(chan struct{})
	return nil
}

func (l *lifecycle) goRun(fn func(stop <-chan struct{})) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn(l.stop)
	}()
}

// end signals the goroutines and waits for them. It reports whether this
// call did the stopping, so that cleanup after it runs once.
func (l *lifecycle) end() bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		l.wg.Wait() // a concurrent Stop also returns only once all is released
		return false
	}
	l.stopped = true
	started := l.started
	if started {
		close(l.stop)
	}
	l.mu.Unlock()
	l.wg.Wait()
	return started
}

func errNoTarget(d manifest.Driver) error {
	return fmt.Errorf("drivers: %s driver %q: no target for its jobs", d.Type, d.Name)
}
