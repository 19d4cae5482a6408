package drivers

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// A recurring timer does not wait for its jobs: with naps of 300ms every
// 100ms, several run at once inside the app.
func TestRecurringTimerOverlaps(t *testing.T) {
	tp := newPool(t, engine(func(e *manifest.Engine) { e.PoolLimit, e.Concurrency = 1, 8 }))
	rec := &recorder{next: tp}
	env, _ := testEnv(t, rec)
	began := time.Now()
	d := start(t, drv(RecurringTimer, "nap", map[string]any{"interval": json.Number("100")}), env)

	eventually(t, 10*time.Second, "two naps running at once in the slave", func() bool {
		return tp.logged("nap running=2")
	})
	submits, _, maxOut, _ := rec.snapshot()
	if maxOut < 2 {
		t.Fatalf("at most %d jobs outstanding; want overlap", maxOut)
	}
	if first := submits[0].Sub(began); first < 100*time.Millisecond {
		t.Fatalf("first tick after %v; want one interval (100ms)", first)
	}
	d.Stop()
	info := d.Info()
	if info["type"] != RecurringTimer || info["emit"] != "nap" || info["interval"] != json.Number("100") {
		t.Fatalf("info lacks its settings: %v", info)
	}
	if counter(info, "events") < 2 || counter(info, "refused") != 0 {
		t.Fatalf("info counters: %v", info)
	}
}

// Ticks a full queue refuses are counted, reported and logged.
func TestRecurringTimerCountsRefusals(t *testing.T) {
	tp := newPool(t, engine(func(e *manifest.Engine) { e.PoolLimit, e.QueueLimit, e.GrowThreshold = 1, 1, 1 }))
	rec := &recorder{next: tp}
	env, logs := testEnv(t, rec)
	d := start(t, drv(RecurringTimer, "nap", map[string]any{"interval": json.Number("20")}), env)

	eventually(t, 10*time.Second, "refused ticks", func() bool { return counter(d.Info(), "refused") >= 3 })
	d.Stop()
	info := d.Info()
	_, _, _, refused := rec.snapshot()
	if got := counter(info, "refused"); got != uint64(refused) || got != tp.Info().Jobs.Rejected {
		t.Fatalf("info says %d refused, the target refused %d, the pool counted %d", got, refused, tp.Info().Jobs.Rejected)
	}
	if msg, _ := info["last-error"].(string); !strings.Contains(msg, "queue is full") || info["last-error-at"] == nil {
		t.Fatalf("last error: %v", info)
	}
	if !strings.Contains(logs.String(), "event refused") {
		t.Fatalf("refusal not logged; log:\n%s", logs)
	}
}

// A drifting timer keeps one job at a time, and its period is the
// interval plus the run time.
func TestDriftingTimerNeverOverlaps(t *testing.T) {
	tp := newPool(t, engine(func(e *manifest.Engine) { e.PoolLimit, e.Concurrency = 2, 4 }))
	rec := &recorder{next: tp}
	env, _ := testEnv(t, rec)
	const interval = 100 * time.Millisecond
	start(t, drv(DriftingTimer, "nap", map[string]any{"interval": json.Number("100")}), env)

	eventually(t, 15*time.Second, "four runs", func() bool {
		_, ends, _, _ := rec.snapshot()
		return len(ends) >= 4
	})
	submits, ends, maxOut, _ := rec.snapshot()
	if maxOut != 1 {
		t.Fatalf("%d jobs outstanding at once; a drifting timer keeps one", maxOut)
	}
	if tp.logged("nap running=2") {
		t.Fatal("two naps ran at once in the slave")
	}
	minGap := time.Hour
	for i := 0; i+1 < len(submits) && i < len(ends); i++ {
		run := ends[i].Sub(submits[i])
		period := submits[i+1].Sub(submits[i])
		if run < 300*time.Millisecond {
			t.Fatalf("run %d took %v; the nap is 300ms", i, run)
		}
		if period < run+interval {
			t.Fatalf("period %d is %v, shorter than run %v + interval %v", i, period, run, interval)
		}
		minGap = min(minGap, submits[i+1].Sub(ends[i]))
	}
	// A loaded machine can delay any one tick; a timer that waits too long
	// delays them all, so the shortest gap is the one to judge.
	if minGap > interval+250*time.Millisecond {
		t.Fatalf("next tick at best %v after the end of a run; want about %v", minGap, interval)
	}
}

