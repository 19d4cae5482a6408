package fcgiproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cocaine-cloud/cocaine/fcgiproxy/fastcgi"
)

// Listen binds the configured listeners; Serve then serves them. Binding
// first lets a caller report a taken port before anything runs.
func (f *Front) Listen() (httpL, fcgiL net.Listener, err error) {
	if f.cfg.HTTP != "" {
		if httpL, err = net.Listen("tcp", f.cfg.HTTP); err != nil {
			return nil, nil, fmt.Errorf("front: http: %w", err)
		}
	}
	if f.cfg.FastCGI != "" {
		network, addr := "tcp", f.cfg.FastCGI
		if path, ok := strings.CutPrefix(addr, "unix:"); ok {
			network, addr = "unix", path
			_ = os.Remove(path) // a socket left by an earlier run
		}
		if fcgiL, err = net.Listen(network, addr); err != nil {
			if httpL != nil {
				httpL.Close()
			}
			return nil, nil, fmt.Errorf("front: fastcgi: %w", err)
		}
		if network == "unix" {
			// nginx workers run as another user.
			_ = os.Chmod(addr, 0o666)
		}
	}
	return httpL, fcgiL, nil
}

// Serve serves the listeners (either may be nil) until ctx ends, then
// shuts down gracefully.
func (f *Front) Serve(ctx context.Context, httpL, fcgiL net.Listener) error {
	return f.ServeHandler(ctx, f, httpL, fcgiL)
}

// ServeHandler is Serve with h in place of the front, for a handler that
// wraps it (the REST API serves its own paths and hands the rest on).
func (f *Front) ServeHandler(ctx context.Context, h http.Handler, httpL, fcgiL net.Listener) error {
	cfg := &f.cfg
	hs := &http.Server{
		Handler:           stallBody(h, cfg.BodyTimeout.Duration),
		ReadHeaderTimeout: cfg.HeaderTimeout.Duration,
		IdleTimeout:       cfg.IdleTimeout.Duration,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnState:         connState,
		ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelWarn),
	}
	if httpL != nil {
		httpL = newLimitListener(httpL, cfg.MaxConns, cfg.WriteTimeout.Duration, f.log)
	}
	fs := &fastcgi.Server{Handler: h, Logger: f.log, MaxConns: cfg.MaxFastCGIConns,
		IdleTimeout: cfg.IdleTimeout.Duration, ParamsTimeout: cfg.HeaderTimeout.Duration}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if httpL != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(httpL); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if fcgiL != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fs.Serve(fcgiL); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	_ = fs.Shutdown(sctx)
	wg.Wait()
	return err
}
