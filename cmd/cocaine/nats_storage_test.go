package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

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
