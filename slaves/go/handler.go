package slave

import (
	"context"
	"fmt"
	"sync"
)

// Handler serves one event. Returning nil ends the response stream; an
// error ends it with an error the caller sees (code 502, or the code of an
// *Error). A handler may also end the stream itself with w.Close.
type Handler interface {
	ServeEvent(ctx context.Context, req *Request, w *Response) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request, w *Response) error

// ServeEvent calls f.
func (f HandlerFunc) ServeEvent(ctx context.Context, req *Request, w *Response) error {
	return f(ctx, req, w)
}

// Error is an error with a platform code (see docs/protocol.md), for a
// handler that wants the caller to see something other than 502.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// Mux routes events to handlers.
type Mux struct {
	mu sync.RWMutex
	m  map[string]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{m: map[string]Handler{}} }

// Handle registers h for event, replacing any earlier handler.
func (m *Mux) Handle(event string, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[event] = h
}

// HandleFunc registers fn for event.
func (m *Mux) HandleFunc(event string, fn func(ctx context.Context, req *Request, w *Response) error) {
	m.Handle(event, HandlerFunc(fn))
}

// ServeEvent dispatches to the handler of req.Event.
func (m *Mux) ServeEvent(ctx context.Context, req *Request, w *Response) error {
	m.mu.RLock()
	h, ok := m.m[req.Event]
	m.mu.RUnlock()
	if !ok {
		return &Error{Code: 404, Message: fmt.Sprintf("no handler for event %q", req.Event)}
	}
	return h.ServeEvent(ctx, req, w)
}

// DefaultMux is the Mux used by Handle, HandleFunc and Run.
var DefaultMux = NewMux()

// Handle registers h for event on DefaultMux.
func Handle(event string, h Handler) { DefaultMux.Handle(event, h) }

// HandleFunc registers fn for event on DefaultMux.
func HandleFunc(event string, fn func(ctx context.Context, req *Request, w *Response) error) {
	DefaultMux.HandleFunc(event, fn)
}
