package fastcgi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	readBufSize = 8 << 10
	// lingerTimeout bounds how long a connection whose last request did
	// not ask for FCGI_KEEP_CONN is drained before it is closed. Closing
	// with unread input would make the kernel send RST, which can destroy
	// the response still queued for the web server.
	lingerTimeout   = 5 * time.Second
	maxPooledParams = 64 << 10
)

var (
	readerPool    = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	paramsBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}
)

// protocolError is a violation by the peer; the connection is closed and
// the reason logged.
type protocolError string

func (e protocolError) Error() string { return string(e) }

func protoErrf(format string, args ...any) error {
	return protocolError(fmt.Sprintf(format, args...))
}

// conn serves one transport connection. A single reader goroutine decodes
// records and owns the request table's params phase; each request runs its
// handler in its own goroutine. Writes from all of them are serialized by
// wmu, and every record sequence that must stay contiguous is issued as a
// single write.
type conn struct {
	srv     *Server
	rwc     net.Conn
	maxReqs int

	// Reader goroutine only.
	br          *bufio.Reader
	hdr         [headerLen]byte
	scratch     [8]byte
	paramsBytes int // params buffered for requests not started yet

	wmu  sync.Mutex
	werr error

	mu         sync.Mutex
	reqs       map[uint16]*request
	atBoundary bool // reader blocked waiting for a record header
	draining   bool // no further requests: closing after a !KEEP_CONN one
	refs       int  // reader + running handlers

	closed   atomic.Bool
	active   atomic.Int64 // unix ns of the last request's end (or accept)
	deadline time.Time    // the read deadline set; reader and c.mu
}

func (c *conn) logger() *slog.Logger { return c.srv.logger() }

func (c *conn) serve() {
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.rwc)
	err := c.readLoop()
	c.readerExit(err)
}

func (c *conn) readLoop() error {
	for {
		// Only mark the connection idle when the read may block, so a
		// pipelined record never pays for the bookkeeping.
		mayBlock := c.br.Buffered() < headerLen
		if mayBlock {
			c.mu.Lock()
			if c.srv.shutdown.Load() && len(c.reqs) == 0 {
				c.mu.Unlock()
				return nil
			}
			c.atBoundary = true
			c.setDeadlineLocked()
			c.mu.Unlock()
		}
		_, err := io.ReadFull(c.br, c.hdr[:])
		if mayBlock {
			c.mu.Lock()
			c.atBoundary = false
			c.mu.Unlock()
		}
		if c.closed.Load() {
			return nil
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return truncated(err, "record header")
		}
		h := parseHeader(&c.hdr)
		if h.version != version1 {
			return protoErrf("unsupported FastCGI version %d", h.version)
		}
		n := int(h.contentLen)
		switch h.typ {
		case typeBeginRequest:
			err = c.onBegin(h.id, n)
		case typeParams:
			err = c.onParams(h.id, n)
		case typeStdin:
			err = c.onStdin(h.id, n)
		case typeAbortRequest:
			err = c.onAbort(h.id, n)
		case typeGetValues:
			err = c.onGetValues(n)
		case typeData:
			// Only the Filter role reads DATA; a responder ignores it.
			err = c.discard(n)
		default:
			if err = c.discard(n); err == nil {
				var b [2 * headerLen]byte
				err = c.write(appendUnknownType(b[:0], h.typ))
			}
		}
		if err == nil {
			err = c.discard(int(h.padLen))
		}
		if err != nil {
			return err
		}
	}
}

// setDeadlineLocked bounds the wait for the next record while no request
// runs: IdleTimeout with none in flight, the oldest request's
// ParamsTimeout while all are still sending params; a running request
// lifts the bound (its handler decides how long it takes).
func (c *conn) setDeadlineLocked() {
	if c.draining {
		return // startDrain's linger bound stands
	}
	var d time.Time
	if len(c.reqs) == 0 {
		if c.srv.IdleTimeout > 0 {
			d = time.Now().Add(c.srv.IdleTimeout)
		}
	} else if c.srv.ParamsTimeout > 0 {
		for _, r := range c.reqs {
			if r.started {
				d = time.Time{}
				break
			}
			if t := r.begun.Add(c.srv.ParamsTimeout); d.IsZero() || t.Before(d) {
				d = t
			}
		}
	}
	if d.IsZero() && c.deadline.IsZero() {
		return
	}
	c.deadline = d
	_ = c.rwc.SetReadDeadline(d)
}

