// Package gateway is the dealer: the client side of the cloud. Conn talks
// to one engine node; the dealer built on it discovers nodes and balances
// across them.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	zmq "github.com/pebbe/zmq4"

	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/internal/zmqbox"
)

// ErrClosed is returned by a closed Conn.
var ErrClosed = errors.New("gateway: connection closed")

// EventKind says what a stream event is.
type EventKind uint8

// Stream events.
const (
	EventAck   EventKind = iota + 1 // the node queued the request
	EventChunk                      // Data holds a piece of the answer
	EventError                      // Err holds the failure; the stream ended
	EventEnd                        // the answer is complete
)

// Event is one thing a node said about a request.
type Event struct {
	Kind EventKind
	Data []byte
	Err  *wire.Error
}

// Conn is a connection to one engine node's request endpoint. It is safe
// for concurrent use; one goroutine owns the ZeroMQ socket.
type Conn struct {
	endpoint string
	sock     *zmq.Socket
	box      *zmqbox.Loop
	stop     context.CancelFunc
	prefix   string
	seq      atomic.Uint64

	mu      sync.Mutex
	streams map[string]*Stream
	closed  bool
	done    chan struct{}
}

// Dial connects to a node endpoint such as tcp://127.0.0.1:5000. ZeroMQ
// connects in the background: a node that is not up yet is reached once
// it is.
func Dial(endpoint string) (*Conn, error) { return dial(endpoint, nil) }

// dial is Dial that also calls gone whenever the connection drops.
func dial(endpoint string, gone func()) (*Conn, error) {
	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, err
	}
	_ = sock.SetLinger(0)
	_ = sock.SetSndhwm(100000)
	_ = sock.SetRcvhwm(100000)
	if err := sock.Connect(endpoint); err != nil {
		sock.Close()
		return nil, fmt.Errorf("gateway: connect %s: %w", endpoint, err)
	}
	box, err := zmqbox.NewLoop(sock, 65536)
	if err != nil {
		sock.Close()
		return nil, err
	}
	monStop := make(chan struct{})
	if gone != nil {
		if err := watchDisconnects(sock, monStop, gone); err != nil {
			sock.Close()
			return nil, fmt.Errorf("gateway: monitor %s: %w", endpoint, err)
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{endpoint: endpoint, sock: sock, box: box, prefix: hex.EncodeToString(b[:]) + "-",
		streams: map[string]*Stream{}, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(c.done)
		box.Run(ctx, c.dispatch)
		close(monStop)
		sock.Close()
	}()
	return c, nil
}

// Endpoint is the node endpoint this Conn talks to.
func (c *Conn) Endpoint() string { return c.endpoint }

func (c *Conn) dispatch(msg [][]byte) {
	var h wire.Header
	if len(msg) < 1 || wire.DecodeHeader(msg[0], &h) != nil {
		return
	}
	c.mu.Lock()
	s := c.streams[h.ID]
	c.mu.Unlock()
	if s == nil {
		return // a stream nobody waits for any more
	}
	var ev Event
	switch h.Type {
	case wire.MsgAck:
		ev.Kind = EventAck
	case wire.MsgChunk, wire.MsgNode:
		ev.Kind = EventChunk
		if len(msg) > 1 {
			ev.Data = msg[1]
		}
	case wire.MsgError:
		ev.Kind, ev.Err = EventError, &wire.Error{Code: h.Code, Message: h.Message}
	case wire.MsgChoke:
		ev.Kind = EventEnd
	default:
		return
	}
	s.push(ev)
	if ev.Kind == EventError || ev.Kind == EventEnd || h.Type == wire.MsgNode {
		if h.Type == wire.MsgNode {
			s.push(Event{Kind: EventEnd})
		}
		c.forget(h.ID)
	}
}

func (c *Conn) forget(id string) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}

func (c *Conn) open(h *wire.Header, body []byte, withBody bool) (*Stream, error) {
	h.ID = c.prefix + fmt.Sprint(c.seq.Add(1))
	hdr, err := wire.AppendHeader(nil, h)
	if err != nil {
		return nil, err
	}
	s := newStream(c, h.ID)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.streams[h.ID] = s
	c.mu.Unlock()
	frames := [][]byte{hdr}
	if withBody {
		frames = append(frames, body)
	}
	c.box.Post(frames)
	return s, nil
}

