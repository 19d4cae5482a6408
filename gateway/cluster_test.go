package gateway_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

var cocaineBin string

// TestMain builds the cocaine binary once: the engines of these tests are
// separate processes, as in production.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gwbin")
	if err != nil {
		panic(err)
	}
	cocaineBin = filepath.Join(dir, "cocaine")
	build := exec.Command("go", "build", "-o", cocaineBin, "../cmd/cocaine")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cocaine:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type engineProc struct {
	cmd      *exec.Cmd
	listen   string
	announce string
	log      *strings.Builder
}

// startEngine runs `cocaine dev` with only the echo example, on its own ports.
func startEngine(t testing.TB) *engineProc {
	t.Helper()
	data, err := os.MkdirTemp("", "eng")
	if err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(data, "apps")
	if err := os.CopyFS(filepath.Join(apps, "echo"), os.DirFS("../examples/echo")); err != nil {
		t.Fatal(err)
	}
	e := &engineProc{
		listen:   fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
		announce: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
		log:      &strings.Builder{},
	}
	e.cmd = exec.Command(cocaineBin, "dev", "--data", data, "--apps", apps, "--listen", e.listen,
		"--announce", e.announce, "--announce-interval", "200ms", "--http", "", "--fastcgi", "")
	e.cmd.Dir = ".." // the go sandbox finds the framework checkout from here
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		os.RemoveAll(data)
		if t.Failed() {
			t.Logf("engine %s log:\n%s", e.listen, e.log.String())
		}
	})
	return e
}

// kill9 kills the engine process only, as a crash would.
func (e *engineProc) kill9() { _ = e.cmd.Process.Kill() }

type static []string

func (s static) Run(ctx context.Context, update func([]string)) error {
	update(s)
	<-ctx.Done()
	return nil
}
func (s static) String() string { return "static" }

// dynamic is a source whose endpoints the test changes.
type dynamic struct {
	mu  sync.Mutex
	eps []string
	ch  chan struct{}
}

func (d *dynamic) set(eps ...string) {
	d.mu.Lock()
	d.eps = eps
	d.mu.Unlock()
	d.ch <- struct{}{}
}
func (d *dynamic) Run(ctx context.Context, update func([]string)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.ch:
			d.mu.Lock()
			update(append([]string(nil), d.eps...))
			d.mu.Unlock()
		}
	}
}
func (d *dynamic) String() string { return "dynamic" }

func eventually(t testing.TB, dur time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(dur)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", dur, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newDealer(t testing.TB, balancer string, srcs ...gateway.Source) *gateway.Dealer {
	t.Helper()
	d, err := gateway.New(gateway.Config{Sources: srcs, DefaultBalancer: balancer, AckTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestKillOneOfThreeUnderLoadLosesNothing(t *testing.T) {
	engines := []*engineProc{startEngine(t), startEngine(t), startEngine(t)}
	src := &dynamic{ch: make(chan struct{}, 4)}
	src.set(engines[0].announce, engines[1].announce, engines[2].announce)
	d := newDealer(t, gateway.RoundRobin, src)
	eventually(t, 120*time.Second, "three nodes serving echo", func() bool { return d.Routes()["echo/sleep"] == 3 })

	var sent, ok atomic.Int64
	var errsMu sync.Mutex
	var errs []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				event, body, want := "sleep", "30", "ok"
				if i%2 == 0 {
					event, body = "echo", fmt.Sprintf("w%d-%d", w, i)
					want = body
				}
				r, err := d.Send("echo", event, []byte(body), wire.Policy{Retries: 3, Deadline: time.Now().Add(20 * time.Second)})
				if err != nil {
					t.Error(err)
					return
				}
				got, err := r.Collect(context.Background())
				if err != nil || string(got) != want {
					errsMu.Lock()
					errs = append(errs, fmt.Sprintf("%s %q: %q %v", event, body, got, err))
					errsMu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(time.Second) // load runs on all three
	engines[1].kill9()
	eventually(t, 10*time.Second, "the dealer to drop the dead node", func() bool { return d.Routes()["echo/sleep"] == 2 })
	before := ok.Load()
	eventually(t, 10*time.Second, "progress on the survivors", func() bool { return ok.Load() > before+50 })

	fourth := startEngine(t)
	src.set(engines[0].announce, engines[2].announce, fourth.announce)
	eventually(t, 120*time.Second, "the fourth node to join", func() bool { return d.Routes()["echo/sleep"] == 3 })
	eventually(t, 10*time.Second, "traffic on the fourth node", func() bool {
		for _, n := range d.Nodes() {
			if n.Endpoint == fourth.listen {
				return n.Apps["echo"].Jobs["processed"] > 20
			}
		}
		return false
	})
	close(stop)
	wg.Wait()
	t.Logf("sent %d, answered correctly %d", sent.Load(), ok.Load())
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed although retries were allowed; first: %s", len(errs), sent.Load(), errs[0])
	}
	if sent.Load() != ok.Load() {
		t.Fatalf("sent %d, answered %d", sent.Load(), ok.Load())
	}
}

func TestUnknownAppFailsFastOrWaitsForDeadline(t *testing.T) {
	e := startEngine(t)
	d := newDealer(t, gateway.Smart, static{e.announce})
	eventually(t, 60*time.Second, "the node", func() bool { return d.Routes()["echo/echo"] == 1 })
	start := time.Now()
	r, _ := d.Send("nope", "x", nil, wire.Policy{})
	_, err := r.Collect(context.Background())
	if wire.CodeOf(err) != wire.CodeNotFound || time.Since(start) > time.Second {
		t.Fatalf("unknown app: %v after %v, want 404 at once", err, time.Since(start))
	}
	start = time.Now()
	r, _ = d.Send("nope", "x", nil, wire.Policy{Deadline: time.Now().Add(300 * time.Millisecond)})
	_, err = r.Collect(context.Background())
	if wire.CodeOf(err) != wire.CodeDeadline || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("unknown app with deadline: %v after %v, want 520 at the deadline", err, time.Since(start))
	}
	r, _ = d.Send("echo", "sleep", []byte("2000"), wire.Policy{Deadline: time.Now().Add(300 * time.Millisecond)})
	_, err = r.Collect(context.Background())
	if wire.CodeOf(err) != wire.CodeDeadline {
		t.Fatalf("slow call past deadline: %v", err)
	}
	r, _ = d.Send("echo", "sleep", []byte("2000"), wire.Policy{Timeout: 200 * time.Millisecond})
	_, err = r.Collect(context.Background())
	if wire.CodeOf(err) != wire.CodeTimeout {
		t.Fatalf("slow call past timeout: %v", err)
	}
}