func truncated(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return protocolError("connection closed inside a " + what)
	}
	return err
}

func (c *conn) discard(n int) error {
	if n == 0 {
		return nil
	}
	_, err := c.br.Discard(n)
	return truncated(err, "record")
}

func (c *conn) readFull(b []byte) error {
	_, err := io.ReadFull(c.br, b)
	return truncated(err, "record")
}

func (c *conn) lookup(id uint16) *request {
	c.mu.Lock()
	r := c.reqs[id]
	c.mu.Unlock()
	return r
}

func (c *conn) onBegin(id uint16, n int) error {
	if id == 0 {
		return protocolError("BEGIN_REQUEST with the management request id 0")
	}
	if n < 8 {
		return protoErrf("BEGIN_REQUEST body of %d bytes", n)
	}
	if err := c.readFull(c.scratch[:]); err != nil {
		return err
	}
	if err := c.discard(n - 8); err != nil {
		return err
	}
	role := binary.BigEndian.Uint16(c.scratch[0:2])
	keep := c.scratch[2]&flagKeepConn != 0

	c.mu.Lock()
	if _, dup := c.reqs[id]; dup {
		c.mu.Unlock()
		return protoErrf("BEGIN_REQUEST for request id %d, which is in flight", id)
	}
	status := -1
	switch {
	case role != roleResponder:
		status = statusUnknownRole
	case c.draining || c.srv.shutdown.Load():
		status = statusOverloaded
	case len(c.reqs) >= c.maxReqs:
		status = statusOverloaded
		if c.maxReqs == 1 {
			status = statusCantMultiplex
		}
	}
	if status < 0 {
		req := &request{c: c, id: id, keepConn: keep, begun: time.Now()}
		req.body.init()
		req.resp.req = req
		c.reqs[id] = req
		c.mu.Unlock()
		return nil
	}
	idle := len(c.reqs) == 0
	c.mu.Unlock()
	c.logger().Debug("fastcgi: refusing request", "remote", c.remote(), "id", id, "role", role, "protocolStatus", status)
	var b [2 * headerLen]byte
	err := c.write(appendEndRequest(b[:0], id, 0, uint8(status)))
	if err == nil && !keep && idle {
		c.startDrain()
	}
	return err
}

func (c *conn) onParams(id uint16, n int) error {
	req := c.lookup(id)
	if req == nil || req.started {
		// Unknown ids are ignored as the spec asks; they may belong to a
		// request we refused or already answered.
		return c.discard(n)
	}
	if n == 0 {
		return c.startRequest(req)
	}
	if limit := c.srv.maxParams(); c.paramsBytes+n > limit {
		return protoErrf("params of pending requests exceed %d bytes", limit)
	}
	if req.paramsp == nil {
		req.paramsp = paramsBufPool.Get().(*[]byte)
		req.params = (*req.paramsp)[:0]
	}
	req.params = slices.Grow(req.params, n)
	k := len(req.params)
	req.params = req.params[:k+n]
	c.paramsBytes += n
	return c.readFull(req.params[k:])
}

func (c *conn) releaseParams(req *request) {
	c.paramsBytes -= len(req.params)
	if req.paramsp != nil && cap(req.params) <= maxPooledParams {
		*req.paramsp = req.params[:0]
		paramsBufPool.Put(req.paramsp)
	}
	req.paramsp, req.params = nil, nil
}

