package slave

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/httpmsg"
	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// httpEngine plays the engine against a worker over net.Pipe: it invokes
// sessions, sends their request chunks and collects the answers.
type httpEngine struct {
	t       *testing.T
	conn    *protocol.Conn
	frames  chan protocol.Frame
	writes  *atomic.Int64 // socket writes by the worker
	session uint64
}

// countingConn counts the worker's socket writes, to check that an answer
// leaves in as few as promised.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func startHTTPEngine(t *testing.T, h Handler) *httpEngine {
	t.Helper()
	return startEngineWith(t, &worker{h: h, id: "http-test", period: time.Hour})
}

// startEngineWith is startHTTPEngine for a worker set up by the test.
func startEngineWith(t *testing.T, w *worker) *httpEngine {
	t.Helper()
	a, b := net.Pipe()
	wc := &countingConn{Conn: a}
	done := make(chan error, 1)
	go func() { done <- w.serve(wc) }()
	e := &httpEngine{t: t, conn: protocol.NewConn(b), frames: make(chan protocol.Frame, 4096), writes: &wc.writes}
	var hs protocol.Frame
	if err := e.conn.Read(&hs); err != nil || hs.Type != protocol.Handshake {
		t.Fatalf("handshake: %v %v", hs.Type, err)
	}
	go func() {
		defer close(e.frames)
		for {
			var f protocol.Frame
			if err := e.conn.Read(&f); err != nil {
				return
			}
			f.Data = bytes.Clone(f.Data) // it aliases the read buffer
			e.frames <- f
		}
	}()
	t.Cleanup(func() {
		_ = e.conn.Write(&protocol.Frame{Type: protocol.Terminate, Message: "test over"})
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("worker did not stop")
		}
		a.Close()
		b.Close()
	})
	return e
}

func (e *httpEngine) send(f *protocol.Frame) {
	e.t.Helper()
	if err := e.conn.Write(f); err != nil {
		e.t.Fatalf("engine write %s: %v", f.Type, err)
	}
}

// open invokes event and sends the request map; the body is for the map.
func (e *httpEngine) open(event string, meta *httpmsg.Meta, body []byte) uint64 {
	e.t.Helper()
	e.session++
	p, err := httpmsg.EncodeRequest(nil, meta, body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.send(&protocol.Frame{Type: protocol.Invoke, Session: e.session, Event: event})
	e.send(&protocol.Frame{Type: protocol.Chunk, Session: e.session, Data: p})
	return e.session
}

func (e *httpEngine) chunk(s uint64, p []byte) {
	e.t.Helper()
	e.send(&protocol.Frame{Type: protocol.Chunk, Session: s, Data: p})
}

func (e *httpEngine) choke(s uint64) {
	e.t.Helper()
	e.send(&protocol.Frame{Type: protocol.Choke, Session: s})
}

// next returns the next frame of session s.
func (e *httpEngine) next(s uint64) protocol.Frame {
	e.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-e.frames:
			if !ok {
				e.t.Fatal("worker connection closed")
			}
			if f.Session == s && f.Type != protocol.Heartbeat {
				return f
			}
		case <-timeout:
			e.t.Fatalf("session %d: no frame", s)
		}
	}
}

// head reads the answer's first frame, which must be a head chunk alone.
func (e *httpEngine) head(s uint64) *httpmsg.Head {
	e.t.Helper()
	f := e.next(s)
	if f.Type != protocol.Chunk {
		e.t.Fatalf("answer starts with %s %d %q, not the head", f.Type, f.Code, f.Message)
	}
	h, n, err := httpmsg.DecodeHead(f.Data)
	if err != nil || n != len(f.Data) {
		e.t.Fatalf("head chunk: %v, %d of %d bytes", err, n, len(f.Data))
	}
	return h
}

// rest reads the body chunks and the last frame.
func (e *httpEngine) rest(s uint64) ([]byte, protocol.Frame) {
	e.t.Helper()
	var body []byte
	for {
		f := e.next(s)
		if f.Type != protocol.Chunk {
			return body, f
		}
		body = append(body, f.Data...)
	}
}

// do sends a whole request and returns the answer, which must end in choke.
func (e *httpEngine) do(event string, meta *httpmsg.Meta, body []byte, more ...[]byte) (*httpmsg.Head, []byte) {
	e.t.Helper()
	s := e.open(event, meta, body)
	for _, p := range more {
		e.chunk(s, p)
	}
	e.choke(s)
	h := e.head(s)
	b, end := e.rest(s)
	if end.Type != protocol.Choke {
		e.t.Fatalf("answer ended in %s %d %q", end.Type, end.Code, end.Message)
	}
	return h, b
}

