package fastcgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cgi"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		env := ProcessEnv(r)
		if pi, _ := Param(r, "PATH_INFO"); pi != env["PATH_INFO"] {
			http.Error(w, "Param and ProcessEnv disagree", 500)
			return
		}
		fmt.Fprintf(w, "method=%s\nurl=%s\nhost=%s\nremote=%s\nquery=%s\nscript=%s\npath_info=%s\ntls=%v\nua=%s\nbody=%s\n",
			r.Method, r.URL, r.Host, r.RemoteAddr, r.URL.Query().Get("q"), env["SCRIPT_NAME"],
			env["PATH_INFO"], r.TLS != nil, r.UserAgent(), body)
	})
}

func TestGet(t *testing.T) {
	ts := startServer(t, echoHandler())
	c := ts.dial(t)
	resp := c.do(1, false, reqParams("GET", "/app/x?q=hello", "PATH_INFO", "/x", "HTTPS", "on",
		"HTTP_USER_AGENT", "tester/1"), nil)
	if resp.status != 200 || resp.protoStatus != statusRequestComplete || resp.appStatus != 0 {
		t.Fatalf("status %d proto %d app %d", resp.status, resp.protoStatus, resp.appStatus)
	}
	want := "method=GET\nurl=https://example.test/app/x?q=hello\nhost=example.test\nremote=192.0.2.7:40000\n" +
		"query=hello\nscript=/app/x\npath_info=/x\ntls=true\nua=tester/1\nbody=\n"
	if string(resp.body) != want {
		t.Fatalf("body\n%s\nwant\n%s", resp.body, want)
	}
	if ct := resp.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("sniffed Content-Type %q", ct)
	}
	if cl := resp.header.Get("Content-Length"); cl != fmt.Sprint(len(want)) {
		t.Errorf("Content-Length %q, want %d", cl, len(want))
	}
	// A small response is one STDOUT record plus the terminating one.
	if resp.records != 2 {
		t.Errorf("%d STDOUT records, want 2", resp.records)
	}
	// Without FCGI_KEEP_CONN the server closes after the response.
	c.expectClosed()
}

func TestKeepConn(t *testing.T) {
	ts := startServer(t, echoHandler())
	c := ts.dial(t)
	for i := range 50 {
		id := uint16(i%3 + 1) // ids are reused after END_REQUEST
		body := fmt.Sprintf("payload-%d", i)
		resp := c.do(id, true, reqParams("POST", "/p", "CONTENT_LENGTH", fmt.Sprint(len(body))), []byte(body))
		if resp.status != 200 || !bytes.Contains(resp.body, []byte("body="+body+"\n")) {
			t.Fatalf("request %d: status %d body %q", i, resp.status, resp.body)
		}
	}
}

// TestMultiplex interleaves the records of three requests on one
// connection and makes the first handler wait for the second, which is
// only possible if they run concurrently.
func TestMultiplex(t *testing.T) {
	secondRan := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/first":
			select {
			case <-secondRan:
			case <-time.After(10 * time.Second):
				http.Error(w, "second never ran", 500)
				return
			}
		case "/second":
			close(secondRan)
		}
		fmt.Fprintf(w, "%s:%s", r.URL.Path, body)
	})
	ts := startServer(t, h)
	c := ts.dial(t)

	ids := []uint16{1, 7, 300}
	paths := []string{"/first", "/second", "/third"}
	var params, stdin [3][][]byte
	for i := range ids {
		p := encodePairs(reqParams("POST", paths[i])...)
		params[i] = [][]byte{p[:10], p[10:], nil}
		b := bytes.Repeat([]byte{'a' + byte(i)}, 100000+i)
		stdin[i] = [][]byte{b[:65535], b[65535:], nil}
	}
	var out []byte
	for i, id := range ids {
		out = encodeRecord(out, typeBeginRequest, id, beginBody(roleResponder, true))
		_ = i
	}
	for step := range 3 {
		for i, id := range ids {
			out = encodeRecord(out, typeParams, id, params[i][step])
		}
	}
	for step := range 3 {
		for i := len(ids) - 1; i >= 0; i-- {
			out = encodeRecord(out, typeStdin, ids[i], stdin[i][step])
		}
	}
	go c.conn.Write(out)

	got := map[uint16][]byte{}
	ended := 0
	for ended < len(ids) {
		r := c.mustRecord()
		switch r.typ {
		case typeStdout:
			got[r.id] = append(got[r.id], r.content...)
		case typeEndRequest:
			ended++
		default:
			t.Fatalf("record type %d", r.typ)
		}
	}
	for i, id := range ids {
		resp := &tresp{stdout: got[id]}
		resp.parse(t)
		want := paths[i] + ":" + strings.Repeat(string(rune('a'+i)), 100000+i)
		if resp.status != 200 || string(resp.body) != want {
			t.Errorf("id %d: status %d, body %.40q... (%d bytes)", id, resp.status, resp.body, len(resp.body))
		}
	}
}