// startRequest turns the complete params stream into an *http.Request and
// starts the handler, before any STDIN arrives, so the body streams.
func (c *conn) startRequest(req *request) error {
	// One allocation holds every name and value: they are substrings.
	s := string(req.params)
	c.releaseParams(req)
	vars, err := scanParams(s)
	if err != nil {
		return protoErrf("malformed params of request %d: %v", req.id, err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	req.ctx.Context, req.ctx.raw, req.ctx.pairs = cctx, s, vars.pairs
	req.cancel = cancel
	hr, err := newHTTPRequest(&req.ctx, s, &vars, &req.body)
	if err != nil {
		cancel()
		c.mu.Lock()
		delete(c.reqs, req.id)
		c.mu.Unlock()
		c.logger().Debug("fastcgi: bad request", "remote", c.remote(), "id", req.id, "err", err)
		werr := c.write(badRequest(req.id))
		if werr == nil && !req.keepConn {
			c.startDrain()
		}
		return werr
	}
	req.resp.isHead = hr.Method == http.MethodHead
	c.mu.Lock()
	req.started = true
	c.refs++
	c.mu.Unlock()
	go c.serveRequest(req, hr)
	return nil
}

func badRequest(id uint16) []byte {
	const msg = "Status: 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n\r\nBad Request\n"
	b := make([]byte, 0, len(msg)+16+endLen)
	b = appendRecords(b, typeStdout, id, []byte(msg))
	b = appendHeader(b, typeStdout, id, 0, 0)
	return appendEndRequest(b, id, 0, statusRequestComplete)
}

func (c *conn) onStdin(id uint16, n int) error {
	req := c.lookup(id)
	if req == nil {
		return c.discard(n)
	}
	if !req.started {
		return protoErrf("STDIN for request %d before the end of its PARAMS", id)
	}
	if n == 0 {
		req.body.setEOF()
		return nil
	}
	return c.feedBody(&req.body, n)
}

// feedBody copies n bytes of STDIN content from the connection into the
// request's body buffer, blocking while that buffer is full.
//
// Backpressure: FastCGI has no per-request flow control, so the only way to
// hold back a request body is to stop reading the connection. A request
// buffers at most bodyBufSize bytes ahead of its handler; past that the
// reader waits, and every other request multiplexed on the same connection
// waits with it (their records are behind this one on the wire). The wait
// ends when the handler reads, returns, closes the body, or the request is
// aborted, or the connection is closed. nginx never multiplexes, so there
// this is plain TCP-style backpressure towards nginx.
func (c *conn) feedBody(b *body, n int) error {
	for n > 0 {
		b.mu.Lock()
		drop := false
		for {
			if b.closed || b.err != nil || b.eof {
				drop = true // nobody will read it
				break
			}
			if c.closed.Load() {
				b.mu.Unlock()
				return net.ErrClosed
			}
			if b.bufp == nil {
				b.bufp = bodyBufPool.Get().(*[]byte)
				b.buf = *b.bufp
				b.r, b.w = 0, 0
			}
			if b.w == len(b.buf) && b.r > 0 {
				b.w = copy(b.buf, b.buf[b.r:b.w])
				b.r = 0
			}
			if b.w < len(b.buf) {
				break
			}
			b.wantSpace = true
			b.cond.Wait()
		}
		if drop {
			b.mu.Unlock()
			return c.discard(n)
		}
		k := min(n, len(b.buf)-b.w)
		dst := b.buf[b.w : b.w+k]
		b.filling = true
		b.mu.Unlock()

		err := c.readFull(dst)

		b.mu.Lock()
		b.filling = false
		switch {
		case err != nil:
			if b.err == nil {
				b.err = io.ErrUnexpectedEOF
			}
		case b.closed:
			b.releaseLocked()
		default:
			b.w += k
		}
		b.cond.Broadcast()
		b.mu.Unlock()
		if err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (c *conn) onAbort(id uint16, n int) error {
	if err := c.discard(n); err != nil {
		return err
	}
	req := c.lookup(id)
	if req == nil {
		return nil
	}
	if !req.started {
		c.mu.Lock()
		delete(c.reqs, id)
		c.mu.Unlock()
		c.releaseParams(req)
		var b [2 * headerLen]byte
		return c.write(appendEndRequest(b[:0], id, 0, statusRequestComplete))
	}
	req.aborted.Store(true)
	req.cancel()
	req.body.fail(errBodyAborted)
	return nil
}

func (c *conn) onGetValues(n int) error {
	in := make([]byte, n)
	if err := c.readFull(in); err != nil {
		return err
	}
	maxConns, maxReqs, mpxs := c.srv.values()
	out := make([]byte, headerLen, 128)
	var seen [3]bool
	// A malformed query still gets the values decoded before the error.
	_ = decodeParams(string(in), func(name, _ string) {
		switch {
		case name == "FCGI_MAX_CONNS" && !seen[0]:
			seen[0] = true
			out = appendParamInt(out, name, maxConns)
		case name == "FCGI_MAX_REQS" && !seen[1]:
			seen[1] = true
			out = appendParamInt(out, name, maxReqs)
		case name == "FCGI_MPXS_CONNS" && !seen[2]:
			seen[2] = true
			out = appendParamInt(out, name, mpxs)
		}
	})
	cl := len(out) - headerLen
	pad := padLen(cl)
	out = append(out, zeros[:pad]...)
	putHeader(out, typeGetValuesResult, 0, cl, pad)
	return c.write(out)
}

// write issues b as one write. It must not be called with c.mu held.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if _, err := c.rwc.Write(b); err != nil {
		c.werr = err
		c.close()
		return err
	}
	return nil
}

func (c *conn) writev(nb *net.Buffers) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if _, err := nb.WriteTo(c.rwc); err != nil {
		c.werr = err
		c.close()
		return err
	}
	return nil
}

// serveRequest runs in the request's goroutine.
func (c *conn) serveRequest(req *request, hr *http.Request) {
	defer c.unref()
	w := &req.resp
	p := c.callHandler(w, hr)
	req.body.Close()

	abort := false
	if p != nil && !req.aborted.Load() {
		// Once bytes are on the wire a 500 is impossible; cutting the
		// connection is the only way to tell the web server the response
		// is incomplete instead of letting a truncated one pass as whole.
		if p == http.ErrAbortHandler || w.sentHeader {
			abort = true
		} else {
			w.resetForPanic()
		}
	}
	// The id must be free before END_REQUEST is sent: the web server may
	// reuse it as soon as it sees END_REQUEST.
	c.mu.Lock()
	delete(c.reqs, req.id)
	last := len(c.reqs) == 0
	if last {
		c.active.Store(time.Now().UnixNano())
		if req.keepConn {
			// The reader may be blocked without a bound: idle from now.
			c.setDeadlineLocked()
		}
	}
	c.mu.Unlock()

	if abort {
		w.release()
		req.cancel()
		c.close()
		return
	}
	w.finish()
	req.cancel()
	switch {
	case !req.keepConn && last && req.body.sawEOF():
		// All input of the only request has been read: nothing is left
		// to cause a reset, so skip the lingering close.
		c.close()
	case !req.keepConn:
		c.startDrain()
	case last && c.srv.shutdown.Load():
		c.closeIfIdle()
	}
}

func (c *conn) callHandler(w *response, r *http.Request) (p any) {
	defer func() {
		if p = recover(); p != nil && p != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.logger().Error("fastcgi: panic serving request", "remote", r.RemoteAddr,
				"uri", r.RequestURI, "panic", p, "stack", string(buf))
		}
	}()
	c.srv.handler().ServeHTTP(w, r)
	return nil
}

