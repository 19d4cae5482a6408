// Package engine is a node of the cloud: it deploys the apps in storage,
// runs a queue and slave pool per app, serves requests for all of them on
// one ZeroMQ ROUTER endpoint and announces itself on a PUB endpoint.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/cocaine-cloud/cocaine/internal/buildinfo"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/slaves/sandbox"
	"github.com/cocaine-cloud/cocaine/storage"
)

// BuildVersion is the platform version reported in announces.
var BuildVersion = buildinfo.Short()

// Node is an engine node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	store   storage.Storage
	id      string
	host    string
	started time.Time

	mu   sync.RWMutex
	apps map[string]*App
	// deploying serializes deploys of one app (uploads and the reconcile
	// loop may race); the map is guarded by mu.
	deploying map[string]*sync.Mutex

	router  *router
	ready   chan struct{}
	metrics *nodeMetrics

	// missing is what the node lacks per sandbox type (sandbox.Check),
	// announced; refreshed by Reconcile so that installing a toolchain
	// shows without a restart.
	missingMu sync.Mutex
	missing   map[string]string

	iso           *isolation
	defaultMemory int64 // bytes, for apps whose manifest sets none
}

// New makes a node. Run starts it.
func New(cfg Config, store storage.Storage, log *slog.Logger) (*Node, error) {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	for _, d := range []string{cfg.RunDir(), cfg.SpoolDir(), cfg.CacheDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	// What an earlier run left (a crash, or a stop that could not clean
	// up) is stale: every app is unpacked and listens afresh.
	for _, d := range []string{cfg.RunDir(), cfg.SpoolDir()} {
		if err := sweep(d); err != nil {
			return nil, fmt.Errorf("engine: sweep %s: %w", d, err)
		}
	}
	mem, _ := cfg.Sandbox.defaultMemory() // checked by Validate
	protectFromOOM(log)
	if err := configureSandboxes(&cfg); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	n := &Node{
		cfg: cfg, log: log.With("component", "engine"), store: store,
		id: hex.EncodeToString(b[:]), host: host, started: time.Now(),
		apps: map[string]*App{}, deploying: map[string]*sync.Mutex{}, ready: make(chan struct{}),
		iso: newIsolation(&cfg, log), defaultMemory: mem,
	}
	n.checkSandboxes()
	n.metrics = newNodeMetrics(n)
	return n, nil
}

// checkSandboxes records what each sandbox lacks on this machine, and
// logs a change.
func (n *Node) checkSandboxes() {
	missing := map[string]string{}
	for _, typ := range sandbox.Types() {
		if err := sandbox.Check(typ); err != nil {
			missing[typ] = err.Error()
		}
	}
	n.missingMu.Lock()
	defer n.missingMu.Unlock()
	for typ, why := range missing {
		if n.missing[typ] != why {
			n.log.Warn("this node cannot run apps of a type", "type", typ, "reason", why)
		}
	}
	n.missing = missing
}

// configureSandboxes unpacks the runtimes the binary carries into the
// node's cache and points the sandboxes at them, or at the folders the
// config names instead.
func configureSandboxes(cfg *Config) error {
	dirs, err := sandbox.UnpackRuntimes(cfg.CacheDir())
	if err != nil {
		return err
	}
	sandbox.Register("go", &sandbox.Go{Toolchain: cfg.Sandbox.Go.Toolchain, CacheDir: cfg.CacheDir(),
		SDKDir: dirs[sandbox.GoSDK.Name], FrameworkDir: cfg.Sandbox.Go.Framework})
	runtime := cfg.Sandbox.Python.Runtime
	if runtime == "" {
		runtime = dirs[sandbox.PythonRuntime.Name]
	}
	sandbox.Register("python", &sandbox.Python{Interpreter: cfg.Sandbox.Python.Interpreter, RuntimeDir: runtime})
	// The other runtimes come from the binary too, or from the checkout
	// that [sandbox.go] framework names.
	beside := func(name string) string {
		if cfg.Sandbox.Go.Framework == "" {
			return dirs[name]
		}
		return filepath.Join(cfg.Sandbox.Go.Framework, "slaves", name)
	}
	for _, lang := range []string{"c", "cpp"} {
		sandbox.Register(lang, &sandbox.Native{Lang: lang, CacheDir: cfg.CacheDir(), RuntimeDir: beside("c")})
	}
	sandbox.Register("node", &sandbox.Node{RuntimeDir: beside("node")})
	sandbox.Register("perl", &sandbox.Perl{RuntimeDir: beside("perl")})
	return nil
}

// Config returns the node's effective configuration.
func (n *Node) Config() Config { return n.cfg }

// Run binds the node's endpoints, deploys the apps in storage and serves
// until ctx ends; then it stops every app and returns.
func (n *Node) Run(ctx context.Context) error {
	r, err := newRouter(n)
	if err != nil {
		return err
	}
	n.router = r
	n.log.Info("engine listening", "endpoint", n.cfg.Listen, "announce", n.cfg.Announce, "node", n.id)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.serve(ctx) }()
	go func() { defer wg.Done(); n.announce(ctx) }()
	if n.cfg.Multicast.Enabled && n.cfg.Announce != "off" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bc := BeaconConfig{Group: n.cfg.Multicast.Group, Interface: n.cfg.Multicast.Interface, Interval: n.cfg.AnnounceInterval.Duration, ID: n.id}
			if err := RunBeacon(ctx, bc, n.cfg.Announce, n.log); err != nil {
				n.log.Error("multicast beacons off", "err", err)
			}
		}()
	}
	// Serving starts first: requests for an app still building get a
	// clear 404 rather than silence.
	n.Reconcile(ctx)
	close(n.ready)
	if n.cfg.ReconcileInterval.Duration > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(n.cfg.ReconcileInterval.Duration)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					n.Reconcile(ctx)
				}
			}
		}()
	}
	<-ctx.Done()
	n.log.Info("engine stopping")
	n.stopAll()
	wg.Wait()
	r.close()
	return nil
}

