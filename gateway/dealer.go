package gateway

import (
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// Source tells the dealer which announce endpoints exist (see
// gateway/discovery). Run calls update with the whole current set.
type Source interface {
	Run(ctx context.Context, update func(endpoints []string)) error
	String() string
}

// Config configures a Dealer.
type Config struct {
	// Sources of announce endpoints; their union is subscribed to.
	Sources []Source
	// DeadAfter announce intervals of silence make a node dead. Default 3.
	DeadAfter int
	// AckTimeout is how long a node may take to accept a request before
	// it is sent elsewhere. Default 1s.
	AckTimeout time.Duration
	// Balancer per app ("round-robin" or "smart"); DefaultBalancer for the rest.
	Balancers       map[string]string
	DefaultBalancer string // default "smart"
	Logger          *slog.Logger
	// Local, when set, is an engine in this process: requests the
	// balancer sends to its node go to it directly, not over ZeroMQ.
	Local Local
	// Security for the sockets to engines (message bound, CURVE); nil:
	// no CURVE and the default bound.
	Security *zmqsec.Config
}

// Dealer routes requests to live nodes and never loses one: every request
// ends in its answer or in one clear error.
type Dealer struct {
	cfg     Config
	log     *slog.Logger
	table   *table
	metrics *dealerMetrics
	bal     map[string]Balancer
	def     Balancer

	local   Local
	localEP string

	mu     sync.Mutex
	wanted map[string][]string // source → endpoints
	heard  map[string]bool     // announce endpoints that have spoken
	closed bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
	active map[*Response]struct{} // requests in flight, ended by Close
}

// New starts a dealer: it subscribes to the sources' announce endpoints
// at once.
func New(cfg Config) (*Dealer, error) {
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 3
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = time.Second
	}
	if cfg.DefaultBalancer == "" {
		cfg.DefaultBalancer = Smart
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Dealer{cfg: cfg, log: cfg.Logger.With("component", "dealer"), bal: map[string]Balancer{},
		wanted: map[string][]string{}, heard: map[string]bool{}, active: map[*Response]struct{}{}}
	if cfg.Local != nil {
		d.local, d.localEP = cfg.Local, cfg.Local.Endpoint()
	}
	var err error
	if d.def, err = NewBalancer(cfg.DefaultBalancer); err != nil {
		return nil, err
	}
	for app, name := range cfg.Balancers {
		if d.bal[app], err = NewBalancer(name); err != nil {
			return nil, fmt.Errorf("app %s: %w", app, err)
		}
	}
	d.table = newTable(cfg.Security)
	d.metrics = newDealerMetrics(d.table)
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	sub, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		cancel()
		return nil, err
	}
	_ = sub.SetLinger(0)
	if err := cfg.Security.Client(sub); err != nil {
		cancel()
		sub.Close()
		return nil, err
	}
	_ = sub.SetSubscribe("")
	d.wg.Add(1)
	go d.subscribe(ctx, sub)
	for i, s := range cfg.Sources {
		key := fmt.Sprintf("%d:%s", i, s)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			err := s.Run(ctx, func(eps []string) {
				d.mu.Lock()
				d.wanted[key] = append([]string(nil), eps...)
				d.mu.Unlock()
			})
			if err != nil && ctx.Err() == nil {
				d.log.Error("discovery source failed", "source", s.String(), "err", err)
			}
		}()
	}
	return d, nil
}

// subscribe owns the SUB socket: it follows the wanted endpoints, feeds
// announces to the table and sweeps out silent nodes.
func (d *Dealer) subscribe(ctx context.Context, sub *zmq.Socket) {
	defer d.wg.Done()
	defer sub.Close()
	connected := map[string]bool{}
	poller := zmq.NewPoller()
	poller.Add(sub, zmq.POLLIN)
	for ctx.Err() == nil {
		d.mu.Lock()
		want := map[string]bool{}
		for _, eps := range d.wanted {
			for _, ep := range eps {
				want[ep] = true
			}
		}
		d.mu.Unlock()
		for ep := range want {
			if !connected[ep] {
				if err := sub.Connect(ep); err != nil {
					d.log.Warn("cannot subscribe", "endpoint", ep, "err", err)
					continue
				}
				connected[ep] = true
				d.log.Debug("subscribed", "announce", ep)
			}
		}
		for ep := range connected {
			if !want[ep] {
				_ = sub.Disconnect(ep)
				delete(connected, ep)
			}
		}
		polled, err := poller.Poll(50 * time.Millisecond)
		if err != nil && !errors.Is(zmq.AsErrno(err), zmq.Errno(syscall.EINTR)) {
			d.log.Error("announce poll", "err", err)
			return
		}
		if len(polled) > 0 {
			for range 1000 {
				msg, err := sub.RecvMessageBytes(zmq.DONTWAIT)
				if err != nil {
					break
				}
				d.announced(msg)
			}
		}
		for _, n := range d.table.sweep(time.Now(), d.cfg.DeadAfter) {
			d.log.Warn("node is silent: dead", "node", n.endpoint)
			n.conn.failAll(errNodeDead)
		}
	}
}

