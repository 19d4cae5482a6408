package slave

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cocaine-cloud/cocaine/internal/httpmsg"
	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// HandleHTTP serves h on event of DefaultMux. See Mux.HandleHTTP.
func HandleHTTP(event string, h http.Handler) { DefaultMux.HandleHTTP(event, h) }

// HandleHTTP serves h on event: the event receives HTTP requests from the
// front in the payload of slaves/python/README.md ("HTTP payload"), and h
// sees them as a net/http server would show them.
//
// The route's prefix is stripped, as http.StripPrefix would: r.URL.Path is
// the request's path_info, so a handler does not depend on where the front
// mounts it; r.RequestURI keeps the whole path and ScriptName(r) the prefix.
// r.Context() ends when the engine cancels the session. The body streams as
// the front forwards it.
//
// The response behaves as net/http's: headers go out at the first WriteHeader,
// Write or Flush (Content-Type sniffed when unset, Content-Length computed
// when the handler ends having written little); writes are buffered and sent
// by Flush (http.Flusher, http.ResponseController) or when the buffer fills.
// A panic before the head went out answers 500; after it, the response is
// aborted, and the client must not take it for complete.
func (m *Mux) HandleHTTP(event string, h http.Handler) { m.Handle(event, HTTPHandler(h)) }

// HTTPHandler adapts h to a Handler, for Serve without a Mux.
func HTTPHandler(h http.Handler) Handler { return httpHandler{h} }

type scriptNameKey struct{}

// ScriptName is the raw, still percent-encoded prefix of the request's
// path that the front's route consumed, "" if none, never ending in "/":
// a handler served by HandleHTTP builds links to itself from it.
func ScriptName(r *http.Request) string {
	s, _ := r.Context().Value(scriptNameKey{}).(string)
	return s
}

type httpHandler struct{ h http.Handler }

func (a httpHandler) ServeEvent(ctx context.Context, req *Request, resp *Response) error {
	x := new(exchange) // what lives as long as the request, in one allocation
	x.in.req = req
	defer x.in.release()
	meta, body, err := httpmsg.DecodeRequest(&x.in)
	if err != nil {
		if errors.Is(err, httpmsg.ErrMalformed) {
			return &Error{Code: 400, Message: err.Error()}
		}
		return err
	}
	r, err := x.newRequest(ctx, meta, body)
	if err != nil {
		return &Error{Code: 400, Message: err.Error()}
	}
	w := &x.w
	*w = httpWriter{resp: resp, header: http.Header{}, isHead: r.Method == http.MethodHead, declared: -1}
	defer w.release()
	if err := w.serve(a.h, r, req.Event); err != nil {
		return err
	}
	return w.finish()
}

// exchange holds the parts of one HTTP request and its answer that share
// its lifetime, so that they cost one allocation instead of one each.
type exchange struct {
	in   chunkReader
	url  url.URL
	body httpBody
	w    httpWriter
}

func (x *exchange) newRequest(ctx context.Context, meta *httpmsg.Meta, body io.Reader) (*http.Request, error) {
	// PEP 3333 does the same to PATH_INFO: the Python runtime's apps and
	// this one see the same path.
	info := meta.PathInfo
	if !strings.HasPrefix(info, "/") {
		info = "/" + info
	}
	path, err := url.PathUnescape(info)
	if err != nil {
		return nil, fmt.Errorf("bad request path: %w", err)
	}
	u := &x.url
	*u = url.URL{Scheme: "http", Host: meta.Host, Path: path, RawQuery: meta.Query}
	if meta.Secure {
		u.Scheme = "https"
	}
	if u.EscapedPath() != info {
		u.RawPath = info // keeps %2F apart from /, as net/http does
	}
	requestURI := meta.Path
	if meta.Query != "" {
		requestURI += "?" + meta.Query
	}

	header := make(http.Header, len(meta.Headers))
	for name, vals := range meta.Headers {
		name = http.CanonicalHeaderKey(name)
		if name != "Host" {
			header[name] = append(header[name], vals...)
		}
	}
	// A value: WithContext below copies it to the heap anyway.
	r := http.Request{
		Method:        meta.Method,
		URL:           u,
		Proto:         meta.Protocol,
		Header:        header,
		ContentLength: -1,
		Host:          meta.Host,
		RemoteAddr:    meta.RemoteAddr,
		RequestURI:    requestURI,
	}
	var ok bool
	if r.ProtoMajor, r.ProtoMinor, ok = http.ParseHTTPVersion(r.Proto); !ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	}
	if meta.Secure {
		// What net/http/cgi sets for HTTPS=on: handlers test r.TLS != nil.
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	// As net/http reads a request: a transfer coding makes the length
	// unknown; otherwise Content-Length, if any, bounds the body.
	if te := header["Transfer-Encoding"]; len(te) > 0 {
		r.TransferEncoding = te
		header.Del("Transfer-Encoding")
		header.Del("Content-Length")
	} else if cl := header["Content-Length"]; len(cl) > 0 {
		if r.ContentLength, err = parseContentLength(cl); err != nil {
			return nil, err
		}
	}
	if r.ContentLength == 0 {
		r.Body = http.NoBody
	} else {
		x.body = httpBody{r: body, n: r.ContentLength}
		r.Body = &x.body
	}
	// Without its trailing "/", which path_info took (PEP 3333 does the
	// same): ScriptName(r) + r.URL.EscapedPath() is the request's path.
	script := strings.TrimRight(meta.ScriptName, "/")
	return r.WithContext(context.WithValue(ctx, scriptNameKey{}, script)), nil
}

