package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
)

// startEngine runs `cocaine engine` with the given [security] section and
// returns the process and its request and announce endpoints.
func startEngine(t *testing.T, security string) (*testcluster.Proc, string, string) {
	t.Helper()
	data, err := os.MkdirTemp("", "eng") // short: app sockets live under it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	listen := fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t))
	announce := fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t))
	cfg := filepath.Join(data, "engine.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen = %q
announce = %q
announce-interval = "200ms"
data-dir = %q
storage = "file://%s/storage"
metrics = "off" # never the default port: another cocaine may hold it
%s
`, listen, announce, data, data, security)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := testcluster.Start(t, "engine", "-c", cfg)
	testcluster.Eventually(t, 30*time.Second, "the engine to listen", func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(listen, "tcp://"))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p, listen, announce
}

// TestEngineRefusesStrangers: with a cluster key the engine talks only to
// dealers holding it (announces and requests); a raw peer, or one with
// another key, gets nothing; a peer declaring an 8 GiB frame is cut
// without the engine growing.
func TestEngineRefusesStrangers(t *testing.T) {
	if !zmq.HasCurve() {
		t.Fatal("libzmq without CURVE: install libzmq3-dev from Debian (scripts/deps.sh)")
	}
	pub, secret, err := zmqsec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p, listen, announce := startEngine(t, fmt.Sprintf("[security]\ncurve-secret = %q", secret))

	// A dealer with the key hears the node; one without does not.
	testcluster.Eventually(t, 30*time.Second, "info with the key to see the node", func() bool {
		_, _, code := cli(t, []string{zmqsec.EnvSecret + "=" + secret}, "info", "--discovery", "static:"+announce)
		return code == 0
	})
	if out, stderr, code := cli(t, nil, "info", "--discovery", "static:"+announce); code == 0 {
		t.Fatalf("info without the key saw the node:\n%s%s", out, stderr)
	}
	other, otherSecret, _ := zmqsec.NewKey()
	if out, stderr, code := cli(t, []string{zmqsec.EnvSecret + "=" + otherSecret}, "info", "--discovery", "static:"+announce); code == 0 {
		t.Fatalf("info with another key saw the node:\n%s%s", out, stderr)
	}

	// A CURVE peer that knows the server key but not the cluster's
	// secret is refused by the handshake (ZAP).
	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	_ = sock.SetLinger(0)
	if err := sock.ClientAuthCurve(pub, other, otherSecret); err != nil {
		t.Fatal(err)
	}
	events := monitor(t, sock)
	if err := sock.Connect(listen); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev&(zmq.EVENT_HANDSHAKE_FAILED_AUTH|zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL|zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL|zmq.EVENT_DISCONNECTED) == 0 {
			t.Fatalf("peer with another key: event %v, want a failed handshake", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("peer with another key: no failed handshake")
	}

	// A raw peer without CURVE is cut at the greeting, whatever it sends.
	checkCut(t, p.Pid(), listen)
}

// TestEngineCutsHugeFrames: even without CURVE (insecure), a peer that
// declares an 8 GiB frame is disconnected before the engine grows.
func TestEngineCutsHugeFrames(t *testing.T) {
	p, listen, _ := startEngine(t, "[security]\ninsecure = true")
	checkCut(t, p.Pid(), listen)
}

// checkCut plays a ZMTP 3.0 DEALER with the NULL mechanism that declares
// an 8 GiB message and streams 64 MiB of it: the engine must close the
// connection early and grow by less than 10 MB.
func checkCut(t *testing.T, pid int, endpoint string) {
	t.Helper()
	before := rss(t, pid)
	c, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var g bytes.Buffer
	g.Write([]byte{0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0})
	mech := make([]byte, 20)
	copy(mech, "NULL")
	g.Write(mech)
	g.Write(make([]byte, 32)) // as-server 0 and filler
	var ready bytes.Buffer
	ready.WriteByte(5)
	ready.WriteString("READY")
	ready.WriteByte(byte(len("Socket-Type")))
	ready.WriteString("Socket-Type")
	_ = binary.Write(&ready, binary.BigEndian, uint32(len("DEALER")))
	ready.WriteString("DEALER")
	g.Write([]byte{0x04, byte(ready.Len())})
	g.Write(ready.Bytes())
	g.WriteByte(0x02) // a long message frame
	_ = binary.Write(&g, binary.BigEndian, uint64(8<<30))
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	sent := 0
	if _, err := c.Write(g.Bytes()); err == nil {
		chunk := make([]byte, 1<<20)
		for sent < 64<<20 {
			n, err := c.Write(chunk)
			sent += n
			if err != nil {
				break
			}
		}
	}
	if sent >= 64<<20 {
		t.Fatalf("the engine took %d bytes of a declared 8 GiB frame without closing", sent)
	}
	if grew := rss(t, pid) - before; grew > 10<<20 {
		t.Fatalf("the engine grew by %d bytes", grew)
	}
}

// rss is the resident size of process pid in bytes.
func rss(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// monitor reports the events of sock (handshake results, disconnects).
func monitor(t *testing.T, sock *zmq.Socket) <-chan zmq.Event {
	t.Helper()
	addr := fmt.Sprintf("inproc://monitor-%p", sock)
	if err := sock.Monitor(addr, zmq.EVENT_ALL); err != nil {
		t.Fatal(err)
	}
	mon, err := zmq.NewSocket(zmq.PAIR)
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Connect(addr); err != nil {
		t.Fatal(err)
	}
	out := make(chan zmq.Event, 16)
	done, exited := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(done); <-exited })
	_ = mon.SetRcvtimeo(100 * time.Millisecond)
	go func() {
		// The socket stays on this goroutine: ZeroMQ sockets are not
		// safe to share.
		defer close(exited)
		defer mon.Close()
		for {
			select {
			case <-done:
				return
			default:
			}
			ev, _, _, err := mon.RecvEvent(0)
			if err != nil {
				continue
			}
			if ev&(zmq.EVENT_CONNECTED|zmq.EVENT_CONNECT_DELAYED|zmq.EVENT_CONNECT_RETRIED|zmq.EVENT_MONITOR_STOPPED) != 0 {
				continue
			}
			select {
			case out <- ev:
			default:
			}
		}
	}()
	return out
}
