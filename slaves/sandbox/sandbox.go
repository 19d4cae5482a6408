// Package sandbox turns an unpacked app into the command of its slaves.
// Each language is a Sandbox registered under the manifest's `type`, so a
// new language is one small file: binary and go live here, python in
// slaves/python.
package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"sort"
	"sync"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// App is a deployed app as a sandbox sees it.
type App struct {
	Name     string
	Dir      string // the unpacked package, also the slaves' working directory
	Manifest *manifest.Manifest
	Logger   *slog.Logger
	// User, when set, is who the slaves run as (the engine runs as root
	// and keeps apps apart); Dir must already be theirs.
	User *User
	// DefaultMemory is the memory limit in bytes of an app whose manifest
	// sets none; 0 for none.
	DefaultMemory int64
}

// User is a uid and gid for an app's slaves.
type User struct{ UID, GID int }

// Sandbox prepares apps of one type.
type Sandbox interface {
	// Prepare readies app (builds it, checks its entry point) once per
	// deploy and returns how to start its slaves.
	Prepare(ctx context.Context, app App) (Launcher, error)
}

// Validator is implemented by sandboxes that check their manifest `args`
// at upload; paths in problems are relative to args (e.g. "path").
type Validator interface {
	ValidateArgs(m *manifest.Manifest) []manifest.Problem
}

// WebDefaulter is implemented by sandboxes whose apps may be web apps
// served unchanged (WSGI, PSGI, a Node request listener): it says whether
// an event that does not declare its payload speaks the HTTP payload.
type WebDefaulter interface {
	HTTPByDefault(m *manifest.Manifest) bool
}

// Payload kinds of a native-server event (its manifest "payload" key):
// the HTTP payload of docs/protocol.md, or the body as raw bytes.
const (
	PayloadHTTP = "http"
	PayloadRaw  = "raw"
)

// DefaultPayload is the payload of an event of m that does not declare
// one: raw, unless the sandbox says the app is a web app.
func DefaultPayload(m *manifest.Manifest) string {
	if s, err := Get(m.Type); err == nil {
		if w, ok := s.(WebDefaulter); ok && w.HTTPByDefault(m) {
			return PayloadHTTP
		}
	}
	return PayloadRaw
}

// Launcher makes the command of one slave. The pool adds the protocol
// environment; Limit adds resource limits.
type Launcher interface {
	Command(slaveID string) (*exec.Cmd, error)
}

// LauncherFunc adapts a function to Launcher.
type LauncherFunc func(slaveID string) (*exec.Cmd, error)

// Command calls f.
func (f LauncherFunc) Command(id string) (*exec.Cmd, error) { return f(id) }

var (
	mu        sync.RWMutex
	sandboxes = map[string]Sandbox{}
)

// Register makes a sandbox available under a manifest type. Called from
// init or at node start with the node's settings; a later call replaces an
// earlier one so a node can configure a sandbox (the Go toolchain, the
// Python interpreter).
func Register(typ string, s Sandbox) {
	mu.Lock()
	defer mu.Unlock()
	sandboxes[typ] = s
}

// Get returns the sandbox for typ.
func Get(typ string) (Sandbox, error) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := sandboxes[typ]
	if !ok {
		return nil, fmt.Errorf("sandbox: no sandbox for type %q", typ)
	}
	return s, nil
}

// Types lists the registered sandbox types.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(sandboxes))
	for t := range sandboxes {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ValidateArgs runs the sandbox's own checks of m.Args, if it has any.
func ValidateArgs(m *manifest.Manifest) []manifest.Problem {
	s, err := Get(m.Type)
	if err != nil {
		return nil // the manifest parser reports the unknown type
	}
	if v, ok := s.(Validator); ok {
		return v.ValidateArgs(m)
	}
	return nil
}

// Checker is implemented by sandboxes that need something on the node (a
// toolchain, an interpreter). Check says what is missing and how to
// install it; nodes run it at upload and before preparing an app.
type Checker interface {
	Check() error
}

// Check runs the Checker of the sandbox for typ, if it has one.
func Check(typ string) error {
	s, err := Get(typ)
	if err != nil {
		return err
	}
	if c, ok := s.(Checker); ok {
		return c.Check()
	}
	return nil
}
