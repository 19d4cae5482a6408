package pool

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// Sink receives a job's outcome: any number of chunks, then exactly one
// Close or Error, never concurrently. The pool calls it from its own
// goroutines and never while holding its lock. Chunk may block to slow
// the app down (flow control: the slave's reader waits, the slave's
// writes then block); a Sink that does should implement Interrupter. The
// slice given to Chunk is only valid during the call.
type Sink interface {
	Chunk(p []byte)
	Close()
	Error(code wire.Code, msg string)
}

// Interrupter is implemented by a Sink whose Chunk may block: the pool
// calls Interrupt before ending the job early (deadline, timeout, cancel)
// so that a Chunk waiting for its caller returns and the end can follow.
type Interrupter interface {
	Interrupt()
}

// ReplayLimit bounds the request body a job keeps to run again on another
// slave; a job whose body streamed past it is not re-run.
const ReplayLimit = wire.Window

// Job is one request for the app.
type Job struct {
	Event string
	// Body is the request body, or its beginning when More is set; the
	// rest then comes through Feed and EndBody.
	Body     []byte
	More     bool
	Urgent   bool          // goes to the front of the queue
	Timeout  time.Duration // from dispatch to a slave; 0 = none
	Deadline time.Time     // absolute; zero = none
	Sink     Sink
	// OnBodyWritten, optional, learns how many bytes of body fed after
	// Body reached the slave's socket: the dealer's credit.
	OnBodyWritten func(n int)

	// Owned by the pool, under its lock.
	owner      atomic.Pointer[Pool] // the pool that accepted it last
	state      jobState
	elem       *list.Element // in the queue while queued
	slave      *slave
	session    uint64
	chunked    bool // a chunk reached the sink: the job can no longer be re-run
	attempts   int
	dispatched bool // handed to a slave at least once: a re-run replays fedBody
	deadlineT  *time.Timer
	timeoutT   *time.Timer
	// The streaming body, under the pool lock: chunks fed while queued,
	// everything handed to slaves (for a re-run) while it fits ReplayLimit.
	pendingBody [][]byte
	bodyQueued  int  // bytes fed but not yet written to a slave socket
	bodyEnded   bool // EndBody came
	fedBody     [][]byte
	fedBytes    int
	noReplay    bool // the body outgrew ReplayLimit: no re-run
	room        chan struct{}
	queuedAt    time.Time // for the queue-wait and run-time observers
	startedAt   time.Time

	// dmu orders deliveries to Sink: chunks come from a slave's reader,
	// the end may come from a timer; nothing may follow the end.
	dmu   sync.Mutex
	ended bool
}

type jobState uint8

const (
	jobNew jobState = iota
	jobQueued
	jobRunning
	jobDone
)

// outcome is a terminal event for a sink, delivered outside the lock.
type outcome struct {
	job  *Job
	code wire.Code // 0 = Close
	msg  string
}

func (o outcome) deliver() {
	j := o.job
	if i, ok := j.Sink.(Interrupter); ok {
		i.Interrupt() // a Chunk blocked on its caller lets go of dmu
	}
	j.dmu.Lock()
	defer j.dmu.Unlock()
	if j.ended {
		return
	}
	j.ended = true
	if o.code == 0 {
		j.Sink.Close()
	} else {
		j.Sink.Error(o.code, o.msg)
	}
}

// chunk hands p to the sink unless the job already ended.
func (j *Job) chunk(p []byte) {
	j.dmu.Lock()
	defer j.dmu.Unlock()
	if !j.ended {
		j.Sink.Chunk(p)
	}
}

// finish marks j done and returns its outcome to deliver after unlocking.
// The caller holds the pool lock.
func (j *Job) finish(code wire.Code, msg string) outcome {
	j.state = jobDone
	j.pendingBody, j.fedBody = nil, nil
	if j.room != nil {
		close(j.room) // a Feed waiting for room learns the job is over
		j.room = nil
	}
	if j.deadlineT != nil {
		j.deadlineT.Stop()
	}
	if j.timeoutT != nil {
		j.timeoutT.Stop()
	}
	return outcome{job: j, code: code, msg: msg}
}

// Cancel ends the job for a caller that went away, in whichever pool
// holds it now (a redeploy may have handed it over).
func (j *Job) Cancel() {
	for range 3 {
		p := j.owner.Load()
		if p == nil {
			return
		}
		p.Cancel(j)
		if j.owner.Load() == p {
			return
		}
	}
}

// ErrBodyOverflow is returned by Feed when a remote sender exceeds its
// window: the job ends in 400.
var ErrBodyOverflow = wire.Errorf(wire.CodeBadRequest, "request body sent past its flow-control window")

// errJobOver is returned by Feed once the job has ended.
var errJobOver = wire.Errorf(wire.CodeBadRequest, "the request has ended")

// Feed passes more request body (for a job with More). With block, it
// waits while a window's worth is not yet written to the slave (the local
// route's flow control); without, a sender past its window fails the job
// (the dealer honours credits, so only a broken or hostile one does).
func (j *Job) Feed(data []byte, block bool) error {
	for {
		p := j.owner.Load()
		if p == nil {
			return errJobOver
		}
		err, wait := p.feed(j, data, block)
		if wait == nil {
			return err
		}
		<-wait
	}
}

// EndBody ends the request body.
func (j *Job) EndBody() {
	for range 3 {
		p := j.owner.Load()
		if p == nil || p.endBody(j) {
			return
		}
	}
}

// observe gives o the seconds since t, and returns now.
func observe(o Observer, t time.Time) time.Time {
	now := time.Now()
	if o != nil && !t.IsZero() {
		o.Observe(now.Sub(t).Seconds())
	}
	return now
}
