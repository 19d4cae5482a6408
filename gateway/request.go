package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// Response is the answer to a request sent through the dealer: chunks,
// then exactly one end or one error.
type Response struct {
	ch     chan Event
	cancel context.CancelFunc
	closed chan struct{}
	once   sync.Once
	ended  bool
}

// Next returns the next event: EventChunk, then EventEnd or EventError.
func (r *Response) Next(ctx context.Context) (Event, error) {
	if r.ended {
		return Event{}, errors.New("gateway: response already ended")
	}
	select {
	case ev := <-r.ch:
		if ev.Kind == EventEnd || ev.Kind == EventError {
			r.ended = true
		}
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Close abandons the request if it has not ended: the dealer cancels it
// on its node.
func (r *Response) Close() {
	r.once.Do(func() { close(r.closed) })
	r.cancel()
}

// Collect reads the whole answer.
func (r *Response) Collect(ctx context.Context) ([]byte, error) {
	defer r.Close()
	return collect(ctx, r.Next)
}

// Send sends a request for APP/EVENT. Policy.Deadline, when set, bounds
// the whole request, waiting for a node included; without one, a request
// for an app no node serves fails at once with 404.
func (d *Dealer) Send(app, event string, body []byte, p wire.Policy) (*Response, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.running.Add(1)
	d.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	if !p.Deadline.IsZero() {
		ctx, cancel = context.WithDeadline(context.Background(), p.Deadline)
	}
	r := &Response{ch: make(chan Event, 16), cancel: cancel, closed: make(chan struct{})}
	go func() {
		defer d.running.Done()
		defer cancel()
		(&delivery{d: d, app: app, event: event, body: body, p: p, out: r.ch, closed: r.closed}).run(ctx)
	}()
	return r, nil
}

// delivery carries one request to a node and its answer back, resending
// under the rules of DESIGN.md: before the node's ack anywhere, after it
// only while retries remain and no chunk has reached the caller.
type delivery struct {
	d          *Dealer
	app, event string
	body       []byte
	p          wire.Policy
	out        chan<- Event
	closed     <-chan struct{} // the caller closed its Response
	chunked    bool
}

// outcome of one attempt on one node.
type attempt int

const (
	done      attempt = iota // the caller has its end or error
	retryFree                // not accepted: try elsewhere at no cost
	retryPaid                // accepted but lost before a chunk: costs a retry
)

// emit hands an event to the caller, waiting for a slow reader: every
// request must end in its answer or an error the caller sees, so only the
// caller closing the Response stops it (a deadline is noticed between
// events, never by dropping one).
func (dv *delivery) emit(ev Event) bool {
	var quit <-chan struct{}
	if dv.d != nil {
		quit = dv.d.quit // the dealer is closing: nobody will read
	}
	select {
	case dv.out <- ev:
		return true
	case <-dv.closed:
		return false
	case <-quit:
		return false
	}
}

func (dv *delivery) fail(code wire.Code, format string, args ...any) {
	dv.emit(Event{Kind: EventError, Err: wire.Errorf(code, format, args...)})
}

func (dv *delivery) run(ctx context.Context) {
	tried := map[*node]bool{}
	retries := dv.p.Retries
	var last *wire.Error
	for {
		if ctx.Err() != nil {
			dv.expired(ctx)
			return
		}
		cands := dv.d.table.candidates(dv.app, dv.event)
		fresh := cands[:0:0]
		for _, n := range cands {
			if !tried[n] {
				fresh = append(fresh, n)
			}
		}
		if len(fresh) == 0 {
			if dv.p.Deadline.IsZero() || dv.p.FailFast && len(cands) == 0 {
				switch {
				case last != nil:
					dv.fail(last.Code, "%s", last.Message)
				case len(cands) == 0:
					dv.fail(wire.CodeNotFound, "no live node serves %s/%s", dv.app, dv.event)
				default:
					dv.fail(wire.CodeUnavailable, "every node serving %s/%s refused the request", dv.app, dv.event)
				}
				return
			}
			// With a deadline, wait for a node to appear or come back;
			// nodes that refused may have room again a little later.
			select {
			case <-dv.d.table.changes():
			case <-time.After(50 * time.Millisecond):
				clear(tried)
			case <-ctx.Done():
				dv.expired(ctx)
				return
			case <-dv.d.quit:
				dv.fail(wire.CodeUnavailable, "the dealer is closing")
				return
			}
			continue
		}
		n := dv.d.balancer(dv.app).Pick(dv.app, fresh)
		p := dv.p
		p.Retries = retries
		res, err := dv.try(ctx, n, p)
		switch res {
		case done:
			return
		case retryFree:
			tried[n] = true
			if err != nil {
				last = err
			}
		case retryPaid:
			tried[n] = true
			last = err
			if retries <= 0 {
				dv.fail(err.Code, "%s", err.Message)
				return
			}
			retries--
		}
	}
}

func (dv *delivery) expired(ctx context.Context) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		dv.fail(wire.CodeDeadline, "deadline passed in the dealer")
	}
	// Cancelled: the caller went away; nobody to tell.
}

