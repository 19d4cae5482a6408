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
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Node is a `cocaine dev` process.
type Node struct {
	Listen   string // engine request endpoint
	Announce string // engine announce endpoint
	HTTP     string // front address, "" when off
	FastCGI  string // front FastCGI address, "" when off
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
		log:      &syncBuffer{},
	}
	if o.Front {
		n.HTTP = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		n.FastCGI = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	}
	args := []string{"dev", "--data", data, "--apps", apps, "--listen", n.Listen, "--announce", n.Announce,
		"--announce-interval", "200ms", "--http", n.HTTP, "--fastcgi", n.FastCGI}
	if o.Verbose {
		args = append(args, "-v")
	}
	n.cmd = exec.Command(bin, append(args, o.Args...)...)
	n.cmd.Dir = Root() // the sandboxes find this checkout from here
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