func parseContentLength(vals []string) (int64, error) {
	for _, v := range vals[1:] {
		if strings.TrimSpace(v) != strings.TrimSpace(vals[0]) {
			return 0, fmt.Errorf("bad request: conflicting Content-Length headers %q", vals)
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(vals[0]), 10, 63)
	if err != nil {
		return 0, fmt.Errorf("bad request: Content-Length %q", vals[0])
	}
	return int64(n), nil
}

// httpBody is r.Body: the rest of the request stream, cut at the declared
// Content-Length, and an error when the stream ends before it.
type httpBody struct {
	r      io.Reader
	n      int64 // bytes still declared, or -1: until the stream ends
	closed atomic.Bool
}

func (b *httpBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.n == 0 {
		return 0, io.EOF
	}
	if b.n > 0 && int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.r.Read(p)
	if b.n > 0 {
		b.n -= int64(k)
		if err == io.EOF && b.n > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	return k, err
}

func (b *httpBody) Close() error {
	b.closed.Store(true)
	return nil
}

// errHandlerDone is what writes get after the handler returned.
var errHandlerDone = errors.New("slave: http: write after the handler returned")

// httpWriter is the http.ResponseWriter. It holds the head and up to
// BufferSize of body until the handler flushes, writes more, or returns,
// so that a small answer leaves in one socket write, head, body and end
// together, and Content-Type can be sniffed from the body as net/http does.
type httpWriter struct {
	resp   *Response
	header http.Header
	isHead bool // a HEAD request: the body is counted and sniffed but not sent

	mu        sync.Mutex
	code      int         // 0 until the status is set
	sent      http.Header // the header as WriteHeader saw it
	declared  int64       // the handler's Content-Length, or -1
	written   int64
	pending   []byte // body held back before the head went out
	committed bool   // the head went to resp
	done      bool   // the handler returned
}

func (w *httpWriter) Header() http.Header { return w.header }

func (w *httpWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeader(code)
}

func (w *httpWriter) writeHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http
	}
	if w.done {
		return
	}
	if w.code != 0 {
		slog.Warn("http: superfluous WriteHeader call", "code", code, "first", w.code)
		return
	}
	// The payload has one head per answer: informational responses
	// (100 Continue, 103 Early Hints) have no way to the client.
	if code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	w.code, w.sent = code, w.header.Clone()
	if cl := w.sent["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
}

// Write fails, as net/http's does once its client is gone, after the
// engine cancelled the session: a handler that streams without watching
// r.Context() stops at its next write.
func (w *httpWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, errHandlerDone
	}
	if err := w.resp.aborted(); err != nil {
		return 0, err
	}
	if w.code == 0 {
		w.writeHeader(http.StatusOK)
	}
	if !bodyAllowed(w.code) {
		return 0, http.ErrBodyNotAllowed
	}
	// Unlike net/http, a refused write is not counted, so written is what
	// the client gets and finish can tell a short body.
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if len(w.pending)+len(p) <= BufferSize {
			w.hold(p)
			return len(p), nil
		}
		if err := w.commit(p, false); err != nil {
			return 0, err
		}
	}
	if w.isHead {
		return len(p), nil
	}
	return w.resp.Write(p)
}

// hold appends p to the body held back, in a pooled buffer that grows in
// the pool.
func (w *httpWriter) hold(p []byte) {
	if len(w.pending)+len(p) > cap(w.pending) {
		nb := buffers.get(max(minBuffer, 2*cap(w.pending), len(w.pending)+len(p)))[:len(w.pending)]
		copy(nb, w.pending)
		buffers.put(w.pending)
		w.pending = nb
	}
	w.pending = append(w.pending, p...)
}

// release gives the held-back buffer to the pool once nothing refers to it.
func (w *httpWriter) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	buffers.put(w.pending)
	w.pending = nil
}

func (w *httpWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Flush implements http.Flusher.
func (w *httpWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (w *httpWriter) FlushError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errHandlerDone
	}
	if err := w.resp.aborted(); err != nil {
		return err
	}
	if w.code == 0 {
		w.writeHeader(http.StatusOK)
	}
	if !w.committed {
		return w.commit(nil, false)
	}
	return w.resp.Flush()
}

