package gateway_test

// The dealer's delivery rules (DESIGN.md, "Dealer ⇄ engine" and
// "Errors"), each tried on real `cocaine dev` engines over real ZeroMQ.
// The app is gateway/testdata/deliveryapp: every run leaves a mark, so
// the tests count where and how often a request ran.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

const deliveryAck = 500 * time.Millisecond

var (
	deliveryOnce sync.Once
	deliveryDir  string
	deliveryErr  error
)

// deliveryApps builds gateway/testdata/deliveryapp once per test binary
// and returns a folder holding two apps of it: "dapp" (roomy) and
// "tight" (one slave, one job at a time, a queue of one).
func deliveryApps(t testing.TB) string {
	t.Helper()
	deliveryOnce.Do(func() {
		deliveryDir, deliveryErr = os.MkdirTemp("", "deliveryapps")
		if deliveryErr != nil {
			return
		}
		// One build; both apps link to it.
		bin := filepath.Join(deliveryDir, "app")
		cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "./gateway/testdata/deliveryapp")
		cmd.Dir = testcluster.Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			deliveryErr = fmt.Errorf("go build deliveryapp: %v\n%s", err, out)
			return
		}
		manifests := map[string]string{
			"dapp":  `{"pool-limit": 2, "concurrency": 16, "grow-threshold": 2, "queue-limit": 100, "termination-timeout": 2}`,
			"tight": `{"pool-limit": 1, "concurrency": 1, "queue-limit": 1, "termination-timeout": 2}`,
		}
		for name, eng := range manifests {
			dir := filepath.Join(deliveryDir, name)
			if deliveryErr = os.MkdirAll(dir, 0o755); deliveryErr != nil {
				return
			}
			if deliveryErr = os.Link(bin, filepath.Join(dir, "app")); deliveryErr != nil {
				return
			}
			m := `{"type": "binary", "args": {"path": "app"}, "engine": ` + eng + `,
				"drivers": {"run": {"type": "native-server"}, "echo": {"type": "native-server"}, "web": {"type": "native-server", "payload": "http"}}}`
			if deliveryErr = os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(m), 0o644); deliveryErr != nil {
				return
			}
		}
	})
	if deliveryErr != nil {
		t.Fatal(deliveryErr)
	}
	return deliveryDir
}

// startDeliveryNode runs `cocaine dev` with apps of deliveryApps.
func startDeliveryNode(t testing.TB, o testcluster.Options, apps ...string) *testcluster.Node {
	t.Helper()
	dir := deliveryApps(t)
	for _, app := range apps {
		o.Apps = append(o.Apps, filepath.Join(dir, app))
	}
	return testcluster.StartNode(t, o)
}

type announceList []string

func (s announceList) Run(ctx context.Context, update func([]string)) error {
	update(s)
	<-ctx.Done()
	return nil
}
func (s announceList) String() string { return "test" }

// roundRobinDealer is a dealer whose picks alternate between the nodes,
// so that two requests in a row are sure to meet the misbehaving one.
func roundRobinDealer(t testing.TB, nodes ...*testcluster.Node) *gateway.Dealer {
	t.Helper()
	var eps announceList
	for _, n := range nodes {
		eps = append(eps, n.Announce)
	}
	d, err := gateway.New(gateway.Config{Sources: []gateway.Source{eps}, DefaultBalancer: gateway.RoundRobin, AckTimeout: deliveryAck})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// marks is a folder the app marks every run in (see deliveryapp).
type marks string

func newMarks(t testing.TB) marks {
	t.Helper()
	return marks(testcluster.AppDir(t, "dmarks"))
}

// runs returns the sockets of the slaves that started a run, oldest first.
func (m marks) runs(kind string) []string {
	entries, _ := os.ReadDir(string(m))
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "."+kind) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var sockets []string
	for _, name := range names {
		b, _ := os.ReadFile(filepath.Join(string(m), name))
		sockets = append(sockets, string(b))
	}
	return sockets
}

