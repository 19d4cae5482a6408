// Package web is the platform's admin face: the REST API (under /api/v1),
// the dashboard (/ and /ui/, live through server-sent events) and the
// Prometheus metrics (/metrics). Commands serve it on an admin listener of
// its own; Mount can put it in front of the front's handler instead.
//
// Writes (upload, remove, start, stop, rollback) need a bearer token from
// Config.Tokens; reads are open unless Config.PrivateReads is set, like the
// dealer's own announces, which anyone who can reach a node may read.
// docs/api.md is the reference; /api/v1/openapi.json describes the same.
package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// Config configures the API. The zero Config plus Default is usable, but
// refuses every write until a token is set.
type Config struct {
	// Tokens may write (upload, remove, start, stop, rollback), sent as
	// "Authorization: Bearer TOKEN". No tokens: every write is refused.
	// Commands add COCAINE_TOKEN from the environment.
	Tokens []string `toml:"tokens"`
	// MaxUpload bounds an upload's request body in bytes; 413 past it.
	// Default 64 MiB.
	MaxUpload int64 `toml:"max-upload"`
	// PrivateReads makes reads need a token too. Default false: reads are
	// open. /metrics stays open either way.
	PrivateReads bool `toml:"private-reads"`
	// FollowPoll is how often a followed log is re-read. Default "250ms".
	FollowPoll time.Duration `toml:"-"`
}

// DefaultMaxUpload is Config.MaxUpload's default.
const DefaultMaxUpload = 64 << 20

// Default fills unset fields.
func (c *Config) Default() {
	if c.MaxUpload == 0 {
		c.MaxUpload = DefaultMaxUpload
	}
	if c.FollowPoll == 0 {
		c.FollowPoll = 250 * time.Millisecond
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxUpload < 0 {
		errs = append(errs, errors.New("max-upload: negative"))
	}
	for i, t := range c.Tokens {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, fmt.Errorf("tokens[%d]: empty", i))
		}
	}
	return errors.Join(errs...)
}

// NodeLister is the dealer as the API uses it: the live nodes and what
// they run.
type NodeLister interface {
	Nodes() []wire.NodeInfo
}

// Options are what the API works with.
type Options struct {
	// Store holds the apps. Required.
	Store *appstore.Store
	// Nodes lists the live nodes; nil shows none.
	Nodes NodeLister
	// Changed is called after an app was uploaded, removed, stopped,
	// started or rolled back, so that a local engine can reconcile at once
	// instead of at its next interval. May be nil.
	Changed func(app string)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registry holds every metric of the process, served at /metrics; the
	// API adds its own. Nil: a registry of the API's own. The dashboard's
	// rates and percentiles are read from it (stats.go).
	Registry *prometheus.Registry
	// NodeInfo asks a node for its slaves (the node page); may be nil.
	NodeInfo NodeDetailer
	// Front carries the request panel's calls, as the traffic listener
	// would; nil turns the panel off.
	Front http.Handler
}

// Server is the API's http.Handler.
type Server struct {
	cfg      Config
	store    *appstore.Store
	nodes    NodeLister
	changed  func(string)
	log      *slog.Logger
	metrics  *metrics
	router   chi.Router
	tokens   [][32]byte
	sessions *sessions
	stats    *sampler
	nodeInfo NodeDetailer
	front    http.Handler

	closeOnce sync.Once
	done      chan struct{}
}

// New makes the API.
func New(cfg Config, o Options) (*Server, error) {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, errors.New("web: no app store")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Changed == nil {
		o.Changed = func(string) {}
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: o.Store, nodes: o.Nodes, changed: o.Changed,
		log: o.Logger.With("component", "api"), metrics: m, done: make(chan struct{}),
		sessions: newSessions(), nodeInfo: o.NodeInfo, front: o.Front}
	for _, t := range cfg.Tokens {
		s.tokens = append(s.tokens, digest(t))
	}
	s.router = s.routes()
	if o.Registry != nil {
		s.stats = newSampler(o.Registry)
		go s.stats.run(s.done)
	}
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Handles reports whether path belongs to the API or the dashboard
// rather than to an app.
func Handles(path string) bool {
	return path == "/" || path == "/metrics" || path == "/api" || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/ui/")
}

// Mount returns a handler that serves the API's paths (Handles) and hands
// every other request to front: the admin face on the traffic listener,
// an explicit choice of the config. An app named "api", "metrics" or "ui"
// is thus not reachable as /APP/EVENT; uploads refuse those names.
func (s *Server) Mount(front http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Handles(r.URL.Path) {
			s.ServeHTTP(w, r)
			return
		}
		front.ServeHTTP(w, r)
	})
}

// Close ends the log streams being followed and the dashboard's event
// streams, so that a server shutdown does not wait for clients that would
// follow forever, and stops the dashboard's sampler.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.done) }) }

// reserved are names the front routes to the API, or will (ui).
var reserved = map[string]bool{"api": true, "metrics": true, "ui": true}

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	// HEAD answers as GET does, without the body (RFC 9110 asks every
	// GET resource to support it; monitors and caches use it).
	r.Use(s.instrument, s.recoverer, middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path, nil)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path, nil)
	})
	r.Method(http.MethodGet, "/metrics", s.metrics.handler())
	r.Get("/", s.serveUI)
	r.Get("/ui/{file}", s.serveUI)
	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/openapi.json", serveOpenAPI)
		r.Get("/session", s.getSession)
		r.Post("/session", s.login)
		r.Delete("/session", s.logout)
		r.Group(func(r chi.Router) {
			if s.cfg.PrivateReads {
				r.Use(s.requireToken)
			}
			r.Get("/events", s.events)
			r.Get("/nodes/{node}", s.nodeDetail)
			r.Get("/apps", s.listApps)
			r.Get("/apps/{name}", s.appInfo)
			r.Get("/apps/{name}/logs", s.logs)
			r.Get("/apps/{name}/crashlogs", s.crashes)
			r.Get("/apps/{name}/crashlogs/{key}", s.crashLog)
			r.Get("/nodes", s.listNodes)
		})
		r.Group(func(r chi.Router) {
			r.Use(s.requireToken)
			r.Put("/apps/{name}", s.upload)
			r.Delete("/apps/{name}", s.remove)
			r.Post("/apps/{name}/start", s.start)
			r.Post("/apps/{name}/stop", s.stop)
			r.Post("/apps/{name}/rollback", s.rollback)
			r.Post("/apps/{name}/call/{event}", s.call)
		})
	})
	return r
}
