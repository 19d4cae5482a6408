package manifest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// problems parses doc and returns its problems as "path: message" lines, or nil when it parses.
func problems(t *testing.T, doc string, opts ...Option) []Problem {
	t.Helper()
	m, err := Parse([]byte(doc), opts...)
	if err == nil {
		if m == nil {
			t.Fatal("nil manifest and nil error")
		}
		return nil
	}
	if m != nil {
		t.Fatal("manifest returned with an error")
	}
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %T is not *Error: %v", err, err)
	}
	if len(perr.Problems) == 0 {
		t.Fatal("*Error without problems")
	}
	return perr.Problems
}

func paths(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Path
	}
	return out
}

func TestDefaults(t *testing.T) {
	want := Engine{
		PoolLimit: 10, QueueLimit: 100, GrowThreshold: 10, Concurrency: 1,
		StartupTimeout: 10 * time.Second, HeartbeatTimeout: 30 * time.Second,
		IdleTimeout: 600 * time.Second, TerminationTimeout: 5 * time.Second,
	}
	if got := Defaults(); got != want {
		t.Fatalf("Defaults() = %+v, want %+v", got, want)
	}
	m, err := Parse([]byte(`{"type":"go"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Engine != want || m.Args == nil || m.Drivers == nil || m.ResourceLimits != (Limits{}) {
		t.Fatalf("minimal manifest: %+v", m)
	}
}

func TestEngine(t *testing.T) {
	tests := []struct {
		name   string
		engine string
		want   func(*Engine)
		bad    []string // problem paths, when the engine must be refused
	}{
		{name: "empty", engine: `{}`, want: func(e *Engine) {}},
		{name: "grow derived from limits", engine: `{"pool-limit": 5, "queue-limit": 50}`,
			want: func(e *Engine) { e.PoolLimit, e.QueueLimit, e.GrowThreshold = 5, 50, 10 }},
		{name: "grow derived at least 1", engine: `{"pool-limit": 50, "queue-limit": 5}`,
			want: func(e *Engine) { e.PoolLimit, e.QueueLimit, e.GrowThreshold = 50, 5, 1 }},
		{name: "grow derived from queue only", engine: `{"queue-limit": 1000}`,
			want: func(e *Engine) { e.QueueLimit, e.GrowThreshold = 1000, 100 }},
		{name: "grow given wins", engine: `{"pool-limit": 5, "queue-limit": 50, "grow-threshold": 3}`,
			want: func(e *Engine) { e.PoolLimit, e.QueueLimit, e.GrowThreshold = 5, 50, 3 }},
		{name: "whole float accepted", engine: `{"pool-limit": 2.0, "queue-limit": 1e2}`,
			want: func(e *Engine) { e.PoolLimit, e.QueueLimit, e.GrowThreshold = 2, 100, 50 }},
		{name: "fractional seconds", engine: `{"startup-timeout": 0.5, "heartbeat-timeout": 1.25, "idle-timeout": 0.001}`,
			want: func(e *Engine) {
				e.StartupTimeout, e.HeartbeatTimeout, e.IdleTimeout = 500*time.Millisecond, 1250*time.Millisecond, time.Millisecond
			}},
		{name: "termination may be zero", engine: `{"termination-timeout": 0}`,
			want: func(e *Engine) { e.TerminationTimeout = 0 }},
		{name: "concurrency", engine: `{"concurrency": 8}`, want: func(e *Engine) { e.Concurrency = 8 }},
		{name: "upper bounds inclusive", engine: `{"pool-limit": 1000, "queue-limit": 1000000, "idle-timeout": 86400, "concurrency": 1000}`,
			want: func(e *Engine) {
				e.PoolLimit, e.QueueLimit, e.GrowThreshold, e.IdleTimeout, e.Concurrency = 1000, 1000000, 1000, 24*time.Hour, 1000
			}},

		{name: "pool zero", engine: `{"pool-limit": 0}`, bad: []string{"engine.pool-limit"}},
		{name: "queue zero", engine: `{"queue-limit": 0}`, bad: []string{"engine.queue-limit"}},
		{name: "grow zero", engine: `{"grow-threshold": 0}`, bad: []string{"engine.grow-threshold"}},
		{name: "concurrency zero", engine: `{"concurrency": 0}`, bad: []string{"engine.concurrency"}},
		{name: "startup zero", engine: `{"startup-timeout": 0}`, bad: []string{"engine.startup-timeout"}},
		{name: "heartbeat zero", engine: `{"heartbeat-timeout": 0}`, bad: []string{"engine.heartbeat-timeout"}},
		{name: "idle zero", engine: `{"idle-timeout": 0}`, bad: []string{"engine.idle-timeout"}},
		{name: "termination negative", engine: `{"termination-timeout": -0.5}`, bad: []string{"engine.termination-timeout"}},
		{name: "timeout over a day", engine: `{"heartbeat-timeout": 86400.5}`, bad: []string{"engine.heartbeat-timeout"}},
		{name: "pool over bound", engine: `{"pool-limit": 1001}`, bad: []string{"engine.pool-limit"}},
		{name: "huge integer", engine: `{"queue-limit": 123456789012345678901234567890}`, bad: []string{"engine.queue-limit"}},
		{name: "fractional limit", engine: `{"pool-limit": 2.5}`, bad: []string{"engine.pool-limit"}},
		{name: "string number", engine: `{"pool-limit": "10"}`, bad: []string{"engine.pool-limit"}},
		{name: "duration string", engine: `{"idle-timeout": "10m"}`, bad: []string{"engine.idle-timeout"}},
		{name: "all reported", engine: `{"pool-limit": 0, "queue-limit": -1, "idle-timeout": false, "nope": 1}`,
			bad: []string{"engine.idle-timeout", "engine.nope", "engine.pool-limit", "engine.queue-limit"}},
		{name: "not an object", engine: `[]`, bad: []string{"engine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"type": "go", "engine": ` + tt.engine + `}`
			ps := problems(t, doc)
			if tt.bad != nil {
				if got := paths(sortedProblems(ps)); !reflect.DeepEqual(got, tt.bad) {
					t.Fatalf("problem paths %q, want %q\n%v", got, tt.bad, &Error{ps})
				}
				return
			}
			if ps != nil {
				t.Fatalf("unexpected problems:\n%v", &Error{ps})
			}
			m, _ := Parse([]byte(doc))
			want := Defaults()
			tt.want(&want)
			if m.Engine != want {
				t.Fatalf("engine %+v, want %+v", m.Engine, want)
			}
		})
	}
}

func TestResourceLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits string
		want   Limits
		bad    string // the problem path, when refused
	}{
		{name: "empty", limits: `{}`},
		{name: "bytes number", limits: `{"memory": 1048576}`, want: Limits{Memory: 1 << 20}},
		{name: "zero is unlimited", limits: `{"memory": 0, "cpu": 0, "cpu-time": 0, "open-files": 0}`},
		{name: "MiB", limits: `{"memory": "256MiB"}`, want: Limits{Memory: 256 << 20}},
		{name: "bare k is binary", limits: `{"memory": "2048k"}`, want: Limits{Memory: 2 << 20}},
		{name: "MB is decimal", limits: `{"memory": "512MB"}`, want: Limits{Memory: 512e6}},
		{name: "all", limits: `{"memory": "1GiB", "cpu": 1.5, "cpu-time": 60, "open-files": 1024}`,
			want: Limits{Memory: 1 << 30, CPU: 1.5, CPUTime: time.Minute, OpenFiles: 1024}},
		{name: "memory too small", limits: `{"memory": 4096}`, bad: "resource-limits.memory"},
		{name: "memory bad unit", limits: `{"memory": "12 parsecs"}`, bad: "resource-limits.memory"},
		{name: "memory negative string", limits: `{"memory": "-1GiB"}`, bad: "resource-limits.memory"},
		{name: "memory overflow", limits: `{"memory": "99999999999999999999GiB"}`, bad: "resource-limits.memory"},
		{name: "memory cgroup map", limits: `{"memory": {"memory.limit_in_bytes": 1}}`, bad: "resource-limits.memory"},
		{name: "cpu negative", limits: `{"cpu": -0.5}`, bad: "resource-limits.cpu"},
		{name: "cpu-time fractional", limits: `{"cpu-time": 0.5}`, bad: "resource-limits.cpu-time"},
		{name: "open-files too low", limits: `{"open-files": 3}`, bad: "resource-limits.open-files"},
		{name: "unknown", limits: `{"swap": "1GiB"}`, bad: "resource-limits.swap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"type": "go", "resource-limits": ` + tt.limits + `}`
			ps := problems(t, doc)
			if tt.bad != "" {
				if len(ps) != 1 || ps[0].Path != tt.bad {
					t.Fatalf("want one problem at %s, got:\n%v", tt.bad, &Error{ps})
				}
				return
			}
			if ps != nil {
				t.Fatalf("unexpected problems:\n%v", &Error{ps})
			}
			m, _ := Parse([]byte(doc))
			if m.ResourceLimits != tt.want {
				t.Fatalf("limits %+v, want %+v", m.ResourceLimits, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr error
	}{
		{"0", 0, nil},
		{"1", 1, nil},
		{"1024", 1024, nil},
		{"1B", 1, nil},
		{"64k", 64 << 10, nil},
		{"64K", 64 << 10, nil},
		{"64KiB", 64 << 10, nil},
		{"64kB", 64000, nil},
		{"256MiB", 256 << 20, nil},
		{"256 MiB", 256 << 20, nil},
		{" 256mib ", 256 << 20, nil},
		{"512MB", 512e6, nil},
		{"1g", 1 << 30, nil},
		{"1GiB", 1 << 30, nil},
		{"1GB", 1e9, nil},
		{"1.5GiB", 3 << 29, nil},
		{"1.1GiB", 1181116006, nil}, // floor(1.1 × 2^30), exact rather than float-rounded
		{".5MiB", 512 << 10, nil},
		{"2.MiB", 2 << 20, nil},
		{"1TiB", 1 << 40, nil},
		{"1PiB", 1 << 50, nil},
		{"8191PiB", 8191 << 50, nil},
		{"8192PiB", 0, errSizeRange},
		{"9223372036854775807", 9223372036854775807, nil},
		{"9223372036854775808", 0, errSizeRange},
		{"99999999999999999999999", 0, errSizeRange},
		{"0.1", 0, errSizeSmall},
		{"0.0000001k", 0, errSizeSmall},
		{"0.0k", 0, nil},
		{"", 0, errSizeSyntax},
		{".", 0, errSizeSyntax},
		{"MiB", 0, errSizeSyntax},
		{"-1", 0, errSizeSyntax},
		{"1e3", 0, errSizeSyntax},
		{"1.2.3", 0, errSizeSyntax},
		{"1 MiB 2", 0, errSizeSyntax},
		{"12 parsecs", 0, errSizeUnit},
		{"1Mb", 1e6, nil},           // units are case-insensitive: "Mb" is read as megabytes, not megabits
		{"١٢MiB", 0, errSizeSyntax}, // non-ASCII digits
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("parseSize(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDrivers(t *testing.T) {
	m, err := Parse([]byte(`{"type": "go", "drivers": {
		"http": {"type": "native-server"},
		"tick": {"type": "recurring-timer", "emit": "on-tick", "interval": 1000, "nested": {"a": [1]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Driver{
		"http": {Name: "http", Type: "native-server", Emit: "http", Settings: map[string]any{}},
		"tick": {Name: "tick", Type: "recurring-timer", Emit: "on-tick", Settings: map[string]any{
			"interval": json.Number("1000"),
			"nested":   map[string]any{"a": []any{json.Number("1")}},
		}},
	}
	if !reflect.DeepEqual(m.Drivers, want) {
		t.Fatalf("drivers %#v\nwant %#v", m.Drivers, want)
	}

	tests := []struct {
		name    string
		drivers string
		bad     []string
	}{
		{name: "missing type", drivers: `{"a": {}}`, bad: []string{"drivers.a.type"}},
		{name: "empty emit", drivers: `{"a": {"type": "t", "emit": ""}}`, bad: []string{"drivers.a.emit"}},
		{name: "non-string emit", drivers: `{"a": {"type": "t", "emit": ["x"]}}`, bad: []string{"drivers.a.emit"}},
		{name: "emit with slash", drivers: `{"a": {"type": "t", "emit": "a/b"}}`, bad: []string{"drivers.a.emit"}},
		{name: "name with space", drivers: `{"a b": {"type": "t"}}`, bad: []string{`drivers["a b"]`}},
		{name: "name with slash", drivers: `{"a/b": {"type": "t"}}`, bad: []string{`drivers["a/b"]`}},
		{name: "name too long", drivers: `{"` + strings.Repeat("a", 65) + `": {"type": "t"}}`, bad: []string{"drivers." + strings.Repeat("a", 65)}},
		{name: "name of 64", drivers: `{"` + strings.Repeat("a", 64) + `": {"type": "t"}}`},
		{name: "not an object", drivers: `{"a": 1}`, bad: []string{"drivers.a"}},
		{name: "too many", drivers: manyDrivers(maxDrivers + 1), bad: []string{"drivers"}},
		{name: "as many as allowed", drivers: manyDrivers(maxDrivers)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, `{"type": "go", "drivers": `+tt.drivers+`}`)
			if got := paths(sortedProblems(ps)); !reflect.DeepEqual(got, tt.bad) && (len(got) != 0 || len(tt.bad) != 0) {
				t.Fatalf("problem paths %q, want %q\n%v", got, tt.bad, &Error{ps})
			}
		})
	}
}

func manyDrivers(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"d` + strconv.Itoa(i) + `": {"type": "t"}`
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestWithSandboxes(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		sandboxes []string
		ok        bool
		msg       string
	}{
		{"listed", `{"type": "go"}`, []string{"python", "go"}, true, ""},
		{"not listed", `{"type": "perl"}`, []string{"python", "go"}, false, `unknown sandbox "perl"; available: go, python`},
		{"none available", `{"type": "go"}`, []string{}, false, "no sandboxes are available"},
		{"case matters", `{"type": "Go"}`, []string{"go"}, false, `unknown sandbox "Go"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.doc, WithSandboxes(tt.sandboxes...))
			if tt.ok {
				if ps != nil {
					t.Fatalf("unexpected problems:\n%v", &Error{ps})
				}
				return
			}
			if len(ps) != 1 || ps[0].Path != "type" || !strings.Contains(ps[0].Message, tt.msg) {
				t.Fatalf("want one problem at type containing %q, got:\n%v", tt.msg, &Error{ps})
			}
		})
	}
	if ps := problems(t, `{"type": "anything"}`); ps != nil {
		t.Fatalf("without WithSandboxes any type is accepted, got:\n%v", &Error{ps})
	}
}

func TestWithDriverCheck(t *testing.T) {
	var seen []string
	intervalCheck := func(d Driver) []Problem {
		seen = append(seen, d.Name)
		if d.Type != "recurring-timer" {
			return nil
		}
		n, ok := d.Settings["interval"].(json.Number)
		if !ok {
			return []Problem{{Path: "interval", Message: "required"}}
		}
		if i, err := n.Int64(); err != nil || i <= 0 {
			return []Problem{{Path: "interval", Message: "must be a positive whole number of milliseconds"}}
		}
		return nil
	}
	whole := func(d Driver) []Problem {
		if d.Emit == "forbidden" {
			return []Problem{{Message: "emit forbidden"}}
		}
		return nil
	}
	doc := `{"type": "go", "drivers": {
		"tick":  {"type": "recurring-timer", "interval": 0},
		"t.2":   {"type": "recurring-timer"},
		"ok":    {"type": "recurring-timer", "interval": 10},
		"other": {"type": "native-server", "emit": "forbidden"},
		"broken": {"emit": ""}}}`
	ps := problems(t, doc, WithDriverCheck(intervalCheck), WithDriverCheck(whole), WithDriverCheck(nil))
	got := (&Error{ps}).Error()
	want := strings.Join([]string{
		"drivers.broken.emit: expected a non-empty string, got an empty string",
		"drivers.broken.type: required: the driver to run, such as \"native-server\" or \"recurring-timer\"",
		"drivers.other: emit forbidden",
		"drivers.tick.interval: must be a positive whole number of milliseconds",
		`drivers["t.2"].interval: required`,
	}, "\n")
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// A check sees only drivers whose shape is valid, so it can rely on Type and Emit.
	for _, name := range seen {
		if name == "broken" {
			t.Fatal("driver check ran on a malformed driver")
		}
	}
}

func TestWholeDocument(t *testing.T) {
	tests := []struct {
		name string
		doc  []byte
		msg  string
	}{
		{"too large", []byte(`{"type": "go", "args": {"x": "` + strings.Repeat("a", MaxSize) + `"}}`), "limit is 1048576"},
		{"exactly at limit", padTo(`{"type": "go"}`, MaxSize), ""},
		{"nil", nil, "empty"},
		{"whitespace", []byte(" \n\t "), "empty"},
		{"bom only", []byte("\xef\xbb\xbf"), "empty"},
		{"number", []byte("42"), "not a number"},
		{"null", []byte("null"), "not null"},
		{"invalid utf8 in key", []byte("{\"type\": \"go\", \"\xc3\x28\": 1}"), "not valid UTF-8"},
		{"deep nesting", []byte(`{"type": "go", "args": {"x": ` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}`), "nested deeper"},
		{"nesting at limit", []byte(`{"type": "go", "args": ` + strings.Repeat(`{"a":`, maxDepth-1) + `1` + strings.Repeat("}", maxDepth-1) + `}`), ""},
		{"trailing object", []byte(`{"type": "go"}{}`), "unexpected data"},
		{"trailing whitespace ok", []byte("{\"type\": \"go\"}\n\n  \t"), ""},
		{"single quotes", []byte(`{'type': 'go'}`), "invalid JSON"},
		{"comment", []byte(`{"type": "go" /* c */}`), "invalid JSON"},
		{"NaN", []byte(`{"type": "go", "engine": {"pool-limit": NaN}}`), "invalid JSON"},
		{"lone surrogate escape", []byte(`{"type": "go", "args": {"x": "\ud800"}}`), ""},
		{"escaped key", []byte(`{"\u0074ype": "go"}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, string(tt.doc))
			if tt.msg == "" {
				if ps != nil {
					t.Fatalf("unexpected problems:\n%v", &Error{ps})
				}
				return
			}
			if len(ps) != 1 || ps[0].Path != "" || !strings.Contains(ps[0].Message, tt.msg) {
				t.Fatalf("want one document problem containing %q, got:\n%v", tt.msg, &Error{ps})
			}
		})
	}
}

func padTo(doc string, size int) []byte {
	return []byte(doc + strings.Repeat(" ", size-len(doc)))
}

func TestErrorFormat(t *testing.T) {
	e := &Error{Problems: []Problem{
		{Path: "type", Message: "b"},
		{Path: "engine.pool-limit", Message: "x"},
		{Path: "", Message: "whole"},
		{Path: "engine.pool-limit", Message: "a"},
	}}
	want := "whole\nengine.pool-limit: a\nengine.pool-limit: x\ntype: b"
	if got := e.Error(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if e.Problems[0].Path != "type" {
		t.Fatal("Error() reordered the caller's problems")
	}
	var wrapped error = errors.Join(errors.New("upload"), e)
	var target *Error
	if !errors.As(wrapped, &target) || target != e {
		t.Fatal("errors.As does not find *Error")
	}
	if (&Error{}).Error() == "" {
		t.Fatal("empty Error has no text")
	}
}

func TestParseReturnsSortedProblems(t *testing.T) {
	ps := problems(t, `{"zeta": 1, "type": 1, "alpha": 2, "engine": {"pool-limit": 0}}`)
	got := paths(ps)
	want := []string{"alpha", "engine.pool-limit", "type", "zeta"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems %q, want sorted %q", got, want)
	}
}

func TestArgString(t *testing.T) {
	m, err := Parse([]byte(`{"type": "go", "args": {"main": "./app", "n": 3, "empty": ""}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want string
		ok   bool
	}{
		{"main", "./app", true},
		{"empty", "", true},
		{"n", "", false},
		{"missing", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, ok := m.ArgString(tt.key)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("ArgString(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
			}
		})
	}
	var nilManifest *Manifest
	if _, ok := nilManifest.ArgString("main"); ok {
		t.Fatal("nil manifest has args")
	}
}

func TestPaths(t *testing.T) {
	tests := []struct{ parent, key, want string }{
		{"", "type", "type"},
		{"drivers", "tick", "drivers.tick"},
		{"drivers", "a.b", `drivers["a.b"]`},
		{"drivers", "", `drivers[""]`},
		{"", "we\"ird", `["we\"ird"]`},
	}
	for _, tt := range tests {
		if got := joinPath(tt.parent, tt.key); got != tt.want {
			t.Errorf("joinPath(%q, %q) = %q, want %q", tt.parent, tt.key, got, tt.want)
		}
	}
	if got := prefixPath(`drivers["a.b"]`, "[0]"); got != `drivers["a.b"][0]` {
		t.Errorf("prefixPath index: %q", got)
	}
}