func TestAbort(t *testing.T) {
	type result struct{ readErr, ctxErr error }
	results := make(chan result, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/abort" {
			return
		}
		_, err := io.ReadAll(r.Body) // blocks: STDIN never ends
		<-r.Context().Done()
		results <- result{err, r.Context().Err()}
		w.Write([]byte("ignored"))
	})
	ts := startServer(t, h)
	c := ts.dial(t)

	// Aborted while still running: context canceled, body fails, and
	// END_REQUEST arrives without output.
	var b []byte
	b = encodeRecord(b, typeBeginRequest, 1, beginBody(roleResponder, true))
	b = encodeStream(b, typeParams, 1, encodePairs(reqParams("POST", "/abort")...), 65535)
	b = encodeRecord(b, typeStdin, 1, []byte("partial"))
	c.write(b)
	time.Sleep(20 * time.Millisecond) // let the handler block (not required)
	c.send(typeAbortRequest, 1, nil)
	resp := c.readResponse(1)
	if resp.records != 0 || resp.protoStatus != statusRequestComplete {
		t.Errorf("aborted request: %d STDOUT records, protocol status %d", resp.records, resp.protoStatus)
	}
	res := <-results
	if res.readErr == nil || res.ctxErr != context.Canceled {
		t.Errorf("handler saw read error %v, context error %v", res.readErr, res.ctxErr)
	}

	// Aborted before its params were complete: answered at once.
	b = encodeRecord(nil, typeBeginRequest, 2, beginBody(roleResponder, true))
	b = encodeRecord(b, typeParams, 2, encodePairs("REQUEST_METHOD", "GET"))
	b = encodeRecord(b, typeAbortRequest, 2, nil)
	c.write(b)
	if resp := c.readResponse(2); resp.records != 0 {
		t.Errorf("request aborted in PARAMS produced output")
	}

	// The connection is still usable.
	if resp := c.do(3, true, reqParams("GET", "/"), nil); resp.status != 200 {
		t.Errorf("status %d after aborts", resp.status)
	}
}

func TestGetValues(t *testing.T) {
	for _, tc := range []struct {
		maxConns, perConn int
		want              map[string]string
	}{
		{10, 4, map[string]string{"FCGI_MAX_CONNS": "10", "FCGI_MAX_REQS": "40", "FCGI_MPXS_CONNS": "1"}},
		{0, 1, map[string]string{"FCGI_MAX_CONNS": "2147483647", "FCGI_MAX_REQS": "2147483647", "FCGI_MPXS_CONNS": "0"}},
	} {
		ts := startServer(t, echoHandler(), func(s *Server) {
			s.MaxConns, s.MaxRequestsPerConn = tc.maxConns, tc.perConn
		})
		c := ts.dial(t)
		c.send(typeGetValues, 0, encodePairs("FCGI_MAX_CONNS", "", "FCGI_MAX_REQS", "", "FCGI_MPXS_CONNS", "", "OTHER", "", "FCGI_MAX_CONNS", ""))
		r := c.mustRecord()
		if r.typ != typeGetValuesResult || r.id != 0 {
			t.Fatalf("got record type %d id %d", r.typ, r.id)
		}
		got := map[string]string{}
		n := 0
		if err := decodeParams(string(r.content), func(k, v string) { got[k] = v; n++ }); err != nil {
			t.Fatal(err)
		}
		if n != 3 || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("GET_VALUES_RESULT %v (%d pairs), want %v", got, n, tc.want)
		}
	}
}

