package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// logWriter batches an app's output lines into storage: one write per
// batch instead of one per line keeps a chatty slave from stalling on
// storage.
type logWriter struct {
	st   storage.Storage
	app  string
	log  *slog.Logger
	mu   sync.Mutex
	buf  []storage.LogLine
	wake chan struct{}
	done chan struct{}
	once sync.Once
}

const logBatch = 500 // lines; a full batch is written at once

func newLogWriter(st storage.Storage, app string, log *slog.Logger) *logWriter {
	w := &logWriter{st: st, app: app, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *logWriter) add(l storage.LogLine) {
	w.log.Debug(l.Text, "slave", l.Slave, "stream", l.Stream)
	w.mu.Lock()
	if len(w.buf) >= 50*logBatch { // storage is not keeping up: drop the oldest
		w.buf = w.buf[logBatch:]
	}
	w.buf = append(w.buf, l)
	full := len(w.buf) >= logBatch
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *logWriter) run() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.wake:
		case <-w.done:
			w.flush()
			return
		}
		w.flush()
	}
}

func (w *logWriter) flush() {
	w.mu.Lock()
	lines := w.buf
	w.buf = nil
	w.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.st.AppendLog(ctx, w.app, lines); err != nil {
		w.log.Warn("cannot store app log lines", "lines", len(lines), "err", err)
	}
}

func (w *logWriter) close() { w.once.Do(func() { close(w.done) }) }
