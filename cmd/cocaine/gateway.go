package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/cocaine-cloud/cocaine/internal/tomlconf"
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"

	"github.com/cocaine-cloud/cocaine/fcgiproxy"
	"github.com/cocaine-cloud/cocaine/gateway"
)

// gatewayConfig is configs/gateway.toml.
type gatewayConfig struct {
	Dealer gateway.FileConfig `toml:"dealer"`
	Front  fcgiproxy.Config   `toml:"front"`
	API    apiConfig          `toml:"api"` // the REST API (app_api.go)
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
	if err := serveFront(ctx, cfg, log, nil); err != nil {
		fmt.Fprintln(os.Stderr, "cocaine gateway:", err)
		return exitFailure
	}
	return exitOK
}

// serveFront runs a dealer and the front over it until ctx ends. local,
// when not nil, is the engine of this process: requests for it skip ZeroMQ.
func serveFront(ctx context.Context, cfg *gatewayConfig, log *slog.Logger, local gateway.Local) error {
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
	h, closeAPI, err := mountAPI(ctx, &cfg.API, d, front, log)
	if err != nil {
		return err
	}
	defer closeAPI()
	httpL, fcgiL, err := front.Listen()
	if err != nil {
		return err
	}
	log.Info("front listening", "http", cfg.Front.HTTP, "fastcgi", cfg.Front.FastCGI, "discovery", cfg.Dealer.Discovery)
	return front.ServeHandler(ctx, h, httpL, fcgiL)
}
