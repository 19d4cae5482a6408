package gateway

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// ErrNoNode is returned for a node the dealer does not know alive.
var ErrNoNode = errors.New("gateway: no such live node")

// dealerMetrics are the dealer's counters; node counts are read from the
// routing table at scrape time (Collect), costing nothing per request.
type dealerMetrics struct {
	retries *prometheus.CounterVec
	nodes   *prometheus.Desc
	seen    *prometheus.Desc
	lost    *prometheus.Desc
	t       *table
}

func newDealerMetrics(t *table) *dealerMetrics {
	return &dealerMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cocaine_dealer_retries_total",
			Help: "Attempts on a node that failed in a way that lets the dealer try another, by reason (refused: the node answered an error before accepting; no-ack: it did not accept in time; unreachable: its connection was closed; lost-before-ack, after-ack: it was lost, or failed retryably, before or after accepting; an after-ack retry costs one of the request's retries) and the platform code of the failed attempt.",
		}, []string{"reason", "code"}),
		nodes: prometheus.NewDesc("cocaine_dealer_nodes", "Live nodes in the routing table.", nil, nil),
		seen:  prometheus.NewDesc("cocaine_dealer_nodes_seen_total", "Nodes that appeared in the routing table, or came back after being dead.", nil, nil),
		lost:  prometheus.NewDesc("cocaine_dealer_nodes_lost_total", "Nodes declared dead: silent for dead-after intervals, or their connection broke.", nil, nil),
		t:     t,
	}
}

// countRetry counts an attempt that failed in a way that lets another
// node be tried. A Conn's own request (no dealer) is not counted.
func (r *Response) countRetry(reason string, err *wire.Error) {
	if r.d == nil || r.d.metrics == nil {
		return
	}
	code := "0"
	if err != nil {
		code = strconv.Itoa(int(err.Code))
	}
	r.d.metrics.retries.WithLabelValues(reason, code).Inc()
}

func (m *dealerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.retries.Describe(ch)
	ch <- m.nodes
	ch <- m.seen
	ch <- m.lost
}

func (m *dealerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.retries.Collect(ch)
	ch <- prometheus.MustNewConstMetric(m.nodes, prometheus.GaugeValue, float64(len(m.t.live())))
	ch <- prometheus.MustNewConstMetric(m.seen, prometheus.CounterValue, float64(m.t.seen.Load()))
	ch <- prometheus.MustNewConstMetric(m.lost, prometheus.CounterValue, float64(m.t.lost.Load()))
}

// Collector returns the dealer's metrics for a registry.
func (d *Dealer) Collector() prometheus.Collector { return d.metrics }