func TestUnknownTypeAndRole(t *testing.T) {
	ts := startServer(t, echoHandler())
	c := ts.dial(t)
	for _, typ := range []uint8{0, 12, 200, typeStdout, typeEndRequest} {
		c.send(typ, 0, []byte("xyz"))
		r := c.mustRecord()
		if r.typ != typeUnknownType || r.id != 0 || len(r.content) != 8 || r.content[0] != typ {
			t.Fatalf("type %d: got record type %d id %d content %v", typ, r.typ, r.id, r.content)
		}
	}
	for _, role := range []uint16{2, 3, 99} {
		c.send(typeBeginRequest, 5, beginBody(role, true))
		resp := c.readResponse(5)
		if resp.protoStatus != statusUnknownRole {
			t.Fatalf("role %d: protocol status %d", role, resp.protoStatus)
		}
	}
	// DATA records and records of unknown ids are ignored.
	c.send(typeData, 9, []byte("data"))
	c.send(typeStdin, 9, []byte("data"))
	if resp := c.do(1, true, reqParams("GET", "/"), nil); resp.status != 200 {
		t.Fatalf("status %d after unknown records", resp.status)
	}
}

func TestLimitConcurrentRequests(t *testing.T) {
	var release sync.Map // path -> chan struct{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch, _ := release.LoadOrStore(r.URL.Path, make(chan struct{}))
		<-ch.(chan struct{})
	})
	unblock := func(id int) {
		ch, _ := release.LoadOrStore(fmt.Sprint("/", id), make(chan struct{}))
		close(ch.(chan struct{}))
	}
	for _, tc := range []struct {
		perConn int
		status  uint8
	}{{1, statusCantMultiplex}, {2, statusOverloaded}} {
		release.Clear()
		ts := startServer(t, h, func(s *Server) { s.MaxRequestsPerConn = tc.perConn })
		c := ts.dial(t)
		for id := 1; id <= tc.perConn; id++ {
			c.write(encodeRequest(nil, uint16(id), true, reqParams("GET", fmt.Sprint("/", id)), nil))
		}
		c.send(typeBeginRequest, 100, beginBody(roleResponder, true))
		if resp := c.readResponse(100); resp.protoStatus != tc.status {
			t.Fatalf("perConn %d: protocol status %d, want %d", tc.perConn, resp.protoStatus, tc.status)
		}
		unblock(1)
		c.readResponse(1)
		// A slot is free again.
		unblock(100)
		if resp := c.do(100, true, reqParams("GET", "/100"), nil); resp.status != 200 {
			t.Fatalf("status %d", resp.status)
		}
		for id := 2; id <= tc.perConn; id++ {
			unblock(id)
			c.readResponse(uint16(id))
		}
	}
}

