package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden parses every testdata/*.json and compares the outcome, problems or a normalized
// dump of the manifest, with the .golden beside it. Files named valid_* must parse and
// invalid_* must not, so that a golden rewritten with -update cannot quietly flip a case.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.json")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data)
			switch {
			case strings.HasPrefix(name, "valid_") && err != nil:
				t.Fatalf("want a manifest, got:\n%v", err)
			case strings.HasPrefix(name, "invalid_") && err == nil:
				t.Fatalf("want problems, got a manifest:\n%s", dump(m))
			}
			got := outcome(m, err)
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (run go test -update if intended)\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func outcome(m *Manifest, err error) string {
	if err != nil {
		var perr *Error
		if !errors.As(err, &perr) {
			return fmt.Sprintf("# error (not *Error)\n%v\n", err)
		}
		return "# problems\n" + perr.Error() + "\n"
	}
	return "# manifest\n" + dump(m)
}

// dump prints a manifest in a fixed order, durations as Go durations and maps as sorted JSON,
// so the golden shows exactly what defaults and conversions Parse applied.
func dump(m *Manifest) string {
	var b strings.Builder
	js := func(v any) string {
		out, err := json.Marshal(v)
		if err != nil {
			return "!" + err.Error()
		}
		return string(out)
	}
	e, l := m.Engine, m.ResourceLimits
	fmt.Fprintf(&b, "type: %s\n", m.Type)
	fmt.Fprintf(&b, "args: %s\n", js(m.Args))
	fmt.Fprintf(&b, "engine: pool-limit=%d queue-limit=%d grow-threshold=%d concurrency=%d\n",
		e.PoolLimit, e.QueueLimit, e.GrowThreshold, e.Concurrency)
	fmt.Fprintf(&b, "engine: startup=%v heartbeat=%v idle=%v termination=%v\n",
		e.StartupTimeout, e.HeartbeatTimeout, e.IdleTimeout, e.TerminationTimeout)
	fmt.Fprintf(&b, "resource-limits: memory=%d cpu=%v cpu-time=%v open-files=%d\n",
		l.Memory, l.CPU, l.CPUTime, l.OpenFiles)
	names := make([]string, 0, len(m.Drivers))
	for n := range m.Drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := m.Drivers[n]
		fmt.Fprintf(&b, "driver %s: name=%s type=%s emit=%s settings=%s\n", n, d.Name, d.Type, d.Emit, js(d.Settings))
	}
	return b.String()
}

func TestGoldenRawIsInput(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "valid_full.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Raw, data) {
		t.Fatal("Raw is not the document as given")
	}
	data[0] = 'X' // Raw must not alias the caller's buffer
	if m.Raw[0] == 'X' {
		t.Fatal("Raw aliases the input")
	}
}
