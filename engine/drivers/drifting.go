package drivers

import (
	"context"
	"log/slog"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
)

// DriftingTimer keeps at most one job outstanding: the next interval
// starts when the job ends, so the period is the interval plus the run
// time. It suits work that must never run twice at once.
const DriftingTimer = "drifting-timer"

type driftingTimer struct {
	d        manifest.Driver
	target   Target
	log      *slog.Logger
	interval time.Duration
	life     lifecycle
	stats    counters
}

var _ Driver = (*driftingTimer)(nil)

func init() {
	Register(DriftingTimer, newDriftingTimer, func(d manifest.Driver) []manifest.Problem {
		_, ps := parseInterval(d)
		return ps
	})
}

func newDriftingTimer(d manifest.Driver, env Env) (Driver, error) {
	iv, ps := parseInterval(d)
	if err := problemsError(d, ps); err != nil {
		return nil, err
	}
	if env.Target == nil {
		return nil, errNoTarget(d)
	}
	t := &driftingTimer{d: d, target: env.Target, log: driverLogger(d, env), interval: iv}
	t.stats.log = t.log
	return t, nil
}

func (t *driftingTimer) Start(context.Context) error {
	if err := t.life.begin(); err != nil {
		return err
	}
	t.life.goRun(t.run)
	return nil
}

func (t *driftingTimer) run(stop <-chan struct{}) {
	wait := time.NewTimer(t.interval)
	defer wait.Stop()
	for {
		select {
		case <-stop:
			return
		case <-wait.C:
		}
		// Buffered: a job ending after Stop must not block the pool's
		// goroutine on a loop that is gone.
		done := make(chan struct{}, 1)
		sink := &eventSink{c: &t.stats, onEnd: func() { done <- struct{}{} }}
		if err := t.stats.submit(t.target, &pool.Job{Event: t.d.Emit, Sink: sink}); err == nil {
			select {
			case <-stop:
				return
			case <-done:
			}
		}
		// A refused tick counts as a finished one: the next try comes an
		// interval later rather than hammering a full queue.
		wait.Reset(t.interval)
	}
}

func (t *driftingTimer) Stop() { t.life.end() }

func (t *driftingTimer) Info() map[string]any {
	return t.stats.into(BaseInfo(t.d))
}
