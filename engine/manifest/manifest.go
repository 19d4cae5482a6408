// Package manifest parses and validates app manifests: the manifest.json at the root of an app
// package, shaped like Cocaine 0.9's so that old manifests load.
//
// Parse reports every problem it finds at once, each with the JSON path it concerns, because a
// manifest is rejected at upload and the author should fix it in one round trip, not one error
// per upload.
//
// Decisions beyond 0.9 (see also DESIGN.md, "App manifest"):
//   - queue-limit must be > 0: a zero-length queue would answer 503 to every request.
//   - grow-threshold defaults to max(1, queue-limit/pool-limit) computed from the limits actually
//     given, as 0.9 derived it from its own limits.
//   - concurrency (jobs a slave may run at once) is taken from 0.10; default 1.
//   - resource-limits is a flat object (memory, cpu, cpu-time, open-files) rather than 0.9's
//     cgroup controller maps, which needed a cgroups build and were rarely used.
//   - Keys this package does not know are rejected, including the 0.7/0.8 keys (tasks,
//     suicide-timeout) and 0.9's engine.slave, each with a hint about its replacement.
//   - Duplicate keys are rejected: two JSON parsers may keep different duplicates, and the
//     manifest the validator saw must be the one the engine runs.
package manifest

import (
	"encoding/json"
	"time"
)

// MaxSize is the largest manifest Parse accepts, in bytes.
const MaxSize = 1 << 20

// Manifest is a validated app manifest.
type Manifest struct {
	// Type names the sandbox that runs the app (go, python, binary, ...).
	Type string
	// Args is the sandbox-specific "args" object; numbers are json.Number. Never nil.
	Args map[string]any
	// Engine holds the pool policy, with defaults filled in.
	Engine Engine
	// ResourceLimits holds per-slave limits; zero fields are not limited.
	ResourceLimits Limits
	// Drivers maps a driver name (what the dealer addresses as APP/NAME) to its config. Never nil.
	Drivers map[string]Driver
	// Raw is the document exactly as given, for storing alongside the package.
	Raw json.RawMessage
}

// Engine is the pool policy of an app ("engine" in the manifest). Times are seconds in JSON.
type Engine struct {
	// PoolLimit is the most slaves the app may run ("pool-limit", default 10).
	PoolLimit int
	// QueueLimit is the most jobs waiting for a slave ("queue-limit", default 100).
	QueueLimit int
	// GrowThreshold tunes pool growth ("grow-threshold", default max(1, QueueLimit/PoolLimit)).
	GrowThreshold int
	// Concurrency is how many jobs one slave runs at once ("concurrency", default 1).
	Concurrency int
	// StartupTimeout is the time a new slave has to send its first heartbeat (default 10s).
	StartupTimeout time.Duration
	// HeartbeatTimeout is the longest a slave may stay silent (default 30s).
	HeartbeatTimeout time.Duration
	// IdleTimeout is how long a slave without work lives (default 600s).
	IdleTimeout time.Duration
	// TerminationTimeout is how long a stopping slave gets before it is killed (default 5s).
	TerminationTimeout time.Duration
}

// Limits are per-slave resource limits ("resource-limits"). A zero field is not limited.
type Limits struct {
	// Memory is in bytes. JSON accepts a number of bytes or a string with a unit: "256MiB",
	// "1GiB", "512MB", "64k". KiB/MiB/... and the bare k/m/g/t/p are powers of 1024, kB/MB/...
	// powers of 1000 (as docker and ulimit read them).
	Memory int64
	// CPU is in cores. It is not enforced without cgroups.
	CPU float64
	// CPUTime is the CPU time a slave may use ("cpu-time", whole seconds; RLIMIT_CPU).
	CPUTime time.Duration
	// OpenFiles is the most file descriptors a slave may hold ("open-files"; RLIMIT_NOFILE).
	OpenFiles int
}

// Driver is one entry of "drivers".
type Driver struct {
	// Name is the driver's key in "drivers"; the dealer addresses APP/Name.
	Name string
	// Type names the driver implementation (recurring-timer, native-server, ...).
	Type string
	// Emit is the event the app receives; it defaults to Name.
	Emit string
	// Settings holds every other key of the driver object; numbers are json.Number. Never nil.
	Settings map[string]any
}

// Defaults returns the 0.9 pool policy.
func Defaults() Engine {
	return Engine{
		PoolLimit:          10,
		QueueLimit:         100,
		GrowThreshold:      10,
		Concurrency:        1,
		StartupTimeout:     10 * time.Second,
		HeartbeatTimeout:   30 * time.Second,
		IdleTimeout:        600 * time.Second,
		TerminationTimeout: 5 * time.Second,
	}
}

// Option adjusts what Parse accepts.
type Option func(*options)

type options struct {
	// sandboxes is nil when any sandbox type is accepted.
	sandboxes    []string
	driverChecks []func(Driver) []Problem
}

// WithSandboxes restricts "type" to the given sandbox names. Given with no names, no type is
// accepted: that is what an empty sandbox registry means.
func WithSandboxes(names ...string) Option {
	return func(o *options) {
		o.sandboxes = append([]string{}, names...)
	}
}

// WithDriverCheck adds a check run on every driver whose name, type and emit are well formed.
// The paths of the problems it returns are relative to the driver ("interval"); Parse prefixes
// them with the driver's path. It may be given more than once.
func WithDriverCheck(fn func(d Driver) []Problem) Option {
	return func(o *options) {
		if fn != nil {
			o.driverChecks = append(o.driverChecks, fn)
		}
	}
}

// ArgString returns args[key] when it is a string.
func (m *Manifest) ArgString(key string) (string, bool) {
	if m == nil {
		return "", false
	}
	s, ok := m.Args[key].(string)
	return s, ok
}

// Parse decodes and validates a manifest. On failure it returns a nil manifest and an *Error
// listing every problem found.
func Parse(data []byte, opts ...Option) (*Manifest, error) {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	v := &validator{opts: &o}
	root := v.decode(data)
	if root == nil {
		return nil, v.err()
	}
	m := v.manifest(root)
	if len(v.problems) > 0 {
		return nil, v.err()
	}
	m.Raw = append(json.RawMessage(nil), data...)
	return m, nil
}