// Ready is closed once the node serves and has deployed the apps that
// were in storage when it started.
func (n *Node) Ready() <-chan struct{} { return n.ready }

func (n *Node) stopAll() {
	n.mu.Lock()
	apps := n.apps
	n.apps = map[string]*App{}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.stop(context.Background()); err != nil {
				n.log.Warn("app stop", "app", a.Name, "err", err)
			}
		}()
	}
	wg.Wait()
}

// Reconcile makes the running apps match storage: new and changed apps
// are deployed, removed ones stopped. Apps stored with meta "stopped"
// are kept stored but not run.
func (n *Node) Reconcile(ctx context.Context) {
	n.checkSandboxes()
	names, err := n.store.List(ctx, storage.NSApps, "")
	if err != nil {
		n.log.Warn("reconcile: cannot list apps", "err", err)
		return
	}
	want := map[string]string{}
	for _, name := range names {
		info, err := n.store.Stat(ctx, storage.NSApps, name)
		if err != nil {
			continue
		}
		if info.Meta["stopped"] == "true" {
			continue
		}
		want[name] = info.Meta["version"]
	}
	n.mu.RLock()
	var stale []string
	for name, a := range n.apps {
		if _, ok := want[name]; !ok {
			stale = append(stale, name)
		} else if a.Version == want[name] {
			delete(want, name)
		}
	}
	n.mu.RUnlock()
	for name := range want {
		if err := n.deploy(ctx, name, false); err != nil {
			n.log.Error("deploy failed", "app", name, "err", err)
		}
	}
	for _, name := range stale {
		if err := n.Undeploy(ctx, name); err != nil {
			n.log.Warn("undeploy", "app", name, "err", err)
		}
	}
}

