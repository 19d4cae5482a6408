package pool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// sink records one job's outcome.
type sink struct {
	mu     sync.Mutex
	chunks [][]byte
	code   wire.Code
	msg    string
	ends   int
	done   chan struct{}
	at     time.Time
}

func newSink() *sink { return &sink{done: make(chan struct{})} }

func (s *sink) Chunk(p []byte) {
	s.mu.Lock()
	s.chunks = append(s.chunks, append([]byte(nil), p...))
	s.mu.Unlock()
}
func (s *sink) Close()                           { s.end(0, "") }
func (s *sink) Error(code wire.Code, msg string) { s.end(code, msg) }
func (s *sink) end(code wire.Code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ends++
	if s.ends > 1 {
		panic(fmt.Sprintf("sink ended twice: %d %s after %d %s", code, msg, s.code, s.msg))
	}
	s.code, s.msg, s.at = code, msg, time.Now()
	close(s.done)
}

func (s *sink) wait(t *testing.T, d time.Duration) (body string, code wire.Code, msg string) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		t.Fatalf("job did not end within %v", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(bytes.Join(s.chunks, nil)), s.code, s.msg
}

type fixture struct {
	*Pool
	mu      sync.Mutex
	crashes []Crash
	logs    []string
}

func engineDefaults() manifest.Engine {
	e := manifest.Defaults()
	e.StartupTimeout = 5 * time.Second
	e.TerminationTimeout = 500 * time.Millisecond
	return e
}

