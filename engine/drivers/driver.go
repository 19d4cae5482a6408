// Package drivers holds the event drivers of an app: the sources of its
// events. Each driver type is one small file registering itself by the
// manifest's `type`; the engine starts an app's drivers with the app and
// stops them with it.
package drivers

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
)

// Target is where a driver sends its jobs: the app's pool.
type Target interface {
	// Submit queues a job or refuses it at once (a *wire.Error); see pool.Pool.Submit.
	Submit(j *pool.Job) error
}

// Env is what a driver knows about its app.
type Env struct {
	App    string
	Spool  string // the app's unpacked package; relative paths resolve here
	Target Target
	Logger *slog.Logger
}

// Driver is one running event source.
type Driver interface {
	// Start begins making events. It must not block; the driver runs until
	// Stop. ctx carries no deadline for the driver's life.
	Start(ctx context.Context) error
	// Stop ends the driver and waits for its goroutines, sockets and watches
	// to be released. Jobs already submitted finish on their own.
	Stop()
	// Info describes the driver for announces and `cocaine info`: at least
	// "type" and "emit", its settings, counters and last error.
	Info() map[string]any
}

// Factory makes a driver from its manifest entry. It is called after the
// manifest passed Check.
type Factory func(d manifest.Driver, env Env) (Driver, error)

// Check validates a driver's settings; paths in problems are relative to
// the driver (e.g. "interval").
type Check func(d manifest.Driver) []manifest.Problem

type entry struct {
	factory Factory
	check   Check
}

var (
	mu       sync.RWMutex
	registry = map[string]entry{}
)

// Register makes a driver type available. Called from init; panics on a
// duplicate.
func Register(typ string, f Factory, c Check) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("drivers: Register called twice for " + typ)
	}
	registry[typ] = entry{f, c}
}

// Types lists the registered driver types.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Validate checks a manifest driver entry: a known type with valid
// settings. It is the manifest.WithDriverCheck hook.
func Validate(d manifest.Driver) []manifest.Problem {
	mu.RLock()
	e, ok := registry[d.Type]
	mu.RUnlock()
	if !ok {
		return []manifest.Problem{{Path: "type", Message: fmt.Sprintf("unknown driver type %q (have %v)", d.Type, Types())}}
	}
	if e.check == nil {
		return nil
	}
	return e.check(d)
}

// New makes a driver.
func New(d manifest.Driver, env Env) (Driver, error) {
	mu.RLock()
	e, ok := registry[d.Type]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("drivers: unknown type %q", d.Type)
	}
	return e.factory(d, env)
}

// BaseInfo is the part of Info every driver shares.
func BaseInfo(d manifest.Driver) map[string]any {
	info := map[string]any{"type": d.Type, "emit": d.Emit}
	for k, v := range d.Settings {
		info[k] = v
	}
	return info
}
