package conformance

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// UnreadBody checks that a body no handler reads yet is not all read into
// the slave's memory: past some megabytes the runtime stops reading its
// socket, so the rest waits there (and the engine's flow control holds the
// sender); once the handler reads, the whole body arrives. It is a check
// apart from Run: the app serves an event "count" that waits for the file
// named by $COUNT_GATE, then answers the length of its body in decimal.
func UnreadBody(t *testing.T, start StartFunc) {
	dir, err := os.MkdirTemp("", "unread") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	gate := filepath.Join(dir, "open")
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := start(t, []string{"COCAINE_SOCKET=" + sock, "COCAINE_SLAVE_ID=unread", "COCAINE_APP=conformance",
		fmt.Sprintf("COCAINE_HEARTBEAT_MS=%d", HeartbeatMS)})
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "COUNT_GATE="+gate)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	conn := protocol.NewConn(nc)
	var f protocol.Frame
	if err := conn.Read(&f); err != nil || f.Type != protocol.Handshake {
		t.Fatalf("handshake: %v %v\n%s", f.Type, err, out.String())
	}

	const total = 48 << 20
	piece := bytes.Repeat([]byte("x"), protocol.ChunkSize)
	sent := make(chan int, total/len(piece)+1)
	go func() {
		conn.Write(&protocol.Frame{Type: protocol.Invoke, Session: 1, Event: "count"})
		for n := 0; n < total; n += len(piece) {
			if err := conn.Write(&protocol.Frame{Type: protocol.Chunk, Session: 1, Data: piece}); err != nil {
				return
			}
			sent <- n + len(piece)
		}
		conn.Write(&protocol.Frame{Type: protocol.Choke, Session: 1})
	}()
	// The sender stalls well before the end: the slave stopped reading.
	// A second without progress is the sign, not a measure of speed.
	var last int
	for stalled := false; !stalled; {
		select {
		case last = <-sent:
			if last == total {
				t.Fatalf("all %d MiB were taken while the handler read nothing\n%s", total>>20, out.String())
			}
		case <-time.After(time.Second):
			stalled = true
		}
	}
	t.Logf("the slave stopped reading after %d MiB", last>>20)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for {
		if err := conn.Read(&f); err != nil {
			t.Fatalf("answer: %v\n%s", err, out.String())
		}
		switch f.Type {
		case protocol.Chunk:
			if got := string(f.Data); got != strconv.Itoa(total) {
				t.Fatalf("count answered %q, want %d", strings.TrimSpace(got), total)
			}
		case protocol.Choke:
			return
		case protocol.Error:
			t.Fatalf("count failed: %d %s", f.Code, f.Message)
		}
	}
}
