// Package conformance is the test suite every language runtime passes. It
// plays the engine of docs/protocol.md on a real Unix socket against a real
// slave process, so a runtime is checked exactly as the engine will use it.
//
// A runtime provides a conformance app serving four events:
//
//	echo          answers the request body unchanged
//	sleep         reads the body as a number of milliseconds, waits that long
//	              (ending early when the session is cancelled), answers "ok"
//	stream-upper  answers each request chunk uppercased as soon as it arrives
//	fail          fails: raises an exception, returns an error
//	flood         answers a chunk of 1 KiB every 10 ms, flushing each, until
//	              a write fails; it never looks at cancellation, so it ends
//	              only because writes fail once the session is cancelled
//
// and a test that calls Run (or RunWithOptions) with a function starting it.
package conformance

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// StartFunc returns the command that runs the runtime's conformance app,
// not yet started. Its environment must include env (the protocol's
// variables); when cmd.Env is nil the suite sets it to os.Environ() plus
// env. The command must be the runtime process itself, not a shell around
// it: the handshake's pid is checked. When Stdout and Stderr are nil the
// suite captures them and prints them on failure.
type StartFunc func(t *testing.T, env []string) *exec.Cmd

// Options describe what the runtime supports beyond the minimum.
type Options struct {
	// Concurrent says one slave runs several sessions at once. The suite
	// then checks that one session progresses while another waits for its
	// body. Without it, sessions may run one after the other.
	Concurrent bool
}

// Run runs the suite against a runtime that runs sessions one at a time.
func Run(t *testing.T, start StartFunc) { RunWithOptions(t, Options{}, start) }

// RunWithOptions runs the suite, each check as a subtest with a slave
// process of its own.
func RunWithOptions(t *testing.T, opts Options, start StartFunc) {
	checks := []struct {
		name string
		fn   func(*testing.T, *slave)
	}{
		{"handshake", func(*testing.T, *slave) {}}, // launch checks it
		{"heartbeat-idle", testHeartbeatIdle},
		{"heartbeat-busy", testHeartbeatBusy},
		{"echo", testEcho},
		{"stream-upper", testStreamUpper},
		{"fail", testFail},
		{"unknown-event", testUnknownEvent},
		{"interleaved", testInterleaved},
		{"concurrent", testConcurrent},
		{"cancel", testCancel},
		{"cancel-streaming", testCancelStreaming(opts)},
		{"terminate-idle", testTerminateIdle},
		{"terminate-busy", testTerminateBusy},
		{"engine-gone-idle", testEngineGone(false)},
		{"engine-gone-busy", testEngineGone(true)},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "concurrent" && !opts.Concurrent {
				t.Skip("the runtime runs sessions one at a time (Options.Concurrent is false)")
			}
			c.fn(t, launch(t, start))
		})
	}
}

// Call starts a slave with start, runs one session of event with the given
// body chunks and returns the answer and its final frame (choke or error).
// It is for tests of apps, such as the examples, run as the engine runs them.
func Call(t *testing.T, start StartFunc, event string, chunks ...[]byte) ([]byte, protocol.Frame) {
	t.Helper()
	return launch(t, start).call(t, event, chunks...)
}

// Heartbeats are timed loosely: the check is that they come "about every
// period", from a timer of their own, not that the scheduler is precise.
const (
	// A runtime that beats only between handlers goes silent for the
	// whole busy call (1.5 s), far past this; a loaded machine's stalls
	// stay well under it.
	maxBeatGap = 8 * HeartbeatMS * time.Millisecond
	minBeatGap = HeartbeatMS * time.Millisecond / 2
)

func checkBeats(t *testing.T, from, to time.Time, beats []time.Time, what string) {
	t.Helper()
	prev := from
	for _, b := range append(beats, to) {
		if gap := b.Sub(prev); gap > maxBeatGap {
			t.Errorf("%s: %v without a heartbeat (period %dms)", what, gap.Round(time.Millisecond), HeartbeatMS)
		}
		prev = b
	}
	if len(beats) > 1 {
		if avg := beats[len(beats)-1].Sub(beats[0]) / time.Duration(len(beats)-1); avg < minBeatGap {
			t.Errorf("%s: a heartbeat every %v on average, period is %dms", what, avg, HeartbeatMS)
		}
	}
}

func testHeartbeatIdle(t *testing.T, s *slave) {
	t0 := time.Now()
	const n = 8
	poll(t, 5*time.Second, "8 heartbeats", func() bool { return len(s.heartbeatsSince(t0)) >= n })
	beats := s.heartbeatsSince(t0)
	checkBeats(t, t0, beats[len(beats)-1], beats, "idle")
}

func testHeartbeatBusy(t *testing.T, s *slave) {
	t0 := time.Now()
	body, end := s.call(t, "sleep", []byte("1500"))
	t1 := time.Now()
	if end.Type != protocol.Choke || string(body) != "ok" {
		t.Fatalf("sleep: got %q ending in %s %q, want \"ok\" and choke", body, end.Type, end.Message)
	}
	if took := t1.Sub(t0); took < 1500*time.Millisecond {
		t.Fatalf("sleep 1500 answered after %v", took)
	}
	checkBeats(t, t0, t1, s.heartbeatsSince(t0), "while a handler runs")
}

