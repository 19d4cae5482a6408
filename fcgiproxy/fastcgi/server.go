package fastcgi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for the zero values of the Server limits.
const (
	DefaultMaxRequestsPerConn = 128
	DefaultMaxParamsBytes     = 1 << 20
)

// Server serves FastCGI Responder requests to an http.Handler.
//
// The zero value is usable; set fields before the first call to Serve.
type Server struct {
	// Handler to invoke; http.DefaultServeMux if nil.
	Handler http.Handler

	// MaxConns limits concurrent transport connections. At the limit
	// Serve closes the least recently active idle connection (no request
	// in flight) to make room, and only when none is idle stops
	// accepting, leaving new connections in the listen backlog. Zero
	// means no limit. Reported as FCGI_MAX_CONNS (math.MaxInt32 when
	// unlimited).
	MaxConns int

	// IdleTimeout closes a connection that has no request in flight for
	// this long (before its first request, or between kept-alive ones).
	// Zero means no timeout.
	IdleTimeout time.Duration

	// ParamsTimeout bounds the time from BEGIN_REQUEST to the end of the
	// request's PARAMS stream while no other request of the connection
	// runs. Zero means no timeout.
	ParamsTimeout time.Duration

	// MaxRequestsPerConn limits requests in flight at once on one
	// connection (multiplexing); zero means DefaultMaxRequestsPerConn.
	// Extra BEGIN_REQUESTs are answered with FCGI_OVERLOADED, or with
	// FCGI_CANT_MPX_CONN when the limit is 1 (FCGI_MPXS_CONNS is then
	// reported as 0). This bounds memory per connection to about
	// MaxRequestsPerConn times 80 KiB of body and response buffers.
	MaxRequestsPerConn int

	// MaxParamsBytes bounds the params bytes buffered on one connection
	// for requests whose PARAMS stream is not complete yet; a peer that
	// exceeds it has the connection closed. Zero means
	// DefaultMaxParamsBytes.
	MaxParamsBytes int

	// Logger receives protocol errors (one Warn a minute, the rest
	// Debug), handler panics (Error) and refused requests (Debug);
	// slog.Default() if nil.
	Logger *slog.Logger

	protoWarned atomic.Int64 // unix ns of the last protocol-error Warn
	protoQuiet  atomic.Int64 // protocol errors logged at Debug since

	initOnce  sync.Once
	done      chan struct{} // closed by Shutdown
	changed   chan struct{} // a connection or listener went away
	sem       chan struct{} // connection slots, nil without MaxConns
	shutdown  atomic.Bool
	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
}

// Serve accepts connections on l and serves them until l fails or Shutdown
// is called, in which case it returns http.ErrServerClosed. It works with
// any stream listener (TCP, Unix).
func Serve(l net.Listener, h http.Handler) error {
	return (&Server{Handler: h}).Serve(l)
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.done = make(chan struct{})
		s.changed = make(chan struct{}, 1)
		if s.MaxConns > 0 {
			s.sem = make(chan struct{}, s.MaxConns)
		}
		s.listeners = make(map[*net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
	})
}

// protocolError logs a peer's protocol violation: one Warn a minute at
// most (saying how many were folded into it), the rest at Debug, so that a
// peer sending garbage cannot flood the log.
func (s *Server) protocolError(remote, reason string) {
	now := time.Now().UnixNano()
	last := s.protoWarned.Load()
	if now-last >= int64(time.Minute) && s.protoWarned.CompareAndSwap(last, now) {
		s.logger().Warn("fastcgi: closing connection", "remote", remote, "reason", reason,
			"more-since-last-warning", s.protoQuiet.Swap(0))
		return
	}
	s.protoQuiet.Add(1)
	s.logger().Debug("fastcgi: closing connection", "remote", remote, "reason", reason)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) handler() http.Handler {
	if s.Handler != nil {
		return s.Handler
	}
	return http.DefaultServeMux
}

func (s *Server) maxReqs() int {
	if s.MaxRequestsPerConn > 0 {
		return s.MaxRequestsPerConn
	}
	return DefaultMaxRequestsPerConn
}

func (s *Server) maxParams() int {
	if s.MaxParamsBytes > 0 {
		return s.MaxParamsBytes
	}
	return DefaultMaxParamsBytes
}

