package slave

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

const testAhead = 256 << 10

func (a *readAhead) state() (held int, paused bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held, a.paused
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A body no handler takes stops the read loop at the read-ahead limit: the
// rest waits in the socket (the engine's writes block) until the handler
// reads, and then all of it arrives.
func TestReadAheadPauses(t *testing.T) {
	release := make(chan struct{})
	mux := NewMux()
	mux.HandleFunc("hold", func(ctx context.Context, req *Request, w *Response) error {
		<-release
		n, err := io.Copy(io.Discard, req)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, strconv.FormatInt(n, 10))
		return err
	})
	wk := &worker{h: mux, id: "ahead", period: time.Hour, ahead: newReadAhead(testAhead)}
	e := startEngineWith(t, wk)
	const chunks, size = 40, 32 << 10
	var sent atomic.Int64
	s := uint64(1)
	e.session = s
	go func() {
		e.conn.Write(&protocol.Frame{Type: protocol.Invoke, Session: s, Event: "hold"})
		p := bytes.Repeat([]byte("x"), size)
		for range chunks {
			if e.conn.Write(&protocol.Frame{Type: protocol.Chunk, Session: s, Data: p}) != nil {
				return
			}
			sent.Add(1)
		}
		e.conn.Write(&protocol.Frame{Type: protocol.Choke, Session: s})
	}()
	waitFor(t, "the read loop to pause", func() bool { _, p := wk.ahead.state(); return p })
	held, _ := wk.ahead.state()
	if held > testAhead+size {
		t.Errorf("the slave holds %d bytes, limit %d", held, testAhead)
	}
	if n := sent.Load(); n >= chunks {
		t.Fatalf("all %d chunks went to a slave whose handler reads nothing", n)
	}
	close(release)
	body, end := e.rest(s)
	if end.Type != protocol.Choke || string(body) != strconv.Itoa(chunks*size) {
		t.Fatalf("got %q ending in %s %d %q", body, end.Type, end.Code, end.Message)
	}
	if held, _ := wk.ahead.state(); held != 0 {
		t.Errorf("%d bytes still counted after the session", held)
	}
}

// A handler waiting for input makes a paused read loop read on: its input
// may be behind a body another handler holds.
func TestReadAheadWaitingHandlerReadsOn(t *testing.T) {
	release := make(chan struct{})
	mux := NewMux()
	mux.HandleFunc("hold", func(ctx context.Context, req *Request, w *Response) error {
		<-release
		_, err := io.Copy(io.Discard, req)
		return err
	})
	mux.Handle("echo", echoHandler())
	wk := &worker{h: mux, id: "ahead", period: time.Hour, ahead: newReadAhead(testAhead)}
	e := startEngineWith(t, wk)
	echo, hold := uint64(1), uint64(2)
	e.session = 2
	e.send(&protocol.Frame{Type: protocol.Invoke, Session: echo, Event: "echo"})
	e.send(&protocol.Frame{Type: protocol.Invoke, Session: hold, Event: "hold"})
	go func() {
		p := bytes.Repeat([]byte("x"), 32<<10)
		for range 40 { // five times the limit
			if e.conn.Write(&protocol.Frame{Type: protocol.Chunk, Session: hold, Data: p}) != nil {
				return
			}
		}
		e.conn.Write(&protocol.Frame{Type: protocol.Chunk, Session: echo, Data: []byte("ping")},
			&protocol.Frame{Type: protocol.Choke, Session: echo},
			&protocol.Frame{Type: protocol.Choke, Session: hold})
	}()
	body, end := e.rest(echo)
	if end.Type != protocol.Choke || string(body) != "ping" {
		t.Fatalf("echo behind a held body: %q ending in %s", body, end.Type)
	}
	close(release)
	if _, end := e.rest(hold); end.Type != protocol.Choke {
		t.Fatalf("hold ended in %s", end.Type)
	}
}
