package slave

import (
	"context"
	"errors"
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
