// Package pool runs one app's queue and its self-managing pool of slave
// processes, with the semantics of DESIGN.md ("Pool semantics"): a bounded
// queue with urgent jobs in front, growth with the queue, idle exit,
// startup and heartbeat watch, process exit seen at once, re-running a
// job whose slave died before answering, and timers for timeouts and
// deadlines.
package pool

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/slaves/protocol"
	"github.com/cocaine-cloud/cocaine/storage"
)

// Spawner makes the command of a new slave; the pool adds the protocol
// environment and output pipes and starts it.
type Spawner interface {
	Command(slaveID string) (*exec.Cmd, error)
}

// Crash is what the pool knows about a slave that died abnormally.
type Crash struct {
	App    string    `json:"app"`
	Slave  string    `json:"slave"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
	Status string    `json:"status"` // exit status as the OS reports it
	Output []string  `json:"output"` // its last lines of stdout and stderr
}

// Config configures a Pool.
type Config struct {
	App     string
	Engine  manifest.Engine // the manifest's pool settings
	Socket  string          // path of the Unix socket slaves connect to
	Spawner Spawner
	Logger  *slog.Logger          // with the app's name among its attributes
	OnLog   func(storage.LogLine) // every line slaves print; optional
	OnCrash func(Crash)           // optional

	// MaxAttempts bounds how often a job is run again after its slave died
	// before answering, so that a request that kills every slave ends.
	MaxAttempts int // default 3
	// BrokenAfter consecutive slaves that die before their handshake mark
	// the app broken.
	BrokenAfter int // default 5
	// Backoff between respawns after a failed start doubles from
	// BackoffMin up to BackoffMax.
	BackoffMin, BackoffMax time.Duration // defaults 100ms, 5s
	TailLines              int           // output lines kept for a crash log; default 100

	// QueueWait and RunTime observe each job's seconds in the queue and
	// on a slave (engine/metrics.go); nil observes nothing.
	QueueWait, RunTime Observer
}

// Observer takes one measurement (prometheus.Observer fits).
type Observer interface{ Observe(float64) }

// State is an app's state on this node.
type State string

// States.
const (
	StateRunning  State = "running"
	StateBroken   State = "broken"
	StateStopping State = "stopping"
	StateStopped  State = "stopped"
)

// Pool is one app's queue and slaves.
type Pool struct {
	cfg  Config
	log  *slog.Logger
	ln   *net.UnixListener
	hbMS string

	mu       sync.Mutex
	state    State
	reason   string // why broken
	queue    list.List
	slaves   map[string]*slave
	session  uint64
	failures int // consecutive slaves lost before their handshake
	backoff  time.Time
	retryT   *time.Timer
	stats    Stats
	empty    chan struct{} // closed when stopping and the last slave is gone
	stopping bool          // Stop has begun: slaves asked to leave

	wg sync.WaitGroup
}

// Stats counts jobs since the pool started.
type Stats struct {
	Accepted  uint64 `json:"accepted"`
	Processed uint64 `json:"processed"` // ended with a response
	Failed    uint64 `json:"failed"`    // ended with an error after acceptance
	Rejected  uint64 `json:"rejected"`  // refused at once (queue full, broken, stopping)
	Retried   uint64 `json:"retried"`   // re-run after their slave died
	Spawned   uint64 `json:"spawned"`
	Crashed   uint64 `json:"crashed"`
	IdleExits uint64 `json:"idle-exits"`      // slaves asked to leave after idle-timeout
	Timeouts  uint64 `json:"timeouts"`        // jobs ended by their timeout (504)
	Deadlines uint64 `json:"deadline-misses"` // jobs ended by their deadline (520)
}

// ended counts a job that ended early by its code.
func (s *Stats) ended(code wire.Code) {
	s.Failed++
	switch code {
	case wire.CodeTimeout:
		s.Timeouts++
	case wire.CodeDeadline:
		s.Deadlines++
	}
}

// New listens on cfg.Socket and returns a running pool. Slaves start on
// demand.
func New(cfg Config) (*Pool, error) {
	if cfg.Spawner == nil {
		return nil, errors.New("pool: no spawner")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	setDefault(&cfg.MaxAttempts, 3)
	setDefault(&cfg.BrokenAfter, 5)
	setDefault(&cfg.TailLines, 100)
	setDefault(&cfg.BackoffMin, 100*time.Millisecond)
	setDefault(&cfg.BackoffMax, 5*time.Second)
	e := &cfg.Engine
	if e.PoolLimit <= 0 || e.GrowThreshold <= 0 || e.Concurrency <= 0 || e.StartupTimeout <= 0 || e.HeartbeatTimeout <= 0 || e.IdleTimeout <= 0 {
		return nil, fmt.Errorf("pool: app %s: invalid engine settings %+v", cfg.App, *e)
	}
	_ = os.Remove(cfg.Socket) // a socket left by a previous run of this node
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("pool: app %s: listen: %w", cfg.App, err)
	}
	// Heartbeats four times per timeout: one lost beat is not a death.
	hb := min(e.HeartbeatTimeout/4, 5*time.Second)
	hb = max(hb, 50*time.Millisecond)
	p := &Pool{
		cfg:    cfg,
		log:    cfg.Logger, // the caller's logger names the app
		ln:     ln,
		hbMS:   fmt.Sprint(hb.Milliseconds()),
		state:  StateRunning,
		slaves: map[string]*slave{},
		empty:  make(chan struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Submit queues j, or refuses it at once with a *wire.Error (queue full,
// deadline passed, app broken or stopping) without calling j.Sink. Once
// queued, j ends through its Sink exactly once.
func (p *Pool) Submit(j *Job) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err *wire.Error
	switch {
	case p.state == StateBroken:
		// Not available here now: a dealer tries a node where the app
		// may be healthy.
		err = wire.Errorf(wire.CodeUnavailable, "app is broken: %s", p.reason)
	case p.state != StateRunning:
		err = wire.Errorf(wire.CodeUnavailable, "app is %s", p.state)
	case !j.Deadline.IsZero() && !time.Now().Before(j.Deadline):
		err = wire.Errorf(wire.CodeDeadline, "deadline passed before the job was queued")
	case p.queue.Len() >= p.cfg.Engine.QueueLimit:
		err = wire.Errorf(wire.CodeUnavailable, "queue is full (%d jobs)", p.queue.Len())
	}
	if err != nil {
		p.stats.Rejected++
		j.state = jobDone
		return err
	}
	p.stats.Accepted++
	if j.owner.Load() == nil { // not a job handed over by a redeploy
		j.fedBytes = len(j.Body)
		j.noReplay = len(j.Body) > ReplayLimit && j.More
		if j.More {
			j.bodyQueued = len(j.Body)
		}
	}
	j.owner.Store(p)
	j.queuedAt = time.Now()
	p.enqueue(j, j.Urgent)
	if !j.Deadline.IsZero() {
		j.deadlineT = time.AfterFunc(time.Until(j.Deadline), func() { p.expire(j) })
	}
	p.pump()
	return nil
}

func deliver(outs []outcome) {
	for _, o := range outs {
		o.deliver()
	}
}

func (p *Pool) enqueue(j *Job, front bool) {
	j.state = jobQueued
	if front {
		j.elem = p.queue.PushFront(j)
	} else {
		j.elem = p.queue.PushBack(j)
	}
}

// pump hands queued jobs to slaves with spare capacity, then grows the
// pool if the queue asks for it. Called with p.mu held.
func (p *Pool) pump() {
	for p.queue.Len() > 0 {
		s := p.pick()
		if s == nil {
			break
		}
		j := p.queue.Remove(p.queue.Front()).(*Job)
		j.elem = nil
		p.dispatch(s, j)
	}
	p.grow()
}

// pick returns the least loaded alive slave with spare capacity, the most
// recently spawned among equals, so that surplus slaves go idle and leave.
func (p *Pool) pick() *slave {
	var best *slave
	for _, s := range p.slaves {
		if s.state != slaveAlive || len(s.jobs) >= p.cfg.Engine.Concurrency {
			continue
		}
		if best == nil || len(s.jobs) < len(best.jobs) ||
			(len(s.jobs) == len(best.jobs) && s.spawned.After(best.spawned)) {
			best = s
		}
	}
	return best
}

func (p *Pool) dispatch(s *slave, j *Job) {
	p.session++
	j.session, j.slave, j.state = p.session, s, jobRunning
	j.startedAt = observe(p.cfg.QueueWait, j.queuedAt)
	s.jobs[j.session] = j
	if s.idleT != nil {
		s.idleT.Stop()
		s.idleT = nil
	}
	out := s.out.begin()
	out.add(protocol.Frame{Type: protocol.Invoke, Session: j.session, Event: j.Event}, nil, 0)
	// The first time, the body fed so far is credited as it reaches the
	// slave; a re-run replays what the first slave had, uncredited.
	credit := func(n int) int {
		if j.dispatched || !j.More {
			return 0
		}
		return n
	}
	out.body(j.session, j.Body, j, credit(len(j.Body)))
	if j.dispatched {
		for _, b := range j.fedBody {
			out.body(j.session, b, nil, 0)
		}
	} else {
		for _, b := range j.pendingBody {
			out.body(j.session, b, j, len(b))
		}
	}
	j.pendingBody, j.dispatched = nil, true
	if !j.More || j.bodyEnded {
		out.add(protocol.Frame{Type: protocol.Choke, Session: j.session}, nil, 0)
	}
	out.end()
	if j.Timeout > 0 {
		session := j.session
		j.timeoutT = time.AfterFunc(j.Timeout, func() {
			p.abandon(j, session, wire.CodeTimeout, fmt.Sprintf("job ran past its timeout of %v", j.Timeout))
		})
	}
}

// grow applies the growth rule of Cocaine 0.9: grow when
// pool × grow-threshold < 2 × queue, to min(limit, max(2×queue/threshold, 1)).
func (p *Pool) grow() {
	if p.state != StateRunning || p.queue.Len() == 0 {
		return
	}
	if wait := time.Until(p.backoff); wait > 0 {
		if p.retryT == nil {
			p.retryT = time.AfterFunc(wait, func() {
				p.mu.Lock()
				p.retryT = nil
				p.pump()
				p.mu.Unlock()
			})
		}
		return
	}
	e := p.cfg.Engine
	n := 0
	for _, s := range p.slaves {
		if s.state == slaveStarting || s.state == slaveAlive {
			n++
		}
	}
	q := p.queue.Len()
	if n >= e.PoolLimit || n*e.GrowThreshold >= 2*q {
		return
	}
	target := min(e.PoolLimit, max(2*q/e.GrowThreshold, 1))
	if target > n {
		p.log.Debug("growing the pool", "from", n, "to", target, "queue", q)
	}
	for ; n < target; n++ {
		if err := p.spawn(); err != nil {
			p.log.Error("cannot start a slave", "err", err)
			p.startFailed("cannot start: " + err.Error())
			return
		}
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// expire fires at a job's deadline.
func (p *Pool) expire(j *Job) {
	p.endEarly(j, false, wire.CodeDeadline, "deadline passed while queued", "deadline passed while running")
}

// endEarly ends a job before its answer: a queued one leaves the queue, a
// running one is abandoned on its slave. onlyOwned skips a job that
// another pool holds now (handed over by a redeploy).
func (p *Pool) endEarly(j *Job, onlyOwned bool, code wire.Code, queuedMsg, runningMsg string) {
	p.mu.Lock()
	if onlyOwned && j.owner.Load() != p {
		p.mu.Unlock()
		return
	}
	switch j.state {
	case jobQueued:
		p.queue.Remove(j.elem)
		j.elem = nil
		p.stats.ended(code)
		o := j.finish(code, queuedMsg)
		p.mu.Unlock()
		o.deliver()
	case jobRunning:
		session := j.session
		p.mu.Unlock()
		p.abandon(j, session, code, runningMsg)
	default:
		p.mu.Unlock()
	}
}

// abandon ends a running job with an error and tells its slave to stop the
// session. The session keeps its slot until the slave ends it; a slave
// that does not within termination-timeout is killed, since a handler
// that ignores cancellation would otherwise hold the slot for ever.
func (p *Pool) abandon(j *Job, session uint64, code wire.Code, msg string) {
	p.mu.Lock()
	if j.state != jobRunning || j.session != session {
		p.mu.Unlock()
		return
	}
	s := j.slave
	p.stats.ended(code)
	o := j.finish(code, msg)
	s.out.push(protocol.Frame{Type: protocol.Error, Session: session, Code: int(code), Message: msg})
	grace := p.cfg.Engine.TerminationTimeout
	time.AfterFunc(grace, func() {
		p.mu.Lock()
		if _, still := s.jobs[session]; still && s.state != slaveDead {
			p.kill(s, fmt.Sprintf("session %d still running %v after it was cancelled", session, grace))
		}
		p.mu.Unlock()
	})
	p.mu.Unlock()
	o.deliver()
}

// Info is a snapshot of the pool for announces and `cocaine info`.
type Info struct {
	State      State  `json:"state"`
	Reason     string `json:"reason,omitempty"`
	QueueDepth int    `json:"queue-depth"`
	Slaves     struct {
		Total       int `json:"total"`
		Busy        int `json:"busy"`
		Starting    int `json:"starting"`
		Terminating int `json:"terminating"` // idle = total - busy - starting - terminating
	} `json:"slaves"`
	Jobs Stats `json:"jobs"`
}

// Info returns the pool's current state.
func (p *Pool) Info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	var in Info
	in.State, in.Reason, in.QueueDepth, in.Jobs = p.state, p.reason, p.queue.Len(), p.stats
	for _, s := range p.slaves {
		switch {
		case s.state == slaveDead:
			continue
		case s.state == slaveStarting:
			in.Slaves.Starting++
		case s.state == slaveTerminating:
			in.Slaves.Terminating++
		case len(s.jobs) > 0:
			in.Slaves.Busy++
		}
		in.Slaves.Total++
	}
	return in
}

// Stop stops taking jobs, fails the queued ones with 503 (the dealer may
// send them elsewhere), lets running jobs finish and waits for every slave
// to leave; slaves still there after termination-timeout are killed.
// When ctx ends first, the remaining slaves are killed at once.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	var outs []outcome
	// Handoff may have set StateStopping already; that only stopped new
	// jobs, so Stop's own work (failing the queue, asking slaves to leave,
	// noticing an empty pool) must still run once.
	if !p.stopping {
		p.stopping = true
		p.state = StateStopping
		for e := p.queue.Front(); e != nil; e = p.queue.Front() {
			j := p.queue.Remove(e).(*Job)
			p.stats.Failed++
			outs = append(outs, j.finish(wire.CodeUnavailable, "app is stopping"))
		}
		if p.retryT != nil {
			p.retryT.Stop()
		}
		for _, s := range p.slaves {
			p.terminate(s, "app stopping")
		}
		p.checkEmpty()
	}
	p.mu.Unlock()
	deliver(outs)

	var err error
	select {
	case <-p.empty:
	case <-ctx.Done():
		err = ctx.Err()
		p.mu.Lock()
		for _, s := range p.slaves {
			p.kill(s, "engine stop deadline")
		}
		p.mu.Unlock()
		<-p.empty
	}
	_ = p.ln.Close()
	p.wg.Wait()
	p.mu.Lock()
	p.state = StateStopped
	p.mu.Unlock()
	_ = os.Remove(p.cfg.Socket)
	return err
}

// checkEmpty closes p.empty once a stopping pool has no slave left.
func (p *Pool) checkEmpty() {
	if p.state != StateStopping || len(p.slaves) > 0 {
		return
	}
	select {
	case <-p.empty:
	default:
		close(p.empty)
	}
}

// Cancel ends a job whose caller went away: a queued job leaves the
// queue, a running one is cancelled on its slave.
func (p *Pool) Cancel(j *Job) {
	p.endEarly(j, true, wire.CodeBadRequest, "cancelled by the caller", "cancelled by the caller")
}

// Handoff stops the pool taking jobs and gives back its queued ones,
// still owed an answer, so that a new version of the app can run them: an
// update loses no request. Running jobs finish here; Stop comes after.
func (p *Pool) Handoff() []*Job {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == StateRunning || p.state == StateBroken {
		p.state = StateStopping
	}
	var jobs []*Job
	for e := p.queue.Front(); e != nil; e = p.queue.Front() {
		j := p.queue.Remove(e).(*Job)
		if j.deadlineT != nil {
			j.deadlineT.Stop()
			j.deadlineT = nil
		}
		j.elem, j.state, j.attempts = nil, jobNew, 0 // dispatched stays: a re-run replays
		p.stats.Accepted--                           // counted again by the pool that takes it
		jobs = append(jobs, j)
	}
	return jobs
}

// feed adds streamed body to a job (see Job.Feed). It returns a channel
// to wait on when the job has a window's worth not yet written.
func (p *Pool) feed(j *Job, data []byte, block bool) (error, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j.owner.Load() != p {
		return nil, closedCh // handed over meanwhile: try its new pool
	}
	if j.state == jobDone || !j.More || j.bodyEnded {
		return errJobOver, nil
	}
	if j.bodyQueued >= wire.Window {
		if !block {
			return ErrBodyOverflow, nil
		}
		if j.room == nil {
			j.room = make(chan struct{})
		}
		return nil, j.room
	}
	j.bodyQueued += len(data)
	if !j.noReplay {
		if j.fedBytes+len(data) <= ReplayLimit {
			j.fedBody = append(j.fedBody, data)
			j.fedBytes += len(data)
		} else {
			j.noReplay, j.fedBody = true, nil
		}
	}
	if j.state == jobRunning && j.slave != nil {
		out := j.slave.out.begin()
		out.body(j.session, data, j, len(data))
		out.end()
	} else {
		j.pendingBody = append(j.pendingBody, data)
	}
	return nil, nil
}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// endBody ends a job's streamed body; false when the job moved to
// another pool meanwhile.
func (p *Pool) endBody(j *Job) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j.owner.Load() != p {
		return false
	}
	if j.state == jobDone || !j.More || j.bodyEnded {
		return true
	}
	j.bodyEnded = true
	if j.state == jobRunning && j.slave != nil {
		out := j.slave.out.begin()
		out.add(protocol.Frame{Type: protocol.Choke, Session: j.session}, nil, 0)
		out.end()
	}
	return true
}

// bodyWritten is called by a slave's writer once n bytes of j's streamed
// body are on the socket: room for more, and credit for the dealer.
func (p *Pool) bodyWritten(j *Job, n int) {
	p.mu.Lock()
	j.bodyQueued -= n
	if j.room != nil && j.bodyQueued < wire.Window {
		close(j.room)
		j.room = nil
	}
	p.mu.Unlock()
	if j.OnBodyWritten != nil {
		j.OnBodyWritten(n)
	}
}
