package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cocaine-cloud/cocaine/engine"
	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/fcgiproxy"
	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/files"
	"github.com/cocaine-cloud/cocaine/web"
)

func runDev(args []string) int {
	fs := newFlags("dev", "dev [--data DIR] [--apps DIR]")
	data := fs.String("data", "./var", "data directory: storage, sockets, unpacked apps, build cache")
	apps := fs.String("apps", "./examples", "deploy every subfolder holding a manifest.json")
	storeURI := fs.String("storage", "", "storage URI (file:///path, mongodb://host:port/db or nats://host:port[,host:port...]); default: files under --data")
	listen := fs.String("listen", "tcp://127.0.0.1:5000", "engine request endpoint")
	announce := fs.String("announce", "tcp://127.0.0.1:5001", "engine announce endpoint")
	interval := fs.Duration("announce-interval", time.Second, "how often the engine announces itself")
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP front address (empty: none)")
	fcgiAddr := fs.String("fastcgi", "127.0.0.1:9000", "FastCGI front address, host:port or unix:/path (empty: none)")
	adminAddr := fs.String("admin", "127.0.0.1:8081", "admin address: REST API, dashboard and /metrics (\"off\": none)")
	mcast := fs.String("multicast", "", "send discovery beacons to this group:port (e.g. 239.0.100.53:5099); empty: none")
	maxBody := fs.Int64("max-body", 64<<20, "largest request body the front accepts, in bytes (413 past it)")
	noLocal := fs.Bool("no-local-route", false, "send the front's requests to the engine over ZeroMQ, as a separate gateway would")
	frontMetrics := fs.Bool("front-metrics", true, "count every request through the front (false: to measure what it costs)")
	verbose := fs.Bool("v", false, "debug logging")
	profile := profileFlag(fs)
	if fs.Parse(args) != nil {
		return exitUsage
	}
	stopProfile, err := profile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine dev:", err)
		return exitUsage
	}
	defer stopProfile()
	serverRuntime()
	log := newLogger(*verbose)
	ctx, cancel := signalContext()
	defer cancel()

	abs, err := filepath.Abs(*data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine dev:", err)
		return exitFailure
	}
	var opened storage.Storage
	backend := "file"
	if *storeURI == "" {
		opened, err = files.Open(filepath.Join(abs, "storage"), files.Options{})
	} else {
		opened, err = storage.Open(ctx, *storeURI)
		backend = scheme(*storeURI)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine dev:", err)
		return exitFailure
	}
	defer opened.Close()
	// One registry for every part, served on the admin listener.
	reg := web.NewRegistry()
	sm := storage.NewMetrics()
	reg.MustRegister(sm.Collectors()...)
	st := sm.Instrument(opened, backend)
	cfg := engine.Config{Listen: *listen, Announce: *announce, DataDir: abs, AnnounceInterval: engine.Duration{Duration: *interval},
		Multicast: engine.MulticastConfig{Enabled: *mcast != "", Group: *mcast}}
	// One machine, one process: no cluster key to hand around.
	cfg.Security.Insecure = true
	// Apps may not take the front's ports.
	for _, a := range []string{*httpAddr, *fcgiAddr} {
		if _, port, err := net.SplitHostPort(a); err == nil {
			if p, err := strconv.Atoi(port); err == nil {
				cfg.Drivers.ReservedPorts = append(cfg.Drivers.ReservedPorts, p)
			}
		}
	}
	node, err := engine.New(cfg, st, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine dev:", err)
		return exitFailure
	}
	// After engine.New, which configures the sandboxes the uploads check.
	if err := uploadExamples(ctx, st, *apps); err != nil {
		fmt.Fprintln(os.Stderr, "cocaine dev:", err)
		return exitFailure
	}
	// The front runs beside the engine, its dealer discovering this node.
	reg.MustRegister(node.Collector())
	gw := &gatewayConfig{Front: fcgiproxy.Config{HTTP: *httpAddr, FastCGI: *fcgiAddr, MaxBody: *maxBody, NoMetrics: !*frontMetrics},
		Dealer: gateway.FileConfig{Discovery: []string{"static:" + *announce}}, Admin: adminConfig{Listen: *adminAddr}}
	gw.Dealer.Default()
	gw.Front.Default()
	gw.Security = zmqsec.Config{Insecure: true}
	gw.Security.Default()
	gw.Admin.Default()
	if err := devAPI(ctx, &gw.API, st, node, abs); err != nil {
		fmt.Fprintln(os.Stderr, "cocaine dev:", err)
		return exitFailure
	}
	frontErr := make(chan error, 1)
	go func() {
		if *httpAddr == "" && *fcgiAddr == "" && *adminAddr == "off" {
			return
		}
		var local gateway.Local
		if !*noLocal {
			local = localEngine{node}
		}
		if err := serveFront(ctx, gw, reg, log, local); err != nil {
			frontErr <- err
			cancel()
		}
	}()
	go func() {
		// Say what runs once the apps had a moment to start.
		select {
		case <-node.Ready():
		case <-ctx.Done():
			return
		}
		fmt.Fprintf(os.Stderr, "\ncocaine dev: engine on %s (announce %s), data in %s\n", *listen, *announce, abs)
		if *httpAddr != "" {
			fmt.Fprintf(os.Stderr, "cocaine dev: HTTP front on http://%s/APP/EVENT, FastCGI on %s\n", *httpAddr, *fcgiAddr)
		}
		if *adminAddr != "off" {
			fmt.Fprintf(os.Stderr, "cocaine dev: dashboard on http://%s/ (API /api/v1, metrics /metrics)\n", *adminAddr)
		}
		fmt.Fprintf(os.Stderr, "cocaine dev: apps %v; try: %s call echo/echo hello\n\n", node.Apps(), os.Args[0])
	}()
	if err := node.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cocaine dev:", err)
		return exitFailure
	}
	select {
	case err := <-frontErr:
		fmt.Fprintln(os.Stderr, "cocaine dev: front:", err)
		return exitFailure
	default:
	}
	return exitOK
}

