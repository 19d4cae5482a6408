package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	zmq "github.com/pebbe/zmq4"

	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/internal/zmqbox"
)

// router serves the node's ROUTER endpoint on one goroutine; answers from
// the pools' goroutines reach it through the loop's queue.
type router struct {
	n       *Node
	sock    *zmq.Socket
	replies *zmqbox.Loop

	mu       sync.Mutex
	inflight map[string]*request // identity + id → request, for cancels
}

func newRouter(n *Node) (*router, error) {
	sock, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		return nil, fmt.Errorf("engine: router socket: %w", err)
	}
	_ = sock.SetLinger(0)
	_ = sock.SetSndhwm(100000)
	_ = sock.SetRcvhwm(100000)
	if err := n.cfg.Security.Server(sock); err != nil {
		sock.Close()
		return nil, fmt.Errorf("engine: router socket: %w", err)
	}
	if err := sock.Bind(n.cfg.Listen); err != nil {
		sock.Close()
		return nil, fmt.Errorf("engine: bind %s: %w", n.cfg.Listen, err)
	}
	box, err := zmqbox.NewLoop(sock, 65536)
	if err != nil {
		sock.Close()
		return nil, err
	}
	return &router{n: n, sock: sock, replies: box, inflight: map[string]*request{}}, nil
}

func (r *router) close() { r.sock.Close() }

func (r *router) serve(ctx context.Context) { r.replies.Run(ctx, r.handle) }

func (r *router) send(identity []byte, h *wire.Header, data []byte, withData bool) {
	hdr, err := wire.AppendHeader(nil, h)
	if err != nil {
		r.n.log.Error("encode reply", "err", err)
		return
	}
	frames := [][]byte{identity, hdr}
	if withData {
		frames = append(frames, data)
	}
	if err := r.replies.Send(frames); err != nil {
		r.n.log.Debug("reply dropped", "err", err)
	}
}

// handle runs on the serving goroutine: it must never block.
func (r *router) handle(msg [][]byte) {
	if len(msg) < 2 {
		return
	}
	identity := msg[0]
	var h wire.Header
	if err := wire.DecodeHeader(msg[1], &h); err != nil {
		r.n.log.Debug("bad request dropped", "err", err)
		if h.ID != "" {
			r.send(identity, &wire.Header{Type: wire.MsgError, ID: h.ID, Code: wire.CodeBadRequest, Message: err.Error()}, nil, false)
		}
		return
	}
	switch h.Type {
	case wire.MsgInfo:
		b, _ := json.Marshal(r.n.DetailedInfo())
		r.send(identity, &wire.Header{Type: wire.MsgNode, ID: h.ID}, b, true)
	case wire.MsgCancel:
		if req := r.lookup(identity, h.ID); req != nil {
			req.Interrupt() // a Chunk waiting for credit lets go first
			req.job.Cancel()
		}
	case wire.MsgChunk:
		if req := r.lookup(identity, h.ID); req != nil && len(msg) > 2 {
			if err := req.job.Feed(msg[2], false); err == pool.ErrBodyOverflow {
				r.n.log.Warn("request body past its window: cancelled", "app", req.appName)
				req.Interrupt()
				req.job.Cancel()
			}
		}
	case wire.MsgChoke:
		if req := r.lookup(identity, h.ID); req != nil {
			req.job.EndBody()
		}
	case wire.MsgCredit:
		if req := r.lookup(identity, h.ID); req != nil {
			req.credit(h.Credit)
		}
	case wire.MsgInvoke:
		var body []byte
		if len(msg) > 2 {
			body = msg[2]
		}
		r.invoke(identity, &h, body)
	default:
		r.send(identity, &wire.Header{Type: wire.MsgError, ID: h.ID, Code: wire.CodeBadRequest, Message: fmt.Sprintf("unexpected message type %d", h.Type)}, nil, false)
	}
}

func (r *router) lookup(identity []byte, id string) *request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight[string(identity)+"\x00"+id]
}

