package slave

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// Once the engine cancels a session, its Response fails every write, Flush
// and Close included, with ErrCancelled: a handler blind to ctx stops at
// its next write. Other sessions of the slave go on.
func TestCancelFailsWrites(t *testing.T) {
	type result struct{ write, flush error }
	results := make(chan result, 1)
	started := make(chan struct{})
	release := make(chan struct{})
	mux := NewMux()
	mux.HandleFunc("flood", func(ctx context.Context, req *Request, w *Response) error {
		close(started)
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				results <- result{write: err, flush: w.Flush()}
				return err
			}
			if err := w.Flush(); err != nil {
				_, werr := w.Write([]byte("x"))
				results <- result{write: werr, flush: err}
				return err
			}
		}
	})
	mux.HandleFunc("slow", func(ctx context.Context, req *Request, w *Response) error {
		<-release
		_, err := w.Write([]byte("ok"))
		return err
	})
	e := startHTTPEngine(t, mux)
	flood := e.open("flood", newMeta("GET", "/", "", nil), nil)
	e.choke(flood)
	<-started
	slow := e.open("slow", newMeta("GET", "/", "", nil), nil)
	e.choke(slow)
	e.send(&protocol.Frame{Type: protocol.Error, Session: flood, Code: 520, Message: "client gone"})
	r := recv(t, results)
	for name, err := range map[string]error{"Write": r.write, "Flush": r.flush} {
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s after cancel = %v, want ErrCancelled and context.Canceled", name, err)
		}
	}
	if _, end := e.rest(flood); end.Type != protocol.Error {
		t.Errorf("cancelled session ended in %s, want error", end.Type)
	}
	close(release)
	body, end := e.rest(slow)
	if end.Type != protocol.Choke || string(body) != "ok" {
		t.Errorf("the other session: %q ending in %s %d %q", body, end.Type, end.Code, end.Message)
	}
}

// Writes of every size reach the engine whole and in order, in chunks no
// bigger than the protocol allows, however they fall against BufferSize.
func TestResponseChunking(t *testing.T) {
	sizes := []int{10, 70000, BufferSize - 10, 10, BufferSize, 1, protocol.ChunkSize + 5, 3, 2 * BufferSize, 0, 100}
	var want []byte
	for i, n := range sizes {
		want = append(want, bytes.Repeat([]byte{byte('a' + i)}, n)...)
	}
	mux := NewMux()
	mux.HandleFunc("w", func(ctx context.Context, req *Request, w *Response) error {
		off := 0
		for _, n := range sizes {
			if _, err := w.Write(want[off : off+n]); err != nil {
				return err
			}
			off += n
		}
		return nil
	})
	e := startHTTPEngine(t, mux)
	s := e.open("w", newMeta("GET", "/", "", nil), nil)
	e.choke(s)
	var got []byte
	for {
		f := e.next(s)
		if f.Type != protocol.Chunk {
			if f.Type != protocol.Choke {
				t.Fatalf("ended in %s %d %q", f.Type, f.Code, f.Message)
			}
			break
		}
		if len(f.Data) == 0 || len(f.Data) > protocol.ChunkSize {
			t.Errorf("chunk of %d bytes", len(f.Data))
		}
		got = append(got, f.Data...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d%s", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf(", first difference at %d", i)
		}
	}
	return ""
}

// Read, NextChunk and WriteTo take the body from where the last one left.
func TestRequestReads(t *testing.T) {
	type result struct {
		a, b, c, d string
		err        error
	}
	results := make(chan result, 1)
	mux := NewMux()
	mux.HandleFunc("r", func(ctx context.Context, req *Request, w *Response) error {
		var r result
		p := make([]byte, 3)
		n, _ := req.Read(p)
		r.a = string(p[:n]) // "hel"
		c, _ := req.NextChunk()
		r.b = string(c) // "lo": the rest of the first chunk
		p = make([]byte, 100)
		n, _ = req.Read(p[:4])
		r.c = string(p[:n]) // "worl"
		var sb strings.Builder
		_, r.err = req.WriteTo(&sb)
		r.d = sb.String() // "d!!" and the third chunk
		if _, err := req.Read(p); err != io.EOF {
			r.err = fmt.Errorf("Read after the end: %v", err)
		}
		results <- r
		return nil
	})
	e := startHTTPEngine(t, mux)
	e.session++
	s := e.session
	e.send(&protocol.Frame{Type: protocol.Invoke, Session: s, Event: "r"})
	for _, c := range []string{"hello", "world!!", "", "+more"} {
		e.chunk(s, []byte(c))
	}
	e.choke(s)
	r := recv(t, results)
	if r.a != "hel" || r.b != "lo" || r.c != "worl" || r.d != "d!!+more" || r.err != nil {
		t.Errorf("got %q %q %q %q %v", r.a, r.b, r.c, r.d, r.err)
	}
	if _, end := e.rest(s); end.Type != protocol.Choke {
		t.Errorf("ended in %s", end.Type)
	}
}
