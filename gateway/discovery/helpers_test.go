package discovery

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// running is a Source running in the background, with every update it made.
type running struct {
	mu      sync.Mutex
	updates [][]string
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, s Source) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- s.Run(ctx, func(eps []string) {
			r.mu.Lock()
			r.updates = append(r.updates, eps)
			r.mu.Unlock()
		})
	}()
	t.Cleanup(func() { r.cancel() })
	return r
}

func (r *running) history() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.updates)
}

func (r *running) last() ([]string, bool) {
	h := r.history()
	if len(h) == 0 {
		return nil, false
	}
	return h[len(h)-1], true
}

// waitFor polls until the latest update is want.
func (r *running) waitFor(t *testing.T, want []string, within time.Duration) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !poll(within, func() bool {
		got, ok := r.last()
		return ok && slices.Equal(got, want)
	}) {
		t.Fatalf("want %q within %v; updates so far: %q", want, within, r.history())
	}
}

// stop ends Run and returns what it returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its context ending")
		return nil
	}
}

// poll checks cond every 10ms until it holds or within passes.
func poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noLeak waits for the goroutine count to fall back to baseline.
func noLeak(t *testing.T, baseline int) {
	t.Helper()
	if !poll(5*time.Second, func() bool { return runtime.NumGoroutine() <= baseline }) {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines: %d, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:n])
	}
}

// logBuf collects log output from several goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) count(substr string) int { return strings.Count(l.String(), substr) }

func newLogger(t *testing.T) (*slog.Logger, *logBuf) {
	buf := &logBuf{}
	t.Cleanup(func() {
		if t.Failed() {
			fmt.Printf("--- log of %s:\n%s", t.Name(), buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