func testEcho(t *testing.T, s *slave) {
	big := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	all := make([]byte, 256)
	bytewise := make([][]byte, 256)
	for i := range all {
		all[i] = byte(i)
		bytewise[i] = all[i : i+1]
	}
	cases := []struct {
		name   string
		chunks [][]byte
	}{
		{"empty", nil},
		{"empty-chunks", [][]byte{{}, []byte("x"), {}}},
		{"small", [][]byte{[]byte("hello, world")}},
		{"binary", [][]byte{all}},
		{"binary-bytewise", bytewise},
		// Uneven pieces: boundaries must not matter to the runtime.
		{"5MiB", [][]byte{big[:1<<20], big[1<<20 : 2<<20+1], big[2<<20+1 : 2<<20+4], big[2<<20+4 : 4<<20], big[4<<20:]}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := bytes.Join(c.chunks, nil)
			body, end := s.call(t, "echo", c.chunks...)
			if end.Type != protocol.Choke {
				t.Fatalf("ended in %s %d %q, want choke", end.Type, end.Code, end.Message)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("echo of %d bytes answered %d bytes%s", len(want), len(body), firstDiff(body, want))
			}
		})
	}
	s.ok(t) // also catches frames sent after a session ended
}

func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return ", first difference at byte " + strconv.Itoa(i)
		}
	}
	return ""
}

