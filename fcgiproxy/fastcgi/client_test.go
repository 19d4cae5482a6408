package fastcgi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file holds a minimal FastCGI client (the web server's side),
// written independently of the package's encoder so the two check each
// other, plus test plumbing.

type rec struct {
	typ     uint8
	id      uint16
	content []byte
}

type tclient struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func newClient(t testing.TB, conn net.Conn) *tclient {
	return &tclient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func dialClient(t testing.TB, network, addr string) *tclient {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return newClient(t, conn)
}

func encodeRecord(dst []byte, typ uint8, id uint16, content []byte) []byte {
	pad := (8 - len(content)%8) % 8
	var h [8]byte
	h[0] = 1
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], id)
	binary.BigEndian.PutUint16(h[4:], uint16(len(content)))
	h[6] = byte(pad)
	dst = append(dst, h[:]...)
	dst = append(dst, content...)
	return append(dst, make([]byte, pad)...)
}

// encodeStream splits content into records of at most chunk bytes and
// terminates the stream with an empty record.
func encodeStream(dst []byte, typ uint8, id uint16, content []byte, chunk int) []byte {
	for len(content) > 0 {
		n := min(len(content), chunk)
		dst = encodeRecord(dst, typ, id, content[:n])
		content = content[n:]
	}
	return encodeRecord(dst, typ, id, nil)
}

func encodePairs(kv ...string) []byte {
	var b []byte
	putLen := func(n int) {
		if n < 128 {
			b = append(b, byte(n))
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(n)|1<<31)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		putLen(len(kv[i]))
		putLen(len(kv[i+1]))
		b = append(b, kv[i]...)
		b = append(b, kv[i+1]...)
	}
	return b
}

func beginBody(role uint16, keep bool) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b, role)
	if keep {
		b[2] = 1
	}
	return b
}

// encodeRequest encodes a whole request: BEGIN, PARAMS stream, STDIN
// stream (body may be nil).
func encodeRequest(dst []byte, id uint16, keep bool, params []string, body []byte) []byte {
	dst = encodeRecord(dst, typeBeginRequest, id, beginBody(roleResponder, keep))
	dst = encodeStream(dst, typeParams, id, encodePairs(params...), 65535)
	return encodeStream(dst, typeStdin, id, body, 65535)
}

func reqParams(method, uri string, extra ...string) []string {
	path, query, _ := strings.Cut(uri, "?")
	p := []string{
		"REQUEST_METHOD", method,
		"REQUEST_URI", uri,
		"SCRIPT_NAME", path,
		"QUERY_STRING", query,
		"SERVER_PROTOCOL", "HTTP/1.1",
		"GATEWAY_INTERFACE", "CGI/1.1",
		"HTTP_HOST", "example.test",
		"REMOTE_ADDR", "192.0.2.7",
		"REMOTE_PORT", "40000",
	}
	return append(p, extra...)
}

func (c *tclient) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func (c *tclient) send(typ uint8, id uint16, content []byte) {
	c.t.Helper()
	c.write(encodeRecord(nil, typ, id, content))
}

func (c *tclient) readRecord() (rec, error) {
	var h [8]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return rec{}, err
	}
	if h[0] != 1 {
		return rec{}, fmt.Errorf("bad version %d", h[0])
	}
	n := int(binary.BigEndian.Uint16(h[4:]))
	pad := int(h[6])
	if (n+pad)%8 != 0 {
		return rec{}, fmt.Errorf("record of type %d not padded to 8: %d+%d", h[1], n, pad)
	}
	b := make([]byte, n+pad)
	if _, err := io.ReadFull(c.br, b); err != nil {
		return rec{}, err
	}
	return rec{typ: h[1], id: binary.BigEndian.Uint16(h[2:]), content: b[:n]}, nil
}

func (c *tclient) mustRecord() rec {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := c.readRecord()
	if err != nil {
		c.t.Fatalf("reading record: %v", err)
	}
	return r
}

// expectClosed asserts the server closes the connection (EOF or reset)
// without sending anything more.
func (c *tclient) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := c.readRecord()
	if err == nil {
		c.t.Fatalf("expected closed connection, got record type %d id %d %q", r.typ, r.id, r.content)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection not closed by the server")
	}
}

type tresp struct {
	stdout      []byte
	records     int // STDOUT records, including the empty one
	appStatus   uint32
	protoStatus uint8
	status      int
	header      http.Header
	body        []byte
}

// readResponse reads records of request id until its END_REQUEST.
func (c *tclient) readResponse(id uint16) *tresp {
	c.t.Helper()
	resp := &tresp{}
	for {
		r := c.mustRecord()
		if r.id != id {
			c.t.Fatalf("record type %d for id %d while reading id %d", r.typ, r.id, id)
		}
		switch r.typ {
		case typeStdout:
			resp.records++
			resp.stdout = append(resp.stdout, r.content...)
		case typeStderr:
		case typeEndRequest:
			if len(r.content) != 8 {
				c.t.Fatalf("END_REQUEST body of %d bytes", len(r.content))
			}
			resp.appStatus = binary.BigEndian.Uint32(r.content)
			resp.protoStatus = r.content[4]
			if len(resp.stdout) > 0 {
				resp.parse(c.t)
			}
			return resp
		default:
			c.t.Fatalf("unexpected record type %d", r.typ)
		}
	}
}

func (r *tresp) parse(t testing.TB) {
	t.Helper()
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(r.stdout)))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("parsing CGI header %q: %v", r.stdout, err)
	}
	r.header = http.Header(h)
	st := h.Get("Status")
	code, _, _ := strings.Cut(st, " ")
	if r.status, err = strconv.Atoi(code); err != nil {
		t.Fatalf("bad Status %q", st)
	}
	r.body, _ = io.ReadAll(tp.R)
}

// do sends one complete request and reads its response.
func (c *tclient) do(id uint16, keep bool, params []string, body []byte) *tresp {
	c.t.Helper()
	c.write(encodeRequest(nil, id, keep, params, body))
	return c.readResponse(id)
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) waitFor(t testing.TB, sub string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("log does not contain %q:\n%s", sub, l.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testServer struct {
	*Server
	addr string
	logs *logBuffer
}

// startServer serves h on a loopback TCP listener and shuts down in
// Cleanup, failing the test if handlers or connections are left behind.
func startServer(t testing.TB, h http.Handler, configure ...func(*Server)) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, h, configure...)
}

func serveOn(t testing.TB, l net.Listener, h http.Handler, configure ...func(*Server)) *testServer {
	t.Helper()
	logs := &logBuffer{}
	s := &Server{Handler: h, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range configure {
		f(s)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v (handlers or connections left behind)", err)
		}
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	})
	return &testServer{Server: s, addr: l.Addr().String(), logs: logs}
}

func (ts *testServer) dial(t testing.TB) *tclient {
	return dialClient(t, "tcp", ts.addr)
}

// pipeListener is an in-memory listener over net.Pipe: fully synchronous,
// so tests can observe exactly how much the server has read.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) Dial() net.Conn {
	c1, c2 := net.Pipe()
	select {
	case l.conns <- c2:
		return c1
	case <-l.closed:
		c1.Close()
		c2.Close()
		return nil
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
