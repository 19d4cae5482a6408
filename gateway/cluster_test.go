package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/gateway/discovery"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

type engineProc = testcluster.Node

func startEngine(t testing.TB) *engineProc {
	return testcluster.StartNode(t, testcluster.Options{Apps: []string{"echo"}})
}

var eventually = testcluster.Eventually

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
	src.set(engines[0].Announce, engines[1].Announce, engines[2].Announce)
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
	engines[1].Kill9()
	killed := time.Now()
	eventually(t, 10*time.Second, "the dealer to drop the dead node", func() bool { return d.Routes()["echo/sleep"] == 2 })
	// The broken connection tells first; silence would take 3 × 200 ms.
	t.Logf("dead node dropped %v after kill -9", time.Since(killed).Round(time.Millisecond))
	before := ok.Load()
	eventually(t, 10*time.Second, "progress on the survivors", func() bool { return ok.Load() > before+50 })

	fourth := startEngine(t)
	src.set(engines[0].Announce, engines[2].Announce, fourth.Announce)
	eventually(t, 120*time.Second, "the fourth node to join", func() bool { return d.Routes()["echo/sleep"] == 3 })
	eventually(t, 10*time.Second, "traffic on the fourth node", func() bool {
		for _, n := range d.Nodes() {
			if n.Endpoint == fourth.Listen {
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
	d := newDealer(t, gateway.Smart, static{e.Announce})
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

func TestMulticastDiscoveryAcrossProcesses(t *testing.T) {
	testcluster.MulticastReady(t, "")
	group := fmt.Sprintf("239.0.100.53:%d", testcluster.FreePort(t))
	e := testcluster.StartNode(t, testcluster.Options{Apps: []string{"echo"}, Args: []string{"--multicast", group}})
	d := newDealer(t, gateway.Smart, discovery.Multicast(discovery.MulticastConfig{Group: group}))
	eventually(t, 120*time.Second, "the node found by its beacons", func() bool { return d.Routes()["echo/echo"] == 1 })
	r, _ := d.Send("echo", "echo", []byte("found"), wire.Policy{Deadline: time.Now().Add(10 * time.Second)})
	if got, err := r.Collect(context.Background()); err != nil || string(got) != "found" {
		t.Fatalf("call via multicast discovery: %q %v", got, err)
	}
	_ = e
}
