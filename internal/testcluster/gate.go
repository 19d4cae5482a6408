package testcluster

import (
	"os"
	"path/filepath"
	"testing"
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
