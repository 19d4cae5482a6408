package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
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

// serverRuntime tunes the Go runtime of a long-running platform process
// (dev, gateway, engine); each setting yields to its environment variable.
//   - GOMAXPROCS: half the CPUs Go would use, at least one. The platform
//     only routes: the apps' slaves and the web server in front do the work
//     and need the other half. On a small machine a second scheduler thread
//     mostly spins looking for work at every wake-up, and measured more CPU
//     per request than the parallelism it bought (docs/benchmarks.md).
//   - GOGC 400 under a GOMEMLIMIT of 64 MiB: the live heap of a router is
//     small and bounded (flow-control windows), so with the default the
//     collector ran, and scanned every request goroutine's stack, every
//     few hundred requests; the limit still keeps the heap near what it
//     was whenever the live heap grows.
func serverRuntime() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(64 << 20)
		}
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
