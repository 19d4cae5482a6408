package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// HeartbeatMS is the heartbeat period the suite gives every slave.
const HeartbeatMS = 100

// slave is one runtime process and the engine side of its socket.
type slave struct {
	id     string
	cmd    *exec.Cmd
	out    *lockedBuffer // the process's output when start left it unset
	nc     net.Conn
	conn   *protocol.Conn
	closed atomic.Bool // we closed nc: read errors after that are ours

	// Filled by the reader goroutine.
	mu       sync.Mutex
	frames   []protocol.Frame // received, heartbeats excepted, not yet consumed
	beats    []time.Time
	first    protocol.Type // type of the very first frame
	readErr  error
	eof      bool          // reading stopped
	notify   chan struct{} // a frame arrived or reading stopped
	readDone chan struct{}

	exited  chan struct{}
	exitErr error // cmd.Wait's result, valid once exited is closed

	// Used by the test goroutine only.
	lastSession uint64
	events      map[uint64]string
	pending     map[uint64][]protocol.Frame // frames of sessions other than the one awaited
	ended       map[uint64]bool
}

var slaveSeq atomic.Int64

// launch starts the runtime's conformance app on a fresh socket and waits
// for its handshake, checking it.
func launch(t *testing.T, start StartFunc) *slave {
	t.Helper()
	dir, err := os.MkdirTemp("", "conf") // short: Unix socket paths hold at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	s := &slave{
		id:       fmt.Sprintf("conf-%d-%d", os.Getpid(), slaveSeq.Add(1)),
		notify:   make(chan struct{}, 1),
		readDone: make(chan struct{}),
		exited:   make(chan struct{}),
		events:   map[uint64]string{},
		pending:  map[uint64][]protocol.Frame{},
		ended:    map[uint64]bool{},
	}
	env := []string{
		"COCAINE_SOCKET=" + path,
		"COCAINE_SLAVE_ID=" + s.id,
		"COCAINE_APP=conformance",
		fmt.Sprintf("COCAINE_HEARTBEAT_MS=%d", HeartbeatMS),
	}
	s.cmd = start(t, env)
	if s.cmd.Env == nil {
		s.cmd.Env = append(os.Environ(), env...)
	}
	if s.cmd.Stdout == nil && s.cmd.Stderr == nil {
		s.out = &lockedBuffer{}
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start runtime: %v", err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.stop(t))

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	select {
	case s.nc = <-accepted:
	case <-s.exited:
		t.Fatalf("runtime exited before connecting: %v%s", s.exitErr, s.output())
	case <-time.After(10 * time.Second):
		t.Fatalf("runtime did not connect within 10s%s", s.output())
	}
	s.conn = protocol.NewConn(s.nc)
	go s.read()

	f := s.recv(t, 10*time.Second)
	s.mu.Lock()
	first := s.first
	s.mu.Unlock()
	switch {
	case first != protocol.Handshake:
		t.Fatalf("first frame is %s, want handshake", first)
	case f.Type != protocol.Handshake:
		t.Fatalf("first frame is %s, want handshake", f.Type)
	case f.SlaveID != s.id:
		t.Fatalf("handshake slave id %q, want %q (COCAINE_SLAVE_ID)", f.SlaveID, s.id)
	case f.PID != s.cmd.Process.Pid:
		t.Fatalf("handshake pid %d, want %d (the process the engine started)", f.PID, s.cmd.Process.Pid)
	case f.Proto != protocol.Version:
		t.Fatalf("handshake version %d, want %d", f.Proto, protocol.Version)
	}
	return s
}

// stop is the cleanup of a slave: close the socket, kill the process if it
// is still there, and report frames that did not decode.
func (s *slave) stop(t *testing.T) func() {
	return func() {
		s.closed.Store(true)
		if s.nc != nil {
			s.nc.Close()
		}
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if s.nc != nil {
			<-s.readDone
		}
		if err := s.readErr; err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("reading the slave's frames: %v (a frame that does not decode, or writes that interleaved)", err)
		}
		if t.Failed() {
			t.Logf("runtime output:%s", s.output())
		}
	}
}

func (s *slave) output() string {
	if s.out == nil {
		return ""
	}
	return "\n" + s.out.String()
}

// read runs in its own goroutine so that heartbeats are timed as they
// arrive, whatever the test is doing.
func (s *slave) read() {
	defer close(s.readDone)
	for n := 0; ; n++ {
		var f protocol.Frame
		err := s.conn.Read(&f)
		now := time.Now()
		s.mu.Lock()
		if err != nil {
			if !s.closed.Load() {
				s.readErr = err
			}
			s.eof = true
			s.mu.Unlock()
			s.wake()
			return
		}
		if n == 0 {
			s.first = f.Type
		}
		if f.Type == protocol.Heartbeat {
			s.beats = append(s.beats, now)
		} else {
			f.Data = bytes.Clone(f.Data) // f.Data aliases the read buffer
			s.frames = append(s.frames, f)
		}
		s.mu.Unlock()
		s.wake()
	}
}

func (s *slave) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// recv returns the next frame other than a heartbeat.
func (s *slave) recv(t *testing.T, d time.Duration) protocol.Frame {
	t.Helper()
	f, ok := s.recvBy(t, time.Now().Add(d))
	if !ok {
		t.Fatalf("no frame from the slave within %v", d)
	}
	return f
}

// recvBy returns the next frame other than a heartbeat, or false at the
// deadline.
func (s *slave) recvBy(t *testing.T, deadline time.Time) (protocol.Frame, bool) {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.frames) > 0 {
			f := s.frames[0]
			s.frames = s.frames[1:]
			s.mu.Unlock()
			return f, true
		}
		eof, err := s.eof, s.readErr
		s.mu.Unlock()
		if eof {
			t.Fatalf("connection to the slave ended: %v%s", err, s.exitNote())
		}
		select {
		case <-s.notify:
		case <-timer.C:
			return protocol.Frame{}, false
		}
	}
}

