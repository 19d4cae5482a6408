package fcgiproxy

import (
	"container/list"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// limitListener caps a listener's open connections so that idle clients
// cannot take every file descriptor of the process (the engine beside the
// front needs them for slaves and logs). At the cap it makes room by
// closing the least recently active idle connection, as nginx reuses
// keep-alive connections when worker_connections run out; only when every
// connection is busy does Accept wait, leaving new ones in the backlog.
//
// Idleness comes from the http.Server's ConnState hook (connState).
type limitListener struct {
	net.Listener
	max          int
	writeTimeout time.Duration
	log          *slog.Logger

	mu     sync.Mutex
	lru    list.List // *limitConn, least recently active first
	n      int       // open connections, tracked or being accepted
	freed  chan struct{}
	warned time.Time
}

// newLimitListener caps l at max connections (0: no cap) and gives each
// write to a connection writeTimeout to progress (0: none).
func newLimitListener(l net.Listener, max int, writeTimeout time.Duration, log *slog.Logger) *limitListener {
	return &limitListener{Listener: l, max: max, writeTimeout: writeTimeout, log: log, freed: make(chan struct{}, 1)}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	elem *list.Element // nil once closed; guarded by l.mu
	idle bool          // guarded by l.mu
}

func (l *limitListener) Accept() (net.Conn, error) {
	// Accept first, then make room: a slot is taken (and an idle
	// connection closed for it) only for a connection that is really
	// there, never for one that might come. The new one is not in the LRU
	// yet, so it cannot be taken for idle before its first request.
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for !l.reserve() {
		// Every connection is busy: wait for one to close or go idle.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-l.freed:
		case <-t.C:
		}
		t.Stop()
	}
	lc := &limitConn{Conn: c, l: l, idle: true}
	l.mu.Lock()
	lc.elem = l.lru.PushBack(lc)
	l.mu.Unlock()
	return lc, nil
}

// reserve takes a slot, evicting an idle connection at the cap; it
// reports false when there is none to take.
func (l *limitListener) reserve() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max <= 0 || l.n < l.max {
		l.n++
		return true
	}
	for e := l.lru.Front(); e != nil; e = e.Next() {
		c := e.Value.(*limitConn)
		if !c.idle {
			continue
		}
		l.forgetLocked(c)
		// Closing wakes the server's blocked read, which ends the
		// connection; the slot is ours now.
		c.Conn.Close()
		if now := time.Now(); now.Sub(l.warned) > time.Minute {
			l.warned = now
			l.log.Warn("front: connection cap reached; closing idle connections to make room",
				"addr", l.Addr().String(), "max", l.max)
		}
		l.n++
		return true
	}
	return false
}

func (l *limitListener) forgetLocked(c *limitConn) {
	if c.elem == nil {
		return
	}
	l.lru.Remove(c.elem)
	c.elem = nil
	l.n--
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// Write bounds each write by the listener's write timeout: a client that
// takes no byte of the answer for that long is cut, one that reads a long
// stream slowly is not. (http.Server's WriteTimeout would bound the whole
// answer.)
func (c *limitConn) Write(b []byte) (int, error) {
	if d := c.l.writeTimeout; d > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(d))
	}
	return c.Conn.Write(b)
}

// CloseWrite half-closes the connection: net/http does so before closing
// one whose client is still sending (a 413), so that the client reads the
// answer instead of a reset.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *limitConn) Close() error {
	c.l.mu.Lock()
	c.l.forgetLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// setIdle records whether c waits for a request; a connection going idle
// becomes the most recently active.
func (c *limitConn) setIdle(idle bool) {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.elem == nil {
		return
	}
	c.idle = idle
	if idle {
		l.lru.MoveToBack(c.elem)
		return
	}
}

// connState is the http.Server hook that feeds limitListener.
func connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*limitConn)
	if !ok {
		return
	}
	switch st {
	case http.StateNew, http.StateIdle:
		c.setIdle(true)
	case http.StateActive:
		c.setIdle(false)
	case http.StateHijacked, http.StateClosed:
		c.l.mu.Lock()
		c.l.forgetLocked(c)
		c.l.mu.Unlock()
	}
}

// stallBody bounds how long an HTTP client may stall while its request
// body is read: every read must progress within the timeout, so a slow
// but live upload is fine and a silent client is cut. (http.Server's
// ReadTimeout bounds the whole exchange, which would cut long streams.)
// The answer's side is limitConn.Write's. The ResponseWriter itself is
// not wrapped: net/http learns of a body over MaxBytesReader's limit
// through it.
func stallBody(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		sb := &stallReader{ReadCloser: r.Body, rc: rc, d: d}
		r.Body = sb
		defer func() {
			// The unread rest that net/http discards after the
			// handler is bounded too.
			if !sb.done {
				_ = rc.SetReadDeadline(time.Now().Add(d)) // a stalled one stays cut
			}
		}()
		h.ServeHTTP(w, r)
	})
}

type stallReader struct {
	io.ReadCloser
	rc   *http.ResponseController
	d    time.Duration
	done bool
}

func (b *stallReader) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		// At EOF net/http starts its own background read, which must
		// not inherit the deadline.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
