package drivers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	gslave "github.com/cocaine-cloud/cocaine/slaves/go"
	"github.com/cocaine-cloud/cocaine/storage"
)

// The test binary doubles as the app: the pool starts it again with
// DRIVERS_TEST_SLAVE set, and TestMain serves these handlers instead of
// running tests. Jobs reach real slave processes over the real protocol.
func TestMain(m *testing.M) {
	if os.Getenv("DRIVERS_TEST_SLAVE") == "" {
		os.Exit(m.Run())
	}
	serveTestSlave()
}

func serveTestSlave() {
	gslave.HandleFunc("echo", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		_, err := io.Copy(w, req)
		return err
	})
	gslave.HandleFunc("stream", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		for i := range 5 {
			if _, err := fmt.Fprintf(w, "chunk%d;", i); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		return nil
	})
	// nap sleeps for the body's milliseconds, 300 without a body (a timer
	// tick), and prints how many naps of this slave run at that moment:
	// the proof that jobs overlapped inside the app, not only in a queue.
	var running atomic.Int32
	gslave.HandleFunc("nap", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		b, _ := req.ReadAll()
		ms, err := strconv.Atoi(string(b))
		if err != nil {
			ms = 300
		}
		fmt.Printf("nap running=%d\n", running.Add(1))
		defer running.Add(-1)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err = w.Write([]byte("ok"))
		return err
	})
	gslave.HandleFunc("fail", func(ctx context.Context, req *gslave.Request, w *gslave.Response) error {
		return fmt.Errorf("handler says no")
	})
	if err := gslave.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type selfSpawner struct{}

func (selfSpawner) Command(string) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// A -race slave sleeps 1 s at exit (atexit_sleep_ms), longer than the
	// termination-timeout these tests use: every stop would end in SIGKILL.
	cmd.Env = append(os.Environ(), "DRIVERS_TEST_SLAVE=1", "GORACE=atexit_sleep_ms=0")
	return cmd, nil
}

// testPool is a real pool of re-executed test binaries.
type testPool struct {
	*pool.Pool
	mu   sync.Mutex
	logs []string
}

func engine(tweak func(*manifest.Engine)) manifest.Engine {
	e := manifest.Defaults()
	e.StartupTimeout = 5 * time.Second
	e.TerminationTimeout = 500 * time.Millisecond
	if tweak != nil {
		tweak(&e)
	}
	return e
}

func newPool(t *testing.T, e manifest.Engine) *testPool {
	t.Helper()
	dir, err := os.MkdirTemp("", "drv") // short: Unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tp := &testPool{}
	p, err := pool.New(pool.Config{
		App: "test", Engine: e, Socket: dir + "/app.sock", Spawner: selfSpawner{},
		OnLog: func(l storage.LogLine) { tp.mu.Lock(); tp.logs = append(tp.logs, l.Text); tp.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	tp.Pool = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("pool stop: %v", err)
		}
	})
	return tp
}

func (tp *testPool) logged(substr string) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, l := range tp.logs {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

// recorder wraps a Target and records when each job was submitted and
// ended, how many were outstanding at most, and their bodies.
type recorder struct {
	next Target

	mu             sync.Mutex
	submits, ends  []time.Time
	outstanding    int
	maxOutstanding int
	refused        int
	bodies         [][]byte
}

func (r *recorder) Submit(j *pool.Job) error {
	r.mu.Lock()
	r.outstanding++
	r.maxOutstanding = max(r.maxOutstanding, r.outstanding)
	r.submits = append(r.submits, time.Now())
	r.bodies = append(r.bodies, append([]byte(nil), j.Body...))
	r.mu.Unlock()
	j.Sink = &recordingSink{Sink: j.Sink, r: r}
	err := r.next.Submit(j)
	if err != nil {
		r.mu.Lock()
		r.outstanding--
		r.refused++
		r.mu.Unlock()
	}
	return err
}

func (r *recorder) snapshot() (submits, ends []time.Time, maxOut, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.submits...), append([]time.Time(nil), r.ends...), r.maxOutstanding, r.refused
}

type recordingSink struct {
	pool.Sink
	r *recorder
}

func (s *recordingSink) Close()                           { s.ended(); s.Sink.Close() }
func (s *recordingSink) Error(code wire.Code, msg string) { s.ended(); s.Sink.Error(code, msg) }
func (s *recordingSink) ended() {
	s.r.mu.Lock()
	s.r.outstanding--
	s.r.ends = append(s.r.ends, time.Now())
	s.r.mu.Unlock()
}

// fakeTarget ends every job on its own after a delay, or holds them until
// release when hold is set. It stands in for a pool only where a pool's
// own goroutines would blur a goroutine count.
type fakeTarget struct {
	delay time.Duration
	hold  bool

	mu     sync.Mutex
	jobs   int
	held   []*pool.Job
	bodies [][]byte
	refuse error
}

func (f *fakeTarget) Submit(j *pool.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return f.refuse
	}
	f.jobs++
	f.bodies = append(f.bodies, append([]byte(nil), j.Body...))
	if f.hold {
		f.held = append(f.held, j)
		return nil
	}
	time.AfterFunc(f.delay, func() {
		j.Sink.Chunk(j.Body)
		j.Sink.Close()
	})
	return nil
}

func (f *fakeTarget) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jobs
}

func (f *fakeTarget) release() {
	f.mu.Lock()
	held := f.held
	f.held = nil
	f.mu.Unlock()
	for _, j := range held {
		j.Sink.Chunk([]byte("late"))
		j.Sink.Close()
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func drv(typ, emit string, settings map[string]any) manifest.Driver {
	if settings == nil {
		settings = map[string]any{}
	}
	return manifest.Driver{Name: emit, Type: typ, Emit: emit, Settings: settings}
}

// logBuffer collects a driver's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testEnv(t *testing.T, target Target) (Env, *logBuffer) {
	lb := &logBuffer{}
	return Env{App: "test", Spool: t.TempDir(), Target: target, Logger: slog.New(slog.NewTextHandler(lb, nil))}, lb
}

func start(t *testing.T, d manifest.Driver, env Env) Driver {
	t.Helper()
	if ps := Validate(d); len(ps) > 0 {
		t.Fatalf("settings rejected: %v", ps)
	}
	dr, err := New(d, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := dr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dr.Stop)
	return dr
}

func counter(info map[string]any, key string) uint64 {
	v, _ := info[key].(uint64)
	return v
}

// resources counts what a driver could leak: goroutines and open file
// descriptors, inotify instances among them.
type resources struct{ goroutines, fds, inotify int }

func (r resources) String() string {
	return fmt.Sprintf("%d goroutines, %d fds (%d inotify)", r.goroutines, r.fds, r.inotify)
}

func measure(t *testing.T) resources {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	r := resources{goroutines: runtime.NumGoroutine(), fds: len(entries)}
	for _, e := range entries {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l == "anon_inode:inotify" {
			r.inotify++
		}
	}
	return r
}

// backToBaseline polls until nothing is held beyond base: exiting
// goroutines and closing descriptors take a moment after Stop returns
// (timers' goroutines, for one).
func backToBaseline(t *testing.T, base resources) {
	t.Helper()
	var now resources
	deadline := time.Now().Add(5 * time.Second)
	for {
		now = measure(t)
		if now.goroutines <= base.goroutines && now.fds <= base.fds && now.inotify <= base.inotify {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("leak: before %v, after stop %v\n%s", base, now, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
