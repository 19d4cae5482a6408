package main

import (
	"path/filepath"
	"testing"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

func TestShippedGatewayConfigLoads(t *testing.T) {
	c, err := loadGatewayConfig(filepath.Join(testcluster.Root(), "configs", "gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Front.HTTP != "127.0.0.1:8080" || c.Front.FastCGI != "127.0.0.1:9000" || c.Dealer.Balancer != "smart" ||
		len(c.Dealer.Discovery) != 1 || c.API.Storage != "file://./var" || c.API.KeepVersions != 5 {
		t.Fatalf("configs/gateway.toml: %+v", c)
	}
}
