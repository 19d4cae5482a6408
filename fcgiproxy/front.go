package fcgiproxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cocaine-cloud/cocaine/fcgiproxy/fastcgi"
	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/httpmsg"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// Policy headers a request may carry, within the config's limits.
const (
	HeaderDeadline = "X-Cocaine-Deadline" // ms from arrival to answer
	HeaderTimeout  = "X-Cocaine-Timeout"  // ms of run time on the engine
	HeaderRetries  = "X-Cocaine-Retries"  // re-sends after a node was lost
	HeaderUrgent   = "X-Cocaine-Urgent"   // "1": front of the queue
	HeaderError    = "X-Cocaine-Error"    // the platform code of an error answer
)

// Sender is the dealer as the front uses it.
type Sender interface {
	Send(app, event string, body []byte, p wire.Policy) (*gateway.Response, error)
	Open(app, event string, first []byte, p wire.Policy) (*gateway.Response, error)
	Payload(app, event string) string
	Broken(app string) string
}

// Front is the http.Handler that carries requests to apps.
type Front struct {
	cfg     Config
	dealer  Sender
	log     *slog.Logger
	streams atomic.Int64  // requests whose body is streaming now
	metrics *frontMetrics // nil: metrics off
}

// New makes a front over a dealer.
func New(cfg Config, dealer Sender, log *slog.Logger) (*Front, error) {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	f := &Front{cfg: cfg, dealer: dealer, log: log.With("component", "front")}
	var routes func() map[string]int
	if rt, ok := dealer.(interface{ KnownRoutes() map[string]int }); ok {
		routes = rt.KnownRoutes
	}
	if !cfg.NoMetrics {
		f.metrics = newFrontMetrics(routes)
	}
	return f, nil
}

// Collectors returns the front's metrics for a registry.
func (f *Front) Collectors() []prometheus.Collector {
	if f.metrics == nil {
		return nil
	}
	return f.metrics.collectors()
}

// target is where a request goes.
type target struct {
	app, event, scriptName string
}

// route maps a request to an app event: the configured routes first, then
// /APP/EVENT[/rest], where the app sees SCRIPT_NAME /APP/EVENT.
func (f *Front) route(host, path string) (target, bool) {
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	for _, r := range f.cfg.Routes {
		if r.Host != "" && !strings.EqualFold(r.Host, host) {
			continue
		}
		if r.Prefix != "" && r.Prefix != "/" && path != r.Prefix && !strings.HasPrefix(path, strings.TrimSuffix(r.Prefix, "/")+"/") {
			continue
		}
		return target{r.App, r.Event, strings.TrimSuffix(r.Prefix, "/")}, true
	}
	rest := strings.TrimPrefix(path, "/")
	app, rest, _ := strings.Cut(rest, "/")
	event, _, _ := strings.Cut(rest, "/")
	if app == "" || event == "" {
		return target{}, false
	}
	return target{app, event, "/" + app + "/" + event}, true
}

