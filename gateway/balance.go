package gateway

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Balancer picks one of the candidate nodes for a request. Candidates are
// never empty and come in a stable order.
type Balancer interface {
	Pick(app string, candidates []*node) *node
}

// Balancer names for the config.
const (
	RoundRobin = "round-robin"
	Smart      = "smart"
)

// NewBalancer makes a balancer by name.
func NewBalancer(name string) (Balancer, error) {
	switch name {
	case RoundRobin, "":
		return &roundRobin{}, nil
	case Smart:
		return smart{}, nil
	}
	return nil, fmt.Errorf("gateway: unknown balancer %q (have %s, %s)", name, RoundRobin, Smart)
}

// roundRobin cycles through the candidates of each app.
type roundRobin struct {
	mu   sync.Mutex
	next map[string]*atomic.Uint64
}

func (r *roundRobin) Pick(app string, cs []*node) *node {
	r.mu.Lock()
	if r.next == nil {
		r.next = map[string]*atomic.Uint64{}
	}
	c := r.next[app]
	if c == nil {
		c = &atomic.Uint64{}
		r.next[app] = c
	}
	r.mu.Unlock()
	return cs[c.Add(1)%uint64(len(cs))]
}

// smart is the power of two choices: of two random candidates, the one
// with the lower expected wait, estimated as the work ahead of a request
// (its in-flight requests from this dealer plus the queue the node
// announced) times the node's recent latency. Two choices rather than the
// best of all keep many dealers from stampeding onto the same node with
// the same stale view.
type smart struct{}

func (smart) Pick(app string, cs []*node) *node {
	if len(cs) == 1 {
		return cs[0]
	}
	i := rand.IntN(len(cs))
	j := rand.IntN(len(cs) - 1)
	if j >= i {
		j++
	}
	a, b := cs[i], cs[j]
	if cost(app, b) < cost(app, a) {
		return b
	}
	return a
}

func cost(app string, n *node) float64 {
	lat := n.ewma()
	if lat <= 0 {
		lat = 1 // unknown: optimistic, so new nodes get tried
	}
	return float64(n.inflight.Load()+int64(n.queueDepth(app))+1) * lat
}
