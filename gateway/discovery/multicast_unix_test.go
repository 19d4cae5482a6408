//go:build unix

package discovery

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/mcast"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// The test binary doubles as a beaconing engine: the cross-process test
// starts it again with DISCOVERY_TEST_BEACON="group|interface|announce".
// It sends raw datagrams rather than calling engine.RunBeacon so that this
// package depends on nothing else in the tree; engine/beacon_test.go checks
// RunBeacon sends the same format.
func TestMain(m *testing.M) {
	if spec := os.Getenv("DISCOVERY_TEST_BEACON"); spec != "" {
		childBeacon(spec)
		return
	}
	os.Exit(m.Run())
}

func childBeacon(spec string) {
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad DISCOVERY_TEST_BEACON", spec)
		os.Exit(2)
	}
	group, err := net.ResolveUDPAddr("udp4", parts[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	conn, err := testSender(parts[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// The parent holds our stdin: when it goes, so do we, even if it was
	// killed before it could kill us.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	id := "child-" + strconv.Itoa(os.Getpid())
	fmt.Println("beaconing", parts[2], "to", group, "via", parts[1])
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := sendBeacon(conn, group, 1, parts[2], 50, id); err != nil {
			fmt.Fprintln(os.Stderr, "send:", err)
		}
	}
	os.Exit(0)
}

// testSender opens a socket sending on the interface Multicast would pick
// for iface, set up as engine.RunBeacon sets its socket up.
func testSender(iface string) (net.PacketConn, error) {
	ifi, ip, err := mcast.Interface(iface)
	if err != nil {
		return nil, err
	}
	conn, err := testcluster.MulticastSender(ip)
	if err != nil {
		return nil, fmt.Errorf("sender on %s: %w", ifi.Name, err)
	}
	return conn, nil
}

func sendBeacon(conn net.PacketConn, group net.Addr, v int, announce string, intervalMS int64, id string) error {
	b, _ := json.Marshal(map[string]any{"v": v, "announce": announce, "interval-ms": intervalMS, "id": id})
	_, err := conn.WriteTo(b, group)
	return err
}

// freeGroup is the default group on a port nothing else here uses, so
// tests (and a dealer on this machine) don't hear each other.
func freeGroup(t *testing.T) *net.UDPAddr {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return &net.UDPAddr{IP: net.IPv4(239, 0, 100, 53), Port: c.LocalAddr().(*net.UDPAddr).Port}
}

// mcReady returns the interface settings ("" for the default choice,
// "lo") through which multicast comes back to this machine, after
// testcluster.MulticastReady has set the loopback up if need be (as root;
// otherwise it fails saying what to run, rather than skipping).
var mc struct {
	once   sync.Once
	ifaces []string
	notes  []string
}

func mcReady(t *testing.T) []string {
	t.Helper()
	testcluster.MulticastReady(t, "lo")
	mc.once.Do(func() {
		for _, iface := range []string{"", "lo"} {
			if err := testcluster.MulticastProbe(iface); err != nil {
				mc.notes = append(mc.notes, fmt.Sprintf("multicast via %q does not work: %v", iface, err))
				continue
			}
			mc.ifaces = append(mc.ifaces, iface)
		}
	})
	for _, n := range mc.notes {
		t.Log(n)
	}
	if len(mc.ifaces) == 0 {
		t.Fatal("multicast does not work here even after setting up the loopback")
	}
	return mc.ifaces
}

// sendUntil sends a round of datagrams every 50ms until cond holds.
func sendUntil(t *testing.T, within time.Duration, send func(), cond func() bool) {
	t.Helper()
	for end := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		send()
		if cond() {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("condition not met within %v", within)
		}
	}
}

func lastIs(r *running, want ...string) bool {
	got, ok := r.last()
	return ok && slices.Equal(got, want)
}

// junk is what a listener must ignore; every endpoint in it has port 71xx.
var junk = [][]byte{
	[]byte("garbage"),
	[]byte(`{"v":2,"announce":"tcp://127.0.0.1:7101","interval-ms":50}`),
	[]byte(`{"announce":"tcp://127.0.0.1:7102","interval-ms":50}`),
	[]byte(`{"v":1,"announce":"udp://127.0.0.1:7103"}`),
	[]byte(`{"v":1,"announce":"127.0.0.1:7104"}`),
	[]byte(`{"v":1,"announce":"tcp://127.0.0.1"}`),
	[]byte(`{"v":1,"announce":"tcp://127.0.0.1:7105","interval-ms":-1}`),
	[]byte(`{"v":1,"announce":"tcp://127.0.0.1:7106","pad":"` + strings.Repeat("x", 1100) + `"}`),
	[]byte(`{"v":"1","announce":"tcp://127.0.0.1:7107"}`),
	[]byte(`{"v":1,"announce":"tcp://bad host:7108"}`),
}

func TestMulticast(t *testing.T) {
	for _, iface := range mcReady(t) {
		name := iface
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) { testMulticast(t, iface) })
	}
}