func (n *Node) lockApp(name string) func() {
	n.mu.Lock()
	m := n.deploying[name]
	if m == nil {
		m = &sync.Mutex{}
		n.deploying[name] = m
	}
	n.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// Deploy (re)starts app name from storage. The new version starts before
// the old one stops, and the old one finishes its running jobs, so an
// update drops no request.
func (n *Node) Deploy(ctx context.Context, name string) error {
	return n.deploy(ctx, name, true)
}

// deploy starts the stored version of name; unless force, not when that
// version already runs (the reconcile loop and an upload may both ask).
func (n *Node) deploy(ctx context.Context, name string, force bool) error {
	defer n.lockApp(name)()
	if !force {
		if cur := n.App(name); cur != nil {
			if info, err := n.store.Stat(ctx, storage.NSApps, name); err == nil && info.Meta["version"] == cur.Version {
				return nil
			}
		}
	}
	a, err := n.load(ctx, name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	old := n.apps[name]
	n.apps[name] = a
	n.mu.Unlock()
	if old != nil {
		if old.pool != nil {
			for _, j := range old.pool.Handoff() {
				if err := a.submitJob(j); err != nil {
					j.Sink.Error(wire.CodeOf(err), err.Error())
				}
			}
		}
		go func() {
			if err := old.stop(context.Background()); err != nil {
				n.log.Warn("old version stop", "app", name, "err", err)
			}
		}()
	}
	return nil
}

// Undeploy stops app name on this node.
func (n *Node) Undeploy(ctx context.Context, name string) error {
	defer n.lockApp(name)()
	n.mu.Lock()
	a := n.apps[name]
	delete(n.apps, name)
	n.mu.Unlock()
	if a == nil {
		return fmt.Errorf("app %s: %w", name, storage.ErrNotFound)
	}
	n.log.Info("app stopping", "app", name)
	return a.stop(ctx)
}

// App returns a deployed app.
func (n *Node) App(name string) *App {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.apps[name]
}

// Apps lists the deployed apps' names.
func (n *Node) Apps() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]string, 0, len(n.apps))
	for name := range n.apps {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Submit routes a request for APP/EVENT to the app's pool. A request that
// meets a version being replaced goes to the new one.
func (n *Node) Submit(app, event string, j *pool.Job) error {
	for range 3 {
		a := n.App(app)
		if a == nil {
			return wire.Errorf(wire.CodeNotFound, "no app %q on this node", app)
		}
		err := a.Submit(event, j)
		if err == nil || wire.CodeOf(err) != wire.CodeUnavailable || n.App(app) == a {
			return err
		}
	}
	return wire.Errorf(wire.CodeUnavailable, "app %s is being redeployed", app)
}

// Info describes the node as it announces itself.
func (n *Node) Info() wire.NodeInfo {
	in := wire.NodeInfo{
		Endpoint: n.cfg.Advertise, ID: n.id, Hostname: n.host, Version: BuildVersion,
		Uptime: time.Since(n.started).Seconds(), IntervalMS: n.cfg.AnnounceInterval.Milliseconds(),
		Apps: map[string]wire.AppInfo{},
	}
	if n.cfg.Announce != "off" {
		in.Announce = n.cfg.Announce
	}
	n.missingMu.Lock()
	if len(n.missing) > 0 {
		in.Missing = make(map[string]string, len(n.missing))
		for typ, why := range n.missing {
			in.Missing[typ] = why
		}
	}
	n.missingMu.Unlock()
	n.mu.RLock()
	defer n.mu.RUnlock()
	for name, a := range n.apps {
		in.Apps[name] = a.Info()
	}
	return in
}

// Upload validates and stores a package as app name's new version, then
// deploys it on this node.
func (n *Node) Upload(ctx context.Context, name string, pkg []byte) (string, error) {
	_, version, err := PutLocalApp(ctx, n.store, name, pkg)
	if err != nil {
		return "", err
	}
	if err := n.Deploy(ctx, name); err != nil {
		return version, err
	}
	return version, nil
}

// DetailedInfo is Info with every app's slaves listed: the answer to
// MsgInfo, which the dashboard's node page asks for.
func (n *Node) DetailedInfo() wire.NodeInfo {
	in := n.Info()
	n.mu.RLock()
	defer n.mu.RUnlock()
	for name, a := range n.apps {
		ai, ok := in.Apps[name]
		if !ok || a.pool == nil {
			continue
		}
		for _, s := range a.pool.Slaves() {
			ai.SlaveList = append(ai.SlaveList, wire.SlaveInfo(s))
		}
		in.Apps[name] = ai
	}
	return in
}