func recv[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not report")
		panic("unreachable")
	}
}

func newMeta(method, target, script string, hdr http.Header) *httpmsg.Meta {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "203.0.113.7:51234"
	for k, v := range hdr {
		r.Header[k] = v
	}
	return httpmsg.NewMeta(r, script)
}

func header(h *httpmsg.Head, name string) []string {
	var vs []string
	for _, kv := range h.Headers {
		if kv[0] == name {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

func TestHTTPRequestReachesHandler(t *testing.T) {
	type seen struct {
		Method, Path, RawPath, EscapedPath, RawQuery, Q, Host, URLHost, Scheme, RemoteAddr, RequestURI string
		Proto, ScriptName, Cookie, Accept, UA, Body                                                    string
		ProtoMajor, ProtoMinor                                                                         int
		TLS, HasHost, CtxLive                                                                          bool
		ContentLength                                                                                  int64
	}
	got := make(chan seen, 1)
	mux := NewMux()
	mux.HandleHTTP("http", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("body: %v", err)
		}
		cookie := ""
		if c, err := r.Cookie("session"); err == nil {
			cookie = c.Value
		}
		_, hasHost := r.Header["Host"]
		got <- seen{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, EscapedPath: r.URL.EscapedPath(),
			RawQuery: r.URL.RawQuery, Q: r.URL.Query().Get("q"), Host: r.Host, URLHost: r.URL.Host,
			Scheme: r.URL.Scheme, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI, Proto: r.Proto,
			ScriptName: ScriptName(r), Cookie: cookie, Accept: strings.Join(r.Header.Values("Accept"), "|"),
			UA: r.UserAgent(), Body: string(body), ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
			TLS: r.TLS != nil, HasHost: hasHost, CtxLive: r.Context().Err() == nil, ContentLength: r.ContentLength,
		}
	}))
	e := startHTTPEngine(t, mux)
	meta := newMeta("POST", "https://example.com:8443/shop/http/caf%C3%A9/a%2Fb?q=x%20y&r=1", "/shop/http", http.Header{
		"Cookie":         {"session=3f2a; other=1"},
		"Accept":         {"text/html", "application/json"},
		"User-Agent":     {"tester/1"},
		"Content-Length": {"12"},
	})
	e.do("http", meta, []byte("hello, "), []byte("wor"), []byte("ld"))
	want := seen{
		Method: "POST", Path: "/café/a/b", RawPath: "/caf%C3%A9/a%2Fb", EscapedPath: "/caf%C3%A9/a%2Fb",
		RawQuery: "q=x%20y&r=1", Q: "x y", Host: "example.com:8443", URLHost: "example.com:8443", Scheme: "https",
		RemoteAddr: "203.0.113.7:51234", RequestURI: "/shop/http/caf%C3%A9/a%2Fb?q=x%20y&r=1", Proto: "HTTP/1.1",
		ScriptName: "/shop/http", Cookie: "3f2a", Accept: "text/html|application/json", UA: "tester/1",
		Body: "hello, world", ProtoMajor: 1, ProtoMinor: 1, TLS: true, CtxLive: true, ContentLength: 12,
	}
	if g := recv(t, got); g != want {
		t.Errorf("handler saw\n%+v\nwant\n%+v", g, want)
	}

	// A prefix ending in "/" leaves it to the path, as PEP 3333 does.
	e.do("http", newMeta("GET", "/app/x/y", "/app/", nil), nil)
	if g := recv(t, got); g.ScriptName != "/app" || g.Path != "/x/y" || g.RequestURI != "/app/x/y" || g.ContentLength != -1 {
		t.Errorf("handler saw %+v", g)
	}

	// Without a Content-Length the body runs to the end of the stream.
	meta = newMeta("PUT", "http://example.com/x", "", nil)
	e.do("http", meta, nil, []byte("streamed "), []byte("body"))
	if g := recv(t, got); g.Body != "streamed body" || g.ContentLength != -1 || g.TLS || g.Scheme != "http" || g.Path != "/x" || g.ScriptName != "" {
		t.Errorf("handler saw %+v", g)
	}
}

