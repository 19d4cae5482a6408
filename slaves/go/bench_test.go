package slave

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/httpmsg"
	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// socketpair returns the two ends of a connected Unix stream socket pair:
// the same kind of socket the engine and a slave share.
func socketpair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f) // dups fd
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// benchEngine plays the engine against an in-process worker over a
// socketpair: the slave's whole path (decode, session, handler, response,
// encode, socket) runs as it does in a slave process, and -benchmem counts
// its allocations.
type benchEngine struct {
	slave   *syscallConn // the worker's end, counting its syscalls
	conn    *protocol.Conn
	session uint64
	usage   syscall.Rusage
	slab    []protocol.Frame
	frames  []*protocol.Frame // pointers into slab
}

func startBenchEngine(b testing.TB, h Handler) *benchEngine {
	b.Helper()
	nc, c := socketpair(b)
	a := &syscallConn{Conn: nc}
	w := &worker{h: h, id: "bench", period: time.Hour}
	done := make(chan error, 1)
	go func() { done <- w.serve(a) }()
	e := &benchEngine{slave: a, conn: protocol.NewConn(c)}
	var hs protocol.Frame
	if err := e.conn.Read(&hs); err != nil || hs.Type != protocol.Handshake {
		b.Fatalf("handshake: %v %v", hs.Type, err)
	}
	b.Cleanup(func() {
		_ = e.conn.Write(&protocol.Frame{Type: protocol.Terminate, Message: "bench over"})
		// Drain until the worker's own terminate, so it never blocks on a full socket.
		var f protocol.Frame
		for e.conn.Read(&f) == nil && f.Type != protocol.Terminate {
		}
		if err := <-done; err != nil {
			b.Errorf("worker: %v", err)
		}
		a.Close()
		c.Close()
	})
	return e
}

// syscallConn counts the reads and writes the worker makes on its socket.
type syscallConn struct {
	net.Conn
	reads, writes atomic.Int64
}

func (c *syscallConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

func (c *syscallConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// start resets the timer and the syscall counts; report gives the counts
// per request.
// It also takes the process's CPU time and context switches (both sides
// run in it), which a machine busy with other work disturbs far less than
// ns/op.
func (e *benchEngine) start(b *testing.B) {
	b.ReportAllocs()
	e.slave.reads.Store(0)
	e.slave.writes.Store(0)
	e.usage = rusage(b)
	b.ResetTimer()
}

func (e *benchEngine) report(b *testing.B) {
	b.StopTimer()
	u := rusage(b)
	n := float64(b.N)
	b.ReportMetric(float64(e.slave.reads.Load())/n, "reads/op")
	b.ReportMetric(float64(e.slave.writes.Load())/n, "writes/op")
	cpu := time.Duration(u.Utime.Nano() + u.Stime.Nano() - e.usage.Utime.Nano() - e.usage.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/op")
	b.ReportMetric(float64(u.Nvcsw+u.Nivcsw-e.usage.Nvcsw-e.usage.Nivcsw)/n, "ctxsw/op")
}

func rusage(b *testing.B) syscall.Rusage {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return u
}

// round sends n whole requests (invoke, one chunk, choke each) in one
// write, as the engine's outbox batches them, and reads every answer to
// its end. It returns the answer bytes received.
func (e *benchEngine) round(b testing.TB, event string, body []byte, n int) int {
	// The engine's side allocates nothing per request, so that allocs/op
	// is the slave's alone (less the socket reads both sides share).
	if len(e.slab) < 3*n {
		e.slab = make([]protocol.Frame, 3*n)
		e.frames = make([]*protocol.Frame, 3*n)
		for i := range e.slab {
			e.frames[i] = &e.slab[i]
		}
	}
	for i := range n {
		e.session++
		e.slab[3*i] = protocol.Frame{Type: protocol.Invoke, Session: e.session, Event: event}
		e.slab[3*i+1] = protocol.Frame{Type: protocol.Chunk, Session: e.session, Data: body}
		e.slab[3*i+2] = protocol.Frame{Type: protocol.Choke, Session: e.session}
	}
	if err := e.conn.Write(e.frames[:3*n]...); err != nil {
		b.Fatal(err)
	}
	got := 0
	var f protocol.Frame
	for ended := 0; ended < n; {
		if err := e.conn.Read(&f); err != nil {
			b.Fatal(err)
		}
		switch f.Type {
		case protocol.Chunk:
			got += len(f.Data)
		case protocol.Choke:
			ended++
		case protocol.Error:
			b.Fatalf("session %d: error %d %s", f.Session, f.Code, f.Message)
		}
	}
	return got
}

var benchHello = []byte("Hello, World!\n")

func echoHandler() Handler {
	return HandlerFunc(func(ctx context.Context, req *Request, w *Response) error {
		_, err := io.Copy(w, req)
		return err
	})
}

// BenchmarkEchoRoundTrip is one echo session through the worker: request
// frames in, the handler's io.Copy, answer frames out. inflight-32 keeps
// 32 sessions in flight, as the platform does with echo's concurrency.
func BenchmarkEchoRoundTrip(b *testing.B) {
	for _, c := range []struct {
		name     string
		body     []byte
		inflight int
	}{
		{"14B", benchHello, 1},
		{"64KiB", make([]byte, 64<<10), 1},
		{"14B-inflight-32", benchHello, 32},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := startBenchEngine(b, echoHandler())
			b.SetBytes(int64(len(c.body)))
			e.start(b)
			for i := 0; i < b.N; i += c.inflight {
				if got := e.round(b, "echo", c.body, min(c.inflight, b.N-i)); got != len(c.body)*min(c.inflight, b.N-i) {
					b.Fatalf("echoed %d bytes", got)
				}
			}
			e.report(b)
		})
	}
}

// BenchmarkHTTPRoundTrip is one hello through HandleHTTP: the request map
// decoded into an *http.Request, the answer head encoded, as the front
// drives the echo app's http event.
func BenchmarkHTTPRoundTrip(b *testing.B) {
	req, err := httpmsg.EncodeRequest(nil, newMeta("GET", "http://example.com/echo/http/", "/echo/http", http.Header{
		"User-Agent": {"wrk"}, "Accept": {"*/*"},
	}), nil)
	if err != nil {
		b.Fatal(err)
	}
	h := HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(benchHello)
	}))
	for _, inflight := range []int{1, 32} {
		name := "inflight-1"
		if inflight > 1 {
			name = "inflight-32"
		}
		b.Run(name, func(b *testing.B) {
			e := startBenchEngine(b, h)
			e.start(b)
			for i := 0; i < b.N; i += inflight {
				n := min(inflight, b.N-i)
				if got := e.round(b, "http", req, n); got < len(benchHello)*n {
					b.Fatalf("answered %d bytes", got)
				}
			}
			e.report(b)
		})
	}
}
