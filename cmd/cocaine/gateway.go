package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cocaine-cloud/cocaine/internal/tomlconf"
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
	"github.com/cocaine-cloud/cocaine/web"

	"github.com/cocaine-cloud/cocaine/fcgiproxy"
	"github.com/cocaine-cloud/cocaine/gateway"
)

// gatewayConfig is configs/gateway.toml.
type gatewayConfig struct {
	Dealer gateway.FileConfig `toml:"dealer"`
	Front  fcgiproxy.Config   `toml:"front"`
	API    apiConfig          `toml:"api"`   // the REST API (app_api.go)
	Admin  adminConfig        `toml:"admin"` // where the API, dashboard and metrics are served (admin.go)
	// Security of the dealer's sockets to engines: the same [security]
	// as the engines' configs (cluster key, message bound).
	Security zmqsec.Config `toml:"security"`
}

func loadGatewayConfig(path string) (*gatewayConfig, error) {
	var c gatewayConfig
	if path != "" {
		if err := tomlconf.DecodeFile(path, &c); err != nil {
			return nil, err
		}
	} else {
		c.Front.HTTP, c.Front.FastCGI = "127.0.0.1:8080", "127.0.0.1:9000"
	}
	c.Dealer.Default()
	c.Front.Default()
	c.Admin.Default()
	c.Security.Default()
	if err := c.Security.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Dealer.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: dealer: %w", path, err)
	}
	if err := c.Front.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: front: %w", path, err)
	}
	return &c, nil
}

func runGateway(args []string) int {
	fs := newFlags("gateway", "gateway -c FILE")
	config := fs.String("c", "", "TOML config file (see configs/gateway.toml)")
	verbose := fs.Bool("v", false, "debug logging")
	profile := profileFlag(fs)
	if fs.Parse(args) != nil {
		return exitUsage
	}
	stopProfile, err := profile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine gateway:", err)
		return exitUsage
	}
	defer stopProfile()
	serverRuntime()
	cfg, err := loadGatewayConfig(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine gateway:", err)
		return exitUsage
	}
	log := newLogger(*verbose)
	ctx, cancel := signalContext()
	defer cancel()
	if err := serveFront(ctx, cfg, web.NewRegistry(), log, nil); err != nil {
		fmt.Fprintln(os.Stderr, "cocaine gateway:", err)
		return exitFailure
	}
	return exitOK
}

// serveFront runs a dealer, the front over it and the admin listener
// until ctx ends. Every component's metrics go to reg. local, when not
// nil, is the engine of this process: requests for it skip ZeroMQ.
func serveFront(ctx context.Context, cfg *gatewayConfig, reg *prometheus.Registry, log *slog.Logger, local gateway.Local) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dcfg, err := cfg.Dealer.Config(parseSource)
	if err != nil {
		return err
	}
	dcfg.Logger = log
	dcfg.Local = local
	dcfg.Security = &cfg.Security
	d, err := gateway.New(dcfg)
	if err != nil {
		return err
	}
	defer d.Close()
	front, err := fcgiproxy.New(cfg.Front, d, log)
	if err != nil {
		return err
	}
	if err := register(reg, append(front.Collectors(), d.Collector())...); err != nil {
		return err
	}
	api, closeAPI, err := newAPI(ctx, &cfg.API, d, front, reg, log)
	if err != nil {
		return err
	}
	defer closeAPI()
	adminL, err := adminListen(cfg.Admin.Listen)
	if err != nil {
		return err
	}
	httpL, fcgiL, err := front.Listen()
	if err != nil {
		if adminL != nil {
			adminL.Close()
		}
		return err
	}
	h := http.Handler(front)
	if cfg.Admin.OnFront && api != nil {
		h = api.Mount(front)
	}
	adminErr := make(chan error, 1)
	if adminL != nil {
		var ah http.Handler = metricsOnly(reg)
		closeStreams := func() {}
		if api != nil {
			ah, closeStreams = api, api.Close
		}
		go func() {
			err := serveAdmin(ctx, adminL, ah, closeStreams, log)
			if err != nil {
				cancel()
			}
			adminErr <- err
		}()
	} else {
		adminErr <- nil
	}
	log.Info("front listening", "http", cfg.Front.HTTP, "fastcgi", cfg.Front.FastCGI, "admin", cfg.Admin.Listen, "discovery", cfg.Dealer.Discovery)
	err = front.ServeHandler(ctx, h, httpL, fcgiL)
	cancel()
	return errors.Join(err, <-adminErr)
}

func register(reg *prometheus.Registry, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}