func TestHTTPLargeBodyStreams(t *testing.T) {
	const size = 10 << 20
	readFirst := make(chan struct{})
	mux := NewMux()
	mux.HandleHTTP("upload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash := sha256.New()
		if _, err := io.CopyN(hash, r.Body, 1<<20); err != nil {
			t.Errorf("first MiB: %v", err)
		}
		close(readFirst)
		n, err := io.Copy(hash, r.Body)
		if err != nil {
			t.Errorf("body: %v", err)
		}
		fmt.Fprintf(w, "%d %x", n+1<<20, hash.Sum(nil))
	}))
	e := startHTTPEngine(t, mux)
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i * 7)
	}
	meta := newMeta("POST", "/upload", "", http.Header{"Content-Length": {fmt.Sprint(size)}})
	s := e.open("upload", meta, body[:1000])
	e.chunk(s, body[1000:1<<20])
	// The handler reads the first MiB while the rest has not been sent.
	select {
	case <-readFirst:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not get the start of the body before its end")
	}
	for off := 1 << 20; off < size; off += 1 << 20 {
		e.chunk(s, body[off:off+1<<20])
	}
	e.choke(s)
	h := e.head(s)
	got, end := e.rest(s)
	if end.Type != protocol.Choke || h.Code != 200 {
		t.Fatalf("answer %d ending in %s %q", h.Code, end.Type, end.Message)
	}
	if want := fmt.Sprintf("%d %x", size, sha256.Sum256(body)); string(got) != want {
		t.Errorf("handler saw %q, want %q", got, want)
	}
}

// A large answer streams back too, in chunks, while a large request streams in.
func TestHTTPLargeEcho(t *testing.T) {
	const size = 10 << 20
	mux := NewMux()
	mux.HandleHTTP("echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := io.Copy(w, r.Body); err != nil {
			t.Errorf("echo: %v", err)
		}
	}))
	e := startHTTPEngine(t, mux)
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	s := e.open("echo", newMeta("POST", "/", "", nil), nil)
	go func() {
		for off := 0; off < size; off += 1 << 20 {
			e.chunk(s, body[off:off+1<<20])
		}
		e.choke(s)
	}()
	h := e.head(s)
	got, end := e.rest(s)
	if end.Type != protocol.Choke || h.Code != 200 || !bytes.Equal(got, body) {
		t.Fatalf("answer %d, %d bytes, ending in %s %q", h.Code, len(got), end.Type, end.Message)
	}
	if cl := header(h, "Content-Length"); cl != nil {
		t.Errorf("Content-Length %q on a streamed answer", cl)
	}
}

func TestHTTPStatusAndHeaders(t *testing.T) {
	mux := NewMux()
	mux.HandleHTTP("created", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("X-Raw", "caf\xe9")
		w.Header().Set("Trailer", "X-Sum") // the payload has no trailers
		w.WriteHeader(http.StatusCreated)
		w.Header().Set("X-Late", "ignored") // after WriteHeader, as net/http
		w.WriteHeader(http.StatusTeapot)    // superfluous
		io.WriteString(w, `{"id":1}`)
		w.Header().Set(http.TrailerPrefix+"X-Sum", "1")
	}))
	mux.HandleHTTP("sniff", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints) // informational: dropped
		io.WriteString(w, "<!DOCTYPE html><html>hi</html>")
	}))
	mux.HandleHTTP("empty", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		if _, err := io.WriteString(w, "x"); !errors.Is(err, http.ErrBodyNotAllowed) {
			t.Errorf("body on 204: %v", err)
		}
	}))
	mux.HandleHTTP("nothing", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	mux.HandleHTTP("nosniff", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		io.WriteString(w, "<html>")
	}))
	e := startHTTPEngine(t, mux)

	cases := []struct {
		event, method string
		code          int
		headers       [][2]string
		body          string
	}{
		{"created", "POST", 201, [][2]string{
			{"Content-Length", "8"}, {"Content-Type", "application/json"},
			{"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"X-Raw", "caf\xe9"},
		}, `{"id":1}`},
		{"sniff", "GET", 200, [][2]string{{"Content-Length", "30"}, {"Content-Type", "text/html; charset=utf-8"}}, "<!DOCTYPE html><html>hi</html>"},
		{"empty", "GET", 204, nil, ""},
		{"nothing", "GET", 200, [][2]string{{"Content-Length", "0"}}, ""},
		{"nosniff", "GET", 200, [][2]string{{"Content-Length", "6"}}, "<html>"},
		// HEAD: the length and type of the body that a GET would get, no body.
		{"sniff", "HEAD", 200, [][2]string{{"Content-Length", "30"}, {"Content-Type", "text/html; charset=utf-8"}}, ""},
	}
	for _, c := range cases {
		before := e.writes.Load()
		h, body := e.do(c.event, newMeta(c.method, "/", "", nil), nil)
		if h.Code != c.code || !reflect.DeepEqual(h.Headers, c.headers) || string(body) != c.body {
			t.Errorf("%s %s: %d %q %q, want %d %q %q", c.method, c.event, h.Code, h.Headers, body, c.code, c.headers, c.body)
		}
		// A small answer, head, body and end, leaves in one socket write.
		if n := e.writes.Load() - before; n != 1 {
			t.Errorf("%s %s: %d socket writes, want 1", c.method, c.event, n)
		}
	}
}

