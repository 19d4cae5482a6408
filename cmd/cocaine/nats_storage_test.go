package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/storage"
)

// The engine, the gateway's API and `cocaine dev --storage` all open
// storage through storage.Open in this binary; nats:// must reach the NATS
// backend there (storage/nats tests it against a real cluster).
func TestNATSStorageSchemeRegistered(t *testing.T) {
	if !slices.Contains(storage.Schemes(), "nats") {
		t.Fatalf("storage schemes %v lack nats", storage.Schemes())
	}
	// Nothing listens on a fresh port: the URI is understood and the
	// failure says the storage is unavailable, quickly.
	uri := fmt.Sprintf("nats://127.0.0.1:%d?replicas=1&timeout=1s", testcluster.FreePort(t))
	_, err := storage.Open(context.Background(), uri)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open(%s) = %v, want storage.ErrUnavailable", uri, err)
	}
	_, err = storage.Open(context.Background(), "nats://127.0.0.1:4222?replica=3")
	if err == nil || !strings.Contains(err.Error(), `unknown parameter "replica"`) {
		t.Fatalf("a misspelt parameter: err = %v, want it named", err)
	}
}

// TestDevOnNATS runs `cocaine dev --storage nats://...` on a real
// three-server cluster: the examples are stored there, deployed from
// there, and answer.
func TestDevOnNATS(t *testing.T) {
	uri := testcluster.NATSCluster(t) + "?replicas=3"
	data, err := os.MkdirTemp("", "dev") // short: app sockets live under it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	apps := t.TempDir()
	if err := os.CopyFS(filepath.Join(apps, "echo"), os.DirFS(filepath.Join(testcluster.Root(), "examples", "echo"))); err != nil {
		t.Fatal(err)
	}
	announce := fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t))
	testcluster.Start(t, "dev", "--storage", uri, "--data", data, "--apps", apps,
		"--listen", fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t)), "--announce", announce,
		"--announce-interval", "200ms", "--http", "", "--fastcgi", "")
	var out []byte
	testcluster.Eventually(t, 120*time.Second, "echo/echo through the dealer", func() bool {
		out, err = exec.Command(testcluster.Binary(t), "call", "--discovery", "static:"+announce, "echo/echo", "hello nats").Output()
		return err == nil && string(out) == "hello nats"
	})
	// The app came from the cluster, not from the data directory.
	st, err := storage.Open(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.List(context.Background(), storage.NSApps, "")
	if err != nil || !slices.Contains(keys, "echo") {
		t.Fatalf("apps in NATS storage = %v, %v; want echo among them", keys, err)
	}
}