// TestLargeBodyStreams uploads 10 MB and checks the handler starts reading
// before the upload is complete, and that the hash survives.
func TestLargeBodyStreams(t *testing.T) {
	firstRead := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash := sha256.New()
		buf := make([]byte, 32<<10)
		once := sync.Once{}
		for {
			n, err := r.Body.Read(buf)
			hash.Write(buf[:n])
			if n > 0 {
				once.Do(func() { close(firstRead) })
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		fmt.Fprintf(w, "%x", hash.Sum(nil))
	})
	ts := startServer(t, h)
	c := ts.dial(t)

	body := make([]byte, 10<<20)
	rand.NewChaCha8([32]byte{1}).Read(body)
	sum := sha256.Sum256(body)

	var b []byte
	b = encodeRecord(b, typeBeginRequest, 1, beginBody(roleResponder, true))
	b = encodeStream(b, typeParams, 1, encodePairs(reqParams("PUT", "/up", "CONTENT_LENGTH", fmt.Sprint(len(body)))...), 65535)
	b = encodeRecord(b, typeStdin, 1, body[:30000])
	c.write(b)
	select {
	case <-firstRead:
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not see the first STDIN record before the rest was sent")
	}
	go func() {
		var w []byte
		for rest := body[30000:]; len(rest) > 0; {
			n := min(len(rest), 32768)
			w = encodeRecord(w[:0], typeStdin, 1, rest[:n])
			if _, err := c.conn.Write(w); err != nil {
				return
			}
			rest = rest[n:]
		}
		c.conn.Write(encodeRecord(nil, typeStdin, 1, nil))
	}()
	resp := c.readResponse(1)
	if got := string(resp.body); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %s, want %x", got, sum)
	}
}

// TestBodyBackpressure checks that a handler that does not read its body
// holds the connection back after a bounded amount instead of buffering
// the upload. net.Pipe has no kernel buffer, so what the client managed to
// write is what the server read.
func TestBodyBackpressure(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
	})
	l := newPipeListener()
	serveOn(t, l, h)
	c := newClient(t, l.Dial())
	defer c.conn.Close()

	const total = 4 << 20
	var written atomic.Int64
	go func() {
		b := encodeRecord(nil, typeBeginRequest, 1, beginBody(roleResponder, true))
		b = encodeStream(b, typeParams, 1, encodePairs(reqParams("POST", "/")...), 65535)
		c.conn.Write(b)
		chunk := make([]byte, 32768)
		rec := encodeRecord(nil, typeStdin, 1, chunk)
		for written.Load() < total {
			if _, err := c.conn.Write(rec); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
		}
		c.conn.Write(encodeRecord(nil, typeStdin, 1, nil))
	}()
	// Wait until the writer stalls.
	last := int64(-1)
	for {
		time.Sleep(50 * time.Millisecond)
		n := written.Load()
		if n == last {
			break
		}
		last = n
	}
	if limit := int64(bodyBufSize + readBufSize + 2*32768); last > limit || last >= total {
		t.Fatalf("server accepted %d body bytes ahead of the handler, bound is %d", last, limit)
	}
	t.Logf("server buffered %d bytes ahead of a handler that does not read", last)
	close(release)
	resp := c.readResponse(1)
	if resp.status != 200 || got.Load() != total {
		t.Fatalf("status %d, handler read %d of %d bytes", resp.status, got.Load(), total)
	}
}

func TestFlushStreaming(t *testing.T) {
	next := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second\n")
		http.NewResponseController(w).Flush()
		io.WriteString(w, "third\n")
	})
	ts := startServer(t, h)
	c := ts.dial(t)
	c.write(encodeRequest(nil, 1, true, reqParams("GET", "/stream"), nil))

	r := c.mustRecord()
	if r.typ != typeStdout || !bytes.HasPrefix(r.content, []byte("Status: 200 OK\r\n")) || !bytes.HasSuffix(r.content, []byte("\r\n\r\nfirst\n")) {
		t.Fatalf("first record type %d %q", r.typ, r.content)
	}
	if bytes.Contains(r.content, []byte("Content-Length")) {
		t.Errorf("streamed response has a Content-Length: %q", r.content)
	}
	close(next)
	var rest []string
	for {
		r := c.mustRecord()
		if r.typ == typeEndRequest {
			break
		}
		rest = append(rest, string(r.content))
	}
	if want := []string{"second\n", "third\n", ""}; !reflect.DeepEqual(rest, want) {
		t.Fatalf("records after the first: %q, want %q", rest, want)
	}
}