func testMulticast(t *testing.T, iface string) {
	base := runtime.NumGoroutine()
	group := freeGroup(t)
	_, ifaddr, err := mcast.Interface(iface)
	if err != nil {
		t.Fatal(err)
	}
	logA, logsA := newLogger(t)
	logB, _ := newLogger(t)
	// Two listeners on one group:port in one process: the port is shared.
	a := start(t, Multicast(MulticastConfig{Group: group.String(), Interface: iface, Logger: logA}))
	b := start(t, Multicast(MulticastConfig{Group: group.String(), Interface: iface, Logger: logB, Expire: 300 * time.Millisecond}))
	a.waitFor(t, nil, 2*time.Second) // reported once listening
	b.waitFor(t, nil, 2*time.Second)
	conn, err := testSender(iface)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// A wildcard host becomes the sender's address.
	wild := "tcp://" + ifaddr.String() + ":7002"
	want := []string{"tcp://127.0.0.1:7001", wild}
	slices.Sort(want)
	sendUntil(t, 5*time.Second, func() {
		_ = sendBeacon(conn, group, 1, "tcp://127.0.0.1:7001", 50, "node-1")
		_ = sendBeacon(conn, group, 1, "tcp://*:7002", 50, "node-2")
		for _, j := range junk {
			_, _ = conn.WriteTo(j, group)
		}
	}, func() bool { return lastIs(a, want...) && lastIs(b, want...) })
	if !strings.Contains(logsA.String(), "node beacon heard") {
		t.Errorf("arrival not logged:\n%s", logsA)
	}

	// Beacons stop: gone after three of their 50ms intervals (a) or the
	// configured 300ms (b).
	a.waitFor(t, nil, 3*time.Second)
	b.waitFor(t, nil, 3*time.Second)

	// A node beaconing every 10s: a keeps it for 30s, b's Expire wins.
	sendUntil(t, 5*time.Second, func() {
		_ = sendBeacon(conn, group, 1, "tcp://127.0.0.1:7003", 10000, "node-3")
	}, func() bool { return lastIs(a, "tcp://127.0.0.1:7003") && lastIs(b, "tcp://127.0.0.1:7003") })
	b.waitFor(t, nil, 3*time.Second)
	if !lastIs(a, "tcp://127.0.0.1:7003") {
		t.Errorf("a dropped a node within its 30s: %q", a.history())
	}

	for _, r := range []*running{a, b} {
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, set := range r.history() {
			for _, ep := range set {
				if strings.Contains(ep, ":71") {
					t.Errorf("junk datagram taken as a beacon: %q", ep)
				}
			}
		}
	}
	noLeak(t, base)
}

// TestMulticastCrossProcess is the dev-laptop setup: an engine process
// beacons, a dealer process hears it, both on the default interface.
func TestMulticastCrossProcess(t *testing.T) {
	iface := mcReady(t)[0]
	base := runtime.NumGoroutine()
	group := freeGroup(t)
	log, _ := newLogger(t)
	r := start(t, Multicast(MulticastConfig{Group: group.String(), Interface: iface, Logger: log}))
	r.waitFor(t, nil, 2*time.Second)

	announce := fmt.Sprintf("tcp://127.0.0.1:%d", 20000+os.Getpid()%20000)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DISCOVERY_TEST_BEACON="+group.String()+"|"+iface+"|"+announce)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	t.Logf("child %d: %s", cmd.Process.Pid, strings.TrimSpace(line))

	if !poll(5*time.Second, func() bool { return lastIs(r, announce) }) {
		t.Fatalf("beacons from another process not heard; updates %q; child stderr: %s", r.history(), stderr.String())
	}
	// The engine dies without a word: its endpoint expires.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	_ = stdin.Close()
	exited = true
	r.waitFor(t, nil, 3*time.Second)

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	noLeak(t, base)
}