func (d *Dealer) announced(msg [][]byte) {
	if len(msg) != 2 {
		return
	}
	var info wire.NodeInfo
	if err := json.Unmarshal(msg[1], &info); err != nil || info.Endpoint == "" {
		d.log.Debug("bad announce", "err", err)
		return
	}
	if err := d.table.update(info, time.Now()); err != nil {
		d.log.Warn("cannot connect to node", "node", info.Endpoint, "err", err)
		return
	}
	if info.Announce != "" {
		d.mu.Lock()
		d.heard[info.Announce] = true
		d.mu.Unlock()
	}
}

// WaitDiscovery waits until every endpoint the sources named has
// announced itself, or ctx ends. Useful for a CLI that wants the whole
// cluster before it prints it.
func (d *Dealer) WaitDiscovery(ctx context.Context) error {
	for {
		ch := d.table.changes()
		d.mu.Lock()
		all, n := true, 0
		for _, eps := range d.wanted {
			for _, ep := range eps {
				n++
				if !d.heard[ep] {
					all = false
				}
			}
		}
		d.mu.Unlock()
		if all && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Nodes returns the info of every live node.
func (d *Dealer) Nodes() []wire.NodeInfo { return d.table.live() }

// Routes lists APP/EVENT routes with the number of live nodes serving each.
func (d *Dealer) Routes() map[string]int {
	out := map[string]int{}
	for key, r := range *d.table.routes.Load() {
		out[key] = len(r.nodes)
	}
	return out
}

// Payload kinds an event announces (its manifest's "payload").
const (
	PayloadHTTP = "http"
	PayloadRaw  = "raw"
)

// Payload says what APP/EVENT speaks as its live nodes announce it:
// PayloadHTTP, PayloadRaw, or "" when no live node serves it.
func (d *Dealer) Payload(app, event string) string {
	if r := d.table.route(app, event); r != nil {
		if r.payload == "" {
			return PayloadHTTP // announced by an engine older than payloads
		}
		return r.payload
	}
	return ""
}

// Broken says why app is broken on a live node that has it; "" when no
// live node reports it broken.
func (d *Dealer) Broken(app string) string { return d.table.broken(app) }

// Send sends a request for APP/EVENT with its whole body. Policy.Deadline,
// when set, bounds the whole request, waiting for a node included;
// without one, a request for an app no node serves fails at once with 404.
// body must not change until the Response ends.
func (d *Dealer) Send(app, event string, body []byte, p wire.Policy) (*Response, error) {
	return d.start(app, event, body, false, p)
}

// Open sends a request whose body streams: first is its beginning, the
// rest goes through Response.Write, then Response.CloseSend. The answer
// may start before the body has all been sent.
func (d *Dealer) Open(app, event string, first []byte, p wire.Policy) (*Response, error) {
	return d.start(app, event, append([]byte(nil), first...), true, p)
}

func (d *Dealer) start(app, event string, body []byte, more bool, p wire.Policy) (*Response, error) {
	r := newResponse(d, app, event, body, more, p)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.active[r] = struct{}{}
	d.mu.Unlock()
	r.mu.Lock()
	if !p.Deadline.IsZero() {
		r.deadT = time.AfterFunc(time.Until(p.Deadline), r.expire)
	}
	r.next()
	r.mu.Unlock()
	return r, nil
}

func (d *Dealer) untrack(r *Response) {
	d.mu.Lock()
	delete(d.active, r)
	d.mu.Unlock()
}

// KnownRoutes lists the APP/EVENT routes of every app on a live node,
// whatever its state (a broken or stopping app's failures still belong
// to it): the label values of the front's metrics.
func (d *Dealer) KnownRoutes() map[string]int {
	out := map[string]int{}
	for _, n := range d.table.live() {
		for app, a := range n.Apps {
			for ev, drv := range a.Drivers {
				if drv["type"] == "native-server" {
					out[app+"/"+ev]++
				}
			}
		}
	}
	return out
}

func (d *Dealer) balancer(app string) Balancer {
	if b, ok := d.bal[app]; ok {
		return b
	}
	return d.def
}

// Close stops discovery and drops the connections; requests in flight
// end with an error their callers see (if they still read).
func (d *Dealer) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	active := d.active
	d.active = map[*Response]struct{}{}
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	for r := range active {
		r.mu.Lock()
		after := r.abandon()
		r.fail(wire.CodeUnavailable, "the dealer is closing")
		r.mu.Unlock()
		if after != nil {
			after()
		}
	}
	d.table.close()
	return nil
}

// NodeInfo asks a live node for its detailed info (its slaves listed),
// by request endpoint or node id.
func (d *Dealer) NodeInfo(ctx context.Context, node string) (wire.NodeInfo, error) {
	c := d.table.conn(node)
	if c == nil {
		return wire.NodeInfo{}, fmt.Errorf("node %s: %w", node, ErrNoNode)
	}
	return c.Info(ctx)
}