func TestPanic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Lost", "1")
		io.WriteString(w, "partial")
		if r.URL.Path == "/late" {
			w.(http.Flusher).Flush()
		}
		if r.URL.Path != "/ok" {
			panic("boom")
		}
	})
	ts := startServer(t, h)
	c := ts.dial(t)
	resp := c.do(1, true, reqParams("GET", "/early"), nil)
	if resp.status != 500 || string(resp.body) != "Internal Server Error\n" || resp.header.Get("X-Lost") != "" {
		t.Fatalf("panic before output: status %d header %v body %q", resp.status, resp.header, resp.body)
	}
	ts.logs.waitFor(t, "panic serving request")
	if resp := c.do(1, true, reqParams("GET", "/ok"), nil); resp.status != 200 || string(resp.body) != "partial" {
		t.Fatalf("after a panic the connection gave status %d %q", resp.status, resp.body)
	}
	// After output reached the wire, the connection is cut so the web
	// server sees an incomplete response rather than a complete one.
	c.write(encodeRequest(nil, 1, true, reqParams("GET", "/late"), nil))
	r := c.mustRecord()
	if r.typ != typeStdout || !bytes.HasSuffix(r.content, []byte("partial")) {
		t.Fatalf("record %d %q", r.typ, r.content)
	}
	c.expectClosed()
}

func TestHeadAndStatuses(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/html":
			io.WriteString(w, "<!DOCTYPE html><html><body>hi</body></html>")
		case "/nocontent":
			w.WriteHeader(204)
			if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
				panic("write to 204 allowed")
			}
		case "/inject":
			w.Header().Set("X-Evil", "a\r\nSet-Cookie: b")
			w.Header().Set("Bad Name", "x")
			w.Header().Set("Status", "200 Lies")
			w.WriteHeader(http.StatusTeapot)
		case "/interim":
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "made")
		case "/missing":
			http.NotFound(w, r)
		case "/big":
			w.Write(bytes.Repeat([]byte("z"), 200000))
			io.WriteString(w, strings.Repeat("y", 50000))
		}
	})
	ts := startServer(t, h)
	c := ts.dial(t)

	resp := c.do(1, true, reqParams("HEAD", "/html"), nil)
	if resp.status != 200 || len(resp.body) != 0 || resp.header.Get("Content-Length") != "43" ||
		resp.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD: %d %v %q", resp.status, resp.header, resp.body)
	}
	resp = c.do(1, true, reqParams("GET", "/html"), nil)
	if resp.header.Get("Content-Type") != "text/html; charset=utf-8" || len(resp.body) != 43 {
		t.Errorf("GET /html: %v %q", resp.header, resp.body)
	}
	resp = c.do(1, true, reqParams("GET", "/nocontent"), nil)
	if resp.status != 204 || resp.header.Get("Content-Type") != "" || resp.header.Get("Content-Length") != "" {
		t.Errorf("204: %d %v", resp.status, resp.header)
	}
	resp = c.do(1, true, reqParams("GET", "/inject"), nil)
	if resp.status != 418 || resp.header.Get("Set-Cookie") != "" || resp.header.Get("X-Evil") != "a  Set-Cookie: b" ||
		resp.header.Get("Status") != "418 I'm a teapot" {
		t.Errorf("inject: %d %v", resp.status, resp.header)
	}
	resp = c.do(1, true, reqParams("GET", "/interim"), nil)
	if resp.status != 201 || string(resp.body) != "made" {
		t.Errorf("interim: %d %q", resp.status, resp.body)
	}
	resp = c.do(1, true, reqParams("GET", "/missing"), nil)
	if resp.status != 404 {
		t.Errorf("missing: %d", resp.status)
	}
	resp = c.do(1, true, reqParams("GET", "/big"), nil)
	if resp.status != 200 || len(resp.body) != 250000 || resp.header.Get("Content-Length") != "" ||
		!bytes.Equal(resp.body[:200000], bytes.Repeat([]byte("z"), 200000)) {
		t.Errorf("big: %d %v %d bytes", resp.status, resp.header, len(resp.body))
	}
	// Bad request line data never reaches the handler.
	resp = c.do(1, true, []string{"REQUEST_URI", "/"}, nil)
	if resp.status != 400 {
		t.Errorf("missing method: %d", resp.status)
	}
	resp = c.do(1, true, reqParams("GET", "/", "CONTENT_LENGTH", "lots"), nil)
	if resp.status != 400 {
		t.Errorf("bad content length: %d", resp.status)
	}
}

