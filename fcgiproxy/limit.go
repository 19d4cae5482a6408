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
	max int
	log *slog.Logger

	mu     sync.Mutex
	lru    list.List // *limitConn, least recently active first
	n      int       // open connections, tracked or being accepted
	freed  chan struct{}
	warned time.Time
}

func newLimitListener(l net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: l, max: max, log: log, freed: make(chan struct{}, 1)}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	elem *list.Element // nil once closed; guarded by l.mu
	idle bool          // guarded by l.mu
}

func (l *limitListener) Accept() (net.Conn, error) {
	for !l.reserve() {
		// Every connection is busy: wait for one to close or go idle.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-l.freed:
		case <-t.C:
		}
		t.Stop()
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.mu.Lock()
		l.n--
		l.mu.Unlock()
		return nil, err
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
	if l.n < l.max {
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

// stallTimeouts bounds how long an HTTP client may stall while its body is
// read or its answer written: every read of the body and every write of
// the answer must progress within the timeout, so a slow but live stream
// is fine and a silent client is cut. (http.Server's ReadTimeout and
// WriteTimeout bound the whole exchange, which would cut long streams.)
func stallTimeouts(h http.Handler, body, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		sw := &stallWriter{ResponseWriter: w, rc: rc, d: write}
		var sb *stallBody
		if body > 0 && r.Body != nil && r.Body != http.NoBody {
			sb = &stallBody{ReadCloser: r.Body, rc: rc, d: body}
			r.Body = sb
		}
		defer func() {
			// What net/http writes or reads after the handler (the
			// buffered answer, the unread body it discards) is bounded
			// too.
			if write > 0 {
				_ = rc.SetWriteDeadline(time.Now().Add(write))
			}
			if sb != nil && !sb.done {
				_ = rc.SetReadDeadline(time.Now().Add(body))
			}
		}()
		if write > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(write))
			h.ServeHTTP(sw, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *stallWriter) Write(b []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(b)
}

func (w *stallWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type stallBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	d    time.Duration
	done bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		// At EOF net/http starts its own background read, which must
		// not inherit the deadline.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
