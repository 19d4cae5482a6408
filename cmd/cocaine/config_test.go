package main

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
)

func TestShippedGatewayConfigLoads(t *testing.T) {
	path := filepath.Join(testcluster.Root(), "configs", "gateway.toml")
	// Secure by default: no cluster key, no start.
	t.Setenv(zmqsec.EnvSecret, "")
	if _, err := loadGatewayConfig(path); !errors.Is(err, zmqsec.ErrNoKey) {
		t.Fatalf("without a cluster key: %v, want %v", err, zmqsec.ErrNoKey)
	}
	_, secret, err := zmqsec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(zmqsec.EnvSecret, secret)
	c, err := loadGatewayConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Front.HTTP != "127.0.0.1:8080" || c.Front.FastCGI != "127.0.0.1:9000" || c.Dealer.Balancer != "smart" ||
		len(c.Dealer.Discovery) != 1 || c.API.Storage != "file://./var" || c.API.KeepVersions != 5 {
		t.Fatalf("configs/gateway.toml: %+v", c)
	}
}