func newPool(t *testing.T, mode string, e manifest.Engine, tweak ...func(*Config)) *fixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "pool") // short: Unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fixture{}
	cfg := Config{
		App: "test", Engine: e, Socket: dir + "/app.sock", Spawner: selfSpawner{mode},
		OnCrash: func(c Crash) { f.mu.Lock(); f.crashes = append(f.crashes, c); f.mu.Unlock() },
		OnLog:   nil,
	}
	for _, fn := range tweak {
		fn(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Pool = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return f
}

func (f *fixture) call(event, body string, tweak ...func(*Job)) *sink {
	s := newSink()
	j := &Job{Event: event, Body: []byte(body), Sink: s}
	for _, fn := range tweak {
		fn(j)
	}
	if err := f.Submit(j); err != nil {
		s.end(wire.CodeOf(err), err.Error())
	}
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEchoAndStreaming(t *testing.T) {
	f := newPool(t, "slave", engineDefaults())
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB: several chunks both ways
	for _, body := range []string{"hello", "", big} {
		got, code, msg := f.call("echo", body).wait(t, 10*time.Second)
		if code != 0 || got != body {
			t.Fatalf("echo of %d bytes: code %d %s, got %d bytes", len(body), code, msg, len(got))
		}
	}
	s := f.call("stream", "")
	s.wait(t, 5*time.Second)
	if len(s.chunks) != 5 || string(s.chunks[0]) != "chunk0;" || string(s.chunks[4]) != "chunk4;" {
		t.Fatalf("stream chunks = %q", s.chunks)
	}
}

func TestHandlerErrorIs502(t *testing.T) {
	f := newPool(t, "slave", engineDefaults())
	_, code, msg := f.call("fail", "").wait(t, 5*time.Second)
	if code != wire.CodeApp || !strings.Contains(msg, "handler says no") {
		t.Fatalf("got %d %q, want 502 with the handler's message", code, msg)
	}
	_, code, _ = f.call("no-such-event", "").wait(t, 5*time.Second)
	if code != wire.CodeNotFound {
		t.Fatalf("unknown event: code %d, want 404", code)
	}
}

func TestGrowToLimitThenIdleExit(t *testing.T) {
	e := engineDefaults()
	e.PoolLimit, e.GrowThreshold, e.IdleTimeout = 4, 1, 300*time.Millisecond
	f := newPool(t, "slave", e)
	var sinks []*sink
	for range 40 {
		sinks = append(sinks, f.call("sleep", "100"))
	}
	peak := 0
	eventually(t, 10*time.Second, "the pool to reach its limit", func() bool {
		peak = max(peak, f.Info().Slaves.Total)
		return peak == 4
	})
	for _, s := range sinks {
		if got, code, msg := s.wait(t, 20*time.Second); code != 0 || got != "ok" {
			t.Fatalf("sleep job: %d %s %q", code, msg, got)
		}
		peak = max(peak, f.Info().Slaves.Total)
	}
	if peak > 4 {
		t.Fatalf("pool grew to %d slaves, past its limit of 4", peak)
	}
	eventually(t, 5*time.Second, "idle slaves to leave", func() bool { return f.Info().Slaves.Total == 0 })
	if in := f.Info(); in.Jobs.Crashed != 0 || in.Jobs.Processed != 40 || in.Jobs.IdleExits != 4 {
		t.Fatalf("after idle exit: %+v", in.Jobs)
	}
}

func TestGrowthFollowsThreshold(t *testing.T) {
	// pool × threshold < 2 × queue: with threshold 10, four queued jobs
	// (8 < 10) must not grow a busy one-slave pool.
	e := engineDefaults()
	e.PoolLimit, e.GrowThreshold = 10, 10
	f := newPool(t, "slave", e)
	first := f.call("sleep", "400")
	eventually(t, 5*time.Second, "the first slave to take the job", func() bool { return f.Info().Slaves.Busy == 1 })
	var rest []*sink
	for range 4 {
		rest = append(rest, f.call("sleep", "10"))
	}
	if n := f.Info().Slaves.Total; n != 1 {
		t.Fatalf("pool grew to %d with 4 queued jobs and threshold 10", n)
	}
	for range 6 { // ten queued: 1×10 < 20, target min(10, 20/10) = 2
		rest = append(rest, f.call("sleep", "10"))
	}
	eventually(t, 5*time.Second, "growth once 2×queue passes pool×threshold", func() bool { return f.Info().Slaves.Total >= 2 })
	first.wait(t, 5*time.Second)
	for _, s := range rest {
		s.wait(t, 5*time.Second)
	}
}

func TestQueueFullIs503AtOnce(t *testing.T) {
	e := engineDefaults()
	e.PoolLimit, e.QueueLimit = 1, 2
	f := newPool(t, "slave", e)
	a, b := f.call("sleep", "200"), f.call("sleep", "200")
	c := f.call("sleep", "200") // both queued behind a starting slave: the queue is full
	_, code, msg := c.wait(t, 100*time.Millisecond)
	if code != wire.CodeUnavailable || !strings.Contains(msg, "queue is full") {
		t.Fatalf("third job: %d %q, want 503 queue full", code, msg)
	}
	for _, s := range []*sink{a, b} {
		if _, code, _ := s.wait(t, 5*time.Second); code != 0 {
			t.Fatalf("queued job failed: %d", code)
		}
	}
}

func TestUrgentGoesFirst(t *testing.T) {
	e := engineDefaults()
	e.PoolLimit = 1
	f := newPool(t, "slave", e)
	first := f.call("sleep", "300")
	eventually(t, 5*time.Second, "the slave to be busy", func() bool { return f.Info().Slaves.Busy == 1 })
	a, b := f.call("pid", ""), f.call("pid", "")
	u := f.call("pid", "", func(j *Job) { j.Urgent = true })
	for _, s := range []*sink{first, a, b, u} {
		s.wait(t, 5*time.Second)
	}
	if !u.at.Before(a.at) || !a.at.Before(b.at) {
		t.Fatalf("order of completion: urgent %v, a %v, b %v", u.at, a.at, b.at)
	}
}

func TestHungSlaveTimesOutWith504(t *testing.T) {
	e := engineDefaults()
	e.PoolLimit, e.TerminationTimeout = 1, 200*time.Millisecond
	f := newPool(t, "slave", e)
	start := time.Now()
	_, code, _ := f.call("hang", "", func(j *Job) { j.Timeout = 300 * time.Millisecond }).wait(t, 5*time.Second)
	if code != wire.CodeTimeout {
		t.Fatalf("hung job: code %d, want 504", code)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("504 after %v, before the timeout", el)
	}
	// The hung slave is killed after the grace period and replaced.
	if got, code, _ := f.call("echo", "after").wait(t, 5*time.Second); code != 0 || got != "after" {
		t.Fatalf("call after a hung slave: %d %q", code, got)
	}
	if j := f.Info().Jobs; j.Timeouts != 1 || j.Deadlines != 0 {
		t.Fatalf("counted %d timeouts, %d deadline misses; want 1, 0", j.Timeouts, j.Deadlines)
	}
	eventually(t, 5*time.Second, "the hung slave's crash log", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.crashes) == 1 && strings.Contains(f.crashes[0].Reason, "after it was cancelled")
	})
}

