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
// goroutines and never while holding its lock; a Sink must not block for
// long. The slice given to Chunk is only valid during the call.
type Sink interface {
	Chunk(p []byte)
	Close()
	Error(code wire.Code, msg string)
}

// Job is one request for the app.
type Job struct {
	Event    string
	Body     []byte
	Urgent   bool          // goes to the front of the queue
	Timeout  time.Duration // from dispatch to a slave; 0 = none
	Deadline time.Time     // absolute; zero = none
	Sink     Sink

	// Owned by the pool, under its lock.
	owner     atomic.Pointer[Pool] // the pool that accepted it last
	state     jobState
	elem      *list.Element // in the queue while queued
	slave     *slave
	session   uint64
	chunked   bool // a chunk reached the sink: the job can no longer be re-run
	attempts  int
	deadlineT *time.Timer
	timeoutT  *time.Timer

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
