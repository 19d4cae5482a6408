package c_test

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

// TestUnreadBodyStaysInTheSocket: a body no handler reads yet is not all
// read into the slave's memory. Past 8 MiB the library stops reading, so
// the rest waits in the socket (and the engine's flow control holds the
// sender); once the handler reads, the whole body arrives.
func TestUnreadBodyStaysInTheSocket(t *testing.T) {
	l, err := prepare(t, "testdata/conformance-c")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gate := filepath.Join(dir, "open")
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd, err := l.Command("unread")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(cmd.Env, "COCAINE_SOCKET="+sock, "COCAINE_SLAVE_ID=unread", "COCAINE_HEARTBEAT_MS=100", "COUNT_GATE="+gate)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
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
		t.Fatalf("handshake: %v %v", f.Type, err)
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
	var last int
	for stalled := false; !stalled; {
		select {
		case last = <-sent:
			if last == total {
				t.Fatalf("all %d MiB were taken while the handler read nothing%s", total>>20, out.String())
			}
		case <-time.After(time.Second):
			stalled = true
		}
	}
	if rss := rssMiB(t, cmd.Process.Pid); rss > 40 {
		t.Errorf("slave holds %d MiB with %d MiB sent and none read", rss, last>>20)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for {
		if err := conn.Read(&f); err != nil {
			t.Fatalf("answer: %v%s", err, out.String())
		}
		switch f.Type {
		case protocol.Chunk:
			if got := string(f.Data); got != strconv.Itoa(total) {
				t.Fatalf("count answered %q, want %d", got, total)
			}
		case protocol.Choke:
			return
		case protocol.Error:
			t.Fatalf("count failed: %d %s", f.Code, f.Message)
		}
	}
}

func rssMiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return kb >> 10
		}
	}
	return 0
}
