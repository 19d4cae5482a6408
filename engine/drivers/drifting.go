package drivers

import (
	"time"

	"github.com/cocaine-cloud/cocaine/engine/pool"
)

// DriftingTimer keeps at most one job outstanding: the next interval
// starts when the job ends, so the period is the interval plus the run
// time. It suits work that must never run twice at once.
const DriftingTimer = "drifting-timer"

func init() { Register(DriftingTimer, intervalFactory(runDrifting), checkInterval) }

func runDrifting(t *intervalTimer, stop <-chan struct{}) {
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
