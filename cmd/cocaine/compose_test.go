package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocaine-cloud/cocaine/engine"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
)

// composeConfig returns the text of configs.<name>.content in
// configs/compose.yaml, with compose's ${VAR:-default} taken at its
// default. A literal block scalar is all it needs to understand.
func composeConfig(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testcluster.Root(), "configs", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	head := "  " + name + ":"
	for i, l := range lines {
		if l != head || i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "content: |" {
			continue
		}
		var out []string
		for _, c := range lines[i+2:] {
			if c != "" && !strings.HasPrefix(c, "      ") {
				break
			}
			out = append(out, strings.TrimPrefix(c, "      "))
		}
		text := strings.Join(out, "\n")
		for {
			start := strings.Index(text, "${")
			if start < 0 {
				break
			}
			end := strings.Index(text[start:], "}")
			expr := text[start+2 : start+end]
			_, def, _ := strings.Cut(expr, ":-")
			text = text[:start] + def + text[start+end+1:]
		}
		return text
	}
	t.Fatalf("configs/compose.yaml has no configs.%s.content", name)
	return ""
}

// The engine and gateway configs inlined in configs/compose.yaml must load
// (unknown keys are errors) and say what the compose file relies on.
func TestComposeConfigsLoad(t *testing.T) {
	// compose.yaml passes the cluster key in the environment, as an
	// operator would (COCAINE_CURVE_SECRET is required there).
	_, secret, err := zmqsec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(zmqsec.EnvSecret, secret)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, err := engine.LoadConfig(write("engine.toml", composeConfig(t, "engine")))
	if err != nil {
		t.Fatalf("compose engine config: %v", err)
	}
	if !strings.HasPrefix(ec.Storage, "nats://nats1:4222,") || ec.Listen != "tcp://*:5000" {
		t.Errorf("compose engine config: %+v", ec)
	}
	gc, err := loadGatewayConfig(write("gateway.toml", composeConfig(t, "gateway")))
	if err != nil {
		t.Fatalf("compose gateway config: %v", err)
	}
	if gc.API.Storage != ec.Storage || len(gc.Dealer.Discovery) != 3 || gc.Front.FastCGI != "0.0.0.0:9000" {
		t.Errorf("compose gateway config: %+v", gc)
	}
}