func (r *router) invoke(identity []byte, h *wire.Header, body []byte) {
	fail := func(err error) {
		msg := err.Error()
		var we *wire.Error
		if errors.As(err, &we) {
			msg = we.Message
		}
		r.send(identity, &wire.Header{Type: wire.MsgError, ID: h.ID, Code: wire.CodeOf(err), Message: msg}, nil, false)
	}
	req := &request{r: r, n: r.n, appName: h.App, key: string(identity) + "\x00" + h.ID, identity: identity, id: h.ID,
		wake: make(chan struct{}, 1)}
	req.job = &pool.Job{Body: body, More: h.Flags&wire.FlagMore != 0, Urgent: h.Policy.Urgent, Timeout: h.Policy.Timeout, Deadline: h.Policy.Deadline, Sink: req}
	if req.job.More {
		req.job.OnBodyWritten = req.bodyWritten
	}
	r.mu.Lock()
	r.inflight[req.key] = req
	r.mu.Unlock()
	if err := r.n.Submit(h.App, h.Event, req.job); err != nil {
		r.mu.Lock()
		delete(r.inflight, req.key)
		r.mu.Unlock()
		fail(err)
		return
	}
	r.send(identity, &wire.Header{Type: wire.MsgAck, ID: h.ID}, nil, false)
	req.acked()
}

// request is one dealer request in flight: the pool's Sink for it. Its
// answers wait until the ack is on the wire, then go out in order.
type request struct {
	r        *router
	n        *Node
	appName  string
	job      *pool.Job
	key      string
	identity []byte
	id       string

	mu      sync.Mutex
	ack     bool
	pending [][][]byte
	// Answer flow control: bytes sent to the dealer and not yet credited.
	// Chunk waits (the pool's reader with it) while a window's worth is
	// out; credit, Interrupt or the end wakes it.
	out         int64
	interrupted bool
	wake        chan struct{}
}

func (q *request) emit(h wire.Header, data []byte, withData bool, final bool) {
	hdr, _ := wire.AppendHeader(nil, &h)
	frames := [][]byte{q.identity, hdr}
	if withData {
		frames = append(frames, data)
	}
	q.mu.Lock()
	if q.ack {
		q.r.replies.Post(frames)
	} else {
		q.pending = append(q.pending, frames)
	}
	q.mu.Unlock()
	if final {
		q.r.mu.Lock()
		delete(q.r.inflight, q.key)
		q.r.mu.Unlock()
	}
}

func (q *request) acked() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ack = true
	for _, frames := range q.pending {
		q.r.replies.Post(frames)
	}
	q.pending = nil
}

// Chunk copies p: the pool's buffer is reused after the call. It waits
// while the dealer has a window's worth unconsumed: a slow client slows
// the app instead of filling the engine's memory.
func (q *request) Chunk(p []byte) {
	q.mu.Lock()
	for q.out >= wire.Window && !q.interrupted {
		q.mu.Unlock()
		<-q.wake
		q.mu.Lock()
	}
	if q.interrupted {
		q.mu.Unlock()
		return
	}
	q.out += int64(len(p))
	q.mu.Unlock()
	q.emit(wire.Header{Type: wire.MsgChunk, ID: q.id}, append([]byte(nil), p...), true, false)
}

// credit: the dealer consumed n bytes of the answer.
func (q *request) credit(n int64) {
	q.mu.Lock()
	q.out -= n
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Interrupt stops a Chunk waiting for credit: the job is ending.
func (q *request) Interrupt() {
	q.mu.Lock()
	q.interrupted = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// bodyWritten credits the dealer for request body that reached the slave.
func (q *request) bodyWritten(n int) {
	q.emit(wire.Header{Type: wire.MsgCredit, ID: q.id, Credit: int64(n)}, nil, false, false)
}

func (q *request) Close() { q.emit(wire.Header{Type: wire.MsgChoke, ID: q.id}, nil, false, true) }

func (q *request) Error(code wire.Code, msg string) {
	q.emit(wire.Header{Type: wire.MsgError, ID: q.id, Code: code, Message: msg}, nil, false, true)
}
