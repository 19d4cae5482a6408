package pool

import (
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

type slaveState uint8

const (
	slaveStarting    slaveState = iota // spawned, no handshake yet
	slaveAlive                         // handshake done; idle or busy by len(jobs)
	slaveTerminating                   // asked to leave; takes no new jobs
	slaveDead
)

func (s slaveState) String() string {
	return [...]string{"starting", "alive", "terminating", "dead"}[s]
}

// slave is one worker process. Fields are guarded by the pool lock unless
// noted.
type slave struct {
	id      string
	cmd     *exec.Cmd
	state   slaveState
	jobs    map[uint64]*Job
	spawned time.Time
	idleT   *time.Timer // pending idle exit while the slave has no job
	killT   *time.Timer // SIGKILL after termination-timeout
	watchT  *time.Timer // startup, then heartbeat timeout
	reason  string      // why it is terminating or dead
	exited  bool        // process reaped
	// requested: the engine asked it to go (terminate or kill), so its
	// exit is no crash unless fault says what went wrong.
	requested bool
	fault     string

	lastSeen atomic.Int64 // unix nanos of the last frame; read by the watch timer
	out      *outbox      // frames to the slave, written in order by one goroutine
	tail     *tail        // last lines of output, for the crash log
}

// outbox orders writes to a slave without blocking the pool on a slow
// socket: the pool appends under its lock, one goroutine writes.
type outbox struct {
	mu     sync.Mutex
	frames []protocol.Frame
	wake   chan struct{}
	closed bool
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) push(fs ...protocol.Frame) {
	o.mu.Lock()
	if !o.closed {
		o.frames = append(o.frames, fs...)
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.frames = nil
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run writes frames until the outbox closes or a write fails.
func (o *outbox) run(c *protocol.Conn, onErr func(error)) {
	var batch []protocol.Frame
	var ptrs []*protocol.Frame
	for range o.wake {
		for {
			o.mu.Lock()
			if o.closed {
				o.mu.Unlock()
				return
			}
			batch, o.frames = o.frames, batch[:0]
			o.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			// One write for what has gathered (an invoke, its body and its
			// choke, usually): fewer syscalls, and the slave reads it whole.
			ptrs = ptrs[:0]
			for i := range batch {
				ptrs = append(ptrs, &batch[i])
			}
			err := c.Write(ptrs...)
			clear(batch)
			if err != nil {
				onErr(err)
				return
			}
		}
	}
}

// tail keeps the last lines a slave printed.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.max {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:t.max-1]
	}
	t.lines = append(t.lines, line)
}

func (t *tail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}
