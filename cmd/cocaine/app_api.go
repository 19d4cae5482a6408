package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cocaine-cloud/cocaine/engine"
	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/web"
)

// apiConfig is the [api] section of the gateway's config: the REST API
// and /metrics, served on the front's listeners.
type apiConfig struct {
	web.Config
	// Storage is the URI of the storage the API keeps apps in: the one the
	// engines read. Default "file://./var" (an engine's default too);
	// "off" serves no API.
	Storage string `toml:"storage"`
	// KeepVersions is how many versions of each app are kept for
	// rollback, the current one included. Default 5.
	KeepVersions int `toml:"keep-versions"`

	// Set by `cocaine dev`, which already has the storage open and an
	// engine to reconcile at once after a change.
	store   storage.Storage
	changed func(app string)
	// validate checks uploads; default engine.ValidateForNodes with the
	// dealer's live nodes. `cocaine dev` checks its own engine's
	// toolchains instead (engine.ValidateLocal).
	validate appstore.Validator
}

// tokenEnv names the variable that adds a token (and that the CLI reads).
const tokenEnv = "COCAINE_TOKEN"

// newAPI makes the REST API and dashboard (nil when [api] storage is
// "off"); the returned func releases what it opened.
func newAPI(ctx context.Context, cfg *apiConfig, d *gateway.Dealer, front http.Handler, reg *prometheus.Registry, log *slog.Logger) (*web.Server, func(), error) {
	if cfg.store == nil && cfg.Storage == "off" {
		return nil, func() {}, nil
	}
	st, release := cfg.store, func() {}
	if st == nil {
		uri := cfg.Storage
		if uri == "" {
			uri = "file://./var"
		}
		opened, err := storage.Open(ctx, uri)
		if err != nil {
			return nil, nil, fmt.Errorf("api: %w", err)
		}
		sm := storage.NewMetrics()
		if err := register(reg, sm.Collectors()...); err != nil {
			opened.Close()
			return nil, nil, err
		}
		st = sm.Instrument(opened, scheme(uri))
		release = func() { opened.Close() }
	}
	wc := cfg.Config
	wc.Tokens = append([]string(nil), wc.Tokens...)
	if t := strings.TrimSpace(os.Getenv(tokenEnv)); t != "" {
		wc.Tokens = append(wc.Tokens, t)
	}
	if len(wc.Tokens) == 0 {
		log.Warn("API writes are refused: no token; set " + tokenEnv + " or [api] tokens")
	}
	validate := cfg.validate
	if validate == nil {
		validate = engine.ValidateForNodes(d.Nodes)
	}
	store := appstore.New(st, appstore.Options{Keep: cfg.KeepVersions, Validate: validate})
	api, err := web.New(wc, web.Options{Store: store, Nodes: d, Changed: cfg.changed, Logger: log,
		Registry: reg, NodeInfo: d.NodeInfo, Front: front})
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("api: %w", err)
	}
	// Followed logs and event streams would hold a graceful shutdown
	// until its timeout.
	go func() { <-ctx.Done(); api.Close() }()
	return api, func() { api.Close(); release() }, nil
}

// scheme names a storage backend by its URI, for the metrics' label.
func scheme(uri string) string {
	if s, _, ok := strings.Cut(uri, "://"); ok {
		return s
	}
	return "unknown"
}

// devAPI wires the API of `cocaine dev` to its storage and engine, with
// the token devToken finds.
func devAPI(ctx context.Context, cfg *apiConfig, st storage.Storage, node *engine.Node, dataDir string) error {
	cfg.store, cfg.changed, cfg.validate = st, reconcileSoon(ctx, node), engine.ValidateLocal
	if os.Getenv(tokenEnv) != "" {
		fmt.Fprintf(os.Stderr, "cocaine dev: API token from %s\n", tokenEnv)
		return nil // mountAPI adds it
	}
	token, path, err := devToken(dataDir)
	if err != nil {
		return err
	}
	cfg.Tokens = append(cfg.Tokens, token)
	// The path, not the token: terminals and log collectors keep what
	// is printed.
	fmt.Fprintf(os.Stderr, "cocaine dev: API token in %s (`cocaine app` finds it there)\n", path)
	return nil
}

// devToken returns the token kept in DATA/token, or makes one and keeps
// it there (0600) for the CLI to find, so that it survives restarts.
func devToken(dataDir string) (token, path string, err error) {
	path = filepath.Join(dataDir, "token")
	token, err = readToken(path)
	if errors.Is(err, os.ErrNotExist) {
		var b [24]byte
		_, _ = rand.Read(b[:])
		token = hex.EncodeToString(b[:])
		if err = os.MkdirAll(dataDir, 0o755); err == nil {
			err = os.WriteFile(path, []byte(token+"\n"), 0o600)
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("api token: %w", err)
	}
	return token, path, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s is empty: %w", path, os.ErrNotExist)
	}
	return t, nil
}

// reconcileSoon makes the dev engine pick a change up now rather than at
// its next interval; changes that come while it reconciles coalesce.
func reconcileSoon(ctx context.Context, node *engine.Node) func(string) {
	kick := make(chan struct{}, 1)
	go func() {
		select {
		case <-node.Ready():
		case <-ctx.Done():
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
				node.Reconcile(ctx)
			}
		}
	}()
	return func(string) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}