func TestHTTPFlushStreams(t *testing.T) {
	step := make(chan struct{})
	returned := make(chan struct{})
	mux := NewMux()
	mux.HandleHTTP("events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-step
		io.WriteString(w, "data: two\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
		<-step
		io.WriteString(w, "data: three\n\n")
	}))
	e := startHTTPEngine(t, mux)
	s := e.open("events", newMeta("GET", "/", "", nil), nil)
	e.choke(s)
	h := e.head(s)
	if h.Code != 200 || !reflect.DeepEqual(header(h, "Content-Type"), []string{"text/event-stream"}) || header(h, "Content-Length") != nil {
		t.Errorf("head %+v", h)
	}
	for _, want := range []string{"data: one\n\n", "data: two\n\n"} {
		f := e.next(s)
		if f.Type != protocol.Chunk || string(f.Data) != want {
			t.Fatalf("got %s %q, want chunk %q", f.Type, f.Data, want)
		}
		select {
		case <-returned:
			t.Fatal("the handler returned before its flushed output arrived")
		default:
		}
		step <- struct{}{}
	}
	body, end := e.rest(s)
	if string(body) != "data: three\n\n" || end.Type != protocol.Choke {
		t.Errorf("last %q ending in %s", body, end.Type)
	}
}

func TestHTTPPanic(t *testing.T) {
	mux := NewMux()
	mux.HandleHTTP("early", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Lost", "1")
		io.WriteString(w, "partial") // buffered, never sent
		panic("boom")
	}))
	mux.HandleHTTP("late", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("boom")
	}))
	mux.HandleHTTP("abort", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	mux.HandleHTTP("short", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "abc")
	}))
	mux.HandleHTTP("long", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		if _, err := io.WriteString(w, "abc"); !errors.Is(err, http.ErrContentLength) {
			t.Errorf("write past Content-Length: %v", err)
		}
		io.WriteString(w, "ab")
	}))
	e := startHTTPEngine(t, mux)

	h, body := e.do("early", newMeta("GET", "/", "", nil), nil)
	if h.Code != 500 || string(body) != "Internal Server Error\n" || header(h, "X-Lost") != nil {
		t.Errorf("panic before the head: %d %q %q", h.Code, h.Headers, body)
	}

	// After the head, the front must see the answer fail, not end.
	s := e.open("late", newMeta("GET", "/", "", nil), nil)
	e.choke(s)
	if h := e.head(s); h.Code != 200 {
		t.Errorf("late: head %d", h.Code)
	}
	if body, end := e.rest(s); string(body) != "partial" || end.Type != protocol.Error {
		t.Errorf("panic after the head: %q ending in %s", body, end.Type)
	}

	for _, event := range []string{"abort", "short"} {
		s := e.open(event, newMeta("GET", "/", "", nil), nil)
		e.choke(s)
		if f := e.next(s); f.Type != protocol.Error || f.Code != 502 {
			t.Errorf("%s: %s %d %q, want error 502", event, f.Type, f.Code, f.Message)
		}
	}

	if h, body := e.do("long", newMeta("GET", "/", "", nil), nil); h.Code != 200 || string(body) != "ab" {
		t.Errorf("long: %d %q", h.Code, body)
	}
}

func TestHTTPMalformedRequest(t *testing.T) {
	mux := NewMux()
	mux.HandleHTTP("http", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler called on a malformed request")
	}))
	e := startHTTPEngine(t, mux)
	for name, payload := range map[string][]byte{
		"not msgpack": []byte("GET / HTTP/1.1\r\n"),
		"no meta":     {0x80},
	} {
		e.session++
		e.send(&protocol.Frame{Type: protocol.Invoke, Session: e.session, Event: "http"})
		e.chunk(e.session, payload)
		e.choke(e.session)
		if f := e.next(e.session); f.Type != protocol.Error || f.Code != 400 {
			t.Errorf("%s: %s %d %q, want error 400", name, f.Type, f.Code, f.Message)
		}
	}
	for name, meta := range map[string]*httpmsg.Meta{
		"bad escape":        {Method: "GET", Path: "/%zz", PathInfo: "/%zz"},
		"bad length":        {Method: "POST", Path: "/", PathInfo: "/", Headers: map[string][]string{"Content-Length": {"-1"}}},
		"two lengths":       {Method: "POST", Path: "/", PathInfo: "/", Headers: map[string][]string{"Content-Length": {"1", "2"}}},
		"length not number": {Method: "POST", Path: "/", PathInfo: "/", Headers: map[string][]string{"Content-Length": {"x"}}},
	} {
		s := e.open("http", meta, nil)
		e.choke(s)
		if f := e.next(s); f.Type != protocol.Error || f.Code != 400 {
			t.Errorf("%s: %s %d %q, want error 400", name, f.Type, f.Code, f.Message)
		}
	}
}