func TestHugeResponseHeader(t *testing.T) {
	big := strings.Repeat("v", 70000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", big)
		io.WriteString(w, "body")
	})
	ts := startServer(t, h)
	c := ts.dial(t)
	resp := c.do(1, true, reqParams("GET", "/"), nil)
	if resp.header.Get("X-Big") != big || string(resp.body) != "body" {
		t.Fatalf("header of %d bytes, body %q", len(resp.header.Get("X-Big")), resp.body)
	}
}

func TestProtocolErrors(t *testing.T) {
	hdr := func(version, typ uint8, id, clen uint16, pad uint8) []byte {
		b := []byte{version, typ, 0, 0, 0, 0, pad, 0}
		binary.BigEndian.PutUint16(b[2:], id)
		binary.BigEndian.PutUint16(b[4:], clen)
		return b
	}
	begin := encodeRecord(nil, typeBeginRequest, 1, beginBody(roleResponder, true))
	absurd := []byte{0x80 | 0x7f, 0xff, 0xff, 0xff, 0x01, 'A'} // name of 2^31-1 bytes
	for _, tc := range []struct {
		name   string
		input  []byte
		reason string
	}{
		{"version 2", hdr(2, typeGetValues, 0, 0, 0), "unsupported FastCGI version 2"},
		{"truncated header", []byte{1, 1, 0}, "inside a record header"},
		{"truncated content", append(hdr(1, typeParams, 1, 100, 0), "short"...), "inside a record"},
		{"begin id 0", encodeRecord(nil, typeBeginRequest, 0, beginBody(1, true)), "request id 0"},
		{"short begin", encodeRecord(nil, typeBeginRequest, 1, []byte{0, 1}), "BEGIN_REQUEST body of 2 bytes"},
		{"duplicate begin", append(append([]byte{}, begin...), begin...), "in flight"},
		{"absurd length", append(append([]byte{}, begin...), encodeStream(nil, typeParams, 1, absurd, 100)...), "malformed params"},
		{"params too large", append(append([]byte{}, begin...), encodeRecord(nil, typeParams, 1, make([]byte, 40000))...), "exceed 32768 bytes"},
		{"stdin before params end", append(append([]byte{}, begin...), encodeRecord(nil, typeStdin, 1, []byte("x"))...), "before the end of its PARAMS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, echoHandler(), func(s *Server) { s.MaxParamsBytes = 32 << 10 })
			c := ts.dial(t)
			c.write(tc.input)
			if strings.HasPrefix(tc.name, "truncated") {
				c.conn.(*net.TCPConn).CloseWrite()
			}
			c.expectClosed()
			ts.logs.waitFor(t, tc.reason)
		})
	}
}