func TestDeadline520(t *testing.T) {
	e := engineDefaults()
	e.PoolLimit = 1
	f := newPool(t, "slave", e)
	busy := f.call("sleep", "600")
	eventually(t, 5*time.Second, "the slave to be busy", func() bool { return f.Info().Slaves.Busy == 1 })
	queued := f.call("echo", "x", func(j *Job) { j.Deadline = time.Now().Add(150 * time.Millisecond) })
	_, code, msg := queued.wait(t, time.Second)
	if code != wire.CodeDeadline || !strings.Contains(msg, "queued") {
		t.Fatalf("queued past deadline: %d %q, want 520", code, msg)
	}
	busy.wait(t, 5*time.Second)
	running := f.call("sleep", "5000", func(j *Job) { j.Deadline = time.Now().Add(200 * time.Millisecond) })
	_, code, msg = running.wait(t, time.Second)
	if code != wire.CodeDeadline || !strings.Contains(msg, "running") {
		t.Fatalf("running past deadline: %d %q, want 520", code, msg)
	}
	past := f.call("echo", "x", func(j *Job) { j.Deadline = time.Now().Add(-time.Second) })
	if _, code, _ := past.wait(t, 100*time.Millisecond); code != wire.CodeDeadline {
		t.Fatalf("already past deadline: %d", code)
	}
	// The cancelled handler returned; the slave stays and serves again.
	if got, code, _ := f.call("echo", "still here").wait(t, 5*time.Second); code != 0 || got != "still here" {
		t.Fatalf("after deadline: %d %q", code, got)
	}
	if n := f.Info().Jobs.Crashed; n != 0 {
		t.Fatalf("%d crashes; a cancelled handler should not cost the slave", n)
	}
	// Queued, running and already past when submitted (refused at once,
	// not counted as a miss of an accepted job).
	if j := f.Info().Jobs; j.Deadlines != 2 || j.Timeouts != 0 {
		t.Fatalf("counted %d deadline misses, %d timeouts; want 2, 0", j.Deadlines, j.Timeouts)
	}
}

func TestSlaveDeathRerunsJob(t *testing.T) {
	e := engineDefaults()
	f := newPool(t, "slave", e)
	// "exit" kills every slave that takes it: it runs MaxAttempts times, then 500.
	_, code, msg := f.call("exit", "").wait(t, 10*time.Second)
	if code != wire.CodeServer || !strings.Contains(msg, "slave died") {
		t.Fatalf("poison job: %d %q, want 500", code, msg)
	}
	in := f.Info()
	if in.Jobs.Retried != 2 {
		t.Fatalf("retried %d times, want 2 (3 attempts)", in.Jobs.Retried)
	}
	eventually(t, 5*time.Second, "three crash logs", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.crashes) == 3
	})
	f.mu.Lock()
	c := f.crashes[0]
	f.mu.Unlock()
	if !strings.Contains(c.Status, "exit status 7") || !strings.Contains(strings.Join(c.Output, "\n"), "exiting mid-request") {
		t.Fatalf("crash log: %+v", c)
	}
	// After a chunk, a death is an error: the caller saw part of an answer.
	got, code, _ := f.call("chunk-then-exit", "").wait(t, 10*time.Second)
	if code != wire.CodeServer || got != "partial" {
		t.Fatalf("chunk then death: %d %q", code, got)
	}
}