// values answers FCGI_GET_VALUES.
func (s *Server) values() (maxConns, maxReqs, mpxs int) {
	perConn := s.maxReqs()
	maxConns, maxReqs = math.MaxInt32, math.MaxInt32
	if s.MaxConns > 0 {
		maxConns = s.MaxConns
		if int64(perConn)*int64(s.MaxConns) < math.MaxInt32 {
			maxReqs = perConn * s.MaxConns
		}
	}
	if perConn > 1 {
		mpxs = 1
	}
	return maxConns, maxReqs, mpxs
}

func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.listeners[&l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &l)
		s.mu.Unlock()
		s.notify()
	}()

	var delay time.Duration
	for {
		rwc, err := l.Accept()
		if err == nil && s.sem != nil {
			// A slot (closing an idle connection for it) only for a
			// connection that is there: taken before Accept, a new
			// connection would count as idle until its first request is
			// read, and could be closed for the next one.
			if err := s.takeSlot(); err != nil {
				rwc.Close()
				return err
			}
		}
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			if !temporary(err) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger().Warn("fastcgi: accept failed; retrying", "err", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-s.done:
				return http.ErrServerClosed
			}
			continue
		}
		delay = 0
		c := s.newConn(rwc)
		if c == nil {
			rwc.Close()
			s.releaseSlot()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func (s *Server) newConn(rwc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return nil
	}
	c := &conn{
		srv:     s,
		rwc:     rwc,
		maxReqs: s.maxReqs(),
		reqs:    make(map[uint16]*request),
		refs:    1,
	}
	c.active.Store(time.Now().UnixNano())
	s.conns[c] = struct{}{}
	return c
}

// takeSlot takes a connection slot, closing idle connections at the
// limit so that silent clients cannot hold every slot.
func (s *Server) takeSlot() error {
	for {
		select {
		case s.sem <- struct{}{}:
			return nil
		case <-s.done:
			return http.ErrServerClosed
		default:
		}
		s.evictIdle()
		// The evicted connection frees its slot when its reader exits;
		// without one to evict, retry as connections go idle.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case s.sem <- struct{}{}:
			t.Stop()
			return nil
		case <-s.done:
			t.Stop()
			return http.ErrServerClosed
		case <-t.C:
		}
	}
}

// evictIdle closes the least recently active idle connection, if any.
func (s *Server) evictIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest *conn
	var when int64
	for c := range s.conns {
		if c.closed.Load() {
			continue
		}
		c.mu.Lock()
		idle := c.atBoundary && len(c.reqs) == 0
		c.mu.Unlock()
		if idle && (oldest == nil || c.active.Load() < when) {
			oldest, when = c, c.active.Load()
		}
	}
	if oldest != nil {
		oldest.closeIfIdle()
	}
}

func (s *Server) releaseSlot() {
	if s.sem != nil {
		<-s.sem
	}
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.notify()
}

// notify wakes Shutdown so it returns as soon as the last connection is
// gone instead of at its next poll.
func (s *Server) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Shutdown stops the server gracefully: it closes the listeners, closes
// connections as soon as they have no request in flight, and waits for all
// handlers to return. A request that begins on a still-open connection
// after Shutdown started is refused with FCGI_OVERLOADED. If ctx ends
// first, Shutdown returns its error and the remaining connections stay
// open. Requests are not canceled: a handler that must stop early should
// watch its own signal.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.shutdown.Load() {
		s.shutdown.Store(true)
		close(s.done)
	}
	var err error
	for l := range s.listeners {
		if cerr := (*l).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	s.mu.Unlock()

	wait := time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if s.closeIdleConns() {
			return err
		}
		// Polling is still needed: a connection becomes idle (and
		// closable) without going away.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.changed:
		case <-timer.C:
			wait = min(2*wait, 100*time.Millisecond)
			timer.Reset(wait)
		}
	}
}

// closeIdleConns closes idle connections and reports whether the server
// is quiescent: no listener being served, no connection, no handler.
func (s *Server) closeIdleConns() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.closeIfIdle()
	}
	return len(s.conns) == 0 && len(s.listeners) == 0
}
