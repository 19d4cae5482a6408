package gateway

import (
	"errors"
	"fmt"
	"github.com/cocaine-cloud/cocaine/internal/tomlconf"
	"time"
)

// FileConfig is the dealer's part of configs/gateway.toml.
type FileConfig struct {
	// Discovery lists sources of announce endpoints:
	// "static:tcp://h1:5001,tcp://h2:5001", "file:/etc/cocaine/hosts",
	// "multicast" or "multicast:239.0.100.53:5099".
	// Default: "static:tcp://127.0.0.1:5001".
	Discovery []string `toml:"discovery"`
	// AckTimeout: a node that has not accepted a request this long after
	// it was sent is skipped for another. Default "1s".
	AckTimeout Duration `toml:"ack-timeout"`
	// DeadAfter announce intervals of silence make a node dead. Default 3.
	DeadAfter int `toml:"dead-after"`
	// Balancer for apps not in Balancers: "smart" or "round-robin". Default "smart".
	Balancer string `toml:"balancer"`
	// Balancers per app.
	Balancers map[string]string `toml:"balancers"`
}

// Duration is a time.Duration written as a string in TOML ("30s").
type Duration = tomlconf.Duration

// Default fills unset fields.
func (c *FileConfig) Default() {
	if len(c.Discovery) == 0 {
		c.Discovery = []string{"static:tcp://127.0.0.1:5001"}
	}
	if c.AckTimeout.Duration == 0 {
		c.AckTimeout.Duration = time.Second
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = 3
	}
	if c.Balancer == "" {
		c.Balancer = Smart
	}
}

// Validate reports every problem at once.
func (c *FileConfig) Validate() error {
	var errs []error
	if c.AckTimeout.Duration < time.Millisecond {
		errs = append(errs, errors.New("ack-timeout: below 1ms"))
	}
	if c.DeadAfter < 1 {
		errs = append(errs, errors.New("dead-after: must be at least 1"))
	}
	if _, err := NewBalancer(c.Balancer); err != nil {
		errs = append(errs, fmt.Errorf("balancer: %w", err))
	}
	for app, b := range c.Balancers {
		if _, err := NewBalancer(b); err != nil {
			errs = append(errs, fmt.Errorf("balancers.%s: %w", app, err))
		}
	}
	return errors.Join(errs...)
}

// Config turns the file config into a dealer Config, with sources parsed
// by parse (discovery.Parse).
func (c *FileConfig) Config(parse func(spec string) (Source, error)) (Config, error) {
	cfg := Config{AckTimeout: c.AckTimeout.Duration, DeadAfter: c.DeadAfter, DefaultBalancer: c.Balancer, Balancers: c.Balancers}
	var errs []error
	for i, spec := range c.Discovery {
		s, err := parse(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("discovery[%d]: %w", i, err))
			continue
		}
		cfg.Sources = append(cfg.Sources, s)
	}
	return cfg, errors.Join(errs...)
}