func TestKill9UnderLoadLosesNothing(t *testing.T) {
	e := engineDefaults()
	e.PoolLimit, e.GrowThreshold, e.QueueLimit = 4, 2, 2000
	f := newPool(t, "slave", e, func(c *Config) { c.MaxAttempts = 5 })
	const calls = 1000
	stop := make(chan struct{})
	killed := 0
	var kwg sync.WaitGroup
	kwg.Add(1)
	go func() {
		defer kwg.Done()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		var lastDone uint64
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Kill only once some jobs got through since the last kill: on
			// a loaded machine a fixed kill rate can outpace the restarts
			// and kill one job's every attempt, which proves nothing.
			if done := f.Info().Jobs.Processed; done < lastDone+8 {
				continue
			} else {
				lastDone = done
			}
			f.mu.Lock() // fixture lock only; read pids under the pool lock
			f.Pool.mu.Lock()
			for _, s := range f.Pool.slaves {
				if s.state == slaveAlive && len(s.jobs) > 0 && s.started {
					_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
					killed++
					break
				}
			}
			f.Pool.mu.Unlock()
			f.mu.Unlock()
		}
	}()
	sinks := make([]*sink, calls)
	bodies := make([]string, calls)
	sem := make(chan struct{}, 32)
	for i := range calls {
		sem <- struct{}{}
		bodies[i] = fmt.Sprintf("request-%d", i)
		sinks[i] = f.call("slow-echo", bodies[i])
		go func(s *sink) { <-s.done; <-sem }(sinks[i])
	}
	for i, s := range sinks {
		got, code, msg := s.wait(t, 30*time.Second)
		if code != 0 || got != bodies[i] {
			t.Errorf("call %d: code %d %q, body %q", i, code, msg, got)
		}
	}
	close(stop)
	kwg.Wait()
	in := f.Info()
	t.Logf("killed %d busy slaves; %+v", killed, in.Jobs)
	if killed < 3 {
		t.Fatalf("only %d kills happened: the test did not exercise recovery", killed)
	}
	if in.Jobs.Retried == 0 {
		t.Fatalf("no job was re-run although %d busy slaves were killed", killed)
	}
}

func TestBrokenAppBacksOff(t *testing.T) {
	e := engineDefaults()
	f := newPool(t, "crash-at-start", e, func(c *Config) {
		c.BrokenAfter, c.BackoffMin, c.BackoffMax = 4, 20*time.Millisecond, 200*time.Millisecond
	})
	_, code, msg := f.call("echo", "x").wait(t, 10*time.Second)
	if code != wire.CodeUnavailable || !strings.Contains(msg, "broken") {
		t.Fatalf("job on a broken app: %d %q", code, msg)
	}
	in := f.Info()
	if in.State != StateBroken || !strings.Contains(in.Reason, "failed to start") {
		t.Fatalf("state %s %q, want broken", in.State, in.Reason)
	}
	// No respawn storm: exactly BrokenAfter spawns, also a while later and
	// after more requests.
	_, code, _ = f.call("echo", "y").wait(t, time.Second)
	if code != wire.CodeUnavailable {
		t.Fatalf("second job: %d", code)
	}
	time.Sleep(300 * time.Millisecond) // long enough for a storm to show
	if n := f.Info().Jobs.Spawned; n != 4 {
		t.Fatalf("spawned %d slaves, want 4", n)
	}
	eventually(t, 5*time.Second, "crash logs", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.crashes) == 4
	})
	f.mu.Lock()
	out := strings.Join(f.crashes[3].Output, "\n")
	f.mu.Unlock()
	if !strings.Contains(out, "fatal: cannot load the app") {
		t.Fatalf("crash log lacks the slave's output: %q", out)
	}
}

func TestStartupTimeout(t *testing.T) {
	e := engineDefaults()
	e.StartupTimeout = 200 * time.Millisecond
	f := newPool(t, "silent", e, func(c *Config) { c.BrokenAfter, c.BackoffMin = 2, 10*time.Millisecond })
	_, code, _ := f.call("echo", "x").wait(t, 5*time.Second)
	if code != wire.CodeUnavailable || f.Info().State != StateBroken {
		t.Fatalf("silent slaves: code %d, state %s", code, f.Info().State)
	}
}

func TestHeartbeatTimeoutKills(t *testing.T) {
	e := engineDefaults()
	e.HeartbeatTimeout = 300 * time.Millisecond
	f := newPool(t, "no-heartbeat", e)
	s := f.call("echo", "x")
	eventually(t, 5*time.Second, "a crash for the missed heartbeat", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.crashes) >= 1 && strings.Contains(f.crashes[0].Reason, "no heartbeat")
	})
	_ = s // re-run on the next (equally silent) slave; stop ends it
}

