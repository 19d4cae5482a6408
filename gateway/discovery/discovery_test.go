package discovery

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStatic(t *testing.T) {
	base := runtime.NumGoroutine()
	r := start(t, Static("b", "tcp://a:5001", "tcp://A:5001", "a:5001", "[::1]:6000", "not a host"))
	want := []string{"tcp://[::1]:6000", "tcp://a:5001", "tcp://b:5001"}
	r.waitFor(t, want, 2*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if h := r.history(); len(h) != 1 {
		t.Fatalf("a static list reports once, got %q", h)
	}
	noLeak(t, base)
}

func TestNormalize(t *testing.T) {
	good := map[string]string{
		"host":                 "tcp://host:5001",
		"Host.Example.com":     "tcp://host.example.com:5001",
		"host:6000":            "tcp://host:6000",
		"tcp://host:6000":      "tcp://host:6000",
		"TCP://host":           "tcp://host:5001",
		"10.0.0.1":             "tcp://10.0.0.1:5001",
		"10.0.0.1:7":           "tcp://10.0.0.1:7",
		"::1":                  "tcp://[::1]:5001",
		"[::1]":                "tcp://[::1]:5001",
		"[fe80::1]:5002":       "tcp://[fe80::1]:5002",
		"tcp://[::1]:5002":     "tcp://[::1]:5002",
		"node_1.local:65535":   "tcp://node_1.local:65535",
		"xn--d1acufc.xn--p1ai": "tcp://xn--d1acufc.xn--p1ai:5001",
	}
	for in, want := range good {
		got, err := Normalize(in, 5001)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "tcp://", "host:", "host:0", "host:65536", "host:http", "udp://host:5001",
		"ipc:///tmp/sock", "two words", "-host", "*:5001", "0.0.0.0", "tcp://[::]:5001", "[host]:5001",
		"host/path", "1:2:3", "tcp://host:5001/x"}
	for _, in := range bad {
		if got, err := Normalize(in, 5001); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", in, got)
		}
	}
}

func TestParse(t *testing.T) {
	good := map[string]string{
		"static:tcp://a:5001,tcp://b:5001": "static:tcp://a:5001,tcp://b:5001",
		"static: a , b:6000 ,":             "static:tcp://a:5001,tcp://b:6000",
		"file:/etc/cocaine/hosts":          "file:/etc/cocaine/hosts",
		"file:///etc/cocaine/hosts":        "file:/etc/cocaine/hosts",
		"file:hosts.txt":                   "file:hosts.txt",
		"multicast":                        "multicast:239.0.100.53:5099",
		"multicast:239.0.100.53:5099":      "multicast:239.0.100.53:5099",
		"multicast:239.1.2.3:6000":         "multicast:239.1.2.3:6000",
		"multicast:239.1.2.3":              "multicast:239.1.2.3",
		"multicast:239.1.2.3:6000%eth0":    "multicast:239.1.2.3:6000%eth0",
		"  multicast:224.0.0.251:5353  ":   "multicast:224.0.0.251:5353",
	}
	for spec, want := range good {
		s, err := Parse(spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", spec, err)
			continue
		}
		if s.String() != want {
			t.Errorf("Parse(%q).String() = %q, want %q", spec, s.String(), want)
		}
		if again, err := Parse(s.String()); err != nil || again.String() != s.String() {
			t.Errorf("Parse(%q) does not round-trip: %v", s.String(), err)
		}
	}
	bad := []string{"", "static", "static:", "static:,", "static:udp://a:1", "static:a:99999",
		"file:", "file://", "multicast:", "multicast:%eth0", "multicast:10.0.0.1:5099",
		"multicast:not-an-ip:5099", "multicast:239.1.1.1:notaport", "multicast:::1", "http://x/hosts",
		"tcp://a:5001", "dns:cocaine.local"}
	for _, spec := range bad {
		if s, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) = %s, want an error", spec, s)
		} else if !strings.Contains(err.Error(), "discovery spec") {
			t.Errorf("Parse(%q): error %q does not say what it was parsing", spec, err)
		}
	}
}

