package engine_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocaine-cloud/cocaine/engine"
	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

func packageOf(t *testing.T, typ string) []byte {
	t.Helper()
	dir := t.TempDir()
	m := `{"type": "` + typ + `", "args": {"module": "app"}, "drivers": {"e": {"type": "native-server"}}}`
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := archive.Pack(dir, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The gateway's API refuses a package only when every live node says it
// cannot run the package's type, naming each node and what it lacks.
func TestValidateForNodes(t *testing.T) {
	noGo := map[string]string{"go": "go sandbox: no Go toolchain on this node: install Go"}
	a := wire.NodeInfo{Hostname: "a", Endpoint: "tcp://a:5000", Missing: noGo}
	b := wire.NodeInfo{Hostname: "b", Endpoint: "tcp://b:5000", Missing: noGo}
	c := wire.NodeInfo{Hostname: "c", Endpoint: "tcp://c:5000"}
	cases := []struct {
		name   string
		typ    string
		nodes  []wire.NodeInfo
		refuse bool
	}{
		{"no live node to ask", "go", nil, false},
		{"one node of two can run it", "go", []wire.NodeInfo{a, c}, false},
		{"no node can run it", "go", []wire.NodeInfo{a, b}, true},
		{"another type is missing", "python", []wire.NodeInfo{a, b}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			validate := engine.ValidateForNodes(func() []wire.NodeInfo { return tc.nodes })
			m, err := validate(packageOf(t, tc.typ))
			if !tc.refuse {
				if err != nil || m == nil || m.Type != tc.typ {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var me *manifest.Error
			if !errors.As(err, &me) || len(me.Problems) != 1 || me.Problems[0].Path != "type" {
				t.Fatalf("want one problem at type, got %v", err)
			}
			msg := me.Problems[0].Message
			for _, want := range []string{"no live node can run go apps", "a (tcp://a:5000)", "b (tcp://b:5000)", "install Go"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}