// A refused tick of a drifting timer does not stop it.
func TestDriftingTimerRefused(t *testing.T) {
	f := &fakeTarget{refuse: wire.Errorf(wire.CodeUnavailable, "queue is full (1 jobs)")}
	env, _ := testEnv(t, f)
	d := start(t, drv(DriftingTimer, "tick", map[string]any{"interval": json.Number("10")}), env)
	eventually(t, 5*time.Second, "three refusals", func() bool { return counter(d.Info(), "refused") >= 3 })
}

func TestCronEvery(t *testing.T) {
	tp := newPool(t, engine(nil))
	rec := &recorder{next: tp}
	env, _ := testEnv(t, rec)
	began := time.Now()
	d := start(t, drv(Cron, "echo", map[string]any{"schedule": "@every 200ms"}), env)
	eventually(t, 10*time.Second, "three cron events handled", func() bool {
		_, ends, _, _ := rec.snapshot()
		return len(ends) >= 3
	})
	submits, _, _, _ := rec.snapshot()
	// Ticks keep to the plan (start + n×200ms): never early, and a late
	// one does not push the later ones back.
	for i, s := range submits {
		if planned := began.Add(time.Duration(i+1) * 200 * time.Millisecond); s.Before(planned) {
			t.Fatalf("tick %d at %v, before its time %v", i, s.Sub(began), planned.Sub(began))
		}
	}
	// Not the whole second robfig/cron rounds "@every" up to: that would
	// make every gap a second, while load can only stretch some of them.
	minGap := time.Hour
	for i := 0; i+1 < len(submits); i++ {
		minGap = min(minGap, submits[i+1].Sub(submits[i]))
	}
	if minGap > 900*time.Millisecond {
		t.Fatalf("ticks at best %v apart; want about 200ms", minGap)
	}
	info := d.Info()
	if info["next"] == nil || counter(info, "events") < 3 || counter(info, "failed") != 0 {
		t.Fatalf("info: %v", info)
	}
}

func TestCronStandardSchedules(t *testing.T) {
	for _, spec := range []string{"*/5 * * * *", "@hourly", "@daily", "0 3 * * MON-FRI", "CRON_TZ=Europe/Moscow 30 2 * * *"} {
		sched, err := parseSchedule(spec)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		now := time.Now()
		if next := sched.Next(now); !next.After(now) {
			t.Fatalf("%q: next %v is not after now", spec, next)
		}
	}
	every, err := parseSchedule("@every 1h30m")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got := every.Next(now).Sub(now); got != 90*time.Minute {
		t.Fatalf("@every 1h30m: next in %v", got)
	}
}

