package main

import (
	"fmt"
	"os"

	"github.com/cocaine-cloud/cocaine/engine"
	"github.com/cocaine-cloud/cocaine/storage"
	_ "github.com/cocaine-cloud/cocaine/storage/files"
	_ "github.com/cocaine-cloud/cocaine/storage/mongodb"
	_ "github.com/cocaine-cloud/cocaine/storage/nats"
	"github.com/cocaine-cloud/cocaine/web"
)

func runEngine(args []string) int {
	fs := newFlags("engine", "engine -c FILE")
	config := fs.String("c", "", "TOML config file (see configs/engine.toml); defaults apply without one")
	verbose := fs.Bool("v", false, "debug logging")
	profile := profileFlag(fs)
	if fs.Parse(args) != nil {
		return exitUsage
	}
	stopProfile, err := profile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine engine:", err)
		return exitUsage
	}
	defer stopProfile()
	serverRuntime()
	var cfg engine.Config
	if *config != "" {
		c, err := engine.LoadConfig(*config)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cocaine engine:", err)
			return exitUsage
		}
		cfg = *c
	}
	cfg.Default()
	log := newLogger(*verbose)
	ctx, cancel := signalContext()
	defer cancel()
	opened, err := storage.Open(ctx, cfg.Storage)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine engine:", err)
		return exitFailure
	}
	defer opened.Close()
	reg := web.NewRegistry()
	sm := storage.NewMetrics()
	st := sm.Instrument(opened, scheme(cfg.Storage))
	node, err := engine.New(cfg, st, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine engine:", err)
		return exitFailure
	}
	reg.MustRegister(append(sm.Collectors(), node.Collector())...)
	// The engine's own /metrics, beside its ZeroMQ endpoints.
	ml, err := adminListen(cfg.Metrics)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine engine:", err)
		return exitFailure
	}
	metricsDone := make(chan error, 1)
	if ml != nil {
		go func() { metricsDone <- serveAdmin(ctx, ml, metricsOnly(reg), nil, log) }()
	} else {
		metricsDone <- nil
	}
	if err := node.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cocaine engine:", err)
		cancel()
		<-metricsDone
		return exitFailure
	}
	cancel()
	if err := <-metricsDone; err != nil {
		fmt.Fprintln(os.Stderr, "cocaine engine: metrics:", err)
		return exitFailure
	}
	return exitOK
}
