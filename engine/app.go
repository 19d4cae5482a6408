package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/engine/drivers"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/slaves/sandbox"
	"github.com/cocaine-cloud/cocaine/storage"
)

// App is one deployed app on this node.
type App struct {
	Name     string
	Version  string
	Manifest *manifest.Manifest
	dir      string
	pool     *pool.Pool // nil when the app could not be prepared
	broken   string     // why it could not be prepared
	drivers  map[string]drivers.Driver
	routes   map[string]string // native-server driver name → emit
	logs     *logWriter
}

// Submit routes a request for driver `event` of the app.
func (a *App) Submit(event string, j *pool.Job) error {
	emit, ok := a.routes[event]
	if !ok {
		return wire.Errorf(wire.CodeNotFound, "app %s has no native-server driver %q", a.Name, event)
	}
	if a.broken != "" {
		return a.brokenErr()
	}
	j.Event = emit
	return a.pool.Submit(j)
}

// submitJob queues a job already routed (its Event is the emit).
func (a *App) submitJob(j *pool.Job) error {
	if a.broken != "" {
		return a.brokenErr()
	}
	return a.pool.Submit(j)
}

// brokenErr is 503, not 500: the app is not available here now, and a
// dealer may find a node where it is healthy.
func (a *App) brokenErr() error {
	return wire.Errorf(wire.CodeUnavailable, "app %s is broken: %s", a.Name, a.broken)
}

// Info describes the app for announces.
func (a *App) Info() wire.AppInfo {
	in := wire.AppInfo{Version: a.Version, Drivers: map[string]map[string]any{}}
	for name, d := range a.drivers {
		in.Drivers[name] = d.Info()
	}
	if a.broken != "" {
		in.State, in.Reason = string(pool.StateBroken), a.broken
		return in
	}
	pi := a.pool.Info()
	in.State, in.Reason, in.QueueDepth = string(pi.State), pi.Reason, pi.QueueDepth
	in.Slaves = wire.SlaveCounts{Total: pi.Slaves.Total, Busy: pi.Slaves.Busy, Starting: pi.Slaves.Starting}
	in.Jobs = map[string]uint64{
		"accepted": pi.Jobs.Accepted, "processed": pi.Jobs.Processed, "failed": pi.Jobs.Failed,
		"rejected": pi.Jobs.Rejected, "retried": pi.Jobs.Retried, "spawned": pi.Jobs.Spawned, "crashed": pi.Jobs.Crashed,
		"idle-exits": pi.Jobs.IdleExits, "timeouts": pi.Jobs.Timeouts, "deadline-misses": pi.Jobs.Deadlines,
	}
	return in
}

// ParseManifest validates a manifest against this node's sandboxes and
// drivers, listing every problem.
func ParseManifest(data []byte) (*manifest.Manifest, error) {
	m, err := manifest.Parse(data, manifest.WithSandboxes(sandbox.Types()...), manifest.WithDriverCheck(drivers.Validate))
	if err != nil {
		return nil, err
	}
	if ps := sandbox.ValidateArgs(m); len(ps) > 0 {
		for i := range ps {
			ps[i].Path = "args." + ps[i].Path
		}
		return nil, &manifest.Error{Problems: ps}
	}
	return m, nil
}

