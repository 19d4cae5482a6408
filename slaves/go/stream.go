package slave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// Request is one invocation: its event and its body, read as a stream.
// Chunks become readable as soon as the engine forwards them.
type Request struct {
	Event string

	mu     sync.Mutex
	cond   sync.Cond
	chunks [][]byte
	queued int   // bytes in chunks
	done   bool  // choke received
	err    error // error received or session cancelled
	gone   bool  // the handler returned: nobody will read
}

// ReadAhead bounds the request body a session holds that its handler has
// not read. Past it the slave stops reading its socket until the handler
// reads (or returns), so a body nobody reads waits in the engine, under
// its flow control, not in the slave's memory.
const ReadAhead = 8 << 20

func newRequest(event string) *Request {
	r := &Request{Event: event}
	r.cond.L = &r.mu
	return r
}

// push is called by the read loop. It waits while the handler has
// ReadAhead bytes unread (see ReadAhead).
func (r *Request) push(p []byte) {
	r.mu.Lock()
	for r.queued >= ReadAhead && !r.done && !r.gone {
		r.cond.Wait()
	}
	if !r.done && !r.gone {
		r.chunks = append(r.chunks, p)
		r.queued += len(p)
	}
	r.mu.Unlock()
	r.cond.Broadcast()
}

// abandon is called when the handler returned: a push waiting for it
// lets go, and later chunks are dropped.
func (r *Request) abandon() {
	r.mu.Lock()
	r.gone, r.chunks, r.queued = true, nil, 0
	r.mu.Unlock()
	r.cond.Broadcast()
}

func (r *Request) finish(err error) {
	r.mu.Lock()
	if !r.done {
		r.done, r.err = true, err
	}
	r.mu.Unlock()
	r.cond.Broadcast()
}

// NextChunk returns the next body chunk as the engine sent it, or io.EOF
// after the last one.
func (r *Request) NextChunk() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.chunks) == 0 && !r.done {
		r.cond.Wait()
	}
	if len(r.chunks) > 0 {
		c := r.chunks[0]
		r.chunks[0] = nil
		r.chunks = r.chunks[1:]
		r.queued -= len(c)
		r.cond.Broadcast() // a push may wait for room
		return c, nil
	}
	if r.err != nil {
		return nil, r.err
	}
	return nil, io.EOF
}

// Read implements io.Reader over the body stream.
func (r *Request) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.chunks) == 0 && !r.done {
		r.cond.Wait()
	}
	if len(r.chunks) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.queued -= n
	r.cond.Broadcast() // a push may wait for room
	if n == len(r.chunks[0]) {
		r.chunks[0] = nil
		r.chunks = r.chunks[1:]
	} else {
		r.chunks[0] = r.chunks[0][n:]
	}
	return n, nil
}

// ReadAll reads the whole body.
func (r *Request) ReadAll() ([]byte, error) { return io.ReadAll(r) }

// ErrClosed is returned by writes after the response was closed.
var ErrClosed = errors.New("slave: response closed")

// ErrCancelled is returned by a session's writes and reads once the engine
// cancelled it (its deadline passed, its timeout fired, its caller went
// away) or the engine went away: nobody reads the answer any more. The
// error returned wraps it with the engine's reason; errors.Is(err,
// context.Canceled) holds too, as the session's ctx is done by then.
var ErrCancelled = fmt.Errorf("slave: session cancelled: %w", context.Canceled)

// Response is the answer stream. Like net/http's ResponseWriter it
// buffers: a chunk goes out when the buffer fills, on Flush, or with the
// end of the stream; a handler that streams calls Flush after each piece.
// The end travels in the same socket write as the last chunk, so a slave
// killed after answering never leaves its caller with half an answer.
type Response struct {
	session uint64
	conn    *protocol.Conn

	mu     sync.Mutex
	buf    []byte
	closed bool

	// The read loop sets it without w.mu, which a handler may hold while
	// its write waits on a full socket: the loop must never wait on one.
	cancelled atomic.Pointer[error]
}

// abort makes every later write fail with err (which wraps ErrCancelled).
func (w *Response) abort(err error) { w.cancelled.CompareAndSwap(nil, &err) }

// aborted returns the error writes fail with, or nil.
func (w *Response) aborted() error {
	if p := w.cancelled.Load(); p != nil {
		return *p
	}
	return nil
}

// usable says why w takes no more writes, if it does not.
func (w *Response) usable() error {
	if err := w.aborted(); err != nil {
		return err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// BufferSize is how much a Response holds before it sends a chunk.
const BufferSize = 64 << 10

// Write buffers p, sending full chunks as the buffer fills. After the
// session was cancelled it fails with an error wrapping ErrCancelled.
func (w *Response) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(w.buf)+len(p) >= BufferSize {
		take := min(len(p), protocol.ChunkSize-len(w.buf))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if err := w.flush(); err != nil {
			return n - len(p), err
		}
		if len(p) == 0 {
			return n, nil
		}
	}
	w.buf = append(w.buf, p...)
	return n, nil
}

// Flush sends what is buffered as one chunk. After the session was
// cancelled it fails with an error wrapping ErrCancelled.
func (w *Response) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.flush()
}

func (w *Response) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.conn.Write(&protocol.Frame{Type: protocol.Chunk, Session: w.session, Data: w.buf})
	w.buf = w.buf[:0]
	return err
}

// Close sends what is buffered and ends the stream. Closing twice is harmless.
func (w *Response) Close() error {
	return w.end(&protocol.Frame{Type: protocol.Choke, Session: w.session})
}

// fail ends the stream with an error after what was buffered, unless it
// already ended.
func (w *Response) fail(code int, msg string) error {
	return w.end(&protocol.Frame{Type: protocol.Error, Session: w.session, Code: code, Message: msg})
}

func (w *Response) end(last *protocol.Frame) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if len(w.buf) == 0 || w.aborted() != nil {
		// A cancelled session still ends, but what it buffered has no reader.
		w.buf = nil
		return w.conn.Write(last)
	}
	err := w.conn.Write(&protocol.Frame{Type: protocol.Chunk, Session: w.session, Data: w.buf}, last)
	w.buf = nil
	return err
}