// policy reads the policy headers within the configured limits.
func (f *Front) policy(r *http.Request, arrived time.Time) (wire.Policy, error) {
	p := wire.Policy{Retries: f.cfg.DefaultRetries}
	deadline := f.cfg.DefaultDeadline.Duration
	ms := func(name string) (time.Duration, bool, error) {
		v := r.Header.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if errors.Is(err, strconv.ErrRange) && n > 0 {
			err = nil // larger than any cap: clamped below
		}
		if err != nil || n <= 0 {
			return 0, false, wire.Errorf(wire.CodeBadRequest, "%s: %q is not a positive number of milliseconds", name, v)
		}
		// Past ~292 years the product overflows; the caps apply anyway.
		return time.Duration(min(n, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond, true, nil
	}
	if d, ok, err := ms(HeaderDeadline); err != nil {
		return p, err
	} else if ok {
		deadline = min(d, f.cfg.MaxDeadline.Duration)
	} else {
		// Only a deadline the client asked for is worth waiting for an
		// app to appear; otherwise an unknown app is a 404 at once.
		p.FailFast = true
	}
	p.Deadline = arrived.Add(deadline)
	if d, ok, err := ms(HeaderTimeout); err != nil {
		return p, err
	} else if ok {
		p.Timeout = min(d, f.cfg.MaxTimeout.Duration)
	}
	if v := r.Header.Get(HeaderRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, wire.Errorf(wire.CodeBadRequest, "%s: %q is not a count", HeaderRetries, v)
		}
		p.Retries = min(n, f.cfg.MaxRetries)
	}
	p.Urgent = r.Header.Get(HeaderUrgent) == "1"
	return p, nil
}

// piece is how much request body the front reads before it sends the
// request on: a body that fits goes whole, in one message; a longer one
// streams in pieces of this size, under the dealer's flow control.
const piece = 64 << 10

// maxSpill bounds the answer the front holds for a FastCGI request whose
// body is still arriving (see gateway.Response.BufferWhileSending).
const maxSpill = 256 << 20

var pieces = sync.Pool{New: func() any { b := make([]byte, piece); return &b }}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if r.URL.Path == "/ping" {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
		return
	}
	x := f.metrics.begin(&w, r, arrived) // metrics.go
	defer x.end()
	t, ok := f.route(r.Host, r.URL.Path)
	if !ok {
		writeError(w, wire.Errorf(wire.CodeNotFound, "no route for %s: use /APP/EVENT", r.URL.Path))
		return
	}
	x.target(t.app, t.event)
	p, err := f.policy(r, arrived)
	if err != nil {
		writeError(w, err)
		return
	}
	if r.ContentLength > f.cfg.MaxBody {
		writeTooLarge(w, f.cfg.MaxBody)
		return
	}
	kind := f.dealer.Payload(t.app, t.event)
	if kind == "" {
		if why := f.dealer.Broken(t.app); why != "" {
			// Not available here now: 503 with the reason, at once.
			writeError(w, wire.Errorf(wire.CodeUnavailable, "app %s is broken: %s", t.app, why))
			return
		}
	}
	if kind == "" && p.FailFast {
		// Nobody serves it and the client asked for no wait: say so before
		// reading a byte of the body.
		writeError(w, wire.Errorf(wire.CodeNotFound, "no live node serves %s/%s", t.app, t.event))
		return
	}
	raw := kind == gateway.PayloadRaw
	body := http.MaxBytesReader(rawWriter(w), r.Body, f.cfg.MaxBody)
	bufp := pieces.Get().(*[]byte)
	defer pieces.Put(bufp)
	n, err := io.ReadFull(body, *bufp)
	complete := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	if err != nil && !complete {
		writeBodyError(w, err, f.cfg.MaxBody)
		return
	}
	first := (*bufp)[:n]
	if raw {
		// The dealer keeps the body to send it again elsewhere, and engines
		// may still hold it after the handler returns the buffer.
		first = append([]byte(nil), first...)
	} else {
		meta := httpmsg.NewMeta(r, t.scriptName)
		meta.Secure = secure(r)
		if first, err = httpmsg.EncodeRequest(make([]byte, 0, encodedSize(meta, len(first))), meta, first); err != nil {
			writeError(w, wire.Errorf(wire.CodeBadRequest, "encoding the request: %v", err))
			return
		}
	}
	if !complete {
		if f.streams.Add(1) > int64(f.cfg.MaxStreams) {
			f.streams.Add(-1)
			// Refused before anything was sent: the client may retry.
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			writeError(w, wire.Errorf(wire.CodeUnavailable, "too many uploads in flight (max-streams %d)", f.cfg.MaxStreams))
			return
		}
		defer f.streams.Add(-1)
	}
	var resp *gateway.Response
	var pump *bodyPump
	if complete {
		resp, err = f.dealer.Send(t.app, t.event, first, p)
	} else {
		resp, err = f.dealer.Open(t.app, t.event, first, p)
	}
	if err != nil {
		writeError(w, wire.Errorf(wire.CodeUnavailable, "%v", err))
		return
	}
	defer resp.Close()
	if !complete {
		// The answer may start before the body ends (a pipeline): read the
		// body on while the answer is relayed.
		_ = http.NewResponseController(w).EnableFullDuplex()
		halfDuplex := fastcgi.Is(r)
		if halfDuplex {
			// nginx stops sending an upstream the request body once the
			// answer starts: hold the answer here, within bounds, until
			// the body is all read.
			resp.BufferWhileSending(int(min(f.cfg.MaxBody, maxSpill)))
		}
		pump = &bodyPump{done: make(chan struct{})}
		go pump.run(body, resp)
		if halfDuplex {
			<-pump.done
		}
	}
	headSent := f.relay(w, r.Context(), resp, raw)
	if pump != nil {
		resp.Close() // the answer is over: stop reading the body
		<-pump.done
		if !headSent && pump.err != nil {
			writeBodyError(w, pump.err, f.cfg.MaxBody)
		}
	}
}

