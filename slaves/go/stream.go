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
	chunks [][]byte  // received, unread from chunks[head][off:] on
	inline [2][]byte // chunks' first array: most bodies are a chunk or two
	head   int
	off    int
	done   bool  // choke received
	err    error // error received or session cancelled
	ahead  *readAhead
}

func (r *Request) init(event string, ahead *readAhead) {
	r.Event = event
	r.ahead = ahead
	r.cond.L = &r.mu
	r.chunks = r.inline[:0]
}

// push is called by the read loop; it never blocks on the handler. p is
// a buffer from the pool, which the request owns from now on.
func (r *Request) push(p []byte) {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		buffers.put(p)
		return
	}
	if r.head > 0 && len(r.chunks) == cap(r.chunks) {
		// Reuse the room read chunks left instead of growing.
		n := copy(r.chunks, r.chunks[r.head:])
		clear(r.chunks[n:])
		r.chunks, r.head = r.chunks[:n], 0
	}
	r.chunks = append(r.chunks, p)
	r.ahead.add(len(p))
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

// release ends the request after its handler returned, recycling what it
// did not read. Reads after it, from a goroutine the handler left behind,
// see the end of the body.
func (r *Request) release() {
	r.mu.Lock()
	for _, c := range r.chunks[r.head:] {
		r.ahead.sub(len(c))
		buffers.put(c)
	}
	clear(r.chunks)
	r.chunks, r.head, r.off, r.done = r.chunks[:0], 0, 0, true
	r.mu.Unlock()
	r.cond.Broadcast()
}

// wait waits, holding r.mu, for a chunk or the end of the body, and
// returns the first unread chunk, or nil with the body's end.
func (r *Request) wait() ([]byte, error) {
	if r.head == len(r.chunks) && !r.done {
		// Waiting for input lets a paused read loop read on: what this
		// handler needs may be behind what others hold.
		r.ahead.wait(true)
		for r.head == len(r.chunks) && !r.done {
			r.cond.Wait()
		}
		r.ahead.wait(false)
	}
	if r.head < len(r.chunks) {
		return r.chunks[r.head], nil
	}
	if r.err != nil {
		return nil, r.err
	}
	return nil, io.EOF
}

// drop removes the first unread chunk.
func (r *Request) drop() {
	r.ahead.sub(len(r.chunks[r.head]))
	r.chunks[r.head] = nil
	r.head++
	r.off = 0
	if r.head == len(r.chunks) {
		r.chunks, r.head = r.chunks[:0], 0
	}
}

// NextChunk returns the next body chunk as the engine sent it, or io.EOF
// after the last one. The chunk is the caller's to keep.
func (r *Request) NextChunk() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.wait()
	if err != nil {
		return nil, err
	}
	c = c[r.off:]
	r.drop()
	return c, nil
}

// Read implements io.Reader over the body stream.
func (r *Request) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.wait()
	if err != nil {
		return 0, err
	}
	n := copy(p, c[r.off:])
	r.off += n
	if r.off == len(c) {
		r.drop()
		buffers.put(c)
	}
	return n, nil
}

// WriteTo implements io.WriterTo: io.Copy from a Request hands each chunk
// to dst as it arrives, with no buffer of its own between.
func (r *Request) WriteTo(dst io.Writer) (int64, error) {
	var total int64
	for {
		r.mu.Lock()
		c, err := r.wait()
		if err != nil {
			r.mu.Unlock()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		p := c[r.off:]
		r.drop()
		r.mu.Unlock()
		n, err := dst.Write(p)
		total += int64(n)
		buffers.put(c) // io.Writer keeps no p
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, err
		}
	}
}

// take removes the first unread chunk and returns it whole, with the
// offset reading starts at, for a reader that then owns it.
func (r *Request) take() ([]byte, int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.wait()
	if err != nil {
		return nil, 0, err
	}
	off := r.off
	r.drop()
	return c, off, nil
}

// chunkReader reads a Request a chunk at a time, without its lock for each
// read: an io.ByteReader, which the HTTP payload's decoder reads the head
// with byte by byte, and which spares it a bufio.Reader of its own and the
// body a copy through it. One goroutine reads it.
type chunkReader struct {
	req *Request
	cur []byte // a pooled chunk, unread from off on
	off int
}

func (c *chunkReader) fill() error {
	for c.off == len(c.cur) {
		buffers.put(c.cur)
		c.cur, c.off = nil, 0
		cur, off, err := c.req.take()
		if err != nil {
			return err
		}
		c.cur, c.off = cur, off
	}
	return nil
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.fill(); err != nil {
		return 0, err
	}
	n := copy(p, c.cur[c.off:])
	c.off += n
	return n, nil
}

func (c *chunkReader) ReadByte() (byte, error) {
	if err := c.fill(); err != nil {
		return 0, err
	}
	b := c.cur[c.off]
	c.off++
	return b, nil
}

// release recycles the chunk held; reads after it see the rest of the body.
func (c *chunkReader) release() {
	buffers.put(c.cur)
	c.cur, c.off = nil, 0
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
	buf    []byte // from the pool, nil until the first write
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

// minBuffer is the first buffer a Response takes: most answers are small.
const minBuffer = 4 << 10

// Write buffers p, sending a chunk when the buffer fills; a write of
// BufferSize or more goes out at once, after what was buffered, without
// being copied into the buffer. After the session was cancelled Write fails
// with an error wrapping ErrCancelled.
func (w *Response) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := len(p)
	switch {
	case len(w.buf)+len(p) < BufferSize:
		w.buffer(p)
	case len(p) >= BufferSize:
		err := w.conn.WriteChunks(w.session, nil, w.buf, p)
		w.buf = w.buf[:0]
		if err != nil {
			return 0, err
		}
	default:
		// Top the buffer up to a whole chunk; the rest starts the next.
		take := BufferSize - len(w.buf)
		w.buffer(p[:take])
		if err := w.flush(); err != nil {
			return 0, err
		}
		w.buffer(p[take:])
	}
	return n, nil
}

// buffer appends p, which fits under BufferSize, moving to a bigger pooled
// buffer when the one held is full.
func (w *Response) buffer(p []byte) {
	if len(w.buf)+len(p) > cap(w.buf) {
		nb := buffers.get(max(minBuffer, 2*cap(w.buf), len(w.buf)+len(p)))[:len(w.buf)]
		copy(nb, w.buf)
		buffers.put(w.buf)
		w.buf = nb
	}
	w.buf = append(w.buf, p...)
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
	err := w.conn.WriteChunks(w.session, nil, w.buf)
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
	return w.send(last)
}

// send sends what is buffered, then each of more, then last unless it is
// nil, in one socket write; with last, the stream ends. w.mu is held.
func (w *Response) send(last *protocol.Frame, more ...[]byte) error {
	var err error
	if w.aborted() != nil {
		// A cancelled session still ends, but what it wrote has no reader.
		if last != nil {
			err = w.conn.Write(last)
		}
	} else {
		var parts [4][]byte // on the stack: no allocation for the usual few
		err = w.conn.WriteChunks(w.session, last, append(append(parts[:0], w.buf), more...)...)
	}
	w.buf = w.buf[:0]
	if last != nil {
		w.closed = true
		buffers.put(w.buf)
		w.buf = nil
	}
	return err
}
