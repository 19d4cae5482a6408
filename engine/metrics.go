package engine

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cocaine-cloud/cocaine/engine/pool"
)

// nodeMetrics holds the engine's histograms, observed by the pools per
// job, and reads everything else from the pools' and drivers' snapshots
// at scrape time, which costs nothing per request. Label values come
// from the deployed apps and their manifests, never from requests.
type nodeMetrics struct {
	n         *Node
	queueWait *prometheus.HistogramVec
	runTime   *prometheus.HistogramVec

	queue, slaves, broken, jobs, spawns, crashes, idleExits, timeouts, deadlines *prometheus.Desc
	fires, refusals                                                              *prometheus.Desc
}

// latencyBuckets span 100 µs to about 100 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 16)

func newNodeMetrics(n *Node) *nodeMetrics {
	app := []string{"node", "app"}
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append(app, extra...), nil)
	}
	return &nodeMetrics{
		n: n,
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cocaine_engine_queue_wait_seconds", Help: "Time jobs spent in an app's queue before a slave took them.", Buckets: latencyBuckets,
		}, app),
		runTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cocaine_engine_run_seconds", Help: "Time jobs ran on a slave, until its answer ended.", Buckets: latencyBuckets,
		}, app),
		queue:     desc("cocaine_engine_queue_depth", "Jobs waiting in the app's queue."),
		slaves:    desc("cocaine_engine_slaves", "The app's slaves by state.", "state"),
		broken:    desc("cocaine_engine_app_broken", "1 while the app is broken (its slaves fail to start, or it could not be prepared)."),
		jobs:      desc("cocaine_engine_jobs_total", "Jobs by outcome: accepted, processed, failed, rejected (refused at once), retried (run again after their slave died).", "outcome"),
		spawns:    desc("cocaine_engine_slave_spawns_total", "Slaves started."),
		crashes:   desc("cocaine_engine_slave_crashes_total", "Slaves that died unasked, or were killed for a fault."),
		idleExits: desc("cocaine_engine_slave_idle_exits_total", "Slaves asked to leave after idle-timeout."),
		timeouts:  desc("cocaine_engine_job_timeouts_total", "Jobs ended by their timeout (code 504)."),
		deadlines: desc("cocaine_engine_deadline_misses_total", "Jobs ended by their deadline (code 520)."),
		fires:     desc("cocaine_engine_driver_fires_total", "Events a driver sent to the app.", "driver"),
		refusals:  desc("cocaine_engine_driver_refusals_total", "Events of a driver the app refused at once (queue full, broken).", "driver"),
	}
}

// observers returns the per-app observers a pool is given.
func (m *nodeMetrics) observers(app string) (queueWait, runTime pool.Observer) {
	node := m.n.cfg.Advertise
	return m.queueWait.WithLabelValues(node, app), m.runTime.WithLabelValues(node, app)
}

func (m *nodeMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.queueWait.Describe(ch)
	m.runTime.Describe(ch)
	for _, d := range []*prometheus.Desc{m.queue, m.slaves, m.broken, m.jobs, m.spawns, m.crashes, m.idleExits, m.timeouts, m.deadlines, m.fires, m.refusals} {
		ch <- d
	}
}

func (m *nodeMetrics) Collect(ch chan<- prometheus.Metric) {
	m.queueWait.Collect(ch)
	m.runTime.Collect(ch)
	node := m.n.cfg.Advertise
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	m.n.mu.RLock()
	apps := make([]*App, 0, len(m.n.apps))
	for _, a := range m.n.apps {
		apps = append(apps, a)
	}
	m.n.mu.RUnlock()
	for _, a := range apps {
		var pi pool.Info
		if a.pool != nil {
			pi = a.pool.Info()
		} else {
			pi.State = pool.StateBroken
		}
		broken := 0.0
		if pi.State == pool.StateBroken {
			broken = 1
		}
		gauge(m.broken, broken, node, a.Name)
		gauge(m.queue, float64(pi.QueueDepth), node, a.Name)
		s := pi.Slaves
		gauge(m.slaves, float64(s.Starting), node, a.Name, "starting")
		gauge(m.slaves, float64(s.Busy), node, a.Name, "busy")
		gauge(m.slaves, float64(s.Terminating), node, a.Name, "terminating")
		gauge(m.slaves, float64(s.Total-s.Busy-s.Starting-s.Terminating), node, a.Name, "idle")
		j := pi.Jobs
		for outcome, v := range map[string]uint64{"accepted": j.Accepted, "processed": j.Processed, "failed": j.Failed, "rejected": j.Rejected, "retried": j.Retried} {
			counter(m.jobs, v, node, a.Name, outcome)
		}
		counter(m.spawns, j.Spawned, node, a.Name)
		counter(m.crashes, j.Crashed, node, a.Name)
		counter(m.idleExits, j.IdleExits, node, a.Name)
		counter(m.timeouts, j.Timeouts, node, a.Name)
		counter(m.deadlines, j.Deadlines, node, a.Name)
		for name, d := range a.drivers {
			info := d.Info()
			if _, ok := info["events"]; !ok {
				continue // native-server: requests are counted by the front
			}
			counter(m.fires, asCount(info["events"]), node, a.Name, name)
			counter(m.refusals, asCount(info["refused"]), node, a.Name, name)
		}
	}
}

func asCount(v any) uint64 {
	switch n := v.(type) {
	case uint64:
		return n
	case int:
		return uint64(max(n, 0))
	case int64:
		return uint64(max(n, 0))
	}
	return 0
}

// Collector returns the node's metrics for a registry: per app queue
// depth, slaves by state, job outcomes, spawns, crashes, idle exits,
// timeouts, deadline misses, broken state, driver fires and refusals, and
// the queue-wait and run-time histograms.
func (n *Node) Collector() prometheus.Collector { return n.metrics }