func (m marks) order(o map[string]any) []byte {
	o["marks"] = string(m)
	b, _ := json.Marshal(o)
	return b
}

// nodeOf names which of nodes the slave with this socket belongs to.
func nodeOf(socket string, nodes ...*testcluster.Node) *testcluster.Node {
	for _, n := range nodes {
		if strings.HasPrefix(socket, n.DataDir+"/") {
			return n
		}
	}
	return nil
}

func waitRoutes(t testing.TB, d *gateway.Dealer, want int, routes ...string) {
	t.Helper()
	testcluster.Eventually(t, 120*time.Second, fmt.Sprintf("%v on %d nodes", routes, want), func() bool {
		r := d.Routes()
		for _, route := range routes {
			if r[route] != want {
				return false
			}
		}
		return true
	})
}

func collect(t testing.TB, d *gateway.Dealer, app, event string, body []byte, p wire.Policy) ([]byte, error) {
	t.Helper()
	r, err := d.Send(app, event, body, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return r.Collect(ctx)
}

func within(d time.Duration) time.Time { return time.Now().Add(d) }

// nodeInfo asks a node directly (not through announces) how it is.
func nodeInfo(t testing.TB, n *testcluster.Node) wire.NodeInfo {
	t.Helper()
	in, err := askInfo(n)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func askInfo(n *testcluster.Node) (wire.NodeInfo, error) {
	c, err := gateway.Dial(n.Listen)
	if err != nil {
		return wire.NodeInfo{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := c.Info(ctx)
	if err != nil {
		return in, fmt.Errorf("info from %s: %w", n.Listen, err)
	}
	return in, nil
}

// appState is the state of app on n as n says now, "" while n does not answer.
func appState(n *testcluster.Node, app string) string {
	in, err := askInfo(n)
	if err != nil {
		return ""
	}
	return in.Apps[app].State
}

func TestDeliveryRules(t *testing.T) {
	a, b := startDeliveryNode(t, testcluster.Options{}, "dapp", "tight"), startDeliveryNode(t, testcluster.Options{}, "dapp", "tight")
	d := roundRobinDealer(t, a, b)
	waitRoutes(t, d, 2, "dapp/run", "tight/run", "tight/echo")

	t.Run("503 before the ack goes elsewhere at no cost", func(t *testing.T) {
		// Fill tight on a: one job running, one queued; a third is refused.
		c, err := gateway.Dial(a.Listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		m := newMarks(t)
		hold := func() {
			st, err := c.Send("tight", "run", m.order(map[string]any{"hold": true}), wire.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close) // cancels the held job
		}
		hold()
		testcluster.Eventually(t, 30*time.Second, "tight on a busy", func() bool { return len(m.runs("start")) == 1 })
		hold()
		testcluster.Eventually(t, 30*time.Second, "tight on a with a full queue", func() bool {
			return nodeInfo(t, a).Apps["tight"].QueueDepth == 1
		})
		rejected := nodeInfo(t, a).Apps["tight"].Jobs["rejected"]
		// Round-robin: of two requests in a row one meets a first. No
		// retries allowed: a refusal before the ack must not cost one.
		for i := range 2 {
			want := fmt.Sprintf("hello %d", i)
			got, err := collect(t, d, "tight", "echo", []byte(want), wire.Policy{})
			if err != nil || string(got) != want {
				t.Fatalf("request %d: %q %v; want %q from the other node", i, got, err, want)
			}
		}
		if now := nodeInfo(t, a).Apps["tight"].Jobs["rejected"]; now <= rejected {
			t.Fatalf("a rejected %d jobs before and %d after: the test never met the full queue", rejected, now)
		}
	})

	t.Run("no retry after a final error", func(t *testing.T) {
		for _, code := range []wire.Code{wire.CodeServer, wire.CodeApp, wire.CodeTimeout, wire.CodeDeadline} {
			t.Run(strconv.Itoa(int(code)), func(t *testing.T) {
				m := newMarks(t)
				_, err := collect(t, d, "dapp", "run", m.order(map[string]any{"code": code}), wire.Policy{Retries: 3, Deadline: within(30 * time.Second)})
				if wire.CodeOf(err) != code {
					t.Fatalf("got %v, want code %d", err, code)
				}
				if runs := m.runs("start"); len(runs) != 1 {
					t.Fatalf("the handler ran %d times (%v); a %d must not be retried", len(runs), runs, code)
				}
			})
		}
		t.Run("engine timeout", func(t *testing.T) {
			m := newMarks(t)
			_, err := collect(t, d, "dapp", "run", m.order(map[string]any{"hold": true}),
				wire.Policy{Retries: 3, Timeout: 300 * time.Millisecond, Deadline: within(30 * time.Second)})
			if wire.CodeOf(err) != wire.CodeTimeout {
				t.Fatalf("got %v, want the engine's 504", err)
			}
			testcluster.Eventually(t, 30*time.Second, "the timed-out run to be cancelled", func() bool { return len(m.runs("cancelled")) == 1 })
			if runs := m.runs("start"); len(runs) != 1 {
				t.Fatalf("the handler ran %d times (%v); a 504 must not be retried", len(runs), runs)
			}
		})
	})

	t.Run("retries exhausted end in the last error", func(t *testing.T) {
		// The app answers 503 after the ack: each attempt costs a retry.
		// With a deadline the dealer would go on trying; one retry allowed
		// means two runs, one per node, and the second node's error.
		m := newMarks(t)
		_, err := collect(t, d, "dapp", "run", m.order(map[string]any{"code": 503}), wire.Policy{Retries: 1, Deadline: within(30 * time.Second)})
		runs := m.runs("start")
		if len(runs) != 2 || nodeOf(runs[0], a, b) == nodeOf(runs[1], a, b) {
			t.Fatalf("runs on %v; want one on each node", runs)
		}
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeUnavailable || !strings.Contains(we.Message, runs[1]) {
			t.Fatalf("got %v; want the last attempt's 503 (refused by %s)", err, runs[1])
		}
	})

	t.Run("a caller that goes away cancels the job", func(t *testing.T) {
		m := newMarks(t)
		r, err := d.Send("dapp", "run", m.order(map[string]any{"hold": true}), wire.Policy{Retries: 1, Deadline: within(60 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := r.Collect(ctx); done <- err }()
		testcluster.Eventually(t, 30*time.Second, "the run to start", func() bool { return len(m.runs("start")) == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Collect after cancel: %v", err)
		}
		testcluster.Eventually(t, 30*time.Second, "the handler's context to be cancelled on the engine", func() bool {
			return len(m.runs("cancelled")) == 1
		})
		if runs := m.runs("start"); len(runs) != 1 {
			t.Fatalf("runs %v; want one", runs)
		}
	})

	// Last: it kills one of the nodes.
	t.Run("node death after the first chunk is a 500, never a second answer", func(t *testing.T) {
		m := newMarks(t)
		r, err := d.Send("dapp", "run", m.order(map[string]any{"chunk": true, "hold": true}), wire.Policy{Retries: 3, Deadline: within(60 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ev, err := r.Next(ctx)
		if err != nil || ev.Kind != gateway.EventChunk || !strings.HasPrefix(string(ev.Data), "first from ") {
			t.Fatalf("first event %+v %v; want the first chunk", ev, err)
		}
		victim := nodeOf(strings.TrimPrefix(string(ev.Data), "first from "), a, b)
		if victim == nil {
			t.Fatalf("chunk %q names neither node", ev.Data)
		}
		victim.Kill9()
		ev, err = r.Next(ctx)
		if err != nil || ev.Kind != gateway.EventError || ev.Err.Code != wire.CodeServer {
			t.Fatalf("after the node died: event kind %d, data %q, error %v (%v); want error 500 and nothing else", ev.Kind, ev.Data, ev.Err, err)
		}
		if runs := m.runs("start"); len(runs) != 1 {
			t.Fatalf("runs %v; the request must not run again after a chunk reached the caller", runs)
		}
	})
}

// A node the dealer still believes in, because it announces only every
// minute, misbehaves: first it is frozen (alive but silent), then its app
// is stopped (it answers 404 for an app it advertised).
func TestDeliveryToStaleNode(t *testing.T) {
	const token = "delivery-test-token"
	s := startDeliveryNode(t, testcluster.Options{Front: true, Env: []string{"COCAINE_TOKEN=" + token}, Args: []string{"--announce-interval", "60s"}}, "dapp")
	b := startDeliveryNode(t, testcluster.Options{}, "dapp")
	// The dealer hears s once, when it subscribes: its app must run by then.
	testcluster.Eventually(t, 120*time.Second, "dapp running on s", func() bool {
		return appState(s, "dapp") == "running"
	})
	d := roundRobinDealer(t, s, b)
	waitRoutes(t, d, 2, "dapp/echo")

	t.Run("an ack that never comes sends the request on within the ack timeout", func(t *testing.T) {
		pid := nodePID(t, s)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		defer resume()
		var slowest time.Duration
		for i := range 2 {
			want := fmt.Sprintf("silent %d", i)
			start := time.Now()
			got, err := collect(t, d, "dapp", "echo", []byte(want), wire.Policy{Deadline: within(30 * time.Second)})
			el := time.Since(start)
			if err != nil || string(got) != want {
				t.Fatalf("request %d: %q %v after %v; want %q from the live node", i, got, err, el, want)
			}
			slowest = max(slowest, el)
		}
		// One of the two went to the frozen node first: it waited the ack
		// timeout, not more (a wide margin for a loaded machine).
		if slowest < deliveryAck || slowest > deliveryAck+5*time.Second {
			t.Fatalf("slowest request took %v; want the ack timeout (%v) and a little", slowest, deliveryAck)
		}
		resume()
		testcluster.Eventually(t, 30*time.Second, "s to answer again", func() bool { return appState(s, "dapp") == "running" })
	})

	t.Run("a 404 from a node that advertised the app goes elsewhere", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+s.Admin+"/api/v1/apps/dapp/stop", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stop dapp on s: %s", resp.Status)
		}
		testcluster.Eventually(t, 30*time.Second, "s to undeploy dapp", func() bool {
			_, ok := nodeInfo(t, s).Apps["dapp"]
			return !ok
		})
		// s really answers 404 now...
		c, err := gateway.Dial(s.Listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st, err := c.Send("dapp", "echo", []byte("x"), wire.Policy{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := st.Collect(ctx); wire.CodeOf(err) != wire.CodeNotFound {
			t.Fatalf("s without dapp answered %v; want 404", err)
		}
		// ...while the dealer still believes it serves dapp.
		if n := d.Routes()["dapp/echo"]; n != 2 {
			t.Fatalf("the dealer sees dapp on %d nodes; the test needs its stale view of s", n)
		}
		for i := range 2 {
			want := fmt.Sprintf("stale %d", i)
			got, err := collect(t, d, "dapp", "echo", []byte(want), wire.Policy{})
			if err != nil || string(got) != want {
				t.Fatalf("request %d: %q %v; want %q from the other node", i, got, err, want)
			}
		}
	})
}

// nodePID finds the `cocaine dev` process of n by its --listen flag.
func nodePID(t testing.TB, n *testcluster.Node) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if i := slices.Index(args, "--listen"); i >= 0 && i+1 < len(args) && args[i+1] == n.Listen && slices.Contains(args, "dev") {
			return pid
		}
	}
	t.Fatalf("no process runs the node on %s", n.Listen)
	return 0
}
