package nats

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The tests run against a real three-server nats-server cluster on
// loopback (Debian's nats-server, installed by `scripts/deps.sh test`),
// started here with fresh store directories.

// natsBin finds nats-server; NATS_SERVER overrides the search.
func natsBin() (string, error) {
	if p := os.Getenv("NATS_SERVER"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	// Debian puts it in /usr/sbin, which a user's PATH may lack.
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server", nil
	}
	return "", fmt.Errorf("nats-server not found: install it with `scripts/deps.sh test` (Debian package nats-server) or set NATS_SERVER")
}

// server is one nats-server of a cluster.
type server struct {
	name      string
	port      int // client port
	cport     int // cluster port
	dir       string
	conf, log string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan error
}

// cluster is three servers routed to each other.
type cluster struct {
	bin     string
	servers []*server
}

// freePorts finds n loopback ports nothing listens on, holding them all
// open at once so they differ.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startCluster starts three servers under dir and waits until JetStream
// answers through all of them.
func startCluster(bin, dir string) (*cluster, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin}
	var routes []string
	for i := range 3 {
		s := &server{name: fmt.Sprintf("n%d", i+1), port: ports[2*i], cport: ports[2*i+1]}
		s.dir = filepath.Join(dir, s.name)
		s.conf = filepath.Join(dir, s.name+".conf")
		s.log = filepath.Join(dir, s.name+".log")
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", s.cport))
		c.servers = append(c.servers, s)
	}
	for _, s := range c.servers {
		// Debian's 2.9.10 does not know sync_interval (see docs/nats.md);
		// the tests kill processes, not machines, so the page cache holds.
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream { store_dir: %q, max_memory_store: 64MB, max_file_store: 1GB }
cluster { name: cocaine-test, listen: 127.0.0.1:%d, routes: [%s] }
`, s.name, s.port, s.dir, s.cport, strings.Join(routes, ", "))
		if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	for _, s := range c.servers {
		if err := s.start(bin); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := c.waitReady(60 * time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (s *server) start(bin string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(s.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary that dies without its cleanups (a panic, a timeout)
	// must not leave servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	s.cmd, s.exit = cmd, make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan error) { exit <- cmd.Wait() }(cmd, s.exit)
	return nil
}

// kill stops the server at once, as a crash would.
func (s *server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exit
		s.cmd = nil
	}
}

func (s *server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

func (s *server) url() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func (c *cluster) stop() {
	for _, s := range c.servers {
		s.kill()
	}
}

// hosts is the host list of a nats:// URI for every server.
func (c *cluster) hosts() string {
	var hs []string
	for _, s := range c.servers {
		hs = append(hs, s.url())
	}
	return strings.Join(hs, ",")
}

func (c *cluster) byName(name string) *server {
	for _, s := range c.servers {
		if s.name == name {
			return s
		}
	}
	return nil
}

// client connects to every server directly, for tests that look behind
// the Store (stream leaders, replica lag).
func (c *cluster) client() (*natsio.Conn, jetstream.JetStream, error) {
	var urls []string
	for _, s := range c.servers {
		urls = append(urls, "nats://"+s.url())
	}
	nc, err := natsio.Connect(strings.Join(urls, ","), natsio.MaxReconnects(-1),
		natsio.ReconnectWait(100*time.Millisecond), natsio.Timeout(time.Second))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(2*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// waitReady polls until a replicated stream can be created, which needs the
// servers routed and a JetStream meta leader elected.
func (c *cluster) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		for _, s := range c.servers {
			select {
			case err := <-s.exit:
				s.exit <- err
				return fmt.Errorf("nats-server %s exited during start (%v):\n%s", s.name, err, s.tail())
			default:
			}
		}
		last = c.probe()
		if last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("cluster not ready after %v: %v\n%s", d, last, c.servers[0].tail())
}

func (c *cluster) probe() error {
	nc, js, err := c.client()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "probe", Subjects: []string{"probe"}, Replicas: 3, Storage: jetstream.MemoryStorage})
	if err != nil {
		return err
	}
	return js.DeleteStream(ctx, "probe")
}
