package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
)

func TestShippedConfigLoads(t *testing.T) {
	// Secure by default: no cluster key, no start.
	t.Setenv(zmqsec.EnvSecret, "")
	if _, err := LoadConfig("../configs/engine.toml"); !errors.Is(err, zmqsec.ErrNoKey) {
		t.Fatalf("without a cluster key: %v, want %v", err, zmqsec.ErrNoKey)
	}
	_, secret, err := zmqsec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(zmqsec.EnvSecret, secret)
	c, err := LoadConfig("../configs/engine.toml")
	if err != nil {
		t.Fatal(err)
	}
	var d Config
	d.Default()
	if c.Listen != d.Listen || c.AnnounceInterval != d.AnnounceInterval || c.Package != d.Package || c.Storage != d.Storage {
		t.Fatalf("configs/engine.toml drifted from the defaults:\n%+v\n%+v", c, d)
	}
}

func TestConfigRejectsUnknownAndInvalid(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.toml")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	if _, err := LoadConfig(write("listen = \"tcp://127.0.0.1:1\"\nlisten-typo = 1\n")); err == nil || !strings.Contains(err.Error(), "listen-typo") {
		t.Fatalf("unknown key: %v", err)
	}
	_, err := LoadConfig(write("listen = \"http://x\"\nannounce = \"udp://y\"\nannounce-interval = \"1ms\"\n"))
	for _, want := range []string{"listen", "announce", "announce-interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want a problem with %s, got %v", want, err)
		}
	}
	c, err := LoadConfig(write("announce-interval = \"250ms\"\nlisten = \"tcp://*:7000\"\n[security]\ninsecure = true\n"))
	if err != nil || c.AnnounceInterval.Duration != 250*time.Millisecond || strings.Contains(c.Advertise, "*") {
		t.Fatalf("durations and advertise: %+v %v", c, err)
	}
}
