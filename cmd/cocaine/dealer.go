package main

import (
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"

	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/gateway/discovery"
)

const defaultDiscovery = "static:tcp://127.0.0.1:5001"

// parseSource adapts discovery.Parse to the dealer's Source type.
func parseSource(spec string) (gateway.Source, error) { return discovery.Parse(spec) }

// cliDealer makes a dealer for one-shot commands and waits, briefly, for
// the nodes its sources name to announce themselves.
func cliDealer(specs string, wait time.Duration) (*gateway.Dealer, error) {
	fc := gateway.FileConfig{Discovery: strings.Split(specs, ";")}
	fc.Default()
	cfg, err := fc.Config(parseSource)
	if err != nil {
		return nil, err
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	// A secure cluster's key comes from the environment; without one the
	// CLI talks to insecure nodes (cocaine dev).
	var sec zmqsec.Config
	sec.Default()
	sec.Insecure = sec.CurveSecret == ""
	if err := sec.Validate(); err != nil {
		return nil, err
	}
	cfg.Security = &sec
	d, err := gateway.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_ = d.WaitDiscovery(ctx) // a silent source is reported by the request itself
	return d, nil
}