// TestProtocolErrorsDoNotFloodTheLog: a stream of garbage connections
// makes one warning; the rest are debug lines.
func TestProtocolErrorsDoNotFloodTheLog(t *testing.T) {
	ts := startServer(t, echoHandler())
	const n = 20
	for range n {
		c := ts.dial(t)
		c.write([]byte{2, typeGetValues, 0, 0, 0, 0, 0, 0})
		c.expectClosed()
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(ts.logs.String(), "unsupported FastCGI version 2") < n {
		if time.Now().After(deadline) {
			t.Fatalf("not every error logged:\n%s", ts.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if w := strings.Count(ts.logs.String(), "level=WARN"); w != 1 {
		t.Fatalf("%d warnings for %d protocol errors, want 1:\n%s", w, n, ts.logs.String())
	}
}

func TestShutdown(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	idle := dialClient(t, "tcp", l.Addr().String())
	if resp := idle.do(1, true, reqParams("GET", "/"), nil); resp.status != 200 {
		t.Fatal(resp.status)
	}
	busy := dialClient(t, "tcp", l.Addr().String())
	busy.write(encodeRequest(nil, 1, true, reqParams("GET", "/slow"), nil))
	<-started

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.expectClosed()
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Fatal("listener still accepting")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if resp := busy.readResponse(1); resp.status != 200 || string(resp.body) != "done" {
		t.Fatalf("in-flight request: %d %q", resp.status, resp.body)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	busy.expectClosed()
	if err := s.Serve(l); err != http.ErrServerClosed {
		t.Fatalf("Serve after Shutdown: %v", err)
	}

	// A Shutdown whose context ends first reports it.
	block, inHandler := make(chan struct{}), make(chan struct{})
	defer close(block)
	s2 := &Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(inHandler); <-block })}
	l2 := newPipeListener()
	go s2.Serve(l2)
	c := newClient(t, l2.Dial())
	defer c.conn.Close()
	go c.conn.Write(encodeRequest(nil, 1, true, reqParams("GET", "/"), nil))
	<-inHandler // the request is in flight: only then can Shutdown's wait be tested
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s2.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown with a stuck handler: %v", err)
	}
}

func TestUnixListenerAndMaxConns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	release, blocked := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(blocked)
			<-release
		}
		echoHandler().ServeHTTP(w, r)
	})
	ts := serveOn(t, l, h, func(s *Server) { s.MaxConns = 1 })
	c1 := dialClient(t, "unix", path)
	if resp := c1.do(1, true, reqParams("GET", "/"), nil); resp.status != 200 {
		t.Fatal(resp.status)
	}
	// At the limit an idle connection makes room for a new one.
	c2 := dialClient(t, "unix", path)
	if resp := c2.do(1, true, reqParams("GET", "/"), nil); resp.status != 200 {
		t.Fatal(resp.status)
	}
	c1.expectClosed()
	// A busy one does not: the third connection waits in the backlog.
	c2.write(encodeRequest(nil, 2, true, reqParams("GET", "/block"), nil))
	<-blocked // busy, not idle
	c3 := dialClient(t, "unix", path)
	c3.write(encodeRequest(nil, 1, true, reqParams("GET", "/"), nil))
	c3.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c3.readRecord(); err == nil {
		t.Fatal("third connection served while the only slot was busy")
	}
	c3.conn.SetReadDeadline(time.Time{})
	close(release)
	if resp := c2.readResponse(2); resp.status != 200 {
		t.Fatal(resp.status)
	}
	if resp := c3.readResponse(1); resp.status != 200 {
		t.Fatal(resp.status)
	}
	_ = ts
}

// TestIdleAndParamsTimeouts: a connection that sends nothing, one idle
// after a request, and one stuck inside its params are all closed; one
// whose request runs longer than the timeouts is not.
func TestIdleAndParamsTimeouts(t *testing.T) {
	const d = 300 * time.Millisecond
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		echoHandler().ServeHTTP(w, r)
	})
	ts := startServer(t, h, func(s *Server) { s.IdleTimeout, s.ParamsTimeout = d, d })
	silent := ts.dial(t)
	used := ts.dial(t)
	if resp := used.do(1, true, reqParams("GET", "/"), nil); resp.status != 200 {
		t.Fatal(resp.status)
	}
	stuck := ts.dial(t)
	stuck.send(typeBeginRequest, 1, beginBody(roleResponder, true))
	stuck.send(typeParams, 1, encodePairs("REQUEST_METHOD", "GET"))
	busy := ts.dial(t)
	busy.write(encodeRequest(nil, 1, true, reqParams("GET", "/slow"), nil))
	for _, c := range []*tclient{silent, used, stuck} {
		c.expectClosed()
	}
	time.Sleep(2 * d) // busy outlives the timeouts
	close(release)
	if resp := busy.readResponse(1); resp.status != 200 {
		t.Fatal(resp.status)
	}
	busy.expectClosed() // idle again: the timeout runs from the end of the request
}