func TestMulticastErrors(t *testing.T) {
	base := runtime.NumGoroutine()
	cases := map[string]struct {
		cfg  MulticastConfig
		want string
	}{
		"no such interface": {MulticastConfig{Interface: "nope0"}, `"nope0"`},
		"not multicast":     {MulticastConfig{Group: "10.0.0.1:5099"}, "not an IPv4 multicast address"},
		"bad group":         {MulticastConfig{Group: "239.0.0.1:port"}, "multicast group"},
	}
	for name, c := range cases {
		called := false
		done := make(chan error, 1)
		go func() { done <- Multicast(c.cfg).Run(context.Background(), func([]string) { called = true }) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: Run = %v, want an error with %s", name, err, c.want)
			}
			if called {
				t.Errorf("%s: update called by a source that could not start", name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Run did not fail", name)
		}
	}
	noLeak(t, base)
}

func TestParseBeacon(t *testing.T) {
	from := net.IPv4(192, 0, 2, 9)
	good := map[string]heard{
		`{"v":1,"announce":"tcp://h:5001","interval-ms":1000,"id":"x"}`:        {"tcp://h:5001", 3 * time.Second, "x"},
		`{"v":1,"announce":"tcp://h:5001"}`:                                    {"tcp://h:5001", 5 * time.Second, ""},
		`{"v":1,"announce":"tcp://*:5001","interval-ms":100}`:                  {"tcp://192.0.2.9:5001", 300 * time.Millisecond, ""},
		`{"v":1,"announce":"tcp://0.0.0.0:5001","interval-ms":100}`:            {"tcp://192.0.2.9:5001", 300 * time.Millisecond, ""},
		`{"v":1,"announce":"tcp://[::1]:5001","interval-ms":0,"future":[1,2]}`: {"tcp://[::1]:5001", 5 * time.Second, ""},
		`{"v":1,"announce":"tcp://Node-A:5001"}`:                               {"tcp://node-a:5001", 5 * time.Second, ""},
	}
	for in, want := range good {
		got, err := parseBeacon([]byte(in), from)
		if err != nil || got != want {
			t.Errorf("parseBeacon(%s) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	// Exactly 1024 bytes is allowed, one more is not.
	pad := func(n int) []byte {
		b := []byte(`{"v":1,"announce":"tcp://h:5001","pad":""}`)
		return append(b[:len(b)-2], append(bytes.Repeat([]byte("x"), n-len(b)), '"', '}')...)
	}
	if b := pad(1024); len(b) != 1024 {
		t.Fatal(len(b))
	} else if _, err := parseBeacon(b, from); err != nil {
		t.Errorf("1024-byte beacon rejected: %v", err)
	}
	if _, err := parseBeacon(pad(1025), from); err == nil {
		t.Error("1025-byte beacon accepted")
	}
	for _, j := range append(junk, []byte(`{"v":1,"announce":"tcp://*:5001"}`), []byte(`{"v":1,"announce":"tcp://h:5001","interval-ms":7200000}`)) {
		var f net.IP
		if bytes.Contains(j, []byte("*:5001")) {
			f = net.IPv4zero
		}
		if h, err := parseBeacon(j, f); err == nil {
			t.Errorf("parseBeacon(%.60s) = %+v, want an error", j, h)
		}
	}
}

// Groups sharing a port are kept apart: a listener hears its own group only.
func TestMulticastGroupsApart(t *testing.T) {
	iface := mcReady(t)[0]
	g1 := freeGroup(t)
	g2 := &net.UDPAddr{IP: net.IPv4(239, 0, 100, 54), Port: g1.Port}
	log, _ := newLogger(t)
	r1 := start(t, Multicast(MulticastConfig{Group: g1.String(), Interface: iface, Logger: log}))
	r2 := start(t, Multicast(MulticastConfig{Group: g2.String(), Interface: iface, Logger: log}))
	r1.waitFor(t, nil, 2*time.Second)
	r2.waitFor(t, nil, 2*time.Second)
	conn, err := testSender(iface)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sendUntil(t, 5*time.Second, func() {
		_ = sendBeacon(conn, g1, 1, "tcp://127.0.0.1:7001", 5000, "one")
		_ = sendBeacon(conn, g2, 1, "tcp://127.0.0.1:7002", 5000, "two")
	}, func() bool { return lastIs(r1, "tcp://127.0.0.1:7001") && lastIs(r2, "tcp://127.0.0.1:7002") })
	for _, r := range []*running{r1, r2} {
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		for _, set := range r.history() {
			if len(set) > 1 {
				t.Errorf("heard another group: %q", set)
			}
		}
	}
}
