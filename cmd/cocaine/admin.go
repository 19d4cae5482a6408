package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cocaine-cloud/cocaine/web"
)

// adminConfig is the [admin] section of the gateway's config: where the
// REST API, the dashboard and /metrics are served, apart from app traffic.
type adminConfig struct {
	// Listen is the admin listener's address. Default "127.0.0.1:8081";
	// "off" for none.
	Listen string `toml:"listen"`
	// OnFront serves the admin paths (/, /ui/, /api/, /metrics) on the
	// front's HTTP and FastCGI listeners too, where they shadow apps of
	// those names and reach whoever reaches the front (nginx passes every
	// path). Default false.
	OnFront bool `toml:"on-front"`
}

func (c *adminConfig) Default() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8081"
	}
}

// Limits of the admin listener. No write timeout: log tails and the
// dashboard's event streams stay open; uploads are bounded by max-upload.
const (
	adminReadHeaderTimeout = 10 * time.Second
	adminReadTimeout       = 5 * time.Minute // a 64 MiB upload on a slow link
	adminIdleTimeout       = 2 * time.Minute
	adminMaxHeaderBytes    = 64 << 10
	adminShutdownGrace     = 5 * time.Second
)

// adminListen binds the admin address before anything serves, so that a
// taken port is reported at once.
func adminListen(addr string) (net.Listener, error) {
	if addr == "" || addr == "off" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	return l, nil
}

// serveAdmin serves h on l until ctx ends; closeStreams runs first on the
// way out, so that open event streams do not hold the shutdown.
func serveAdmin(ctx context.Context, l net.Listener, h http.Handler, closeStreams func(), log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: adminReadHeaderTimeout, ReadTimeout: adminReadTimeout,
		IdleTimeout: adminIdleTimeout, MaxHeaderBytes: adminMaxHeaderBytes}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("admin listening", "addr", l.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if closeStreams != nil {
		closeStreams()
	}
	sctx, cancel := context.WithTimeout(context.Background(), adminShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// metricsOnly serves a registry at /metrics: an engine alone, or a
// gateway with its API off.
func metricsOnly(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", web.MetricsHandler(reg))
	return mux
}
