package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// Exit codes the CLI uses.
const (
	exitOK      = 0
	exitFailure = 1 // the request failed, or the server did
	exitUsage   = 2
)

func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: cocaine %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// profileFlag adds --cpuprofile to a long-running command; start begins
// the profile and returns what stops it (on the command's return, after a
// signal too).
func profileFlag(fs *flag.FlagSet) (start func() (stop func(), err error)) {
	path := fs.String("cpuprofile", "", "write a CPU profile (pprof) of this process to `FILE`, from start to stop")
	return func() (func(), error) {
		if *path == "" {
			return func() {}, nil
		}
		f, err := os.Create(*path)
		if err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		return func() { pprof.StopCPUProfile(); f.Close() }, nil
	}
}

// serverRuntime gives the Go scheduler of a long-running platform process
// (dev, gateway, engine) half the CPUs Go would use, at least one, unless
// GOMAXPROCS is set. The platform only routes: the apps' slaves and the
// web server in front do the work and need the other half. On a small
// machine a second scheduler thread mostly spins looking for work at every
// wake-up, and measured more CPU per request than the parallelism it
// bought (docs/benchmarks.md). GOGC is left at its default: 400 saved
// about 6 % of the CPU per request and cost 12 MB of RSS at idle.
func serverRuntime() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newLogger(verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}