// startDrain stops taking requests and half-closes the connection; the
// reader then discards input until the web server closes its side or
// lingerTimeout passes.
func (c *conn) startDrain() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok {
		c.close()
		return
	}
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = net.ErrClosed
	}
	c.wmu.Unlock()
	if cw.CloseWrite() != nil || c.rwc.SetReadDeadline(time.Now().Add(lingerTimeout)) != nil {
		c.close()
	}
}

// closeIfIdle closes the connection if no request is in flight and the
// reader is waiting for the next one. Checking and closing under c.mu
// means the reader cannot have registered a request in between.
func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.atBoundary && len(c.reqs) == 0 && c.closed.CompareAndSwap(false, true) {
		c.rwc.Close()
	}
}

// close closes the transport and wakes a reader blocked on a full body
// buffer. Safe from any goroutine that does not hold c.mu.
func (c *conn) close() {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.rwc.Close()
	c.mu.Lock()
	for _, r := range c.reqs {
		if r.started {
			r.body.wake()
		}
	}
	c.mu.Unlock()
}

func (c *conn) readerExit(err error) {
	var pe protocolError
	switch {
	case err == nil:
	case errors.As(err, &pe):
		c.srv.protocolError(c.remote(), pe.Error())
	default:
		c.mu.Lock()
		quiet := c.draining
		c.mu.Unlock()
		if !quiet && !c.closed.Load() {
			c.logger().Debug("fastcgi: connection read failed", "remote", c.remote(), "err", err)
		}
	}
	c.close()
	c.mu.Lock()
	for id, req := range c.reqs {
		if !req.started {
			delete(c.reqs, id)
			c.releaseParams(req)
			continue
		}
		// As net/http does when the client goes away.
		req.cancel()
		req.body.fail(io.ErrUnexpectedEOF)
	}
	c.mu.Unlock()
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.br = nil
	c.srv.releaseSlot()
	c.unref()
}

func (c *conn) unref() {
	c.mu.Lock()
	c.refs--
	done := c.refs == 0
	c.mu.Unlock()
	if done {
		c.srv.removeConn(c)
	}
}

func (c *conn) remote() string {
	if a := c.rwc.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return c.rwc.LocalAddr().String()
}