// encodedSize is about what EncodeRequest makes of meta and a body of n
// bytes, so that it encodes into one allocation instead of growing a
// buffer several times.
func encodedSize(m *httpmsg.Meta, n int) int {
	size := 256 + n + len(m.URL) + len(m.Path) + len(m.Query) + len(m.Host) + len(m.RemoteAddr) + len(m.ScriptName) + len(m.PathInfo)
	for k, vs := range m.Headers {
		size += len(k) + 8
		for _, v := range vs {
			size += len(v) + 4
		}
	}
	for k, v := range m.Cookies {
		size += len(k) + len(v) + 8
	}
	return size
}

// bodyPump streams the rest of a request body into its request.
type bodyPump struct {
	done chan struct{}
	err  error // why the body could not be read to its end
}

func (b *bodyPump) run(body io.Reader, resp *gateway.Response) {
	defer close(b.done)
	bufp := pieces.Get().(*[]byte)
	defer pieces.Put(bufp)
	for {
		n, err := body.Read(*bufp)
		if n > 0 {
			if werr := resp.Write((*bufp)[:n]); werr != nil {
				return // the request ended first (its answer came, or it failed)
			}
		}
		if errors.Is(err, io.EOF) {
			resp.CloseSend()
			return
		}
		if err != nil {
			// Too large, or the client went away mid-body: the app must not
			// take a cut body for a whole one.
			b.err = err
			resp.Close()
			return
		}
	}
}

func writeBodyError(w http.ResponseWriter, err error, limit int64) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeTooLarge(w, limit)
		return
	}
	writeError(w, wire.Errorf(wire.CodeBadRequest, "reading the body: %v", err))
}

// relay streams the answer and reports whether its head went out. An
// HTTP event's first chunk holds the status and headers; a raw event's
// chunks are all body, answered 200 application/octet-stream.
func (f *Front) relay(w http.ResponseWriter, ctx context.Context, resp *gateway.Response, raw bool) (headSent bool) {
	flusher, _ := w.(http.Flusher)
	for {
		ev, err := resp.Next(ctx)
		if err != nil { // the client went away: resp.Close cancels upstream
			return headSent
		}
		switch ev.Kind {
		case gateway.EventChunk:
			switch {
			case headSent:
				if _, err := w.Write(ev.Data); err != nil {
					return headSent
				}
			case raw:
				w.Header().Set("Content-Type", "application/octet-stream")
				w.WriteHeader(http.StatusOK)
				headSent = true
				w.Write(ev.Data)
			default:
				// Runtimes send the head as a chunk of its own (the
				// payload format), so it is never split across chunks.
				head, n, err := httpmsg.DecodeHead(ev.Data)
				if err != nil {
					writeError(w, wire.Errorf(wire.CodeApp, "the app's answer has no valid head: %v", err))
					return true
				}
				for _, kv := range head.Headers {
					w.Header().Add(kv[0], kv[1])
				}
				w.WriteHeader(head.Code)
				headSent = true
				if rest := ev.Data[n:]; len(rest) > 0 {
					w.Write(rest)
				}
			}
			// Stream as the app writes, but one write for what came
			// together (head, body and end usually do).
			if flusher != nil && !resp.Buffered() {
				flusher.Flush()
			}
		case gateway.EventEnd:
			if !headSent {
				if raw {
					w.Header().Set("Content-Type", "application/octet-stream")
					w.WriteHeader(http.StatusOK)
				} else {
					writeError(w, wire.Errorf(wire.CodeApp, "the app ended its answer without a head"))
				}
			}
			return true
		case gateway.EventError:
			if !headSent {
				writeError(w, ev.Err)
				return true
			}
			// Part of the answer is out: the only honest signal left is to
			// break the connection, so the client never takes it as whole.
			f.log.Warn("answer failed mid-stream", "code", ev.Err.Code, "err", ev.Err.Message)
			panic(http.ErrAbortHandler)
		}
	}
}

func secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if v, ok := fastcgi.Param(r, "HTTPS"); ok {
		return v == "on" || v == "1"
	}
	return false
}

type errorBody struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
}

// writeError answers a platform error: the HTTP status of its code, the
// code in a header and a short JSON body.
func writeError(w http.ResponseWriter, err error) {
	code := wire.CodeOf(err)
	msg := err.Error()
	var we *wire.Error
	if errors.As(err, &we) {
		msg = we.Message
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderError, strconv.Itoa(int(code)))
	w.WriteHeader(code.HTTPStatus())
	json.NewEncoder(w).Encode(errorBody{Code: int(code), Error: msg})
}

func writeTooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	json.NewEncoder(w).Encode(errorBody{Code: http.StatusRequestEntityTooLarge, Error: "request body larger than " + strconv.FormatInt(limit, 10) + " bytes"})
}
