package fcgiproxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// TestIdleConnectionFlood opens many more idle connections to the HTTP and
// FastCGI listeners than their caps (set low here): the front keeps its
// descriptors within the caps, answers /ping and app requests at once over
// both, and closes the idle connections when the idle timeout passes.
func TestIdleConnectionFlood(t *testing.T) {
	const (
		httpCap, fcgiCap = 100, 40
		flood            = 600 // idle connections to each listener
	)
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"echo"}})
	gw, httpAddr, fcgiAddr := startGateway(t, n, fmt.Sprintf(`max-conns = %d
max-fastcgi-conns = %d
idle-timeout = "6s"
header-timeout = "6s"`, httpCap, fcgiCap))
	nginx := testcluster.Nginx(t, fcgiAddr)
	testcluster.Eventually(t, 120*time.Second, "echo to answer through the gateway", func() bool {
		code, _ := get("http://" + httpAddr + "/echo/http/")
		return code == 200
	})
	base := testcluster.OpenFDs(t, gw.Pid())

	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	for _, addr := range []string{httpAddr, fcgiAddr} {
		for range flood {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			idle = append(idle, c)
		}
	}
	start := time.Now()
	// Within the idle timeout, so only making room at the cap explains
	// an answer.
	const soon = 3 * time.Second
	for _, url := range []string{"http://" + httpAddr + "/ping", "http://" + httpAddr + "/echo/http/", nginx + "/echo/http/"} {
		code, err := get(url)
		if err != nil || code != 200 {
			t.Fatalf("GET %s during the flood: %d %v", url, code, err)
		}
	}
	if d := time.Since(start); d > soon {
		t.Fatalf("requests during the flood took %v", d)
	}
	if fds := testcluster.OpenFDs(t, gw.Pid()); fds > base+httpCap+fcgiCap+20 {
		t.Fatalf("gateway holds %d descriptors (%d before the flood); caps %d+%d", fds, base, httpCap, fcgiCap)
	}
	// Every idle connection is closed: the oldest at the caps, the rest
	// by the idle timeout.
	testcluster.Eventually(t, 30*time.Second, "idle connections closed", func() bool {
		for len(idle) > 0 {
			c := idle[len(idle)-1]
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
				return false
			}
			c.Close()
			idle = idle[:len(idle)-1]
		}
		return true
	})
	if code, err := get("http://" + httpAddr + "/ping"); code != 200 {
		t.Fatalf("ping after the flood: %d %v", code, err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return err != nil && (errors.As(err, &op) && !op.Timeout())
}

func get(url string) (int, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// startGateway runs `cocaine gateway` in front of node n with more [front]
// settings and returns it with its HTTP and FastCGI addresses.
func startGateway(t *testing.T, n *testcluster.Node, front string) (*testcluster.Proc, string, string) {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))
	fcgiAddr := fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "gateway.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[dealer]
discovery = ["static:%s"]
[front]
http = %q
fastcgi = %q
%s
[api]
storage = "off"
[security]
insecure = true # cocaine dev's engine is insecure
[admin]
listen = "off" # never the default port: another cocaine may hold it
`, n.Announce, httpAddr, fcgiAddr, front)), 0o600); err != nil {
		t.Fatal(err)
	}
	return testcluster.Start(t, "gateway", "-c", cfg), httpAddr, fcgiAddr
}

// TestStalledClientsAreCut: a client that stops sending its body, and one
// that stops reading a long answer, lose their connection after the
// body and write timeouts; one that keeps up is served whole.
func TestStalledClientsAreCut(t *testing.T) {
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"echo"}})
	gw, httpAddr, _ := startGateway(t, n, `body-timeout = "1s"
write-timeout = "1s"`)
	testcluster.Eventually(t, 120*time.Second, "echo to answer through the gateway", func() bool {
		code, _ := get("http://" + httpAddr + "/echo/http/")
		return code == 200
	})
	base := testcluster.OpenFDs(t, gw.Pid())

	// The body stops after 10 of 1000 bytes.
	c, err := net.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /echo/http/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("stalled body: the connection was not closed: %v", err)
	}

	// 8 MiB echoed to a client that never reads.
	s, err := net.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := strings.Repeat("z", 8<<20)
	go fmt.Fprintf(s, "POST /echo/http/ HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	testcluster.Eventually(t, 30*time.Second, "the reader that stalled to be cut", func() bool {
		return testcluster.OpenFDs(t, gw.Pid()) <= base
	})

	// A live client of the same size is served whole.
	resp, err := http.Post("http://"+httpAddr+"/echo/http/", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(got) != len("POST /\n")+len(body) {
		t.Fatalf("live client: %d, %d bytes, %v", resp.StatusCode, len(got), err)
	}
}
