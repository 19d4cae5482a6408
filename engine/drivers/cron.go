package drivers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/robfig/cron/v3"
)

// Cron submits an event at the times of a standard cron schedule: five
// fields ("*/5 * * * *"), a descriptor ("@hourly", "@daily") or
// "@every <duration>". Like cron itself it does not wait for the previous
// job: slow jobs overlap.
const Cron = "cron"

type cronDriver struct {
	d      manifest.Driver
	target Target
	log    *slog.Logger
	sched  cron.Schedule
	life   lifecycle
	stats  counters

	mu   sync.Mutex
	next time.Time
}

var _ Driver = (*cronDriver)(nil)

func init() {
	Register(Cron, newCron, func(d manifest.Driver) []manifest.Problem {
		_, ps := parseCron(d)
		return ps
	})
}

// every is "@every" without robfig's rounding: its ConstantDelaySchedule
// rounds the delay up to whole seconds, which would turn "@every 200ms"
// into once a second.
type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

func parseCron(d manifest.Driver) (cron.Schedule, []manifest.Problem) {
	s := newSettings(d)
	spec := s.str("schedule", true, `a cron expression such as "*/5 * * * *", "@hourly" or "@every 30s"`)
	ps := s.done()
	if spec == "" {
		return nil, ps
	}
	sched, err := parseSchedule(spec)
	if err != nil {
		ps = append(ps, manifest.Problem{Path: "schedule", Message: err.Error()})
	}
	return sched, ps
}

func parseSchedule(spec string) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron expression %q: %w", spec, err)
	}
	// Time zone prefixes do not matter to a constant delay.
	body := strings.TrimSpace(spec)
	if strings.HasPrefix(body, "TZ=") || strings.HasPrefix(body, "CRON_TZ=") {
		if _, rest, ok := strings.Cut(body, " "); ok {
			body = strings.TrimSpace(rest)
		}
	}
	if rest, ok := strings.CutPrefix(body, "@every "); ok {
		dur, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("invalid duration in %q: %w", spec, err)
		}
		if dur < time.Millisecond {
			return nil, fmt.Errorf("%q: the period must be at least 1ms", spec)
		}
		return every(dur), nil
	}
	return sched, nil
}

func newCron(d manifest.Driver, env Env) (Driver, error) {
	sched, ps := parseCron(d)
	if err := problemsError(d, ps); err != nil {
		return nil, err
	}
	if env.Target == nil {
		return nil, errNoTarget(d)
	}
	c := &cronDriver{d: d, target: env.Target, log: driverLogger(d, env), sched: sched}
	c.stats.log = c.log
	return c, nil
}

func (c *cronDriver) Start(context.Context) error {
	if err := c.life.begin(); err != nil {
		return err
	}
	c.life.goRun(c.run)
	return nil
}

func (c *cronDriver) run(stop <-chan struct{}) {
	next := c.sched.Next(time.Now())
	wait := time.NewTimer(time.Until(next))
	defer wait.Stop()
	for {
		if next.IsZero() { // a schedule that never fires again ("30 2 30 2 *")
			c.stats.fail(fmt.Errorf("schedule %q has no next time", c.d.Settings["schedule"]))
			<-stop
			return
		}
		c.mu.Lock()
		c.next = next
		c.mu.Unlock()
		select {
		case <-stop:
			return
		case <-wait.C:
		}
		_ = c.stats.submit(c.target, &pool.Job{Event: c.d.Emit, Sink: &eventSink{c: &c.stats}})
		// From the planned time, so that "@every" does not drift by the
		// loop's latency; from now when that is later, so that a stalled
		// process (or a clock stepped forward) does not fire a burst of
		// missed ticks.
		now := time.Now()
		next = c.sched.Next(next)
		if !next.After(now) {
			next = c.sched.Next(now)
		}
		wait.Reset(time.Until(next))
	}
}

func (c *cronDriver) Stop() { c.life.end() }

func (c *cronDriver) Info() map[string]any {
	info := c.stats.into(BaseInfo(c.d))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.next.IsZero() {
		info["next"] = c.next.UTC().Format(time.RFC3339Nano)
	}
	return info
}