// try sends the request to n and follows it.
func (dv *delivery) try(ctx context.Context, n *node, p wire.Policy) (attempt, *wire.Error) {
	s, err := n.conn.Send(dv.app, dv.event, dv.body, p)
	if err != nil {
		return retryFree, wire.Errorf(wire.CodeUnavailable, "node %s: %v", n.endpoint, err)
	}
	defer s.Close()
	n.inflight.Add(1)
	defer n.inflight.Add(-1)
	start := time.Now()
	dead := n.deadCh()

	// Until the ack, a silent node costs the caller nothing but time.
	ackCtx, cancel := context.WithTimeout(ctx, dv.d.cfg.AckTimeout)
	acked := false
	for !acked {
		ev, err := waitEvent(ackCtx, s, dead)
		switch {
		case errors.Is(err, errNodeDead):
			cancel()
			return retryFree, wire.Errorf(wire.CodeUnavailable, "node %s died before accepting", n.endpoint)
		case err != nil && ctx.Err() != nil:
			cancel()
			dv.expired(ctx)
			return done, nil
		case err != nil:
			cancel()
			dv.d.log.Debug("no ack in time: trying elsewhere", "node", n.endpoint, "app", dv.app)
			return retryFree, wire.Errorf(wire.CodeUnavailable, "node %s did not accept within %v", n.endpoint, dv.d.cfg.AckTimeout)
		}
		switch ev.Kind {
		case EventAck:
			acked = true
		case EventError:
			cancel()
			if ev.Err.Code.Retryable() || ev.Err.Code == wire.CodeNotFound && n.serves(dv.app, dv.event) {
				// Refused before accepting (queue full, stopping, or the
				// app just left that node): anywhere else will do.
				return retryFree, ev.Err
			}
			dv.fail(ev.Err.Code, "%s", ev.Err.Message)
			return done, nil
		default: // an answer without an ack: take it as accepted
			acked = true
			if !dv.deliver(ctx, n, ev, start) {
				cancel()
				return done, nil
			}
		}
	}
	cancel()
	for {
		ev, err := waitEvent(ctx, s, dead)
		switch {
		case errors.Is(err, errNodeDead):
			if dv.chunked {
				dv.fail(wire.CodeServer, "node %s died in the middle of the answer", n.endpoint)
				return done, nil
			}
			return retryPaid, wire.Errorf(wire.CodeServer, "node %s died after accepting the request", n.endpoint)
		case err != nil:
			dv.expired(ctx)
			return done, nil
		}
		if ev.Kind == EventError && !dv.chunked && ev.Err.Code.Retryable() {
			return retryPaid, ev.Err
		}
		if !dv.deliver(ctx, n, ev, start) {
			return done, nil
		}
	}
}

// deliver passes an event to the caller; false when the request is over.
func (dv *delivery) deliver(ctx context.Context, n *node, ev Event, start time.Time) bool {
	switch ev.Kind {
	case EventChunk:
		dv.chunked = true
		return dv.emit(ev)
	case EventEnd:
		n.observe(time.Since(start))
		dv.emit(ev)
		return false
	case EventError:
		dv.emit(ev)
		return false
	}
	return true
}

var errNodeDead = errors.New("node dead")

// waitEvent waits for the stream's next event, the node's death or ctx.
func waitEvent(ctx context.Context, s *Stream, dead <-chan struct{}) (Event, error) {
	return s.next(ctx, dead)
}
