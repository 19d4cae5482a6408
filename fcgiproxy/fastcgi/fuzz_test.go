package fastcgi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

func FuzzParams(f *testing.F) {
	f.Add(encodePairs("REQUEST_METHOD", "GET", "HTTP_HOST", "x"))
	f.Add(encodePairs(string(make([]byte, 200)), "v"))
	f.Add([]byte{0x80, 0, 0, 1, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'a'})
	f.Add([]byte{3, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var pairs []string
		err := decodeParams(string(data), func(k, v string) { pairs = append(pairs, k, v) })
		v, serr := scanParams(string(data))
		if (err == nil) != (serr == nil) || (err == nil && v.pairs*2 != len(pairs)) {
			t.Fatalf("scanParams disagrees: %d pairs (%v) vs %d (%v)", v.pairs, serr, len(pairs)/2, err)
		}
		total := 0
		for _, s := range pairs {
			total += len(s)
		}
		if total > len(data) {
			t.Fatalf("decoded %d bytes out of %d", total, len(data))
		}
		if err != nil {
			return
		}
		// Round trip through our encoder.
		var enc []byte
		for i := 0; i < len(pairs); i += 2 {
			enc = appendParam(enc, pairs[i], pairs[i+1])
		}
		var again []string
		if err := decodeParams(string(enc), func(k, v string) { again = append(again, k, v) }); err != nil {
			t.Fatal(err)
		}
		if len(again) != len(pairs) {
			t.Fatalf("round trip: %d strings, want %d", len(again), len(pairs))
		}
		for i := range pairs {
			if again[i] != pairs[i] {
				t.Fatalf("round trip changed %q to %q", pairs[i], again[i])
			}
		}
	})
}

// FuzzConn feeds arbitrary bytes to a server connection. The server must
// not panic, must end every handler once the peer is gone (Shutdown
// returning is the leak check), and must keep memory within its limits
// (MaxParamsBytes and per-request buffers bound it whatever the input).
func FuzzConn(f *testing.F) {
	get := reqParams("GET", "/?a=b")
	post := reqParams("POST", "/upload", "CONTENT_LENGTH", "10")
	f.Add(encodeRequest(nil, 1, false, get, nil))
	f.Add(encodeRequest(encodeRequest(nil, 1, true, get, nil), 1, true, post, []byte("0123456789")))
	mpx := encodeRecord(nil, typeBeginRequest, 1, beginBody(roleResponder, true))
	mpx = encodeRecord(mpx, typeBeginRequest, 2, beginBody(roleResponder, true))
	mpx = encodeStream(mpx, typeParams, 2, encodePairs(post...), 7)
	mpx = encodeStream(mpx, typeParams, 1, encodePairs(get...), 30)
	mpx = encodeRecord(mpx, typeStdin, 2, []byte("01234"))
	mpx = encodeRecord(mpx, typeAbortRequest, 1, nil)
	mpx = encodeStream(mpx, typeStdin, 2, []byte("56789"), 2)
	f.Add(mpx)
	f.Add(encodeRecord(nil, typeGetValues, 0, encodePairs("FCGI_MAX_CONNS", "", "FCGI_MPXS_CONNS", "")))
	f.Add(encodeRecord(encodeRecord(nil, 42, 0, []byte("?")), typeBeginRequest, 3, beginBody(2, false)))
	f.Add(append(encodeRecord(nil, typeBeginRequest, 1, beginBody(1, true)),
		encodeRecord(nil, typeParams, 1, []byte{0xff, 0xff, 0xff, 0xff, 1, 'x'})...))
	f.Add([]byte{1, 5, 0, 1, 0xff, 0xff, 0xff})

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		_ = ProcessEnv(r)
		w.Header().Set("X-N", "1")
		w.Write([]byte(r.URL.Path))
		if n > 3 {
			w.(http.Flusher).Flush()
		}
		w.Write(make([]byte, n%20000))
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Server{
			Handler:            handler,
			MaxRequestsPerConn: 4,
			MaxParamsBytes:     4 << 10,
			Logger:             slog.New(slog.DiscardHandler),
		}
		l := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
		client := l.Dial()
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, client)
			close(drained)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(data)
		client.Close()
		<-drained

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			buf := make([]byte, 1<<20)
			t.Fatalf("Shutdown: %v: goroutines left:\n%s", err, buf[:runtime.Stack(buf, true)])
		}
		if err := <-served; err != http.ErrServerClosed {
			t.Fatalf("Serve: %v", err)
		}
	})
}

var _ net.Conn