func TestMalformedFrameKillsOnlyTheSlave(t *testing.T) {
	f := newPool(t, "garbage", engineDefaults(), func(c *Config) { c.MaxAttempts = 1 })
	_, code, _ := f.call("echo", "x").wait(t, 5*time.Second)
	if code != wire.CodeServer {
		t.Fatalf("job on a garbage slave: %d", code)
	}
	eventually(t, 5*time.Second, "a crash log naming the violation", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.crashes) == 1 && strings.Contains(f.crashes[0].Reason, "protocol violation")
	})
}

func TestStopFinishesRunningAndFailsQueued(t *testing.T) {
	e := engineDefaults()
	e.PoolLimit, e.TerminationTimeout = 1, 2*time.Second
	f := newPool(t, "slave", e)
	running := f.call("sleep", "300")
	eventually(t, 5*time.Second, "the slave to be busy", func() bool { return f.Info().Slaves.Busy == 1 })
	queued := f.call("echo", "x")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got, code, _ := running.wait(t, time.Second); code != 0 || got != "ok" {
		t.Fatalf("running job on stop: %d %q", code, got)
	}
	if _, code, _ := queued.wait(t, time.Second); code != wire.CodeUnavailable {
		t.Fatalf("queued job on stop: %d, want 503", code)
	}
	if _, code, _ := f.call("echo", "x").wait(t, time.Second); code != wire.CodeUnavailable {
		t.Fatalf("job after stop: %d, want 503", code)
	}
	if in := f.Info(); in.State != StateStopped || in.Slaves.Total != 0 || in.Jobs.Crashed != 0 {
		t.Fatalf("after stop: %+v", in)
	}
}

// BenchmarkPoolEcho is the pool alone: Submit → slave process → sink.
func BenchmarkPoolEcho(b *testing.B) {
	e := engineDefaults()
	e.PoolLimit = 1
	dir, _ := os.MkdirTemp("", "pool")
	defer os.RemoveAll(dir)
	p, err := New(Config{App: "bench", Engine: e, Socket: dir + "/s", Spawner: selfSpawner{"slave"}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop(context.Background())
	body := []byte("hello")
	b.ResetTimer()
	for range b.N {
		s := newSink()
		if err := p.Submit(&Job{Event: "echo", Body: body, Sink: s}); err != nil {
			b.Fatal(err)
		}
		<-s.done
	}
}

// A slave asked to leave exits by itself well within termination-timeout:
// stopping an app is not a crash.
func TestStopIsCleanExit(t *testing.T) {
	e := engineDefaults()
	e.PoolLimit = 1
	f := newPool(t, "slave", e)
	if got, code, msg := f.call("echo", "hi").wait(t, 10*time.Second); code != 0 || got != "hi" {
		t.Fatalf("echo: %d %s %q", code, msg, got)
	}
	if err := f.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if in := f.Info(); in.Jobs.Crashed != 0 || len(f.crashes) != 0 {
		t.Fatalf("a clean stop recorded crashes: %+v %+v", in.Jobs, f.crashes)
	}
}

// Stop after Handoff (what a redeploy does) must finish: with no slave
// at all, and with a live one, which is asked to leave rather than killed.
func TestStopAfterHandoff(t *testing.T) {
	for _, withSlave := range []bool{false, true} {
		t.Run(fmt.Sprintf("slave=%v", withSlave), func(t *testing.T) {
			e := engineDefaults()
			e.PoolLimit = 1
			f := newPool(t, "slave", e)
			if withSlave {
				if _, code, msg := f.call("echo", "hi").wait(t, 10*time.Second); code != 0 {
					t.Fatalf("echo: %d %s", code, msg)
				}
			}
			if jobs := f.Handoff(); len(jobs) != 0 {
				t.Fatalf("handoff of an idle pool gave %d jobs", len(jobs))
			}
			// A generous bound: a hang is the failure, not slowness.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := f.Stop(ctx); err != nil {
				t.Fatalf("stop after handoff: %v", err)
			}
			if _, err := os.Stat(f.cfg.Socket); !os.IsNotExist(err) {
				t.Fatalf("socket left behind: %v", err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if in := f.Info(); in.State != StateStopped || in.Jobs.Crashed != 0 || len(f.crashes) != 0 {
				t.Fatalf("after stop: %+v, crashes %+v", in, f.crashes)
			}
		})
	}
}