// An ordinary http.ServeMux runs unchanged, wherever the front mounts it.
func TestHTTPServeMux(t *testing.T) {
	sm := http.NewServeMux()
	sm.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.URL.Query().Get("name"))
	})
	sm.HandleFunc("POST /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Location", ScriptName(r)+"/items/"+r.PathValue("id"))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "item %s: %s", r.PathValue("id"), body)
	})
	sm.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(fstest.MapFS{"a.txt": {Data: []byte("static a")}})))
	HandleHTTP("http-test-default", sm) // on DefaultMux, as an app's main does
	e := startHTTPEngine(t, DefaultMux)

	cases := []struct {
		method, target string
		body           string
		code           int
		want           string
		header         [2]string
	}{
		{"GET", "/app/hello?name=go", "", 200, "hello, go", [2]string{"Content-Type", "text/plain; charset=utf-8"}},
		{"POST", "/app/items/42", "thing", 201, "item 42: thing", [2]string{"Location", "/app/items/42"}},
		{"GET", "/app/items/42", "", 405, "Method Not Allowed\n", [2]string{"Allow", "POST"}},
		{"GET", "/app/static/a.txt", "", 200, "static a", [2]string{"Content-Type", "text/plain; charset=utf-8"}},
		{"GET", "/app/nowhere", "", 404, "404 page not found\n", [2]string{"X-Content-Type-Options", "nosniff"}},
	}
	for _, c := range cases {
		h, body := e.do("http-test-default", newMeta(c.method, c.target, "/app", nil), []byte(c.body))
		if h.Code != c.code || string(body) != c.want || !slices.Contains(header(h, c.header[0]), c.header[1]) {
			t.Errorf("%s %s: %d %q %q, want %d %q with %v", c.method, c.target, h.Code, h.Headers, body, c.code, c.want, c.header)
		}
	}
}

// The session's context ends when the engine cancels the session, and a
// handler blocked on the body sees an error.
func TestHTTPCancel(t *testing.T) {
	done := make(chan error, 1)
	mux := NewMux()
	mux.HandleHTTP("slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		<-r.Context().Done()
		done <- err
	}))
	e := startHTTPEngine(t, mux)
	s := e.open("slow", newMeta("POST", "/", "", nil), nil)
	e.send(&protocol.Frame{Type: protocol.Error, Session: s, Code: 504, Message: "timeout"})
	select {
	case err := <-done:
		if err == nil {
			t.Error("body read ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler not cancelled")
	}
}

// A handler that streams without watching r.Context() stops at its next
// write once the engine cancels the session: Write and Flush fail, as
// net/http's do once the client is gone, and the context is done.
func TestHTTPCancelFailsWrites(t *testing.T) {
	type result struct {
		write, flush, ctx error
	}
	done := make(chan result, 1)
	mux := NewMux()
	mux.HandleHTTP("flood", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for {
			if _, err := w.Write([]byte("tick\n")); err != nil {
				done <- result{write: err, flush: rc.Flush(), ctx: r.Context().Err()}
				return
			}
			if err := rc.Flush(); err != nil {
				_, werr := w.Write([]byte("more"))
				done <- result{write: werr, flush: err, ctx: r.Context().Err()}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}))
	e := startHTTPEngine(t, mux)
	s := e.open("flood", newMeta("GET", "/", "", nil), nil)
	e.choke(s)
	if h := e.head(s); h.Code != 200 {
		t.Fatalf("head %+v", h)
	}
	e.send(&protocol.Frame{Type: protocol.Error, Session: s, Code: 520, Message: "client gone"})
	r := recv(t, done)
	for name, err := range map[string]error{"Write": r.write, "Flush": r.flush} {
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s after cancel = %v, want ErrCancelled and context.Canceled", name, err)
		}
	}
	if !errors.Is(r.ctx, context.Canceled) {
		t.Errorf("r.Context().Err() = %v, want context.Canceled", r.ctx)
	}
	// The session still ends, so the engine can count it done.
	if _, end := e.rest(s); end.Type != protocol.Error {
		t.Errorf("cancelled session ended in %s, want error", end.Type)
	}
}
