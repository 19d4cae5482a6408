// Package zmqbox lets any goroutine hand messages to the one goroutine
// that owns a ZeroMQ socket. ZeroMQ sockets are not thread-safe, yet
// answers come from many goroutines; polling a Go channel with a timeout
// would add latency, so posts travel through a Go channel to a forwarder
// that owns one end of an inproc PAIR, and the owner polls the other end
// beside its socket: it wakes the moment something is posted.
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
	ch     chan [][]byte
	in     *zmq.Socket // owner side: poll and drain
	out    *zmq.Socket // forwarder side
	done   chan struct{}
	mu     sync.RWMutex
	closed bool
}

var seq atomic.Uint64

// New makes a mailbox holding up to size messages in its channel.
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
	m := &Mailbox{ch: make(chan [][]byte, size), in: in, out: out, done: make(chan struct{})}
	go m.forward()
	return m, nil
}

func (m *Mailbox) forward() {
	defer close(m.done)
	for msg := range m.ch {
		_, _ = m.out.SendMessage(msg)
	}
	m.out.Close()
}

// Post queues a message; it blocks only while the mailbox is full. Posts
// after Close are dropped.
func (m *Mailbox) Post(frames [][]byte) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.closed {
		m.ch <- frames
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
	close(m.ch)
	m.mu.Unlock()
	<-m.done
	m.in.Close()
}
