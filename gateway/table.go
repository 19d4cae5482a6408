package gateway

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// node is an engine as the dealer knows it from its announces.
type node struct {
	endpoint string // request endpoint
	conn     *Conn

	mu       sync.Mutex
	info     wire.NodeInfo
	seen     time.Time
	interval time.Duration
	dead     chan struct{} // closed when the node is declared dead
	isDead   bool

	inflight atomic.Int64
	ewmaBits atomic.Uint64 // float64 latency in µs
}

func (n *node) deadCh() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dead
}

// observe folds one request's latency into the node's EWMA.
func (n *node) observe(d time.Duration) {
	const alpha = 0.2
	us := float64(d.Microseconds())
	for {
		old := n.ewmaBits.Load()
		v := math.Float64frombits(old)
		nv := us
		if v > 0 {
			nv = alpha*us + (1-alpha)*v
		}
		if n.ewmaBits.CompareAndSwap(old, math.Float64bits(nv)) {
			return
		}
	}
}

func (n *node) ewma() float64 { return math.Float64frombits(n.ewmaBits.Load()) }

// serves reports whether the node runs app with a native-server route
// named event.
func (n *node) serves(app, event string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.isDead {
		return false
	}
	a, ok := n.info.Apps[app]
	if !ok || a.State != "running" {
		return false
	}
	d, ok := a.Drivers[event]
	return ok && d["type"] == "native-server"
}

func (n *node) queueDepth(app string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.info.Apps[app].QueueDepth
}

// table is the routing table: every node heard of, by request endpoint.
type table struct {
	mu      sync.Mutex
	nodes   map[string]*node
	changed chan struct{} // closed and replaced on every change of routes
	dial    func(endpoint string) (*Conn, error)
}

func newTable() *table {
	t := &table{nodes: map[string]*node{}, changed: make(chan struct{})}
	t.dial = func(endpoint string) (*Conn, error) {
		return dial(endpoint, func() {
			// Announces bring a node that only lost its connection back.
			t.kill(endpoint)
		})
	}
	return t
}

func (t *table) notify() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// changes returns a channel closed at the next change of the table.
func (t *table) changes() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// update records an announce.
func (t *table) update(info wire.NodeInfo, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[info.Endpoint]
	if n == nil {
		c, err := t.dial(info.Endpoint) // called with t.mu held: dial must not take it
		if err != nil {
			return err
		}
		n = &node{endpoint: info.Endpoint, conn: c, dead: make(chan struct{})}
		t.nodes[info.Endpoint] = n
	}
	n.mu.Lock()
	if n.isDead { // back from the dead: a fresh life
		n.isDead, n.dead = false, make(chan struct{})
	}
	n.info, n.seen = info, now
	n.interval = time.Duration(info.IntervalMS) * time.Millisecond
	if n.interval <= 0 {
		n.interval = time.Second
	}
	n.mu.Unlock()
	t.notify()
	return nil
}

// sweep declares dead the nodes silent for deadAfter announce intervals.
func (t *table) sweep(now time.Time, deadAfter int) (died []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.nodes {
		n.mu.Lock()
		if !n.isDead && now.Sub(n.seen) > time.Duration(deadAfter)*n.interval {
			n.isDead = true
			close(n.dead)
			died = append(died, n.endpoint)
		}
		n.mu.Unlock()
	}
	if len(died) > 0 {
		t.notify()
	}
	return died
}

// kill declares a node dead at once (its connection broke).
func (t *table) kill(endpoint string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[endpoint]
	if n == nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.isDead {
		return false
	}
	n.isDead = true
	close(n.dead)
	t.notify()
	return true
}

// candidates returns the live nodes serving app/event, in a stable order.
func (t *table) candidates(app, event string) []*node {
	t.mu.Lock()
	all := make([]*node, 0, len(t.nodes))
	for _, n := range t.nodes {
		all = append(all, n)
	}
	t.mu.Unlock()
	out := all[:0]
	for _, n := range all {
		if n.serves(app, event) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].endpoint < out[j].endpoint })
	return out
}

// live returns the info of every live node.
func (t *table) live() []wire.NodeInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []wire.NodeInfo
	for _, n := range t.nodes {
		n.mu.Lock()
		if !n.isDead {
			out = append(out, n.info)
		}
		n.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out
}

func (t *table) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.nodes {
		n.conn.Close()
	}
	t.nodes = map[string]*node{}
}
