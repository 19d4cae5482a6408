// Package zmqbox lets any goroutine hand messages to the one goroutine
// that owns a ZeroMQ socket. ZeroMQ sockets are not thread-safe, yet
// answers come from many goroutines; polling a Go channel with a timeout
// would add latency, so posts go into one end of an inproc PAIR, under a
// mutex (a socket may move between threads given a memory barrier), and
// the owner polls the other end beside its socket: it wakes the moment
// something is posted, with no goroutine hop in between.
package zmqbox

import (
	"fmt"
	"sync"
	"sync/atomic"

	zmq "github.com/pebbe/zmq4"
)

// Mailbox is a many-writers, one-reader queue of multipart messages that
// can be polled together with ZeroMQ sockets.
type Mailbox struct {
	in     *zmq.Socket // owner side: poll and drain
	out    *zmq.Socket // posting side, guarded by mu
	mu     sync.Mutex
	closed bool
}

var seq atomic.Uint64

// New makes a mailbox. size is kept for callers' clarity: the inproc
// pipe is unbounded (HWM 0), so posts never block.
func New(size int) (*Mailbox, error) {
	addr := fmt.Sprintf("inproc://zmqbox-%d", seq.Add(1))
	in, err := zmq.NewSocket(zmq.PAIR)
	if err != nil {
		return nil, err
	}
	out, err := zmq.NewSocket(zmq.PAIR)
	if err != nil {
		in.Close()
		return nil, err
	}
	for _, s := range []*zmq.Socket{in, out} {
		_ = s.SetLinger(0)
		_ = s.SetRcvhwm(0)
		_ = s.SetSndhwm(0)
	}
	if err := in.Bind(addr); err != nil {
		in.Close()
		out.Close()
		return nil, err
	}
	if err := out.Connect(addr); err != nil {
		in.Close()
		out.Close()
		return nil, err
	}
	return &Mailbox{in: in, out: out}, nil
}

// Post queues a message. Posts after Close are dropped.
func (m *Mailbox) Post(frames [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		_, _ = m.out.SendMessage(frames)
	}
}

// Socket is what the owner polls for zmq.POLLIN.
func (m *Mailbox) Socket() *zmq.Socket { return m.in }

// Drain hands up to max waiting messages to fn, on the owner's goroutine.
func (m *Mailbox) Drain(max int, fn func([][]byte)) {
	for range max {
		msg, err := m.in.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return
		}
		fn(msg)
	}
}

// Close stops the forwarder; call it from the owner once no more posts
// matter.
func (m *Mailbox) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.out.Close()
	m.mu.Unlock()
	m.in.Close()
}