// fake is a Source the test drives: each set sent on sets is reported;
// a value on fail makes Run return it.
type fake struct {
	name string
	sets chan []string
	done chan struct{} // update returned: what was sent has been taken in
	fail chan error
}

func newFake(name string) *fake {
	return &fake{name: name, sets: make(chan []string), done: make(chan struct{}), fail: make(chan error)}
}

func (f *fake) String() string { return f.name }

func (f *fake) Run(ctx context.Context, update func([]string)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err() // a source may say why it stopped; Merge must cope
		case s := <-f.sets:
			update(s)
			select {
			case f.done <- struct{}{}:
			case <-ctx.Done():
			}
		case err := <-f.fail:
			return err
		}
	}
}

func (f *fake) send(t *testing.T, set ...string) {
	t.Helper()
	// Waiting for update to return orders reports across sources: Merge
	// takes one report at a time, so the next source's report comes after.
	for _, c := range []func() bool{
		func() bool {
			select {
			case f.sets <- set:
				return true
			case <-time.After(5 * time.Second):
				return false
			}
		},
		func() bool {
			select {
			case <-f.done:
				return true
			case <-time.After(5 * time.Second):
				return false
			}
		},
	} {
		if !c() {
			t.Fatalf("%s: Run is not taking updates", f.name)
		}
	}
}

func TestMerge(t *testing.T) {
	base := runtime.NumGoroutine()
	a, b := newFake("a"), newFake("b")
	m := Merge(a, b, Static("tcp://s:5001"))
	if got := m.String(); got != "merge(a, b, static:tcp://s:5001)" {
		t.Errorf("String() = %q", got)
	}
	r := start(t, m)
	r.waitFor(t, []string{"tcp://s:5001"}, 2*time.Second)

	a.send(t, "tcp://y:5001", "tcp://x:5001")
	r.waitFor(t, []string{"tcp://s:5001", "tcp://x:5001", "tcp://y:5001"}, 2*time.Second)
	b.send(t, "tcp://x:5001", "tcp://z:5001")
	r.waitFor(t, []string{"tcp://s:5001", "tcp://x:5001", "tcp://y:5001", "tcp://z:5001"}, 2*time.Second)

	// Changes that leave the union as it was are not reported. Merge
	// handles reports in order, so once the next real change shows up the
	// ones before it have been handled.
	n := len(r.history())
	a.send(t, "tcp://y:5001")
	b.send(t, "tcp://x:5001", "tcp://z:5001")
	a.send(t, "tcp://y:5001", "tcp://x:5001")
	// Removal from one source only drops what no other source has.
	b.send(t)
	r.waitFor(t, []string{"tcp://s:5001", "tcp://x:5001", "tcp://y:5001"}, 2*time.Second)
	if h := r.history(); len(h) != n+1 {
		t.Errorf("want one update after %d, got %q", n, h[n:])
	}

	// A failed source keeps its last set; the others go on.
	a.fail <- errors.New("boom")
	b.send(t, "tcp://w:5001")
	r.waitFor(t, []string{"tcp://s:5001", "tcp://w:5001", "tcp://x:5001", "tcp://y:5001"}, 2*time.Second)

	if err := r.stop(t); err != nil {
		t.Fatalf("Run after ctx ended: %v", err)
	}
	for _, set := range r.history() {
		if !slices.IsSorted(set) || len(slices.Compact(slices.Clone(set))) != len(set) {
			t.Errorf("update %q is not sorted and deduplicated", set)
		}
	}
	noLeak(t, base)
}

func TestMergeAllFail(t *testing.T) {
	base := runtime.NumGoroutine()
	a, b := newFake("a"), newFake("b")
	r := start(t, Merge(a, b))
	a.fail <- errors.New("first")
	b.fail <- errors.New("second")
	select {
	case err := <-r.done:
		if err == nil || !strings.Contains(err.Error(), "a: first") || !strings.Contains(err.Error(), "b: second") {
			t.Fatalf("Run = %v, want both failures", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Merge kept running with every source failed")
	}
	noLeak(t, base)
}

func TestMergeEmpty(t *testing.T) {
	base := runtime.NumGoroutine()
	r := start(t, Merge())
	r.waitFor(t, nil, 2*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	noLeak(t, base)
}
