package slave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// Environment the engine gives every slave (docs/protocol.md).
const (
	EnvSocket    = "COCAINE_SOCKET"       // path of the app's Unix socket
	EnvSlaveID   = "COCAINE_SLAVE_ID"     // this slave's id, sent in the handshake
	EnvApp       = "COCAINE_APP"          // the app's name
	EnvHeartbeat = "COCAINE_HEARTBEAT_MS" // heartbeat period in milliseconds
)

// Run serves DefaultMux until the engine tells the slave to stop. It
// returns nil on a clean stop.
func Run() error { return Serve(DefaultMux) }

// Serve serves h using the environment the engine provides.
func Serve(h Handler) error {
	path, id := os.Getenv(EnvSocket), os.Getenv(EnvSlaveID)
	if path == "" || id == "" {
		return fmt.Errorf("slave: %s and %s must be set: this program is started by a cocaine engine", EnvSocket, EnvSlaveID)
	}
	period := 5 * time.Second
	if ms, err := strconv.Atoi(os.Getenv(EnvHeartbeat)); err == nil && ms > 0 {
		period = time.Duration(ms) * time.Millisecond
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("slave: connect to engine: %w", err)
	}
	defer c.Close()
	return (&worker{h: h, id: id, period: period}).serve(c)
}

type worker struct {
	h      Handler
	id     string
	period time.Duration

	conn     *protocol.Conn
	mu       sync.Mutex
	sessions map[uint64]*session
	wg       sync.WaitGroup
	running  atomic.Int32 // handlers running
	ahead    *readAhead
}

// session is one invocation: its request, response and cancel in one
// allocation.
type session struct {
	req    Request
	resp   Response
	cancel context.CancelFunc
}

// stop ends a session the engine gave up on, or that lost its engine: its
// writes fail from now on (a handler that streams without watching ctx
// stops at its next write, instead of running on until the engine kills the
// slave with every other session on it), its body reads fail, and its
// context ends, in that order, so a handler woken by ctx already sees
// failing writes.
func (s *session) stop(err error) {
	s.resp.abort(err)
	s.req.finish(err)
	s.cancel()
}

func (w *worker) serve(c io.ReadWriter) error {
	w.conn = protocol.NewConn(c)
	w.conn.SetChunkAlloc(buffers.get)
	// With other sessions running, a session's answer waits for theirs to
	// share its socket write (and the engine's wake-up); alone, it goes at once.
	w.conn.SetGather(func() bool { return w.running.Load() > 1 })
	w.sessions = map[uint64]*session{}
	if w.ahead == nil {
		w.ahead = newReadAhead(ReadAhead)
	}
	if err := w.conn.Write(&protocol.Frame{Type: protocol.Handshake, SlaveID: w.id, PID: os.Getpid(), Proto: protocol.Version}); err != nil {
		return fmt.Errorf("slave: handshake: %w", err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go w.heartbeat(stop)

	var f protocol.Frame
	for {
		w.ahead.gate()
		if err := w.conn.Read(&f); err != nil {
			w.cancelAll()
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("slave: engine closed the connection")
			}
			return fmt.Errorf("slave: read: %w", err)
		}
		switch f.Type {
		case protocol.Invoke:
			w.start(f.Session, f.Event)
		case protocol.Chunk:
			// f.Data is a pooled buffer (SetChunkAlloc), the request's now.
			if s := w.get(f.Session); s != nil {
				s.req.push(f.Data)
			} else {
				buffers.put(f.Data)
			}
		case protocol.Choke:
			if s := w.get(f.Session); s != nil {
				s.req.finish(nil)
			}
		case protocol.Error:
			// The engine gave up on this session (deadline, timeout, client gone).
			if s := w.get(f.Session); s != nil {
				s.stop(fmt.Errorf("%w: %d %s", ErrCancelled, f.Code, f.Message))
			}
		case protocol.Terminate:
			// Finish what runs, then leave; the engine kills us after
			// its termination-timeout if we are slow.
			w.wg.Wait()
			_ = w.conn.Write(&protocol.Frame{Type: protocol.Terminate, Message: "terminated by engine"})
			return nil
		}
	}
}

func (w *worker) heartbeat(stop <-chan struct{}) {
	t := time.NewTicker(w.period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := w.conn.Write(&protocol.Frame{Type: protocol.Heartbeat}); err != nil {
				// The engine is likely gone: a read loop paused on
				// read-ahead must read on to see it.
				w.ahead.unblock()
				return
			}
		}
	}
}

func (w *worker) get(id uint64) *session {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sessions[id]
}

func (w *worker) cancelAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.sessions {
		s.stop(fmt.Errorf("%w: the engine went away: %w", ErrCancelled, io.ErrUnexpectedEOF))
	}
}

func (w *worker) start(id uint64, event string) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{resp: Response{session: id, conn: w.conn}, cancel: cancel}
	s.req.init(event, w.ahead)
	w.mu.Lock()
	w.sessions[id] = s
	w.mu.Unlock()
	w.wg.Add(1)
	w.running.Add(1)
	go func() {
		defer w.wg.Done()
		defer w.running.Add(-1)
		defer cancel()
		resp := &s.resp
		err := w.call(ctx, &s.req, resp)
		s.req.release()
		if cerr := resp.aborted(); cerr != nil {
			// Whatever the handler made of it, nobody reads the answer; the
			// engine only waits for the session to end.
			slog.Info("session cancelled", "event", event, "session", id, "reason", cerr, "handler", err)
			_ = resp.fail(520, "cancelled")
		} else if err != nil {
			code, msg := 502, err.Error()
			var e *Error
			if errors.As(err, &e) {
				code, msg = e.Code, e.Message
			}
			slog.Error("handler failed", "event", event, "session", id, "err", err)
			_ = resp.fail(code, msg)
		} else {
			_ = resp.Close()
		}
		w.mu.Lock()
		delete(w.sessions, id)
		w.mu.Unlock()
	}()
}

// call runs the handler, turning a panic into an error so one bad request
// does not take the other sessions of this slave down with it.
func (w *worker) call(ctx context.Context, req *Request, resp *Response) (err error) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("handler panicked", "event", req.Event, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return w.h.ServeEvent(ctx, req, resp)
}
