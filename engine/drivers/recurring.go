package drivers

import (
	"time"

	"github.com/cocaine-cloud/cocaine/engine/pool"
)

// RecurringTimer submits an event every interval, whether or not the last
// one has finished: jobs overlap when they run longer than the interval.
const RecurringTimer = "recurring-timer"

func init() { Register(RecurringTimer, intervalFactory(runRecurring), checkInterval) }

func runRecurring(t *intervalTimer, stop <-chan struct{}) {
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