// load reads app name from storage and starts it. A package that cannot
// be prepared (its build fails) still yields an App, marked broken, so
// that the failure is visible in info and its crash log.
func (n *Node) load(ctx context.Context, name string) (*App, error) {
	info, rc, err := n.store.Get(ctx, storage.NSApps, name)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	defer rc.Close()
	dir := filepath.Join(n.cfg.SpoolDir(), fmt.Sprintf("%s.%d", name, time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lim := archive.Limits{MaxBytes: n.cfg.Package.MaxBytes, MaxFiles: n.cfg.Package.MaxFiles, MaxFileBytes: n.cfg.Package.MaxFileBytes}
	if err := archive.Unpack(rc, dir, lim); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("app %s: unpack: %w", name, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("app %s: manifest: %w", name, err)
	}
	log := n.log.With("app", name)
	a := &App{Name: name, Version: info.Meta["version"], Manifest: m, dir: dir,
		drivers: map[string]drivers.Driver{}, routes: map[string]string{},
		logs: newLogWriter(n.store, name, log)}
	for dname, d := range m.Drivers {
		if d.Type == drivers.NativeServer {
			a.routes[dname] = d.Emit
			// Announced with the driver's info: the front reads it to
			// serve the event as HTTP or as raw bytes.
			if _, ok := d.Settings["payload"]; !ok {
				d.Settings["payload"] = sandbox.DefaultPayload(m)
			}
		}
	}

	sb, err := sandbox.Get(m.Type)
	var launcher sandbox.Launcher
	if err == nil {
		user := n.iso.user(name)
		if err = give(dir, user); err == nil {
			launcher, err = sb.Prepare(ctx, sandbox.App{Name: name, Dir: dir, Manifest: m, Logger: log,
				User: user, DefaultMemory: n.defaultMemory})
		}
	}
	if err != nil {
		a.broken = err.Error()
		log.Error("app cannot be prepared", "err", err)
		n.crash(pool.Crash{App: name, Time: time.Now(), Reason: "prepare failed", Status: "not started", Output: strings.Split(err.Error(), "\n")})
		n.startDrivers(a, log)
		return a, nil
	}
	socket := filepath.Join(n.cfg.RunDir(), fmt.Sprintf("%s.%x.sock", shortName(name), time.Now().UnixNano()&0xffffff))
	queueWait, runTime := n.metrics.observers(name)
	p, err := pool.New(pool.Config{
		QueueWait: queueWait, RunTime: runTime,
		App: name, Engine: m.Engine, Spawner: launcher, Logger: log,
		Socket:  socket,
		OnLog:   a.logs.add,
		OnCrash: n.crash,
	})
	if err != nil {
		os.RemoveAll(dir)
		a.logs.close()
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	a.pool = p
	if err := n.checkDrivers(m, dir); err != nil {
		a.broken = err.Error()
		log.Error("app asks for more than this node allows", "err", err)
		n.crash(pool.Crash{App: name, Time: time.Now(), Reason: "driver not allowed", Status: "not started", Output: []string{a.broken}})
		return a, nil
	}
	if u := n.iso.user(name); u != nil {
		// Slaves start on demand, so none has tried to connect yet.
		if err := os.Chown(socket, u.UID, u.GID); err != nil {
			a.broken = fmt.Sprintf("socket: %v", err)
		}
	}
	if err := n.startDrivers(a, log); err != nil {
		// The app does not run as its manifest declares; another node
		// may be able to (a port free there).
		a.broken = err.Error()
		n.crash(pool.Crash{App: name, Time: time.Now(), Reason: "driver failed", Status: "not started", Output: []string{a.broken}})
	}
	log.Info("app started", "version", a.Version, "type", m.Type, "drivers", len(m.Drivers))
	return a, nil
}

// shortName keeps socket paths under the 108-byte limit.
func shortName(name string) string {
	if len(name) > 24 {
		return name[:24]
	}
	return name
}

// startDrivers starts the app's drivers and reports the first that failed.
func (n *Node) startDrivers(a *App, log *slog.Logger) error {
	var first error
	for name, md := range a.Manifest.Drivers {
		d, err := drivers.New(md, drivers.Env{App: a.Name, Spool: a.dir, Target: poolTarget{a}, Logger: log.With("driver", name)})
		if err == nil {
			err = d.Start(context.Background())
		}
		if err != nil {
			log.Error("driver failed to start", "driver", name, "err", err)
			d = failedDriver{md, err}
			if first == nil {
				first = fmt.Errorf("driver %s: %w", name, err)
			}
		}
		a.drivers[name] = d
	}
	return first
}

// poolTarget sends driver jobs to the app's pool.
type poolTarget struct{ a *App }

func (t poolTarget) Submit(j *pool.Job) error { return t.a.submitJob(j) }

// failedDriver shows a driver that could not start in info.
type failedDriver struct {
	d   manifest.Driver
	err error
}

func (f failedDriver) Start(context.Context) error { return f.err }
func (f failedDriver) Stop()                       {}
func (f failedDriver) Info() map[string]any {
	in := drivers.BaseInfo(f.d)
	in["error"] = f.err.Error()
	return in
}

// stop stops the app's drivers, then its pool (running jobs finish), and
// removes its spool folder.
func (a *App) stop(ctx context.Context) error {
	for _, d := range a.drivers {
		d.Stop()
	}
	var err error
	if a.pool != nil {
		grace := a.Manifest.Engine.TerminationTimeout + 2*time.Second
		sctx, cancel := context.WithTimeout(ctx, grace)
		err = a.pool.Stop(sctx)
		cancel()
	}
	a.logs.close()
	os.RemoveAll(a.dir)
	return err
}

// crash stores a crash log.
func (n *Node) crash(c pool.Crash) {
	key := fmt.Sprintf("%s:%d:%s", c.App, c.Time.UnixNano(), c.Slave)
	if c.Slave == "" {
		key = fmt.Sprintf("%s:%d:engine", c.App, c.Time.UnixNano())
	}
	meta := storage.Meta{"app": c.App, "slave": c.Slave, "reason": c.Reason, "status": c.Status, "time": c.Time.UTC().Format(time.RFC3339Nano), "node": n.id}
	body := strings.Join(c.Output, "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.store.Put(ctx, storage.NSCrashlogs, key, meta, strings.NewReader(body)); err != nil {
		n.log.Error("cannot store crash log", "app", c.App, "err", err)
	}
}

// PutApp validates a package and stores it as the app's new version
// through the deployment store (engine/appstore), which keeps history. It
// does not deploy it; Deploy (or the reconcile loop) does.
func PutApp(ctx context.Context, st storage.Storage, name string, pkg []byte) (*manifest.Manifest, string, error) {
	return putApp(ctx, st, name, pkg, ValidatePackage)
}

// PutLocalApp is PutApp for a process that runs the engine that will
// deploy the package: it validates with ValidateLocal.
func PutLocalApp(ctx context.Context, st storage.Storage, name string, pkg []byte) (*manifest.Manifest, string, error) {
	return putApp(ctx, st, name, pkg, ValidateLocal)
}

func putApp(ctx context.Context, st storage.Storage, name string, pkg []byte, validate appstore.Validator) (*manifest.Manifest, string, error) {
	if !appstore.ValidName(name) {
		return nil, "", wire.Errorf(wire.CodeBadRequest, "invalid app name %q", name)
	}
	up, err := appstore.New(st, appstore.Options{Validate: validate}).Put(ctx, name, pkg)
	if err != nil {
		return nil, "", err
	}
	return up.Manifest, up.Version, nil
}

// ValidatePackage refuses a package whose manifest this node could not run
// or that is hostile, before it is stored rather than at deploy.
func ValidatePackage(pkg []byte) (*manifest.Manifest, error) {
	return appstore.CheckPackage(ParseManifest, archive.DefaultLimits(), "")(pkg)
}

// ValidateForNodes is ValidatePackage plus a look at what the live nodes
// announce they lack (wire.NodeInfo.Missing): for the API of a gateway,
// which runs on no node. A package is refused only when every live node
// says it cannot run its type; with no live node there is no one to ask.
func ValidateForNodes(nodes func() []wire.NodeInfo) appstore.Validator {
	return func(pkg []byte) (*manifest.Manifest, error) {
		m, err := ValidatePackage(pkg)
		if err != nil || nodes == nil {
			return m, err
		}
		live := nodes()
		var why []string
		for _, n := range live {
			reason, lacks := n.Missing[m.Type]
			if !lacks {
				return m, nil
			}
			why = append(why, fmt.Sprintf("%s (%s): %s", n.Hostname, n.Endpoint, reason))
		}
		if len(live) == 0 {
			return m, nil
		}
		return nil, &manifest.Error{Problems: []manifest.Problem{{Path: "type",
			Message: fmt.Sprintf("no live node can run %s apps: %s", m.Type, strings.Join(why, "; "))}}}
	}
}

// ValidateLocal is ValidatePackage plus the check of what the package's
// sandbox needs on this machine (sandbox.Check): an upload of a Go app to
// a node without a Go toolchain is refused with what to install, rather
// than stored to fail at deploy. Only a process that runs the engine itself
// (`cocaine dev`, Node.Upload) can use it; the API of a gateway uses
// ValidateForNodes. A node that lacks the toolchain marks such an app
// broken with the same message.
func ValidateLocal(pkg []byte) (*manifest.Manifest, error) {
	m, err := ValidatePackage(pkg)
	if err != nil {
		return nil, err
	}
	if err := sandbox.Check(m.Type); err != nil {
		return nil, &manifest.Error{Problems: []manifest.Problem{{Path: "type", Message: err.Error()}}}
	}
	return m, nil
}