// EnableFullDuplex tells http.ResponseController that the handler may read
// the body while it writes: it always can here, the request streams on its
// own.
func (w *httpWriter) EnableFullDuplex() error { return nil }

// commit sends the head and the pending body, and the end too when end is
// set, in one socket write. next is the write that overflowed the pending
// buffer, for sniffing only.
func (w *httpWriter) commit(next []byte, end bool) error {
	hdr := w.sent
	_, haveType := hdr["Content-Type"] // a nil value asks not to sniff, as in net/http
	_, haveTE := hdr["Transfer-Encoding"]
	if !haveType && !haveTE && bodyAllowed(w.code) && len(w.pending)+len(next) > 0 {
		sniff := w.pending
		if len(sniff) < 512 && len(next) > 0 {
			sniff = append(sniff[:len(sniff):len(sniff)], next[:min(len(next), 512-len(sniff))]...)
		}
		hdr.Set("Content-Type", http.DetectContentType(sniff))
	}
	if _, haveCL := hdr["Content-Length"]; end && !haveCL && !haveTE && bodyAllowed(w.code) && (!w.isHead || len(w.pending) > 0) {
		hdr.Set("Content-Length", strconv.Itoa(len(w.pending)))
	}
	var scratch [16][2]string // the usual head fits: no allocation
	head, err := httpmsg.EncodeHead(buffers.get(minBuffer)[:0], &httpmsg.Head{Code: w.code, Headers: headerPairs(scratch[:0], hdr)})
	if err != nil {
		return err
	}
	body := w.pending
	if w.isHead {
		body = nil
	}
	w.committed = true
	err = w.resp.sendChunks(end, head, body)
	// Both went out (sendChunks returns once they are written) or never will.
	buffers.put(head)
	buffers.put(w.pending)
	w.pending = nil
	return err
}

// headerPairs appends hdr to pairs in the order net/http writes it, by
// name. Trailers are left out: the payload cannot carry them.
func headerPairs(pairs [][2]string, hdr http.Header) [][2]string {
	var scratch [16]string // the usual header fits: no allocation
	names := scratch[:0]
	for name := range hdr {
		if name != "Trailer" && !strings.HasPrefix(name, http.TrailerPrefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range hdr[name] {
			pairs = append(pairs, [2]string{name, v})
		}
	}
	return pairs
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// serve runs the handler. A panic before the head went out answers 500; after
// it, the session ends with an error so the front aborts the response.
func (w *httpWriter) serve(h http.Handler, r *http.Request, event string) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler { // net/http's quiet abort
			err = fmt.Errorf("http handler aborted the response: %w", http.ErrAbortHandler)
			return
		}
		slog.Error("http handler panicked", "event", event, "method", r.Method, "uri", r.RequestURI,
			"panic", p, "stack", string(debug.Stack()))
		err = w.internalError(p)
	}()
	h.ServeHTTP(w, r)
	return nil
}

func (w *httpWriter) internalError(p any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	if w.committed {
		return fmt.Errorf("http handler panicked after the head went out: %v", p)
	}
	const msg = "Internal Server Error\n"
	head, err := httpmsg.EncodeHead(nil, &httpmsg.Head{Code: http.StatusInternalServerError, Headers: [][2]string{
		{"Content-Length", strconv.Itoa(len(msg))},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"X-Content-Type-Options", "nosniff"},
	}})
	if err != nil {
		return err
	}
	w.committed = true
	buffers.put(w.pending)
	w.pending = nil
	return w.resp.sendChunks(true, head, []byte(msg))
}

// finish ends the answer after the handler returned.
func (w *httpWriter) finish() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	if w.code == 0 {
		w.writeHeader(http.StatusOK)
	}
	w.done = true
	if w.declared >= 0 && w.written < w.declared && bodyAllowed(w.code) && !w.isHead {
		// net/http closes the connection here; an error does the same
		// through the front, which must not pass a short body as whole.
		return fmt.Errorf("http handler wrote %d bytes of the %d its Content-Length declares", w.written, w.declared)
	}
	if !w.committed {
		return w.commit(nil, true)
	}
	return nil // the worker closes the stream with what resp still holds
}

// sendChunks sends what w buffers, then each of chunks as a chunk frame of
// its own, then the end if end is set, in one socket write. The HTTP head
// must be a chunk alone, yet a small answer should leave in one write like
// any other, so that a slave killed after answering never leaves half of it.
func (w *Response) sendChunks(end bool, chunks ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	var last *protocol.Frame
	if end {
		last = &protocol.Frame{Type: protocol.Choke, Session: w.session}
	}
	return w.send(last, chunks...)
}
