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
	served  uint64        // jobs it answered
	idleT   *time.Timer   // pending idle exit while the slave has no job
	killT   *time.Timer   // SIGKILL after termination-timeout
	watchT  *time.Timer   // startup, then heartbeat timeout
	reason  string        // why it is terminating or dead
	exited  bool          // process reaped
	started bool          // its process exists (start runs off the pool's lock)
	reading chan struct{} // closed when its connection's reader has read to the end
	reaped  bool          // waited for: never signal its pid again
	// requested: the engine asked it to go (terminate or kill), so its
	// exit is no crash unless fault says what went wrong.
	requested bool
	fault     string

	lastSeen atomic.Int64 // unix nanos of the last frame; read by the watch timer
	// inSink is set while the reader waits in a job's Sink (a slow caller
	// holding the answer back): the slave's silence is then ours.
	inSink atomic.Bool
	out    *outbox // frames to the slave, written in order by one goroutine
	tail   *tail   // last lines of output, for the crash log
}

// outbox orders writes to a slave without blocking the pool on a slow
// socket: the pool appends under its lock, one goroutine writes. Each
// wake-up of the writer sends everything gathered in one write.
type outbox struct {
	mu     sync.Mutex
	frames []outFrame
	wake   chan struct{}
	closed bool
}

// outFrame is a frame and, for streamed request body, whose body it is and
// how many bytes to credit once it is written.
type outFrame struct {
	f   protocol.Frame
	job *Job
	n   int
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) push(fs ...protocol.Frame) {
	b := o.begin()
	for _, f := range fs {
		b.add(f, nil, 0)
	}
	b.end()
}

// batch appends several frames under one lock and one wake-up.
type batch struct{ o *outbox }

func (o *outbox) begin() batch { o.mu.Lock(); return batch{o} }

func (b batch) add(f protocol.Frame, j *Job, n int) {
	if !b.o.closed {
		b.o.frames = append(b.o.frames, outFrame{f, j, n})
	}
}

// body adds data as chunk frames of at most protocol.ChunkSize; credit
// bytes are reported for j once written.
func (b batch) body(session uint64, data []byte, j *Job, credit int) {
	for len(data) > 0 {
		k := min(len(data), protocol.ChunkSize)
		c := 0
		if k == len(data) {
			c = credit // credited once, with the last piece
		}
		b.add(protocol.Frame{Type: protocol.Chunk, Session: session, Data: data[:k]}, j, c)
		data = data[k:]
	}
}

func (b batch) end() {
	b.o.mu.Unlock()
	select {
	case b.o.wake <- struct{}{}:
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

// run writes frames until the outbox closes or a write fails; written is
// told of streamed body once it is on the socket.
func (o *outbox) run(c *protocol.Conn, onErr func(error), written func(j *Job, n int)) {
	var batch []outFrame
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
				ptrs = append(ptrs, &batch[i].f)
			}
			err := c.Write(ptrs...)
			if err != nil {
				onErr(err)
				return
			}
			for _, of := range batch {
				if of.job != nil && of.n > 0 {
					written(of.job, of.n)
				}
			}
			clear(batch)
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
