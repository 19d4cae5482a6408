package storage

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the storage operation metrics; one set per process, shared
// by every Instrument'ed backend (label backend names which).
type Metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewMetrics makes the collectors; register them with Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cocaine_storage_operation_seconds",
			Help:    "Storage operations by backend and operation, errors included. For get, the time to open the object, not to read it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 12), // 100 µs … 18 s
		}, []string{"backend", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cocaine_storage_errors_total",
			Help: "Storage operations that failed, by backend and operation; not-found answers are not errors.",
		}, []string{"backend", "op"}),
	}
}

// Collectors returns what to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.duration, m.errors}
}

// Instrument returns st measured under backend's name. A nil m returns
// st as it is.
func (m *Metrics) Instrument(st Storage, backend string) Storage {
	if m == nil {
		return st
	}
	return &measured{Storage: st, m: m, backend: backend}
}

type measured struct {
	Storage
	m       *Metrics
	backend string
}

func (s *measured) done(op string, start time.Time, err error) {
	s.m.duration.WithLabelValues(s.backend, op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.m.errors.WithLabelValues(s.backend, op).Inc()
	}
}

func (s *measured) Put(ctx context.Context, ns, key string, meta Meta, blob io.Reader) error {
	start := time.Now()
	err := s.Storage.Put(ctx, ns, key, meta, blob)
	s.done("put", start, err)
	return err
}

func (s *measured) Get(ctx context.Context, ns, key string) (Info, io.ReadCloser, error) {
	start := time.Now()
	info, rc, err := s.Storage.Get(ctx, ns, key)
	s.done("get", start, err)
	return info, rc, err
}

func (s *measured) Stat(ctx context.Context, ns, key string) (Info, error) {
	start := time.Now()
	info, err := s.Storage.Stat(ctx, ns, key)
	s.done("stat", start, err)
	return info, err
}

func (s *measured) List(ctx context.Context, ns, prefix string) ([]string, error) {
	start := time.Now()
	keys, err := s.Storage.List(ctx, ns, prefix)
	s.done("list", start, err)
	return keys, err
}

func (s *measured) Remove(ctx context.Context, ns, key string) error {
	start := time.Now()
	err := s.Storage.Remove(ctx, ns, key)
	s.done("remove", start, err)
	return err
}

func (s *measured) AppendLog(ctx context.Context, app string, lines []LogLine) error {
	start := time.Now()
	err := s.Storage.AppendLog(ctx, app, lines)
	s.done("append_log", start, err)
	return err
}

func (s *measured) ReadLog(ctx context.Context, app string, since time.Time, limit int) ([]LogLine, error) {
	start := time.Now()
	lines, err := s.Storage.ReadLog(ctx, app, since, limit)
	s.done("read_log", start, err)
	return lines, err
}

func (s *measured) RemoveLog(ctx context.Context, app string) error {
	start := time.Now()
	err := s.Storage.RemoveLog(ctx, app)
	s.done("remove_log", start, err)
	return err
}
