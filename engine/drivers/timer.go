package drivers

import (
	"context"
	"log/slog"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// intervalTimer is what the recurring and drifting timers share: an
// interval, a target and counters. They differ only in their loop.
type intervalTimer struct {
	d        manifest.Driver
	target   Target
	log      *slog.Logger
	interval time.Duration
	life     lifecycle
	stats    counters
	loop     func(t *intervalTimer, stop <-chan struct{})
}

var _ Driver = (*intervalTimer)(nil)

// parseInterval reads the one setting both interval timers share.
func parseInterval(d manifest.Driver) (time.Duration, []manifest.Problem) {
	s := newSettings(d)
	iv := s.millis("interval", true, "the period in milliseconds", 0, 1, maxIntervalMS)
	return iv, s.done()
}

func checkInterval(d manifest.Driver) []manifest.Problem {
	_, ps := parseInterval(d)
	return ps
}

// intervalFactory makes the factory of a timer that runs loop.
func intervalFactory(loop func(t *intervalTimer, stop <-chan struct{})) Factory {
	return func(d manifest.Driver, env Env) (Driver, error) {
		iv, ps := parseInterval(d)
		if err := problemsError(d, ps); err != nil {
			return nil, err
		}
		if env.Target == nil {
			return nil, errNoTarget(d)
		}
		t := &intervalTimer{d: d, target: env.Target, log: driverLogger(d, env), interval: iv, loop: loop}
		t.stats.log = t.log
		return t, nil
	}
}

func (t *intervalTimer) Start(context.Context) error {
	if err := t.life.begin(); err != nil {
		return err
	}
	t.life.goRun(func(stop <-chan struct{}) { t.loop(t, stop) })
	return nil
}

func (t *intervalTimer) Stop() { t.life.end() }

func (t *intervalTimer) Info() map[string]any {
	return t.stats.into(BaseInfo(t.d))
}
