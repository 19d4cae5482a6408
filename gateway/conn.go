// Package gateway is the dealer: the client side of the cloud. Conn talks
// to one engine node; the dealer built on it discovers nodes and balances
// across them.
package gateway

import (
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"

	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
	Kind     EventKind
	Data     []byte
	Err      *wire.Error
	n        int64 // eventCredit: bytes
	credited bool  // a chunk already credited to its node (see BufferWhileSending)
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
	streams map[string]*try
	closed  bool
	done    chan struct{}
}

// Dial connects to a node endpoint such as tcp://127.0.0.1:5000. ZeroMQ
// connects in the background: a node that is not up yet is reached once
// it is.
func Dial(endpoint string) (*Conn, error) { return dial(endpoint, nil, nil) }

// dial is Dial with security settings (nil: none) that also calls gone
// whenever the connection drops.
func dial(endpoint string, sec *zmqsec.Config, gone func()) (*Conn, error) {
	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, err
	}
	_ = sock.SetLinger(0)
	_ = sock.SetSndhwm(100000)
	_ = sock.SetRcvhwm(100000)
	if err := sec.Client(sock); err != nil {
		sock.Close()
		return nil, err
	}
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
		streams: map[string]*try{}, done: make(chan struct{}), stop: cancel}
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

// dispatch runs on the socket's goroutine for every message from the node.
func (c *Conn) dispatch(msg [][]byte) {
	var h wire.Header
	if len(msg) < 1 || wire.DecodeHeader(msg[0], &h) != nil {
		return
	}
	c.mu.Lock()
	t := c.streams[h.ID]
	c.mu.Unlock()
	if t == nil {
		return // a request nobody waits for any more
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
	case wire.MsgCredit:
		ev.Kind, ev.n = eventCredit, h.Credit
	default:
		return
	}
	t.r.onEvent(t, ev)
	if h.Type == wire.MsgNode {
		t.r.onEvent(t, Event{Kind: EventEnd})
	}
}

// register gives t an id on this connection; false once it is closed.
func (c *Conn) register(t *try) bool {
	t.id = c.prefix + strconv.FormatUint(c.seq.Add(1), 10)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.streams[t.id] = t
	return true
}

func (c *Conn) forget(id string) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}

// post queues a message to the node; it never blocks.
func (c *Conn) post(h *wire.Header, data []byte, withData bool) {
	hdr, err := wire.AppendHeader(make([]byte, 0, 64), h)
	if err != nil {
		return
	}
	if withData {
		c.box.Post([][]byte{hdr, data})
	} else {
		c.box.Post([][]byte{hdr})
	}
}

// failAll ends every request in flight on this connection as lost: the
// node died, or the connection is closing.
func (c *Conn) failAll(error) {
	c.mu.Lock()
	streams := c.streams
	c.streams = map[string]*try{}
	c.mu.Unlock()
	for _, t := range streams {
		t.r.onEvent(t, Event{Kind: eventLost})
	}
}

// Send sends a request for APP/EVENT to this node alone, with no re-sends
// elsewhere, and returns its answer.
func (c *Conn) Send(app, event string, body []byte, p wire.Policy) (*Response, error) {
	r := newResponse(nil, app, event, body, false, p)
	r.conn = c
	r.mu.Lock()
	r.next()
	r.mu.Unlock()
	return r, nil
}

// Info asks the node for its info.
func (c *Conn) Info(ctx context.Context) (wire.NodeInfo, error) {
	var in wire.NodeInfo
	r := newResponse(nil, "", "", nil, false, wire.Policy{})
	r.conn, r.info = c, true
	r.mu.Lock()
	r.next()
	r.mu.Unlock()
	b, err := r.Collect(ctx)
	if err != nil {
		return in, err
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("gateway: node info: %w", err)
	}
	return in, nil
}

// Close ends the connection; requests in flight on it end as lost.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.failAll(ErrClosed)
	c.stop()
	<-c.done
	return nil
}

var errNodeDead = errors.New("node dead")
