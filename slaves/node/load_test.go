package node_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrashAtLoad: an app that throws while it loads makes the slave exit
// non-zero before its handshake, with the stack on stderr: the engine
// counts a failed start, keeps the output as the crash log, and marks the
// app broken after five.
func TestCrashAtLoad(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"type": "node", "args": {"module": "app.js"}, "drivers": {"x": {"type": "native-server"}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "app.js"), []byte("throw new Error('broken at load on purpose');\n"), 0o644)
	start := starter(t, dir)

	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := start(t, []string{"COCAINE_SOCKET=" + sock, "COCAINE_SLAVE_ID=x", "COCAINE_HEARTBEAT_MS=100"})
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the slave of a broken app did not exit")
	}
	if err == nil || !strings.Contains(out.String(), "broken at load on purpose") {
		t.Fatalf("exit %v, output %q: want a failure with the error in the output", err, out.String())
	}
}
