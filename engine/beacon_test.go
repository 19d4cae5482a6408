package engine

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/mcast"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// beaconListener joins a fresh group on the interface RunBeacon would
// pick for iface: a raw UDP listener, independent of gateway/discovery.
func beaconListener(t *testing.T, iface string) (*net.UDPConn, *net.UDPAddr) {
	t.Helper()
	ifi, _, err := mcast.Interface(iface)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	group := &net.UDPAddr{IP: net.IPv4(239, 0, 100, 53), Port: c.LocalAddr().(*net.UDPAddr).Port}
	c.Close()
	l, err := net.ListenMulticastUDP("udp4", ifi, group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, group
}

// beaconReady makes sure multicast through iface comes back to this
// machine (setting the loopback up as root, failing otherwise).
func beaconReady(t *testing.T, iface string) {
	t.Helper()
	testcluster.MulticastReady(t, iface)
}

func TestBeacon(t *testing.T) {
	for _, iface := range []string{"", "lo"} {
		name := iface
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) { testBeacon(t, iface) })
	}
}

func testBeacon(t *testing.T, iface string) {
	beaconReady(t, iface)
	base := runtime.NumGoroutine()
	l, group := beaconListener(t, iface)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- RunBeacon(ctx, BeaconConfig{Group: group.String(), Interface: iface, Interval: 50 * time.Millisecond},
			"tcp://127.0.0.1:5001", nil)
	}()

	var ids []string
	buf := make([]byte, 2048)
	for len(ids) < 3 {
		_ = l.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := l.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("beacon %d not received: %v", len(ids)+1, err)
		}
		if n > 1024 {
			t.Fatalf("beacon of %d bytes", n)
		}
		var fields map[string]any
		if err := json.Unmarshal(buf[:n], &fields); err != nil {
			t.Fatalf("beacon %q: %v", buf[:n], err)
		}
		if len(fields) != 4 || fields["v"] != 1.0 || fields["announce"] != "tcp://127.0.0.1:5001" || fields["interval-ms"] != 50.0 {
			t.Fatalf("beacon %s, want v 1, announce tcp://127.0.0.1:5001, interval-ms 50 and an id", buf[:n])
		}
		id, _ := fields["id"].(string)
		if b, err := hex.DecodeString(id); err != nil || len(b) != 8 {
			t.Fatalf("id %q is not 8 random bytes in hex", id)
		}
		ids = append(ids, id)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("id changed within one run: %q", ids)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunBeacon after ctx ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunBeacon did not return after ctx ended")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d, baseline %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBeaconID(t *testing.T) {
	beaconReady(t, "")
	l, group := beaconListener(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunBeacon(ctx, BeaconConfig{Group: group.String(), ID: "node-7"}, "tcp://*:5001", nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunBeacon: %v", err)
		}
	}()
	_ = l.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := l.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	// The first beacon goes at once, not an interval (default 1s) later.
	want := `{"v":1,"announce":"tcp://*:5001","interval-ms":1000,"id":"node-7"}`
	if string(buf[:n]) != want {
		t.Fatalf("beacon %s, want %s", buf[:n], want)
	}
}

func TestBeaconRejects(t *testing.T) {
	base := runtime.NumGoroutine()
	cases := []struct {
		cfg      BeaconConfig
		announce string
		want     string
	}{
		{BeaconConfig{}, "ipc:///tmp/announce", "want tcp://host:port"},
		{BeaconConfig{}, "udp://h:5001", "want tcp://host:port"},
		{BeaconConfig{}, "tcp://h", "missing port"},
		{BeaconConfig{}, "tcp://h:0", "bad port"},
		{BeaconConfig{}, "tcp://h:99999", "bad port"},
		{BeaconConfig{}, "tcp://:5001", "bad host"},
		{BeaconConfig{Group: "10.1.2.3:5099"}, "tcp://h:5001", "IPv4 multicast"},
		{BeaconConfig{Group: "239.1.2.3"}, "tcp://h:5001", "beacon group"},
		{BeaconConfig{Group: "[ff02::1]:5099"}, "tcp://h:5001", "beacon group"},
		{BeaconConfig{Interface: "nope0"}, "tcp://h:5001", `"nope0"`},
		{BeaconConfig{}, "tcp://" + strings.Repeat("h", 1000) + ":5001", "more than 1024"},
	}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() { done <- RunBeacon(context.Background(), c.cfg, c.announce, nil) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("RunBeacon(%+v, %.40q) = %v, want an error with %q", c.cfg, c.announce, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("RunBeacon(%+v, %.40q) did not fail", c.cfg, c.announce)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d, baseline %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