// uploadExamples stores every app folder under dir, skipping those whose
// package is unchanged since the last run.
func uploadExamples(ctx context.Context, st storage.Storage, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		appDir := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(appDir, "manifest.json")); err != nil {
			continue
		}
		var pkg bytes.Buffer
		if err := archive.Pack(appDir, &pkg); err != nil {
			return fmt.Errorf("pack %s: %w", appDir, err)
		}
		if unchanged(ctx, st, e.Name(), pkg.Bytes()) {
			continue
		}
		if _, _, err := engine.PutLocalApp(ctx, st, e.Name(), pkg.Bytes()); err != nil {
			fmt.Fprintf(os.Stderr, "cocaine dev: app %s not deployed: %v\n", e.Name(), err)
		}
	}
	return nil
}

func unchanged(ctx context.Context, st storage.Storage, name string, pkg []byte) bool {
	_, rc, err := st.Get(ctx, storage.NSApps, name)
	if err != nil {
		return false
	}
	defer rc.Close()
	var old bytes.Buffer
	if _, err := old.ReadFrom(rc); err != nil {
		return false
	}
	return bytes.Equal(old.Bytes(), pkg)
}

// localEngine lets the front's dealer reach the engine of this process
// directly (gateway.Local), skipping ZeroMQ.
type localEngine struct{ n *engine.Node }

func (l localEngine) Endpoint() string { return l.n.Endpoint() }

func (l localEngine) Invoke(app, event string, body []byte, more bool, p wire.Policy, sink gateway.LocalSink) (gateway.LocalCall, error) {
	r, err := l.n.InvokeLocal(app, event, body, more, p, sink)
	if err != nil {
		return nil, err
	}
	return r, nil
}
