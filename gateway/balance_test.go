package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// balNode is a node as the balancer sees it: the queue it announced for
// "app", this dealer's requests in flight on it, and the latencies it
// answered with, oldest first.
func balNode(name string, queue int, inflight int64, latencies ...time.Duration) *node {
	n := &node{endpoint: name, info: wire.NodeInfo{Apps: map[string]wire.AppInfo{"app": {QueueDepth: queue}}}}
	n.inflight.Store(inflight)
	for _, l := range latencies {
		n.observe(l)
	}
	return n
}

func smartPicks(t *testing.T, rounds int, cs ...*node) map[string]int {
	t.Helper()
	b, err := NewBalancer(Smart)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range rounds {
		got[b.Pick("app", cs).endpoint]++
	}
	return got
}

// Of two candidates the smart balancer always takes the one with less
// expected wait: work ahead of the request times the node's latency.
func TestSmartPrefersLessExpectedWait(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name        string
		good, worse *node
	}{
		{"shorter announced queue", balNode("good", 0, 0, ms), balNode("worse", 5, 0, ms)},
		{"fewer requests in flight", balNode("good", 0, 0, ms), balNode("worse", 0, 3, ms)},
		{"queue and in flight add up", balNode("good", 2, 0, ms), balNode("worse", 1, 2, ms)},
		{"lower latency", balNode("good", 0, 0, ms), balNode("worse", 0, 0, 10*ms)},
		{"load times latency", balNode("good", 3, 0, ms), balNode("worse", 0, 0, 10*ms)},
		{"latency is recent: a node that slowed down", balNode("good", 0, 0, 2*ms), balNode("worse", 0, 0, ms, 10*ms, 10*ms, 10*ms, 10*ms, 10*ms, 10*ms, 10*ms, 10*ms, 10*ms, 10*ms)},
		{"a node never measured gets tried", balNode("good", 0, 0), balNode("worse", 0, 0, 5*ms)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][]*node{{tc.good, tc.worse}, {tc.worse, tc.good}} {
				if got := smartPicks(t, 200, order...); got["good"] != 200 {
					t.Fatalf("candidates %s, %s: picks %v; want always good (costs good %.0f, worse %.0f)",
						order[0].endpoint, order[1].endpoint, got, cost("app", tc.good), cost("app", tc.worse))
				}
			}
		})
	}
}

// Equal nodes share the load: neither is starved by a fixed tie-break.
func TestSmartSpreadsTies(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprint(n, " nodes"), func(t *testing.T) {
			var cs []*node
			for i := range n {
				cs = append(cs, balNode(fmt.Sprint("n", i), 1, 1, time.Millisecond))
			}
			rounds := 3000
			got := smartPicks(t, rounds, cs...)
			// Each share within ±9 standard deviations of fair: random,
			// never flaky, and far from what any fixed tie-break gives.
			for _, c := range cs {
				share := float64(got[c.endpoint]) / float64(rounds)
				if fair := 1 / float64(n); share < fair*0.75 || share > fair*1.25 {
					t.Fatalf("picks %v: %s has %.0f%%, want about %.0f%%", got, c.endpoint, share*100, fair*100)
				}
			}
		})
	}
}

// Power of two choices among more candidates: the worst node is never
// picked (it loses every pair it is in) and the best wins each pair it
// is drawn into, about two times in three with three candidates.
func TestSmartAmongMany(t *testing.T) {
	best, mid, worst := balNode("best", 0, 0, time.Millisecond), balNode("mid", 2, 0, time.Millisecond), balNode("worst", 5, 0, time.Millisecond)
	rounds := 3000
	got := smartPicks(t, rounds, mid, worst, best)
	if got["worst"] != 0 {
		t.Fatalf("picks %v: the worst node was picked", got)
	}
	if share := float64(got["best"]) / float64(rounds); share < 0.55 || share > 0.78 {
		t.Fatalf("picks %v: best has %.0f%%, want about 67%%", got, share*100)
	}
	if got := smartPicks(t, 10, mid); got["mid"] != 10 {
		t.Fatalf("one candidate: picks %v", got)
	}
}

// Dead nodes are never candidates, so no balancer can pick them: a node
// whose connection broke and one silent for too long are left out until
// they announce again.
func TestDeadNodesNotPicked(t *testing.T) {
	tb := newTable(nil)
	t.Cleanup(tb.close)
	now := time.Now()
	info := func(ep string) wire.NodeInfo {
		return wire.NodeInfo{Endpoint: ep, IntervalMS: 100, Apps: map[string]wire.AppInfo{"app": {
			State: "running", Drivers: map[string]map[string]any{"ev": {"type": "native-server"}}}}}
	}
	for _, ep := range []string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "tcp://127.0.0.1:3"} {
		if err := tb.update(info(ep), now); err != nil {
			t.Fatal(err)
		}
	}
	// :1 keeps announcing; :2 loses its connection; :3 falls silent.
	tb.kill("tcp://127.0.0.1:2")
	later := now.Add(time.Second)
	if err := tb.update(info("tcp://127.0.0.1:1"), later); err != nil {
		t.Fatal(err)
	}
	tb.sweep(later, 3)
	cands := tb.route("app", "ev").nodes
	if len(cands) != 1 || cands[0].endpoint != "tcp://127.0.0.1:1" {
		t.Fatalf("candidates %v; want only the live node", endpoints(cands))
	}
	for _, name := range []string{Smart, RoundRobin} {
		b, _ := NewBalancer(name)
		for range 50 {
			if n := b.Pick("app", cands); n.endpoint != "tcp://127.0.0.1:1" {
				t.Fatalf("%s picked %s", name, n.endpoint)
			}
		}
	}
	// An announce brings a dead node back.
	if err := tb.update(info("tcp://127.0.0.1:3"), later); err != nil {
		t.Fatal(err)
	}
	if got := endpoints(tb.route("app", "ev").nodes); len(got) != 2 || got[1] != "tcp://127.0.0.1:3" {
		t.Fatalf("after :3 announced again: candidates %v", got)
	}
}

func endpoints(ns []*node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.endpoint)
	}
	return out
}
