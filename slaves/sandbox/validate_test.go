package sandbox

import (
	"strings"
	"testing"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// TestValidateArgs: bad args of the c, cpp, node and perl sandboxes are
// rejected at upload, each problem named by its path under args.
func TestValidateArgs(t *testing.T) {
	for _, c := range []struct {
		typ, args string
		want      string // "" for valid; else a path that must be named
	}{
		{"c", `{}`, ""},
		{"cpp", `{"binary": "out/app", "flags": ["-lm"], "args": ["-v"]}`, ""},
		{"c", `{"binary": "/usr/bin/evil"}`, "binary"},
		{"c", `{"binary": "../up"}`, "binary"},
		{"cpp", `{"flags": "-lm"}`, "flags"},
		{"c", `{"args": [1]}`, "args"},
		{"node", `{"module": "handlers.js"}`, ""},
		{"node", `{"http": "lib/app.js", "module": "h.js"}`, ""},
		{"node", `{}`, "module"},
		{"node", `{"http": "/etc/passwd"}`, "http"},
		{"node", `{"module": "../x.js"}`, "module"},
		{"perl", `{"module": "MyApp::Handlers"}`, ""},
		{"perl", `{"psgi": "app.psgi"}`, ""},
		{"perl", `{}`, "module"},
		{"perl", `{"module": "My-App"}`, "module"},
		{"perl", `{"psgi": "../app.psgi"}`, "psgi"},
	} {
		t.Run(c.typ+c.args, func(t *testing.T) {
			raw := `{"type": "` + c.typ + `", "args": ` + c.args + `, "drivers": {"x": {"type": "native-server"}}}`
			m, err := manifest.Parse([]byte(raw), manifest.WithSandboxes(c.typ))
			if err != nil {
				t.Fatal(err)
			}
			ps := ValidateArgs(m)
			if c.want == "" {
				if len(ps) > 0 {
					t.Fatalf("valid args rejected: %+v", ps)
				}
				return
			}
			for _, p := range ps {
				if p.Path == c.want && p.Message != "" {
					return
				}
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Path+": "+p.Message)
			}
			t.Fatalf("want a problem at args.%s, got [%s]", c.want, strings.Join(got, "; "))
		})
	}
}
