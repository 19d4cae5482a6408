package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input panics and that every input ends in exactly one of: a
// manifest whose values are within the documented bounds, or an *Error with problems.
func FuzzParse(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"type":"go","drivers":{"a.b":{"type":"x","emit":"y","k":[{"z":null}]}}}`))
	f.Add([]byte(`{"type":"go","resource-limits":{"memory":"0.000000000000000000001PiB"}}`))

	check := func(d Driver) []Problem {
		if len(d.Settings) > 3 {
			return []Problem{{Path: "[\"many\"]", Message: "too many settings"}}
		}
		return nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		m, err := Parse(data, WithDriverCheck(check))
		if !bytes.Equal(data, orig) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			if m != nil {
				t.Fatal("both a manifest and an error")
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if len(perr.Problems) == 0 {
				t.Fatal("*Error without problems")
			}
			for _, p := range perr.Problems {
				if p.Message == "" {
					t.Fatalf("problem at %q without a message", p.Path)
				}
			}
			// The same input must give the same report, or goldens and users would see noise.
			_, err2 := Parse(data, WithDriverCheck(check))
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("second parse differs:\n%v\n---\n%v", err, err2)
			}
			return
		}
		if m == nil {
			t.Fatal("neither a manifest nor an error")
		}
		checkManifest(t, m, data)
	})
}

func checkManifest(t *testing.T, m *Manifest, data []byte) {
	t.Helper()
	e, l := m.Engine, m.ResourceLimits
	switch {
	case !bytes.Equal(m.Raw, data):
		t.Fatal("Raw is not the input")
	case !namePattern.MatchString(m.Type):
		t.Fatalf("type %q accepted", m.Type)
	case m.Args == nil || m.Drivers == nil:
		t.Fatal("nil Args or Drivers")
	case e.PoolLimit < 1 || e.PoolLimit > maxPoolLimit,
		e.QueueLimit < 1 || e.QueueLimit > maxQueueLimit,
		e.GrowThreshold < 1 || e.GrowThreshold > maxQueueLimit,
		e.Concurrency < 1 || e.Concurrency > maxConcurrency:
		t.Fatalf("engine limits out of bounds: %+v", e)
	case e.StartupTimeout <= 0, e.HeartbeatTimeout <= 0, e.IdleTimeout <= 0, e.TerminationTimeout < 0,
		max(e.StartupTimeout, e.HeartbeatTimeout, e.IdleTimeout, e.TerminationTimeout) > maxSeconds*1e9:
		t.Fatalf("engine timeouts out of bounds: %+v", e)
	case l.Memory < 0 || l.Memory > maxMemory || (l.Memory != 0 && l.Memory < minMemory),
		l.CPU < 0 || l.CPU > maxCPU, l.CPUTime < 0,
		l.OpenFiles < 0 || l.OpenFiles > maxOpenFiles:
		t.Fatalf("resource limits out of bounds: %+v", l)
	case len(m.Drivers) > maxDrivers:
		t.Fatalf("%d drivers accepted", len(m.Drivers))
	}
	for name, d := range m.Drivers {
		if name != d.Name || !namePattern.MatchString(d.Name) || !namePattern.MatchString(d.Emit) ||
			!namePattern.MatchString(d.Type) || d.Settings == nil {
			t.Fatalf("driver %q accepted: %+v", name, d)
		}
		if _, ok := d.Settings["type"]; ok {
			t.Fatalf("driver %q: type left in settings", name)
		}
	}
}
