package fcgiproxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func known() map[string]int { return map[string]int{"echo/http": 1} }

func TestFrontMetricsLabels(t *testing.T) {
	m := newFrontMetrics(known)
	serve := func(app, event string, code int, body string) {
		var w http.ResponseWriter = httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("12345"))
		x := m.begin(&w, r, time.Now())
		x.target(app, event)
		buf := make([]byte, 16)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
		x.end()
	}
	serve("echo", "http", 200, "hello")
	serve("echo", "http", 200, "hello")
	serve("echo", "nope", 404, "")
	serve("typed-by-a-client", "x", 404, "")
	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.requests.WithLabelValues("echo", "http", "200"), 2},
		{m.requests.WithLabelValues(Unrouted, Unrouted, "404"), 2},
		{m.bytesIn.WithLabelValues("echo", "http"), 10},
		{m.bytesOut.WithLabelValues("echo", "http"), 10},
		{m.inflight, 0},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v: %v, want %v", c.c, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 2 {
		t.Errorf("%d request series, want 2 (no series for client-typed names)", n)
	}
}

// BenchmarkFrontMetrics is what the metrics add to one request through the
// front: wrapping the writer and body, the route lookup, a counter, a
// histogram and the byte counters (goal: under 2 µs).
func BenchmarkFrontMetrics(b *testing.B) {
	m := newFrontMetrics(known)
	var base http.ResponseWriter = nopWriter{}
	r := httptest.NewRequest(http.MethodGet, "/echo/http", nil)
	body := []byte("hello")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := base
			x := m.begin(&w, r, time.Now())
			x.target("echo", "http")
			w.Write(body)
			x.end()
		}
	})
}

type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriter) WriteHeader(int)             {}
