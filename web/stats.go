package web

import (
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The dashboard's rates and percentiles come from the same metrics
// Prometheus scrapes: a sampler gathers the front's request counter and
// latency histogram every sampleEvery and keeps a few minutes of samples
// per app, from which it derives requests/s, errors/s, p50, p99 and a
// sparkline. The dashboard thus needs no Prometheus server.
const (
	sampleEvery = 2 * time.Second
	keepSamples = 150 // five minutes
	rateWindow  = 10 * time.Second
	pctWindow   = time.Minute
)

// Names of the front's metrics the sampler reads (fcgiproxy/metrics.go).
const (
	metricRequests = "cocaine_front_requests_total"
	metricDuration = "cocaine_front_request_duration_seconds"
)

type sample struct {
	at      time.Time
	count   float64
	errors  float64
	bounds  []float64 // histogram upper bounds
	buckets []float64 // cumulative counts per bound
	total   float64   // histogram count
}

// AppStats is what the dashboard shows of an app's traffic.
type AppStats struct {
	RPS   float64   `json:"rps"`
	EPS   float64   `json:"eps"` // answers with a 5xx status per second
	P50   *float64  `json:"p50"` // seconds; null without traffic
	P99   *float64  `json:"p99"`
	Spark []float64 `json:"spark"` // requests/s per sample, oldest first
}

type sampler struct {
	g    prometheus.Gatherer
	mu   sync.Mutex
	apps map[string][]sample
}

func newSampler(g prometheus.Gatherer) *sampler {
	return &sampler{g: g, apps: map[string][]sample{}}
}

func (s *sampler) run(done <-chan struct{}) {
	s.take(time.Now())
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			s.take(now)
		}
	}
}

// take gathers one sample of every app.
func (s *sampler) take(now time.Time) {
	fams, err := s.g.Gather()
	if err != nil && len(fams) == 0 {
		return
	}
	cur := map[string]*sample{}
	get := func(app string) *sample {
		if cur[app] == nil {
			cur[app] = &sample{at: now}
		}
		return cur[app]
	}
	for _, f := range fams {
		switch f.GetName() {
		case metricRequests:
			for _, m := range f.GetMetric() {
				app, code := label(m, "app"), label(m, "code")
				v := m.GetCounter().GetValue()
				sm := get(app)
				sm.count += v
				if c, _ := strconv.Atoi(code); c >= 500 {
					sm.errors += v
				}
			}
		case metricDuration:
			for _, m := range f.GetMetric() {
				sm := get(label(m, "app"))
				h := m.GetHistogram()
				sm.total += float64(h.GetSampleCount())
				bs := h.GetBucket()
				if sm.bounds == nil {
					sm.bounds = make([]float64, len(bs))
					sm.buckets = make([]float64, len(bs))
					for i, b := range bs {
						sm.bounds[i] = b.GetUpperBound()
					}
				}
				for i, b := range bs {
					if i < len(sm.buckets) {
						sm.buckets[i] += float64(b.GetCumulativeCount())
					}
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for app, sm := range cur {
		ss := append(s.apps[app], *sm)
		if len(ss) > keepSamples {
			ss = ss[len(ss)-keepSamples:]
		}
		s.apps[app] = ss
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// stats derives an app's figures from its samples.
func (s *sampler) stats(app string) AppStats {
	s.mu.Lock()
	ss := s.apps[app]
	s.mu.Unlock()
	st := AppStats{Spark: []float64{}}
	if len(ss) < 2 {
		return st
	}
	last := ss[len(ss)-1]
	back := func(d time.Duration) sample {
		i := sort.Search(len(ss), func(i int) bool { return !ss[i].at.Before(last.at.Add(-d)) })
		if i >= len(ss)-1 {
			i = len(ss) - 2
		}
		return ss[i]
	}
	r := back(rateWindow)
	if dt := last.at.Sub(r.at).Seconds(); dt > 0 {
		st.RPS = round2(max(last.count-r.count, 0) / dt)
		st.EPS = round2(max(last.errors-r.errors, 0) / dt)
	}
	p := back(pctWindow)
	if len(last.buckets) == len(p.buckets) && last.total > p.total {
		delta := make([]float64, len(last.buckets))
		for i := range delta {
			delta[i] = last.buckets[i] - p.buckets[i]
		}
		n := last.total - p.total
		st.P50 = quantile(0.5, last.bounds, delta, n)
		st.P99 = quantile(0.99, last.bounds, delta, n)
	}
	for i := 1; i < len(ss); i++ {
		dt := ss[i].at.Sub(ss[i-1].at).Seconds()
		v := 0.0
		if dt > 0 {
			v = max(ss[i].count-ss[i-1].count, 0) / dt
		}
		st.Spark = append(st.Spark, round2(v))
	}
	return st
}

// quantile interpolates within the cumulative bucket that holds q.
func quantile(q float64, bounds, cum []float64, n float64) *float64 {
	if n <= 0 || len(bounds) == 0 {
		return nil
	}
	rank := q * n
	lower, below := 0.0, 0.0
	for i, b := range bounds {
		if cum[i] >= rank {
			in := cum[i] - below
			v := b
			if in > 0 {
				v = lower + (b-lower)*(rank-below)/in
			}
			v = math.Round(v*1e6) / 1e6
			return &v
		}
		lower, below = b, cum[i]
	}
	v := bounds[len(bounds)-1] // above the last bound: say at least that
	return &v
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
