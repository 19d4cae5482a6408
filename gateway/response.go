package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// ErrEnded is returned by Response.Write once the request is over: its
// answer (or an error) came before the whole body was sent, or the caller
// closed it.
var ErrEnded = errors.New("gateway: the request has ended")

// ReplayLimit bounds the request body the dealer keeps to send again
// elsewhere. A request whose body streamed past it is not re-sent once a
// node accepted it: a node lost after that ends it in error 500.
const ReplayLimit = wire.Window

// Response is a request sent through the dealer and its answer: chunks,
// then exactly one end or one error. It is the only answer-stream type.
// Events from a node's connection or from the local engine land here
// directly and the delivery rules of DESIGN.md run where they land: no
// goroutine per request stands between the node and the caller.
type Response struct {
	d          *Dealer // nil for a request on one Conn: no re-sends
	conn       *Conn   // that Conn
	info       bool    // a MsgInfo rather than an invoke (Conn.Info)
	app, event string
	p          wire.Policy
	start      time.Time

	mu sync.Mutex
	// The caller's side.
	q        []Event
	qBytes   int
	sig      chan struct{} // wakes Next
	room     chan struct{} // wakes a local sink waiting for the caller to read
	wsig     chan struct{} // wakes Write: credit came, or a node took the request
	final    bool          // the terminal event is queued, or the request abandoned
	over     bool          // the caller took the terminal event
	closed   bool          // the caller closed the Response
	consumed int64         // answer bytes taken since the last credit sent

	// The request body.
	body   []byte // everything sent so far while replay holds
	replay bool   // body holds the whole request body so far
	more   bool   // more body is to come through Write
	// spill, when set, lifts the answer window while the body still
	// streams, up to that many bytes queued (BufferWhileSending).
	spill   int
	started bool // a Write or CloseSend happened: the body is streaming

	// Delivery.
	cur      *try // the attempt in flight, nil between attempts
	tried    []*node
	timedOut []*node // never acked: not sent there again for this request
	retries  int
	last     *wire.Error
	chunked  bool // an answer chunk reached the caller
	deadT    *time.Timer
	waitT    *time.Timer
}

// try is one attempt on one node.
type try struct {
	r        *Response
	n        *node // nil for a Conn's own request
	conn     *Conn
	id       string
	local    LocalCall
	acked    bool
	done     bool
	sent     int64 // body bytes sent on this attempt
	credited int64 // body bytes the node said it consumed
	ackT     *time.Timer
	start    time.Time
}

// internal event kinds.
const (
	eventCredit EventKind = 100 + iota // Event.N bytes of body were consumed
	eventLost                          // the node died or the connection closed
)