func (s *slave) exitNote() string {
	select {
	case <-s.exited:
		return fmt.Sprintf(" (process exited: %v)", s.exitErr)
	case <-time.After(100 * time.Millisecond):
		return ""
	}
}

// heartbeatsSince returns the heartbeats received at or after t0.
func (s *slave) heartbeatsSince(t0 time.Time) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, b := range s.beats {
		if !b.Before(t0) {
			out = append(out, b)
		}
	}
	return out
}

// waitBeats waits for n heartbeats after now: a way to let the slave's
// other threads run without sleeping blindly.
func (s *slave) waitBeats(t *testing.T, n int, d time.Duration) {
	t.Helper()
	t0 := time.Now()
	poll(t, d, fmt.Sprintf("%d heartbeats", n), func() bool { return len(s.heartbeatsSince(t0)) >= n })
}

// poll checks cond until it holds or d passes.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// send writes frames to the slave in one write.
func (s *slave) send(t *testing.T, fs ...*protocol.Frame) {
	t.Helper()
	// A slave that stops reading must fail the test, not hang it.
	_ = s.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := s.conn.Write(fs...); err != nil {
		t.Fatalf("send %s: %v", fs[0].Type, err)
	}
}

func (s *slave) invoke(t *testing.T, event string) uint64 {
	t.Helper()
	s.lastSession++
	s.events[s.lastSession] = event
	s.send(t, &protocol.Frame{Type: protocol.Invoke, Session: s.lastSession, Event: event})
	return s.lastSession
}

func (s *slave) chunk(t *testing.T, id uint64, p []byte) {
	t.Helper()
	s.send(t, &protocol.Frame{Type: protocol.Chunk, Session: id, Data: p})
}

func (s *slave) choke(t *testing.T, id uint64) {
	t.Helper()
	s.send(t, &protocol.Frame{Type: protocol.Choke, Session: id})
}

// next returns the next frame of session id, keeping frames of other
// sessions for later and failing on frames that break the protocol.
func (s *slave) next(t *testing.T, id uint64, d time.Duration) protocol.Frame {
	t.Helper()
	f, ok := s.nextBy(t, id, time.Now().Add(d))
	if !ok {
		t.Fatalf("session %d (%s): nothing from the slave within %v", id, s.events[id], d.Round(10*time.Millisecond))
	}
	return f
}

// nextBy is next with a deadline, returning false when it passes.
func (s *slave) nextBy(t *testing.T, id uint64, deadline time.Time) (protocol.Frame, bool) {
	t.Helper()
	if q := s.pending[id]; len(q) > 0 {
		s.pending[id] = q[1:]
		return s.check(t, q[0]), true
	}
	for {
		f, ok := s.recvBy(t, deadline)
		if !ok {
			return protocol.Frame{}, false
		}
		if f.Session == id {
			return s.check(t, f), true
		}
		s.validate(t, f)
		s.pending[f.Session] = append(s.pending[f.Session], f)
	}
}

// validate fails on a frame the engine would kill the slave for.
func (s *slave) validate(t *testing.T, f protocol.Frame) {
	t.Helper()
	switch f.Type {
	case protocol.Chunk, protocol.Error, protocol.Choke:
	default:
		t.Fatalf("unexpected %s frame from the slave (session %d)", f.Type, f.Session)
	}
	if f.Session == 0 || f.Session > s.lastSession {
		t.Fatalf("%s for session %d, which the engine never invoked", f.Type, f.Session)
	}
	if s.ended[f.Session] {
		t.Fatalf("%s for session %d after it ended: a session ends with exactly one choke or error", f.Type, f.Session)
	}
	if f.Type == protocol.Chunk && len(f.Data) > protocol.ChunkSize {
		t.Errorf("chunk of %d bytes: runtimes send at most %d bytes a chunk", len(f.Data), protocol.ChunkSize)
	}
}

func (s *slave) check(t *testing.T, f protocol.Frame) protocol.Frame {
	t.Helper()
	s.validate(t, f)
	if f.Type != protocol.Chunk {
		s.ended[f.Session] = true
	}
	return f
}

// answer collects session id's answer: its body and its final frame.
func (s *slave) answer(t *testing.T, id uint64, d time.Duration) ([]byte, protocol.Frame) {
	t.Helper()
	deadline := time.Now().Add(d)
	var body []byte
	for {
		f := s.next(t, id, time.Until(deadline))
		if f.Type != protocol.Chunk {
			return body, f
		}
		body = append(body, f.Data...)
	}
}

// call runs one whole session: invoke, the body chunks, choke, answer.
func (s *slave) call(t *testing.T, event string, chunks ...[]byte) ([]byte, protocol.Frame) {
	t.Helper()
	id := s.invoke(t, event)
	for _, c := range chunks {
		s.chunk(t, id, c)
	}
	s.choke(t, id)
	return s.answer(t, id, 10*time.Second)
}

// ok runs an echo and fails unless it answers correctly: "the slave is
// still usable".
func (s *slave) ok(t *testing.T) {
	t.Helper()
	want := []byte("still there?")
	body, end := s.call(t, "echo", want)
	if end.Type != protocol.Choke || !bytes.Equal(body, want) {
		t.Fatalf("follow-up echo: got %q ending in %s %d %q, want %q and choke", body, end.Type, end.Code, end.Message, want)
	}
}

// waitExit waits for the process to exit and returns cmd.Wait's error.
func (s *slave) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-s.exited:
		return s.exitErr
	case <-time.After(d):
		t.Fatalf("slave still running %v later", d)
		return nil
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
