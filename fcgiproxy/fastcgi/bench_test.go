package fastcgi

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/fcgi"
	"testing"
)

// nginxParams approximates what nginx sends with the stock fastcgi_params
// and a typical browser request.
func nginxParams() []string {
	return []string{
		"QUERY_STRING", "a=1",
		"REQUEST_METHOD", "GET",
		"CONTENT_TYPE", "",
		"CONTENT_LENGTH", "",
		"SCRIPT_NAME", "/hello",
		"REQUEST_URI", "/hello?a=1",
		"DOCUMENT_URI", "/hello",
		"DOCUMENT_ROOT", "/usr/share/nginx/html",
		"SERVER_PROTOCOL", "HTTP/1.1",
		"REQUEST_SCHEME", "http",
		"GATEWAY_INTERFACE", "CGI/1.1",
		"SERVER_SOFTWARE", "nginx/1.26.3",
		"REMOTE_ADDR", "127.0.0.1",
		"REMOTE_PORT", "51234",
		"REMOTE_USER", "",
		"SERVER_ADDR", "127.0.0.1",
		"SERVER_PORT", "8080",
		"SERVER_NAME", "localhost",
		"REDIRECT_STATUS", "200",
		"HTTP_HOST", "localhost:8080",
		"HTTP_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5",
		"HTTP_ACCEPT_ENCODING", "gzip, deflate, br",
		"HTTP_CONNECTION", "keep-alive",
	}
}

var helloBody = []byte("Hello, world!\n")

func helloHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(helloBody)
	})
}

// benchReader reads responses without allocating, so the allocations
// reported are the server's (plus net.Pipe's for new connections).
type benchReader struct {
	br   *bufio.Reader
	hdr  [8]byte
	body int
}

func (r *benchReader) response() error {
	r.body = 0
	for {
		if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint16(r.hdr[4:])) + int(r.hdr[6])
		if _, err := r.br.Discard(n); err != nil {
			return err
		}
		switch r.hdr[1] {
		case typeStdout:
			r.body += n
		case typeEndRequest:
			if r.body == 0 {
				return fmt.Errorf("empty response")
			}
			return nil
		}
	}
}

func BenchmarkServe(b *testing.B) {
	impls := []struct {
		name  string
		serve func(net.Listener, http.Handler) error
	}{
		{"fastcgi", func(l net.Listener, h http.Handler) error {
			return (&Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}).Serve(l)
		}},
		{"net-http-fcgi", fcgi.Serve},
	}
	for _, impl := range impls {
		for _, keep := range []bool{true, false} {
			name := impl.name + "/keepconn"
			if !keep {
				name = impl.name + "/newconn"
			}
			b.Run(name, func(b *testing.B) {
				l := newPipeListener()
				defer l.Close()
				go impl.serve(l, helloHandler())
				req := encodeRequest(nil, 1, keep, nginxParams(), nil)
				b.SetBytes(int64(len(req)))
				b.ReportAllocs()
				if keep {
					conn := l.Dial()
					defer conn.Close()
					rd := &benchReader{br: bufio.NewReaderSize(conn, 16<<10)}
					// net.Pipe is synchronous: write from another
					// goroutine so the server can answer while we write.
					next := make(chan struct{}, 1)
					go func() {
						for range next {
							conn.Write(req)
						}
					}()
					defer close(next)
					b.ResetTimer()
					for b.Loop() {
						next <- struct{}{}
						if err := rd.response(); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				rd := &benchReader{br: bufio.NewReaderSize(nil, 16<<10)}
				b.ResetTimer()
				for b.Loop() {
					conn := l.Dial()
					go conn.Write(req)
					rd.br.Reset(conn)
					if err := rd.response(); err != nil {
						b.Fatal(err)
					}
					conn.Close()
				}
			})
		}
	}
}
