package drivers

import (
	"context"
	"log/slog"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
)

// RecurringTimer submits an event every interval, whether or not the last
// one has finished: jobs overlap when they run longer than the interval.
const RecurringTimer = "recurring-timer"

type recurringTimer struct {
	d        manifest.Driver
	target   Target
	log      *slog.Logger
	interval time.Duration
	life     lifecycle
	stats    counters
}

var _ Driver = (*recurringTimer)(nil)

func init() {
	Register(RecurringTimer, newRecurringTimer, func(d manifest.Driver) []manifest.Problem {
		_, ps := parseInterval(d)
		return ps
	})
}

// parseInterval reads the one setting both interval timers share.
func parseInterval(d manifest.Driver) (time.Duration, []manifest.Problem) {
	s := newSettings(d)
	iv := s.millis("interval", true, "the period in milliseconds", 0, 1, maxIntervalMS)
	return iv, s.done()
}

func newRecurringTimer(d manifest.Driver, env Env) (Driver, error) {
	iv, ps := parseInterval(d)
	if err := problemsError(d, ps); err != nil {
		return nil, err
	}
	if env.Target == nil {
		return nil, errNoTarget(d)
	}
	t := &recurringTimer{d: d, target: env.Target, log: driverLogger(d, env), interval: iv}
	t.stats.log = t.log
	return t, nil
}

func (t *recurringTimer) Start(context.Context) error {
	if err := t.life.begin(); err != nil {
		return err
	}
	t.life.goRun(t.run)
	return nil
}

func (t *recurringTimer) run(stop <-chan struct{}) {
	// A Ticker keeps the period fixed: Submit never blocks, so the loop
	// is never the reason a tick is late.
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			_ = t.stats.submit(t.target, &pool.Job{Event: t.d.Emit, Sink: &eventSink{c: &t.stats}})
		}
	}
}

func (t *recurringTimer) Stop() { t.life.end() }

func (t *recurringTimer) Info() map[string]any {
	return t.stats.into(BaseInfo(t.d))
}
