package fcgiproxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unrouted is the app and event label of requests for a route no live
// node serves: label values come from the routing table, never from the
// path a client typed, so that nobody can make series at will.
const Unrouted = "unrouted"

// frontMetrics counts requests by route and status. The per-route
// children are looked up once and kept, so a request costs a map read,
// a few atomic adds and one histogram observation.
type frontMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec

	routes     func() map[string]int // the dealer's routing table: "APP/EVENT" → nodes
	known      atomic.Pointer[routeSet]
	children   sync.Map // routeKey → *routeChildren
	refreshing atomic.Bool
}

type routeKey struct{ app, event string }

type routeSet struct {
	at     time.Time
	routes map[routeKey]bool
}

type routeChildren struct {
	duration   prometheus.Observer
	bytesIn    prometheus.Counter
	bytesOut   prometheus.Counter
	mu         sync.Mutex                                 // serializes additions to codes
	codes      atomic.Pointer[map[int]prometheus.Counter] // copied on write: read without a lock
	app, event string
}

// routesTTL is how stale the known routes may be: a route deployed a
// moment ago counts as unrouted for at most this long.
const routesTTL = time.Second

func newFrontMetrics(routes func() map[string]int) *frontMetrics {
	m := &frontMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cocaine_front_requests_total",
			Help: "Requests through the front by app, event and HTTP status. App and event are \"unrouted\" for routes no live node serves.",
		}, []string{"app", "event", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cocaine_front_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by app and event.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 16), // 100 µs … 90 s
		}, []string{"app", "event"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cocaine_front_requests_in_flight",
			Help: "Requests being served by the front now.",
		}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cocaine_front_received_bytes_total",
			Help: "Request body bytes read from clients, by app and event.",
		}, []string{"app", "event"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cocaine_front_sent_bytes_total",
			Help: "Response body bytes written to clients, by app and event.",
		}, []string{"app", "event"}),
		routes: routes,
	}
	return m
}

func (m *frontMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.inflight, m.bytesIn, m.bytesOut}
}

// routed reports whether a live node serves app/event, from a copy of the
// routing table refreshed at most every routesTTL by one caller.
// now is the caller's clock reading: reading the clock is a good part of
// what the metrics cost on a VM.
func (m *frontMetrics) routed(app, event string, now time.Time) bool {
	if m.routes == nil {
		return false
	}
	set := m.known.Load()
	if (set == nil || now.Sub(set.at) > routesTTL) && m.refreshing.CompareAndSwap(false, true) {
		// One caller refreshes; the others read the set it replaces.
		fresh := &routeSet{at: now, routes: map[routeKey]bool{}}
		for r := range m.routes() {
			if a, e, ok := strings.Cut(r, "/"); ok {
				fresh.routes[routeKey{a, e}] = true
			}
		}
		m.known.Store(fresh)
		m.refreshing.Store(false)
		set = fresh
	}
	return set != nil && set.routes[routeKey{app, event}]
}

func (m *frontMetrics) child(app, event string) *routeChildren {
	k := routeKey{app, event}
	if c, ok := m.children.Load(k); ok {
		return c.(*routeChildren)
	}
	c := &routeChildren{
		duration: m.duration.WithLabelValues(app, event),
		bytesIn:  m.bytesIn.WithLabelValues(app, event),
		bytesOut: m.bytesOut.WithLabelValues(app, event),
		app:      app, event: event,
	}
	c.codes.Store(&map[int]prometheus.Counter{})
	got, _ := m.children.LoadOrStore(k, c)
	return got.(*routeChildren)
}

func (c *routeChildren) code(m *frontMetrics, code int) prometheus.Counter {
	if ctr := (*c.codes.Load())[code]; ctr != nil {
		return ctr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.codes.Load()
	if ctr := old[code]; ctr != nil {
		return ctr
	}
	ctr := m.requests.WithLabelValues(c.app, c.event, strconv.Itoa(code))
	next := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[code] = ctr
	c.codes.Store(&next)
	return ctr
}

// exchange watches one request: the status and bytes its answer got, the
// bytes its body gave. It wraps the ResponseWriter and the body.
type exchange struct {
	http.ResponseWriter
	m          *frontMetrics
	start      time.Time
	app, event string
	code       int
	out        int64
	body       countingBody
	req        *http.Request // its Body is given back at the end
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// begin starts watching a request that arrived at start: *w and r.Body
// are replaced by counting wrappers. Nil-safe: with metrics off it does
// nothing.
func (m *frontMetrics) begin(w *http.ResponseWriter, r *http.Request, start time.Time) *exchange {
	if m == nil {
		return nil
	}
	m.inflight.Inc()
	// Not pooled: a body may still be read after the handler returns.
	x := &exchange{ResponseWriter: *w, m: m, start: start}
	if r.Body != nil && r.Body != http.NoBody {
		x.body.ReadCloser = r.Body
		r.Body = &x.body
		x.req = r
	}
	*w = x
	return x
}

// target names the route the request goes to.
func (x *exchange) target(app, event string) {
	if x != nil {
		x.app, x.event = app, event
	}
}

// end records the request; deferred, so that it runs when an aborted
// answer panics too.
func (x *exchange) end() {
	if x == nil {
		return
	}
	if x.req != nil {
		// net/http looks at the request's own body after the handler to
		// decide how to close a connection whose body was left unread
		// (half-close and wait, so the client reads the answer before a
		// reset): it must find its own type there again.
		x.req.Body = x.body.ReadCloser
	}
	m := x.m
	m.inflight.Dec()
	now := time.Now()
	app, event := x.app, x.event
	if app == "" || !m.routed(app, event, now) {
		app, event = Unrouted, Unrouted
	}
	code := x.code
	if code == 0 {
		code = http.StatusOK
	}
	c := m.child(app, event)
	c.code(m, code).Inc()
	c.duration.Observe(now.Sub(x.start).Seconds())
	if x.body.n > 0 {
		c.bytesIn.Add(float64(x.body.n))
	}
	if x.out > 0 {
		c.bytesOut.Add(float64(x.out))
	}
}

func (x *exchange) WriteHeader(code int) {
	if x.code == 0 {
		x.code = code
	}
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(p []byte) (int, error) {
	if x.code == 0 {
		x.code = http.StatusOK
	}
	n, err := x.ResponseWriter.Write(p)
	x.out += int64(n)
	return n, err
}

func (x *exchange) Flush() {
	if f, ok := x.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// rawWriter is the writer under the metrics' wrapper: http.MaxBytesReader
// tells the server through it (an unexported method) that a body was cut,
// so that the server closes the connection gracefully.
func rawWriter(w http.ResponseWriter) http.ResponseWriter {
	if x, ok := w.(*exchange); ok {
		return x.ResponseWriter
	}
	return w
}
