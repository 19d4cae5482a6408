package gateway

import (
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"

	"math"
	"sort"
	"strings"
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

func (n *node) queueDepth(app string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.info.Apps[app].QueueDepth
}

// route is one APP/EVENT: the live nodes serving it, in a stable order,
// and the payload they announce for it.
type route struct {
	nodes   []*node
	payload string
}

// table is the routing table: every node heard of, by request endpoint,
// and an index of routes rebuilt when what nodes serve changes, so that
// picking a node costs a map lookup, not a scan of every node's info.
type table struct {
	mu      sync.Mutex
	nodes   map[string]*node
	changed chan struct{} // closed and replaced on every change of routes
	dial    func(endpoint string) (*Conn, error)
	routes  atomic.Pointer[map[string]*route]

	seen, lost atomic.Uint64 // nodes that came alive, and died (metrics.go)
}

func newTable(sec *zmqsec.Config) *table {
	t := &table{nodes: map[string]*node{}, changed: make(chan struct{})}
	t.dial = func(endpoint string) (*Conn, error) {
		return dial(endpoint, sec, func() {
			// Announces bring a node that only lost its connection back.
			t.kill(endpoint)
		})
	}
	empty := map[string]*route{}
	t.routes.Store(&empty)
	return t
}

// notify rebuilds the route index and wakes waiters. Called with t.mu held.
func (t *table) notify() {
	idx := map[string]*route{}
	for _, n := range t.nodes {
		n.mu.Lock()
		if !n.isDead {
			for app, a := range n.info.Apps {
				if a.State != "running" {
					continue
				}
				for ev, drv := range a.Drivers {
					if drv["type"] != "native-server" {
						continue
					}
					key := app + "/" + ev
					r := idx[key]
					if r == nil {
						r = &route{}
						idx[key] = r
					}
					r.nodes = append(r.nodes, n)
					if p, _ := drv["payload"].(string); p != "" && r.payload == "" {
						r.payload = p
					}
				}
			}
		}
		n.mu.Unlock()
	}
	for _, r := range idx {
		sort.Slice(r.nodes, func(i, j int) bool { return r.nodes[i].endpoint < r.nodes[j].endpoint })
	}
	t.routes.Store(&idx)
	close(t.changed)
	t.changed = make(chan struct{})
}

// route returns APP/EVENT's route, nil when no live node serves it.
func (t *table) route(app, event string) *route {
	return (*t.routes.Load())[app+"/"+event]
}

// changes returns a channel closed at the next change of the table.
func (t *table) changes() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// update records an announce. The index is rebuilt only when the node's
// routes or life changed: most announces only refresh queue depths.
func (t *table) update(info wire.NodeInfo, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[info.Endpoint]
	fresh := n == nil
	if fresh {
		c, err := t.dial(info.Endpoint) // called with t.mu held: dial must not take it
		if err != nil {
			return err
		}
		n = &node{endpoint: info.Endpoint, conn: c, dead: make(chan struct{})}
		t.nodes[info.Endpoint] = n
		t.seen.Add(1)
	}
	n.mu.Lock()
	changed := fresh || n.isDead || routeSig(n.info) != routeSig(info)
	if n.isDead { // back from the dead: a fresh life
		n.isDead, n.dead = false, make(chan struct{})
		t.seen.Add(1)
	}
	n.info, n.seen = info, now
	n.interval = time.Duration(info.IntervalMS) * time.Millisecond
	if n.interval <= 0 {
		n.interval = time.Second
	}
	n.mu.Unlock()
	if changed {
		t.notify()
	}
	return nil
}

// routeSig sums up what a node serves: its running native-server routes
// and their payloads.
func routeSig(info wire.NodeInfo) string {
	var keys []string
	for app, a := range info.Apps {
		if a.State != "running" {
			continue
		}
		for ev, drv := range a.Drivers {
			if drv["type"] == "native-server" {
				p, _ := drv["payload"].(string)
				keys = append(keys, app+"/"+ev+"="+p)
			}
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// sweep declares dead the nodes silent for deadAfter announce intervals.
func (t *table) sweep(now time.Time, deadAfter int) (died []*node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.nodes {
		n.mu.Lock()
		if !n.isDead && now.Sub(n.seen) > time.Duration(deadAfter)*n.interval {
			n.isDead = true
			close(n.dead)
			died = append(died, n)
			t.lost.Add(1)
		}
		n.mu.Unlock()
	}
	if len(died) > 0 {
		t.notify()
	}
	return died
}

// kill declares a node dead at once (its connection broke) and fails the
// requests in flight on it, which go elsewhere when the rules allow.
func (t *table) kill(endpoint string) bool {
	t.mu.Lock()
	n := t.nodes[endpoint]
	if n == nil {
		t.mu.Unlock()
		return false
	}
	n.mu.Lock()
	if n.isDead {
		n.mu.Unlock()
		t.mu.Unlock()
		return false
	}
	n.isDead = true
	close(n.dead)
	t.lost.Add(1)
	n.mu.Unlock()
	t.notify()
	t.mu.Unlock()
	n.conn.failAll(errNodeDead)
	return true
}

// broken returns why app is broken on a live node that has it, or ""
// when no live node reports it broken.
func (t *table) broken(app string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.nodes {
		n.mu.Lock()
		a, ok := n.info.Apps[app]
		dead := n.isDead
		n.mu.Unlock()
		if ok && !dead && a.State == "broken" {
			return a.Reason
		}
	}
	return ""
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
	nodes := t.nodes
	t.nodes = map[string]*node{}
	t.notify()
	t.mu.Unlock()
	for _, n := range nodes {
		n.conn.Close()
	}
}

// conn returns the connection of a live node, by endpoint or id.
func (t *table) conn(node string) *Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.nodes {
		n.mu.Lock()
		ok := !n.isDead && (n.endpoint == node || n.info.ID == node)
		n.mu.Unlock()
		if ok {
			return n.conn
		}
	}
	return nil
}
