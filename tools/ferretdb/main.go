// Command ferretdb runs an embedded FerretDB (SQLite handler) so that the
// mongodb storage backend can be tested against a real wire-protocol server.
//
// It lives in its own module so that FerretDB's large dependency tree (pgx,
// modernc sqlite, otel, ...) never enters the platform's go.mod. It embeds the
// library rather than building FerretDB's cmd/ferretdb, because that main
// panics unless a generated version file exists, and the module zip lacks it.
//
// Usage: ferretdb [-listen 127.0.0.1:27017] [-dir DIR] [-log-level warn]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to serve the MongoDB wire protocol on")
	dir := flag.String("dir", "ferretdb-data", "directory for the SQLite databases (created if missing)")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: -log-level: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	if err := run(*listen, *dir, logger); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}

func run(listen, dir string, logger *slog.Logger) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("data dir %q: %w", dir, err)
	}
	// The SQLite handler refuses to start on a missing directory.
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}

	// Signals are caught before New binds the port, so that a supervisor's
	// SIGTERM right after start still gets a clean shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		return fmt.Errorf("start on %s with %s: %w", listen, abs, err)
	}
	// Run blocks until ctx is cancelled, then closes connections and the
	// SQLite databases, so a stop by signal leaves the data dir consistent.
	if err := f.Run(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