// expectChunk reads session id's answer until it holds want; the answer to
// one request chunk may come as several chunks.
func expectChunk(t *testing.T, s *slave, id uint64, want string) {
	t.Helper()
	var got []byte
	for len(got) < len(want) {
		f := s.next(t, id, 5*time.Second)
		if f.Type != protocol.Chunk {
			t.Fatalf("waiting for %q: got %s %d %q after %q", want, f.Type, f.Code, f.Message, got)
		}
		got = append(got, f.Data...)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func testStreamUpper(t *testing.T, s *slave) {
	id := s.invoke(t, "stream-upper")
	for _, w := range []string{"hello", " streaming", " world"} {
		s.chunk(t, id, []byte(w))
		// The next chunk goes only after this answer: a runtime that
		// waits for the whole body, or buffers its answer, stalls here.
		expectChunk(t, s, id, strings.ToUpper(w))
	}
	s.choke(t, id)
	if f := s.next(t, id, 5*time.Second); f.Type != protocol.Choke {
		t.Fatalf("after the request ended: got %s %d %q %q, want choke", f.Type, f.Code, f.Message, f.Data)
	}
	s.ok(t)
}

func testFail(t *testing.T, s *slave) {
	_, end := s.call(t, "fail", []byte("x"))
	if end.Type != protocol.Error || end.Code != 502 || end.Message == "" {
		t.Fatalf("fail: ended in %s code %d message %q, want error 502 with a message", end.Type, end.Code, end.Message)
	}
	s.ok(t)
}

func testUnknownEvent(t *testing.T, s *slave) {
	_, end := s.call(t, "no-such-event", []byte("x"))
	if end.Type != protocol.Error || end.Code != 404 {
		t.Fatalf("unknown event: ended in %s code %d %q, want error 404", end.Type, end.Code, end.Message)
	}
	s.ok(t)
}

// testInterleaved holds for sequential runtimes too: the second session
// waits for the first, whose body is complete.
func testInterleaved(t *testing.T, s *slave) {
	a := s.invoke(t, "echo")
	b := s.invoke(t, "echo")
	s.chunk(t, b, []byte("bravo"))
	s.chunk(t, a, []byte("alpha"))
	s.chunk(t, b, []byte("-two"))
	s.choke(t, b)
	s.chunk(t, a, []byte("-one"))
	s.choke(t, a)
	for _, c := range []struct {
		id   uint64
		want string
	}{{a, "alpha-one"}, {b, "bravo-two"}} {
		body, end := s.answer(t, c.id, 10*time.Second)
		if end.Type != protocol.Choke || string(body) != c.want {
			t.Errorf("session %d: got %q ending in %s %q, want %q and choke", c.id, body, end.Type, end.Message, c.want)
		}
	}
}

// testConcurrent needs both sessions running at once: each answers only
// after the other has been fed.
func testConcurrent(t *testing.T, s *slave) {
	a := s.invoke(t, "stream-upper")
	b := s.invoke(t, "stream-upper")
	s.chunk(t, b, []byte("bee"))
	expectChunk(t, s, b, "BEE")
	s.chunk(t, a, []byte("ant"))
	expectChunk(t, s, a, "ANT")
	s.choke(t, b)
	if f := s.next(t, b, 5*time.Second); f.Type != protocol.Choke {
		t.Fatalf("session b: got %s, want choke", f.Type)
	}
	s.chunk(t, a, []byte("hill"))
	expectChunk(t, s, a, "HILL")
	s.choke(t, a)
	if f := s.next(t, a, 5*time.Second); f.Type != protocol.Choke {
		t.Fatalf("session a: got %s, want choke", f.Type)
	}
}

func testCancel(t *testing.T, s *slave) {
	id := s.invoke(t, "sleep")
	s.chunk(t, id, []byte("10000"))
	s.choke(t, id)
	s.waitBeats(t, 2, 5*time.Second) // let the handler start
	start := time.Now()
	s.send(t, &protocol.Frame{Type: protocol.Error, Session: id, Code: 520, Message: "deadline passed"})
	body, end := s.answer(t, id, 2*time.Second)
	if end.Type != protocol.Choke && end.Type != protocol.Error {
		t.Fatalf("cancelled session ended in %s", end.Type)
	}
	t.Logf("cancelled session ended in %s after %v (body %q)", end.Type, time.Since(start).Round(time.Millisecond), body)
	s.ok(t)
}

// testCancelStreaming: a handler that streams without watching for
// cancellation stops at its next write once the engine cancels its session,
// well within the termination-timeout after which the engine would kill the
// slave, and with it every other session it runs (a concurrent runtime runs
// a well-behaved one beside it here, which must end normally).
func testCancelStreaming(opts Options) func(*testing.T, *slave) {
	return func(t *testing.T, s *slave) {
		id := s.invoke(t, "flood")
		s.choke(t, id)
		if f := s.next(t, id, 5*time.Second); f.Type != protocol.Chunk {
			t.Fatalf("flood: got %s %d %q, want a chunk", f.Type, f.Code, f.Message)
		}
		var other uint64
		if opts.Concurrent {
			other = s.invoke(t, "sleep")
			s.chunk(t, other, []byte("1000"))
			s.choke(t, other)
		}
		start := time.Now()
		s.send(t, &protocol.Frame{Type: protocol.Error, Session: id, Code: 520, Message: "client gone"})
		// The engine's default termination-timeout is 5 s; the handler
		// writes every 10 ms. A runtime whose writes still succeed never
		// ends the session.
		const prompt = 3 * time.Second
		var late int
		for {
			f, ok := s.nextBy(t, id, start.Add(prompt))
			if !ok {
				t.Fatalf("the cancelled session still runs %v later (%d chunks since): a handler's writes must fail once its session is cancelled", prompt, late)
			}
			if f.Type != protocol.Chunk {
				break
			}
			late++ // chunks already on their way when the cancel arrived
		}
		t.Logf("cancelled flood ended after %v and %d more chunks", time.Since(start).Round(time.Millisecond), late)
		if opts.Concurrent {
			body, end := s.answer(t, other, 10*time.Second)
			if end.Type != protocol.Choke || string(body) != "ok" {
				t.Fatalf("the other session: got %q ending in %s %d %q, want \"ok\" and choke", body, end.Type, end.Code, end.Message)
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("the slave exited after a cancel: %v", s.exitErr)
		default:
		}
		s.ok(t) // the same process, on the same connection, still serves
	}
}

func testTerminateIdle(t *testing.T, s *slave) {
	s.send(t, &protocol.Frame{Type: protocol.Terminate, Message: "idle"})
	if f := s.recv(t, 2*time.Second); f.Type != protocol.Terminate {
		t.Fatalf("after terminate: got %s, want terminate", f.Type)
	}
	if err := s.waitExit(t, 2*time.Second); err != nil {
		t.Fatalf("after terminate: %v, want exit status 0", err)
	}
}

// testTerminateBusy: a terminate while a session runs lets it finish.
func testTerminateBusy(t *testing.T, s *slave) {
	id := s.invoke(t, "sleep")
	s.chunk(t, id, []byte("300"))
	s.choke(t, id)
	s.send(t, &protocol.Frame{Type: protocol.Terminate, Message: "stopping"})
	body, end := s.answer(t, id, 3*time.Second)
	if end.Type != protocol.Choke || string(body) != "ok" {
		t.Fatalf("running session: got %q ending in %s %q, want \"ok\" and choke", body, end.Type, end.Message)
	}
	if f := s.recv(t, 2*time.Second); f.Type != protocol.Terminate {
		t.Fatalf("after the session: got %s, want terminate", f.Type)
	}
	if err := s.waitExit(t, 2*time.Second); err != nil {
		t.Fatalf("after terminate: %v, want exit status 0", err)
	}
}

func testEngineGone(busy bool) func(*testing.T, *slave) {
	return func(t *testing.T, s *slave) {
		if busy {
			id := s.invoke(t, "sleep")
			s.chunk(t, id, []byte("10000"))
			s.choke(t, id)
			s.waitBeats(t, 2, 5*time.Second)
		}
		s.closed.Store(true)
		s.nc.Close()
		err := s.waitExit(t, 2*time.Second)
		t.Logf("exited with %v", err)
	}
}
