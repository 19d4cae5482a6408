// Package testcluster starts real platform processes for integration
// tests: the cocaine binary built once per test binary, `cocaine dev`
// nodes on free loopback ports, and nginx in front of them.
package testcluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary builds bin/cocaine into a temporary folder once per process.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cocainebin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cocaine")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/cocaine")
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreePort returns a loopback TCP port nobody listens on.
// A port is handed out once per test binary: the kernel may give a port
// it just freed to the next caller, and a node's listen and announce
// endpoints then collided.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		portsMu.Lock()
		taken := givenPorts[port]
		givenPorts[port] = true
		portsMu.Unlock()
		if !taken {
			return port
		}
	}
	t.Fatal("no free port that was not handed out already")
	return 0
}

var (
	portsMu    sync.Mutex
	givenPorts = map[int]bool{}
)

// Node is a `cocaine dev` process.
type Node struct {
	Listen   string // engine request endpoint
	Announce string // engine announce endpoint
	HTTP     string // front address, "" when off
	FastCGI  string // front FastCGI address, "" when off
	Admin    string // admin listener (REST API, dashboard, /metrics)
	DataDir  string
	cmd      *exec.Cmd
	log      *syncBuffer
}

// Options for StartNode.
type Options struct {
	Apps    []string // example folders under examples/, or absolute paths of app folders, to deploy
	Front   bool     // run the HTTP and FastCGI front too
	Args    []string // more flags for `cocaine dev`
	Env     []string // more environment for `cocaine dev` (KEY=VALUE), e.g. COCAINE_TOKEN
	Verbose bool
}

// StartNode runs `cocaine dev` with copies of the given examples and
// stops it (and its slaves) at the end of the test.
func StartNode(t testing.TB, o Options) *Node {
	t.Helper()
	bin := Binary(t)
	data, err := os.MkdirTemp("", "node") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(data, "apps")
	for _, a := range o.Apps {
		src := filepath.Join(Root(), "examples", a)
		if filepath.IsAbs(a) {
			src = a
		}
		if err := os.CopyFS(filepath.Join(apps, filepath.Base(a)), os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
	}
	n := &Node{
		DataDir:  data,
		Listen:   fmt.Sprintf("tcp://127.0.0.1:%d", FreePort(t)),
		Announce: fmt.Sprintf("tcp://127.0.0.1:%d", FreePort(t)),
		Admin:    fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		log:      &syncBuffer{},
	}
	if o.Front {
		n.HTTP = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		n.FastCGI = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	}
	args := []string{"dev", "--data", data, "--apps", apps, "--listen", n.Listen, "--announce", n.Announce,
		// Three silent intervals make a node dead: at 200 ms a loaded CI
		// machine could delay announces that long and turn a live node's
		// routes into 404s for a moment.
		"--announce-interval", "500ms", "--http", n.HTTP, "--fastcgi", n.FastCGI, "--admin", n.Admin}
	if o.Verbose {
		args = append(args, "-v")
	}
	n.cmd = exec.Command(bin, append(args, o.Args...)...)
	n.cmd.Dir = data // runtimes come from the binary, not from a checkout
	if len(o.Env) > 0 {
		n.cmd.Env = append(os.Environ(), o.Env...)
	}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		os.RemoveAll(data)
		if t.Failed() {
			t.Logf("cocaine dev %s log:\n%s", n.Listen, n.log.String())
		}
	})
	return n
}

// SlavePIDs lists the running slave processes of app on this node, found
// by the protocol environment the engine gave them.
func (n *Node) SlavePIDs(app string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if slices.Contains(vars, "COCAINE_APP="+app) && slices.ContainsFunc(vars, func(v string) bool {
			return strings.HasPrefix(v, "COCAINE_SOCKET="+n.DataDir)
		}) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// PID is the node's process id.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// RSS is the node process's resident memory in bytes (its slaves apart).
func (n *Node) RSS(t testing.TB) int64 { t.Helper(); return ProcRSS(t, n.PID()) }

// ProcRSS is a process's resident memory in bytes.
func ProcRSS(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// Kill9 kills the node's process only, as a crash would.
func (n *Node) Kill9() { _ = n.cmd.Process.Kill() }

// Log returns what the node printed so far.
func (n *Node) Log() string { return n.log.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Eventually polls cond until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Proc is a process a test started: stopped with SIGTERM (then SIGKILL)
// at the end, its output shown if the test failed.
type Proc struct {
	cmd *exec.Cmd
	log *syncBuffer
}

// Start runs the cocaine binary with args from the repository root.
func Start(t testing.TB, args ...string) *Proc {
	t.Helper()
	return StartCmd(t, exec.Command(Binary(t), args...))
}

// StartCmd runs cmd in its own process group.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{cmd: cmd, log: &syncBuffer{}}
	if cmd.Dir == "" {
		cmd.Dir = Root()
	}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%v output:\n%s", cmd.Args, p.log.String())
		}
	})
	return p
}

// Log returns what the process printed so far.
func (p *Proc) Log() string { return p.log.String() }

// FerretDB builds (once, cached by scripts/ferretdb.sh) and starts a
// MongoDB-wire server on a free loopback port for the test, and returns
// its mongodb:// URI (without a database).
func FerretDB(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(Root(), "scripts", "ferretdb.sh")).Output()
	if err != nil {
		t.Fatalf("building FerretDB with scripts/ferretdb.sh: %v", err)
	}
	bin := strings.TrimSpace(string(out))
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	StartCmd(t, exec.Command(bin, "-listen", addr, "-dir", t.TempDir()))
	Eventually(t, 60*time.Second, "FerretDB to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "mongodb://" + addr
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// OpenFDs counts the open file descriptors of process pid.
func OpenFDs(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Pid is the `cocaine dev` process's id.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// AppDir makes a folder that apps may write in (mode 0777, removed at the
// end of the test): under `cocaine dev` as root each app runs as a user of
// its own (docs/operations.md), which a folder of the test's would keep out.
func AppDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}