func newResponse(d *Dealer, app, event string, body []byte, more bool, p wire.Policy) *Response {
	r := &Response{d: d, app: app, event: event, p: p, start: time.Now(), body: body, more: more,
		replay: len(body) <= ReplayLimit || !more, retries: p.Retries,
		sig: make(chan struct{}, 1), room: make(chan struct{}, 1), wsig: make(chan struct{}, 1)}
	return r
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Next returns the next event: EventChunk, then EventEnd or EventError.
// ctx ending returns ctx.Err(); the request goes on until Close.
func (r *Response) Next(ctx context.Context) (Event, error) {
	for {
		r.mu.Lock()
		if len(r.q) > 0 {
			ev := r.q[0]
			r.q[0] = Event{}
			r.q = r.q[1:]
			if len(r.q) == 0 {
				r.q = r.q[:0:0]
			}
			var credit func()
			switch ev.Kind {
			case EventChunk:
				r.qBytes -= len(ev.Data)
				if !ev.credited {
					r.consumed += int64(len(ev.Data))
				}
				if r.consumed >= wire.Window/4 && r.cur != nil && r.cur.local == nil && !r.final {
					t, n := r.cur, r.consumed
					r.consumed = 0
					credit = func() { t.conn.post(&wire.Header{Type: wire.MsgCredit, ID: t.id, Credit: n}, nil, false) }
				}
			case EventEnd, EventError:
				r.over = true
			}
			r.mu.Unlock()
			if credit != nil {
				credit()
			}
			signal(r.room)
			return ev, nil
		}
		if r.over || r.closed {
			r.mu.Unlock()
			return Event{}, ErrEnded
		}
		r.mu.Unlock()
		select {
		case <-r.sig:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Buffered reports whether an event is waiting for Next: a caller that
// relays chunks flushes its own output only once none is, so an answer
// that arrived whole leaves in one write.
func (r *Response) Buffered() bool {
	r.mu.Lock()
	n := len(r.q)
	r.mu.Unlock()
	return n > 0
}

// Collect reads the whole answer and closes the Response.
func (r *Response) Collect(ctx context.Context) ([]byte, error) {
	defer r.Close()
	var out []byte
	for {
		ev, err := r.Next(ctx)
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

// Write sends more of the request body (for a Response from Open). It
// blocks while the node has a window's worth not yet consumed, so a slow
// app slows the sender. p is copied.
func (r *Response) Write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	r.mu.Lock()
	for {
		if r.final || r.closed || !r.more {
			r.mu.Unlock()
			return ErrEnded
		}
		t := r.cur
		if t != nil && (t.local != nil || t.sent-t.credited < wire.Window) {
			break
		}
		r.mu.Unlock()
		<-r.wsig
		r.mu.Lock()
	}
	r.started = true
	data := append([]byte(nil), p...)
	if r.replay {
		if len(r.body)+len(data) <= ReplayLimit {
			r.body = append(r.body, data...)
		} else {
			r.replay, r.body = false, nil
		}
	}
	t := r.cur
	if t.local == nil {
		t.sent += int64(len(data))
		t.conn.post(&wire.Header{Type: wire.MsgChunk, ID: t.id}, data, true)
		r.mu.Unlock()
		return nil
	}
	local := t.local
	r.mu.Unlock()
	return local.Write(data)
}

// BufferWhileSending lets up to limit bytes of answer queue here while
// the request body is still being sent, instead of holding the app back.
// A web server that does not read an answer before it has sent the whole
// request (nginx to a FastCGI upstream) would otherwise deadlock with an
// app that answers as it reads. Past limit the request fails.
func (r *Response) BufferWhileSending(limit int) {
	r.mu.Lock()
	r.spill = limit
	r.mu.Unlock()
}

// spilling reports whether the answer window is lifted now. Called with
// r.mu held.
func (r *Response) spilling() bool { return r.spill > 0 && r.more }

// CloseSend ends the request body (for a Response from Open).
func (r *Response) CloseSend() {
	r.mu.Lock()
	if !r.more {
		r.mu.Unlock()
		return
	}
	r.more = false
	t := r.cur
	if t == nil || r.final {
		r.mu.Unlock()
		return
	}
	if t.local == nil {
		t.conn.post(&wire.Header{Type: wire.MsgChoke, ID: t.id}, nil, false)
		r.mu.Unlock()
		return
	}
	local := t.local
	r.mu.Unlock()
	local.CloseSend()
}

// Close abandons the request if it has not ended: its node cancels it.
func (r *Response) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	var after func()
	if !r.final {
		r.final = true
		after = r.abandon()
	}
	r.stopTimers()
	r.mu.Unlock()
	if after != nil {
		after()
	}
	r.wakeAll()
}

func (r *Response) wakeAll() {
	signal(r.sig)
	signal(r.room)
	signal(r.wsig)
}

func (r *Response) stopTimers() {
	if r.deadT != nil {
		r.deadT.Stop()
	}
	if r.waitT != nil {
		r.waitT.Stop()
		r.waitT = nil
	}
}

// abandon ends the current attempt and tells its node to cancel the job.
// Called with r.mu held; the returned func (for a local attempt, whose
// cancel reaches the pool) runs after unlocking.
func (r *Response) abandon() func() {
	t := r.cur
	if t == nil {
		return nil
	}
	r.endTry(t)
	if t.local != nil {
		return t.local.Cancel
	}
	t.conn.post(&wire.Header{Type: wire.MsgCancel, ID: t.id}, nil, false)
	return nil
}

// abandonLater is abandon from inside a node's event: a local attempt is
// cancelled off this goroutine, which may be the pool's reader inside the
// job's sink. Called with r.mu held.
func (r *Response) abandonLater(t *try) {
	if after := r.abandon(); after != nil {
		go after()
	}
}

// endTry retires an attempt. Called with r.mu held.
func (r *Response) endTry(t *try) {
	if t.done {
		return
	}
	t.done = true
	if t.ackT != nil {
		t.ackT.Stop()
	}
	if t.n != nil {
		t.n.inflight.Add(-1)
	}
	if t.local == nil && t.conn != nil {
		t.conn.forget(t.id)
	}
	if r.cur == t {
		r.cur = nil
	}
}

// push queues an event for the caller. Called with r.mu held.
func (r *Response) push(ev Event) {
	if r.final && ev.Kind != EventEnd && ev.Kind != EventError {
		return
	}
	if ev.Kind == EventChunk {
		r.chunked = true
		r.qBytes += len(ev.Data)
	}
	r.q = append(r.q, ev)
	signal(r.sig)
}

// finish queues the terminal event. Called with r.mu held.
func (r *Response) finish(ev Event) {
	if r.final {
		return
	}
	r.push(ev)
	r.final = true
	r.stopTimers()
	if r.d != nil {
		r.d.untrack(r)
	}
	signal(r.room)
	signal(r.wsig)
}

func (r *Response) fail(code wire.Code, msg string) {
	r.finish(Event{Kind: EventError, Err: &wire.Error{Code: code, Message: msg}})
}

// event handles what a node said about attempt t.
func (r *Response) onEvent(t *try, ev Event) {
	r.mu.Lock()
	retry := r.eventLocked(t, ev)
	r.mu.Unlock()
	if retry {
		// Not on the caller of event (a connection's socket loop, or a
		// pool goroutine): starting the next attempt may post to sockets
		// and submit to pools.
		go func() {
			r.mu.Lock()
			r.next()
			r.mu.Unlock()
		}()
	}
}

// eventLocked applies the delivery rules; it reports whether another node
// must be tried. Called with r.mu held.
func (r *Response) eventLocked(t *try, ev Event) (retry bool) {
	if t != r.cur || t.done || r.final {
		return false // a stale attempt: it was cancelled or replaced
	}
	switch ev.Kind {
	case EventAck:
		t.acked = true
		if t.ackT != nil {
			t.ackT.Stop()
		}
	case eventCredit:
		t.credited += ev.n
		signal(r.wsig)
	case EventChunk:
		t.acked = true // an answer without an ack: taken as accepted
		if r.spilling() {
			if r.qBytes+len(ev.Data) > r.spill {
				r.abandonLater(t)
				r.fail(wire.CodeServer, "the answer outgrew its buffer while the request body was still being sent")
				return false
			}
			if t.local == nil {
				// Credit at once: the window is lifted until the body ends.
				t.conn.post(&wire.Header{Type: wire.MsgCredit, ID: t.id, Credit: int64(len(ev.Data))}, nil, false)
				ev.credited = true
			}
		}
		r.push(ev)
	case EventEnd:
		r.endTry(t)
		if t.n != nil {
			t.n.observe(time.Since(t.start))
		}
		r.finish(ev)
	case EventError:
		err := ev.Err
		r.endTry(t)
		switch {
		case !t.acked && (err.Code.Retryable() || err.Code == wire.CodeNotFound && t.n != nil):
			// Refused before accepting (queue full, stopping), or the app
			// left that node: it advertised the app when it was picked,
			// even if its announce without it came since. Anywhere else
			// will do, at no cost.
			// A Conn's own request has nowhere else: it ends below.
			r.tried = append(r.tried, t.n)
			r.last = err
			r.countRetry("refused", err) // metrics.go
			if r.d != nil {
				return true
			}
		case t.acked && !r.chunked && err.Code.Retryable():
			return r.retryPaid(t, err)
		default:
			r.finish(ev)
		}
	case eventLost:
		r.endTry(t)
		switch {
		case !t.acked:
			r.tried = append(r.tried, t.n)
			r.last = wire.Errorf(wire.CodeUnavailable, "node %s was lost before accepting the request", t.endpoint())
			r.countRetry("lost-before-ack", r.last)
			if r.d != nil {
				return true
			}
		case r.chunked:
			r.fail(wire.CodeServer, "node "+t.endpoint()+" was lost in the middle of the answer")
		default:
			return r.retryPaid(t, wire.Errorf(wire.CodeServer, "node %s was lost after accepting the request", t.endpoint()))
		}
	}
	if !r.final && r.d == nil && r.cur == nil {
		// A Conn's own request has nowhere else to go.
		r.finishLast()
	}
	return false
}

// retryPaid handles a request lost after its node accepted it and before
// any answer: it costs one of its retries, and needs its whole body.
func (r *Response) retryPaid(t *try, err *wire.Error) bool {
	switch {
	case r.d == nil:
		r.finish(Event{Kind: EventError, Err: err})
	case !r.replay:
		r.fail(err.Code, err.Message+"; not re-sent: its body streamed past the replay buffer")
	case r.retries <= 0:
		r.finish(Event{Kind: EventError, Err: err})
	default:
		r.retries--
		r.tried = append(r.tried, t.n)
		r.last = err
		r.countRetry("after-ack", err)
		return true
	}
	return false
}

func (r *Response) finishLast() {
	if r.last != nil {
		r.finish(Event{Kind: EventError, Err: r.last})
	} else {
		r.fail(wire.CodeUnavailable, "the node did not answer")
	}
}

func (t *try) endpoint() string {
	if t.n != nil {
		return t.n.endpoint
	}
	if t.conn != nil {
		return t.conn.endpoint
	}
	return "?"
}

// next starts an attempt on the best node not tried yet, or ends the
// request when there is none and no reason to wait. Called with r.mu held.
func (r *Response) next() {
	for !r.final && !r.closed && r.cur == nil {
		if r.d == nil {
			r.launch(nil, r.conn)
			return
		}
		rt := r.d.table.route(r.app, r.event)
		var buf [8]*node
		fresh := buf[:0]
		if rt != nil {
			for _, n := range rt.nodes {
				if !contains(r.tried, n) && !contains(r.timedOut, n) {
					fresh = append(fresh, n)
				}
			}
		}
		if len(fresh) == 0 {
			if rt == nil {
				// Broken wherever it is deployed: say why at once rather
				// than wait for a deadline or call it missing.
				if why := r.d.table.broken(r.app); why != "" {
					r.fail(wire.CodeUnavailable, "app "+r.app+" is broken: "+why)
					return
				}
			}
			// Wait for a node only when the caller gave a deadline it wants
			// waited for; a refusal everywhere is otherwise a prompt answer.
			if r.p.Deadline.IsZero() || r.p.FailFast {
				switch {
				case r.last != nil:
					r.finish(Event{Kind: EventError, Err: r.last})
				case rt == nil:
					r.fail(wire.CodeNotFound, "no live node serves "+r.app+"/"+r.event)
				default:
					r.fail(wire.CodeUnavailable, "every node serving "+r.app+"/"+r.event+" refused the request")
				}
				return
			}
			if r.waitT == nil {
				// Nodes that refused may have room again a little later; a
				// node that never acked is not sent this request again.
				r.waitT = time.AfterFunc(50*time.Millisecond, func() {
					r.mu.Lock()
					r.waitT = nil
					r.tried = r.tried[:0]
					r.next()
					r.mu.Unlock()
				})
			}
			return
		}
		n := r.d.balancer(r.app).Pick(r.app, fresh)
		r.launch(n, n.conn)
	}
}

func contains(ns []*node, n *node) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// launch sends the request to n (or to conn alone). Called with r.mu held.
func (r *Response) launch(n *node, conn *Conn) {
	t := &try{r: r, n: n, conn: conn, start: time.Now()}
	if !r.replay {
		// The body streamed on past what can be sent again.
		r.fail(wire.CodeServer, "the request cannot be re-sent: its body streamed past the replay buffer")
		return
	}
	p := r.p
	p.Retries = r.retries
	if n != nil {
		n.inflight.Add(1)
	}
	r.cur = t
	if n != nil && r.d.local != nil && n.endpoint == r.d.localEP {
		call, err := r.d.local.Invoke(r.app, r.event, r.body, r.more, p, &localSink{t: t})
		if err != nil {
			r.endTry(t)
			we := &wire.Error{Code: wire.CodeOf(err), Message: err.Error()}
			var e *wire.Error
			if errors.As(err, &e) {
				we = e
			}
			if we.Code.Retryable() || we.Code == wire.CodeNotFound { // as in eventLocked
				r.tried = append(r.tried, n)
				r.last = we
				r.countRetry("refused", we)
				return // next() goes on with another node
			}
			r.finish(Event{Kind: EventError, Err: we})
			return
		}
		t.local, t.acked = call, true
		signal(r.wsig)
		return
	}
	h := wire.Header{Type: wire.MsgInvoke, App: r.app, Event: r.event, Policy: p}
	if r.info {
		h = wire.Header{Type: wire.MsgInfo}
	}
	if r.more {
		h.Flags = wire.FlagMore
	}
	if !conn.register(t) {
		r.endTry(t)
		r.tried = append(r.tried, n)
		r.last = wire.Errorf(wire.CodeUnavailable, "connection to %s closed", conn.endpoint)
		r.countRetry("unreachable", r.last)
		if r.d == nil {
			r.finishLast()
		}
		return
	}
	h.ID = t.id
	t.sent = int64(len(r.body))
	conn.post(&h, r.body, !r.info)
	if r.d != nil {
		t.ackT = time.AfterFunc(r.d.cfg.AckTimeout, func() { r.ackTimedOut(t) })
	}
	signal(r.wsig)
}

// ackTimedOut: a node that is alive but does not accept in time is
// skipped, its copy cancelled, and never sent this request again: it is
// late to ack because it is loaded, and sending again would load it more.
func (r *Response) ackTimedOut(t *try) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t != r.cur || t.done || t.acked || r.final {
		return
	}
	r.d.log.Debug("no ack in time: trying elsewhere", "node", t.endpoint(), "app", r.app)
	r.abandon()
	r.timedOut = append(r.timedOut, t.n)
	r.last = wire.Errorf(wire.CodeUnavailable, "node %s did not accept within %v", t.endpoint(), r.d.cfg.AckTimeout)
	r.countRetry("no-ack", r.last)
	r.next()
}

// expire fires at the request's deadline.
func (r *Response) expire() {
	r.mu.Lock()
	if r.final {
		r.mu.Unlock()
		return
	}
	after := r.abandon()
	r.fail(wire.CodeDeadline, "deadline passed in the dealer")
	r.mu.Unlock()
	if after != nil {
		after()
	}
}

// localSink carries a local attempt's answer into its Response. Chunk
// waits while the caller has a window's worth unread: the pool's reader
// then stops reading the slave, whose writes block, which slows the app.
type localSink struct {
	t           *try
	interrupted atomic.Bool
}

// Interrupt lets a Chunk waiting for the caller return: the engine is
// ending the job (deadline, timeout, cancel).
func (s *localSink) Interrupt() {
	s.interrupted.Store(true)
	signal(s.t.r.room)
}

func (s *localSink) Chunk(p []byte) {
	r := s.t.r
	r.mu.Lock()
	for r.qBytes >= wire.Window && !r.spilling() && !r.final && !r.closed && r.cur == s.t && !s.interrupted.Load() {
		r.mu.Unlock()
		<-r.room
		r.mu.Lock()
	}
	r.eventLocked(s.t, Event{Kind: EventChunk, Data: append([]byte(nil), p...)})
	r.mu.Unlock()
}

func (s *localSink) Close() { s.t.r.onEvent(s.t, Event{Kind: EventEnd}) }

func (s *localSink) Error(code wire.Code, msg string) {
	s.t.r.onEvent(s.t, Event{Kind: EventError, Err: &wire.Error{Code: code, Message: msg}})
}