func TestRequestMatchesCGI(t *testing.T) {
	envs := []map[string]string{
		{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "h.test", "REQUEST_URI": "/a/b?x=1&y=%20",
			"REMOTE_ADDR": "192.0.2.1", "REMOTE_PORT": "1234", "HTTP_USER_AGENT": "ua", "HTTP_ACCEPT": "*/*",
			"HTTP_X_CUSTOM_THING": "v", "HTTP_COOKIE": "a=b", "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "12"},
		{"REQUEST_METHOD": "POST", "SERVER_PROTOCOL": "HTTP/2.0", "SCRIPT_NAME": "/s", "PATH_INFO": "/p",
			"QUERY_STRING": "q=1", "HTTPS": "on", "HTTP_HOST": "secure.test:8443"},
		{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "INCLUDED", "REQUEST_URI": "/x", "REMOTE_ADDR": "2001:db8::1"},
		{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.0", "REQUEST_URI": "/x", "HTTP_weird_case": "w"},
		{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "bogus", "REQUEST_URI": "/x"},
		{"SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_URI": "/x"},
		{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_URI": "/x", "CONTENT_LENGTH": "x"},
		{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "bad host%zz", "REQUEST_URI": "/x"},
		{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_URI": "%zz"},
	}
	for i, env := range envs {
		want, werr := cgi.RequestFromMap(env)
		var kv []string
		for k, v := range env {
			kv = append(kv, k, v)
		}
		raw := string(encodePairs(kv...))
		vars, err := scanParams(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, gerr := newHTTPRequest(context.Background(), raw, &vars, http.NoBody)
		if (werr == nil) != (gerr == nil) {
			t.Errorf("env %d: error %v, cgi error %v", i, gerr, werr)
			continue
		}
		if werr != nil {
			continue
		}
		if got.Method != want.Method || got.URL.String() != want.URL.String() || got.Proto != want.Proto ||
			got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.Host != want.Host ||
			got.ContentLength != want.ContentLength || got.RemoteAddr != want.RemoteAddr ||
			(got.TLS == nil) != (want.TLS == nil) || !reflect.DeepEqual(got.Header, want.Header) {
			t.Errorf("env %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

// A goroutine that outlives its handler must not corrupt later requests.
// The request context is canceled only after the response is complete,
// which orders the late Write after it.
func TestRemoteAddr(t *testing.T) {
	for _, tc := range [][2]string{{"192.0.2.1", "80"}, {"2001:db8::1", "65535"}, {"h", ""}, {"h", "007"},
		{"h", "x1"}, {"h", "123456"}, {"h", "-1"}, {"", "0"}, {"::1%eth0", "1"}} {
		p, _ := strconv.Atoi(tc[1])
		if got, want := remoteAddr(tc[0], tc[1]), net.JoinHostPort(tc[0], strconv.Itoa(p)); got != want {
			t.Errorf("remoteAddr(%q, %q) = %q, want %q", tc[0], tc[1], got, want)
		}
	}
}

func TestWriteAfterHandlerReturns(t *testing.T) {
	errs := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leak" {
			go func() {
				<-r.Context().Done()
				_, err := w.Write([]byte("late"))
				w.(http.Flusher).Flush() // must not panic
				errs <- err
			}()
		}
		io.WriteString(w, "ok")
	})
	ts := startServer(t, h)
	c := ts.dial(t)
	c.do(1, true, reqParams("GET", "/leak"), nil)
	if err := <-errs; err == nil {
		t.Fatal("Write after the handler returned succeeded")
	}
	if resp := c.do(1, true, reqParams("GET", "/"), nil); string(resp.body) != "ok" {
		t.Fatalf("next response %q", resp.body)
	}
}

var _ = net.ErrClosed
