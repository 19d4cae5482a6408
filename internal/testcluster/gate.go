package testcluster

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Gate is a file an app under test waits for before it goes on. A test
// that checks streaming reads the first part, then opens the gate: if the
// first part could only arrive with the whole answer, the test times out
// instead of depending on how fast a loaded machine is.
type Gate struct{ Path string }

// NewGate returns a closed gate in a temporary folder the app can read.
func NewGate(t testing.TB) Gate {
	t.Helper()
	dir, err := os.MkdirTemp("", "gate")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return Gate{Path: filepath.Join(dir, "open")}
}

// Open lets the app go on.
func (g Gate) Open(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(g.Path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Marks is a folder where an app under test leaves one file per process
// that ran a request, named for its pid: a test that kills "the slave
// running the request" then knows it did.
type Marks struct{ Dir string }

// NewMarks returns an empty marks folder the app can write to.
func NewMarks(t testing.TB) Marks {
	t.Helper()
	dir, err := os.MkdirTemp("", "marks")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return Marks{Dir: dir}
}

// PIDs lists the pids that left a mark, in no order.
func (m Marks) PIDs() []int {
	entries, _ := os.ReadDir(m.Dir)
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// KillRunning waits for the first mark, kills that process with SIGKILL
// and returns its pid.
func (m Marks) KillRunning(t testing.TB) int {
	t.Helper()
	var pid int
	Eventually(t, 30*time.Second, "a slave to start the request", func() bool {
		if p := m.PIDs(); len(p) > 0 {
			pid = p[0]
			return true
		}
		return false
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	return pid
}

// CheckRerun fails unless the request ran again in another process after
// killed was killed.
func (m Marks) CheckRerun(t testing.TB, killed int) {
	t.Helper()
	pids := m.PIDs()
	if len(pids) != 2 || !slices.Contains(pids, killed) {
		t.Fatalf("processes that ran the request: %v; want the killed %d and one more", pids, killed)
	}
}
