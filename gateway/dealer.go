package gateway

import (
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
}

// Dealer routes requests to live nodes and never loses one: every request
// ends in its answer or in one clear error.
type Dealer struct {
	cfg   Config
	log   *slog.Logger
	table *table
	bal   map[string]Balancer
	def   Balancer

	mu      sync.Mutex
	wanted  map[string][]string // source → endpoints
	heard   map[string]bool     // announce endpoints that have spoken
	closed  bool
	cancel  context.CancelFunc
	quit    chan struct{} // closed by Close: deliveries stop waiting for readers
	wg      sync.WaitGroup
	running sync.WaitGroup // requests in flight
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
		wanted: map[string][]string{}, heard: map[string]bool{}, quit: make(chan struct{})}
	var err error
	if d.def, err = NewBalancer(cfg.DefaultBalancer); err != nil {
		return nil, err
	}
	for app, name := range cfg.Balancers {
		if d.bal[app], err = NewBalancer(name); err != nil {
			return nil, fmt.Errorf("app %s: %w", app, err)
		}
	}
	d.table = newTable()
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	sub, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		cancel()
		return nil, err
	}
	_ = sub.SetLinger(0)
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
		for _, ep := range d.table.sweep(time.Now(), d.cfg.DeadAfter) {
			d.log.Warn("node is silent: dead", "node", ep)
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
	for _, n := range d.table.live() {
		for app, a := range n.Apps {
			if a.State != "running" {
				continue
			}
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

// Close stops discovery and drops the connections; requests in flight end
// with an error their callers see (if they still read).
func (d *Dealer) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.quit)
	d.cancel()
	d.wg.Wait()
	// Closing the connections ends the requests still waiting on a node.
	d.table.close()
	d.running.Wait()
	return nil
}