// Send sends a request for APP/EVENT and returns its stream of events.
func (c *Conn) Send(app, event string, body []byte, p wire.Policy) (*Stream, error) {
	return c.open(&wire.Header{Type: wire.MsgInvoke, App: app, Event: event, Policy: p}, body, true)
}

// Info asks the node for its info.
func (c *Conn) Info(ctx context.Context) (wire.NodeInfo, error) {
	var in wire.NodeInfo
	s, err := c.open(&wire.Header{Type: wire.MsgInfo}, nil, false)
	if err != nil {
		return in, err
	}
	defer s.Close()
	ev, err := s.Next(ctx)
	if err != nil {
		return in, err
	}
	if ev.Kind == EventError {
		return in, ev.Err
	}
	if err := json.Unmarshal(ev.Data, &in); err != nil {
		return in, fmt.Errorf("gateway: node info: %w", err)
	}
	return in, nil
}

// Close ends the connection; open streams get ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	streams := c.streams
	c.streams = map[string]*Stream{}
	c.mu.Unlock()
	for _, s := range streams {
		s.fail(ErrClosed)
	}
	c.stop()
	<-c.done
	return nil
}

// Stream is the answer to one request.
type Stream struct {
	c   *Conn
	id  string
	mu  sync.Mutex
	q   []Event
	err error
	sig chan struct{}
	end bool
}

func newStream(c *Conn, id string) *Stream { return &Stream{c: c, id: id, sig: make(chan struct{}, 1)} }

func (s *Stream) push(ev Event) {
	s.mu.Lock()
	s.q = append(s.q, ev)
	s.mu.Unlock()
	select {
	case s.sig <- struct{}{}:
	default:
	}
}

func (s *Stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	select {
	case s.sig <- struct{}{}:
	default:
	}
}

// Next returns the next event. After EventError or EventEnd the stream is
// over. ctx ending returns ctx.Err(); the request goes on unless Close or
// Cancel is called.
func (s *Stream) Next(ctx context.Context) (Event, error) { return s.next(ctx, nil) }

// next is Next that also gives up with errNodeDead when dead closes, so
// the dealer notices a node's death without a goroutine per event.
func (s *Stream) next(ctx context.Context, dead <-chan struct{}) (Event, error) {
	for {
		s.mu.Lock()
		if len(s.q) > 0 {
			ev := s.q[0]
			s.q[0] = Event{}
			s.q = s.q[1:]
			if ev.Kind == EventError || ev.Kind == EventEnd {
				s.end = true
			}
			s.mu.Unlock()
			return ev, nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return Event{}, err
		}
		s.mu.Unlock()
		select {
		case <-s.sig:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-dead:
			return Event{}, errNodeDead
		}
	}
}

// Cancel tells the node the caller went away.
func (s *Stream) Cancel() {
	s.mu.Lock()
	ended := s.end
	s.end = true
	s.mu.Unlock()
	if !ended {
		hdr, _ := wire.AppendHeader(nil, &wire.Header{Type: wire.MsgCancel, ID: s.id})
		s.c.box.Post([][]byte{hdr})
	}
	s.c.forget(s.id)
}

// Close releases the stream, cancelling the request if it has not ended.
func (s *Stream) Close() { s.Cancel() }

// Collect reads a whole answer: the chunks joined, or the error.
func (s *Stream) Collect(ctx context.Context) ([]byte, error) {
	defer s.Close()
	return collect(ctx, s.Next)
}

// collect joins the chunks of an answer until its end or error.
func collect(ctx context.Context, next func(context.Context) (Event, error)) ([]byte, error) {
	var out []byte
	for {
		ev, err := next(ctx)
		if err != nil {
			return out, err
		}
		switch ev.Kind {
		case EventChunk:
			out = append(out, ev.Data...)
		case EventError:
			return out, ev.Err
		case EventEnd:
			return out, nil
		}
	}
}