func TestTimerChecks(t *testing.T) {
	cases := []struct {
		typ      string
		settings map[string]any
		want     []string // "path: message fragment"
	}{
		{RecurringTimer, map[string]any{"interval": json.Number("1000")}, nil},
		{RecurringTimer, map[string]any{"interval": json.Number("1e3")}, nil},
		{RecurringTimer, map[string]any{}, []string{"interval: required"}},
		{RecurringTimer, map[string]any{"interval": json.Number("0")}, []string{"interval: must be greater than 0"}},
		{RecurringTimer, map[string]any{"interval": json.Number("-5")}, []string{"interval: must be greater than 0"}},
		{RecurringTimer, map[string]any{"interval": json.Number("1.5")}, []string{"interval: expected a whole number"}},
		{RecurringTimer, map[string]any{"interval": "1000"}, []string{"interval: expected a whole number, got a string"}},
		{DriftingTimer, map[string]any{"interval": json.Number("86400001")}, []string{"interval: must be at most 86400000"}},
		{DriftingTimer, map[string]any{"interval": json.Number("5"), "intervall": json.Number("5")}, []string{"intervall: unknown setting"}},
		{DriftingTimer, map[string]any{"interval": json.Number("5"), "a.b": true}, []string{`["a.b"]: unknown setting`}},
		{Cron, map[string]any{"schedule": "@every 5s"}, nil},
		{Cron, map[string]any{}, []string{"schedule: required"}},
		{Cron, map[string]any{"schedule": "* * *"}, []string{"schedule: invalid cron expression"}},
		{Cron, map[string]any{"schedule": "@every 0s"}, []string{"schedule: \"@every 0s\": the period must be at least 1ms"}},
		{Cron, map[string]any{"schedule": "@fortnightly"}, []string{"schedule: invalid cron expression"}},
		{Cron, map[string]any{"schedule": json.Number("5")}, []string{"schedule: expected a non-empty string, got a number"}},
	}
	for _, c := range cases {
		ps := Validate(drv(c.typ, "x", c.settings))
		if len(ps) != len(c.want) {
			t.Errorf("%s %v: problems %v, want %v", c.typ, c.settings, ps, c.want)
			continue
		}
		for i, p := range ps {
			if !strings.Contains(p.String(), c.want[i]) {
				t.Errorf("%s %v: problem %q, want %q", c.typ, c.settings, p, c.want[i])
			}
		}
	}
	// Through manifest.Parse, the paths land under the driver.
	_, err := manifest.Parse([]byte(`{"type":"go","drivers":{"tick":{"type":"recurring-timer","interval":0}}}`), manifest.WithDriverCheck(Validate))
	if err == nil || !strings.Contains(err.Error(), "drivers.tick.interval: must be greater than 0") {
		t.Fatalf("manifest error: %v", err)
	}
}

// Timers leave nothing behind when stopped, and a new one can take over.
func TestTimersRestartWithoutLeaks(t *testing.T) {
	f := &fakeTarget{delay: time.Millisecond}
	env, _ := testEnv(t, f)
	var stopped []Driver // reachable until checked, like the other restart tests
	cycle := func() {
		for _, d := range []manifest.Driver{
			drv(RecurringTimer, "r", map[string]any{"interval": json.Number("5")}),
			drv(DriftingTimer, "d", map[string]any{"interval": json.Number("5")}),
			drv(Cron, "c", map[string]any{"schedule": "@every 5ms"}),
		} {
			dr, err := New(d, env)
			if err != nil {
				t.Fatal(err)
			}
			stopped = append(stopped, dr)
			before := f.count()
			if err := dr.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, d.Type+" events", func() bool { return f.count() >= before+3 })
			dr.Stop()
			dr.Stop() // harmless twice
			if err := dr.Start(context.Background()); err == nil {
				t.Fatalf("%s: a stopped driver started again", d.Type)
			}
		}
	}
	cycle() // warm up: the runtime's own timers and pools
	base := measure(t)
	for range 3 {
		cycle()
	}
	backToBaseline(t, base)
	runtime.KeepAlive(stopped)
}

// A job that ends after Stop does not block the pool's goroutine.
func TestDriftingTimerJobEndsAfterStop(t *testing.T) {
	f := &fakeTarget{hold: true}
	env, _ := testEnv(t, f)
	d, err := New(drv(DriftingTimer, "d", map[string]any{"interval": json.Number("5")}), env)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a held job", func() bool { return f.count() == 1 })
	done := make(chan struct{})
	go func() { d.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waited for an outstanding job")
	}
	released := make(chan struct{})
	go func() { f.release(); close(released) }()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("a job ending after Stop blocked its sink")
	}
}
