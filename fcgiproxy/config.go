// Package fcgiproxy is the front: it serves HTTP and FastCGI (for nginx
// fastcgi_pass) and carries each request through the embedded dealer to
// an app's event, streaming the answer back.
package fcgiproxy

import (
	"errors"
	"fmt"
	"github.com/cocaine-cloud/cocaine/internal/tomlconf"
	"strings"
	"time"
)

// Config configures the front. Zero values take the defaults of Default.
type Config struct {
	// HTTP is the address of the HTTP listener ("" for none).
	HTTP string `toml:"http"`
	// FastCGI is the FastCGI listener: "host:port" or "unix:/path" ("" for none).
	FastCGI string `toml:"fastcgi"`
	// MaxBody bounds a request body in bytes; larger ones get 413. Default 64 MiB.
	MaxBody int64 `toml:"max-body"`
	// DefaultDeadline applies when a request names none. Default "30s".
	DefaultDeadline Duration `toml:"default-deadline"`
	// MaxDeadline caps X-Cocaine-Deadline. Default "5m".
	MaxDeadline Duration `toml:"max-deadline"`
	// MaxTimeout caps X-Cocaine-Timeout. Default "5m".
	MaxTimeout Duration `toml:"max-timeout"`
	// DefaultRetries and MaxRetries bound re-sends after a node accepted a
	// request and was lost before answering. Defaults 1 and 5.
	DefaultRetries int `toml:"default-retries"`
	MaxRetries     int `toml:"max-retries"`
	// MaxStreams bounds the requests whose body streams (longer than the
	// 64 KiB the front reads before sending) at once; more answer 503 at
	// once. Each holds at most a few flow-control windows in memory, so
	// this bounds the front's memory for uploads. Default 16.
	MaxStreams int `toml:"max-streams"`
	// MaxConns caps the HTTP listener's open connections. At the cap the
	// oldest idle connection (accepted but silent, or kept alive between
	// requests) is closed to make room; only when all are busy do new ones
	// wait in the kernel's backlog. Keep it and max-fastcgi-conns well
	// below the process's open-file limit (ulimit -n): the engine in the
	// same process needs descriptors for slaves and logs. Default 8192.
	MaxConns int `toml:"max-conns"`
	// MaxFastCGIConns is MaxConns for the FastCGI listener. Default 1024.
	MaxFastCGIConns int `toml:"max-fastcgi-conns"`
	// HeaderTimeout bounds reading a request's headers (HTTP) or its
	// params (FastCGI, from BEGIN_REQUEST). Default "10s".
	HeaderTimeout Duration `toml:"header-timeout"`
	// IdleTimeout closes a connection that carries no request for this
	// long: between keep-alive requests, or before the first. Default "60s".
	IdleTimeout Duration `toml:"idle-timeout"`
	// BodyTimeout closes an HTTP connection whose client sends no byte of
	// the request body for this long while the body is read. Default "30s".
	BodyTimeout Duration `toml:"body-timeout"`
	// WriteTimeout closes an HTTP connection whose client takes no byte
	// of the response for this long (each write must finish within it,
	// so a long stream is fine while the client reads). Default "30s".
	WriteTimeout Duration `toml:"write-timeout"`
	// MaxHeaderBytes bounds an HTTP request's header block. Default 65536.
	MaxHeaderBytes int `toml:"max-header-bytes"`
	// Routes map hosts and path prefixes to app events; the first match
	// wins, else the path is /APP/EVENT[/rest].
	Routes []Route `toml:"route"`
	// NoMetrics turns the front's per-request metrics off, to measure
	// what they cost (docs/benchmarks.md). Default false.
	NoMetrics bool `toml:"no-metrics"`
}

// Route sends requests for Host (any when empty) under Prefix to App/Event.
type Route struct {
	Host   string `toml:"host"`
	Prefix string `toml:"prefix"`
	App    string `toml:"app"`
	Event  string `toml:"event"`
}

// Duration is a time.Duration written as a string in TOML ("30s").
type Duration = tomlconf.Duration

// Default fills unset fields.
func (c *Config) Default() {
	if c.MaxBody == 0 {
		c.MaxBody = 64 << 20
	}
	if c.DefaultDeadline.Duration == 0 {
		c.DefaultDeadline.Duration = 30 * time.Second
	}
	if c.MaxDeadline.Duration == 0 {
		c.MaxDeadline.Duration = 5 * time.Minute
	}
	if c.MaxTimeout.Duration == 0 {
		c.MaxTimeout.Duration = 5 * time.Minute
	}
	if c.MaxConns == 0 {
		c.MaxConns = 8192
	}
	if c.MaxFastCGIConns == 0 {
		c.MaxFastCGIConns = 1024
	}
	for _, d := range []struct {
		v   *Duration
		def time.Duration
	}{{&c.HeaderTimeout, 10 * time.Second}, {&c.IdleTimeout, time.Minute},
		{&c.BodyTimeout, 30 * time.Second}, {&c.WriteTimeout, 30 * time.Second}} {
		if d.v.Duration == 0 {
			d.v.Duration = d.def
		}
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.DefaultRetries == 0 {
		c.DefaultRetries = 1
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = 16
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBody < 0 {
		errs = append(errs, errors.New("max-body: negative"))
	}
	if c.MaxStreams < 0 {
		errs = append(errs, errors.New("max-streams: negative"))
	}
	if c.MaxConns < 0 || c.MaxFastCGIConns < 0 || c.MaxHeaderBytes < 0 {
		errs = append(errs, errors.New("max-conns, max-fastcgi-conns, max-header-bytes: negative"))
	}
	if c.HeaderTimeout.Duration < 0 || c.IdleTimeout.Duration < 0 || c.BodyTimeout.Duration < 0 || c.WriteTimeout.Duration < 0 {
		errs = append(errs, errors.New("header-timeout, idle-timeout, body-timeout, write-timeout: negative"))
	}
	if c.DefaultDeadline.Duration > c.MaxDeadline.Duration {
		errs = append(errs, errors.New("default-deadline: above max-deadline"))
	}
	if c.DefaultRetries > c.MaxRetries || c.DefaultRetries < 0 {
		errs = append(errs, errors.New("default-retries: must be between 0 and max-retries"))
	}
	for i, r := range c.Routes {
		if r.App == "" || r.Event == "" {
			errs = append(errs, fmt.Errorf("route[%d]: app and event are required", i))
		}
		if r.Prefix != "" && !strings.HasPrefix(r.Prefix, "/") {
			errs = append(errs, fmt.Errorf("route[%d]: prefix %q must start with /", i, r.Prefix))
		}
	}
	return errors.Join(errs...)
}
