package protocol

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
)

// Conn reads and writes frames on a stream. Reads are for one goroutine;
// writes may come from many (they are serialized).
type Conn struct {
	rw    io.ReadWriter
	r     *bufio.Reader
	hdr   [4]byte
	buf   []byte // read buffer, reused
	names names
	rc    *codec             // the reader's
	alloc func(n int) []byte // see SetChunkAlloc

	wmu       sync.Mutex
	wc        *codec    // on wmu
	wcond     sync.Cond // on wmu: a write finished
	pend      []byte    // frames waiting for the socket
	spare     []byte    // the buffer of the last write, for the next pend
	vec       bool      // rw writes net.Buffers with writev
	segs      [][]byte  // with vec: pend up to cut, and callers' chunk data, in turn
	cut       int       // pend[cut:] is not in segs yet
	refs      int       // bytes of callers' data in segs
	spareSegs [][]byte
	vbuf      net.Buffers
	writing   bool   // a writer is in rw.Write, and sends pend after
	queued    uint64 // stream offset of pend's start
	written   uint64 // stream offset written
	werr      error  // the stream failed: every later write fails
	gather    func() bool
}

// NewConn wraps a stream, usually a *net.UnixConn.
func NewConn(rw io.ReadWriter) *Conn {
	c := &Conn{rw: rw, r: bufio.NewReaderSize(rw, 64<<10), rc: newCodec(), wc: newCodec()}
	// Only the net package's own conns turn net.Buffers into one writev;
	// through anything else they become one write each.
	switch rw.(type) {
	case *net.UnixConn, *net.TCPConn:
		c.vec = true
	}
	c.wcond.L = &c.wmu
	return c
}

// SetChunkAlloc makes Read put the data of every chunk frame in a buffer
// of its length from alloc, instead of in the Conn's own buffer: the caller
// owns that f.Data, which stays valid after the next Read, and may recycle
// it. A body then goes from the socket to its reader with no copy between,
// and no allocation when alloc recycles. Call it before the first Read.
func (c *Conn) SetChunkAlloc(alloc func(n int) []byte) { c.alloc = alloc }

// Read reads the next frame. f.Data is valid until the next Read, unless
// SetChunkAlloc says otherwise.
func (c *Conn) Read(f *Frame) error {
	hdr := c.hdr[:] // a field: a local would escape through io.ReadFull
	if _, err := io.ReadFull(c.r, hdr); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n > MaxFrame {
		return fmt.Errorf("%w: %d bytes declared", ErrTooLarge, n)
	}
	if c.alloc != nil {
		if ok, err := c.readChunk(int(n), f); ok || err != nil {
			return err
		}
	}
	if cap(c.buf) < int(n) {
		c.buf = make([]byte, n)
	}
	c.buf = c.buf[:n]
	if _, err := io.ReadFull(c.r, c.buf); err != nil {
		return truncated(err)
	}
	return c.rc.decode(c.buf, f, &c.names)
}

func truncated(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("protocol: truncated frame: %w", err)
}

// chunkHead is the most a chunk's head takes before its data: a fixarray,
// the type, a uint64 session, a bin32 header.
const chunkHead = 1 + 1 + 9 + 5

// readChunk reads a frame of n bytes into a buffer from c.alloc if its head,
// peeked, is a well-formed chunk's that its data ends. Otherwise it reads
// nothing and returns false, and Read takes the frame the usual way, which
// also reports what is wrong with it.
func (c *Conn) readChunk(n int, f *Frame) (bool, error) {
	// The peeked bytes belong to this frame: a sender that stops short of
	// them gets the error it would get anyway.
	head, err := c.r.Peek(min(n, chunkHead))
	if err != nil {
		return false, truncated(err)
	}
	if len(head) < 2 || head[0] != 0x93 || head[1] != byte(Chunk) {
		return false, nil
	}
	session, size, k, ok := c.rc.parseChunkHead(head)
	if !ok || k+size != n {
		return false, nil
	}
	if _, err := c.r.Discard(k); err != nil {
		return false, truncated(err)
	}
	*f = Frame{Type: Chunk, Session: session}
	if size > 0 {
		f.Data = c.alloc(size)[:size]
		if _, err := io.ReadFull(c.r, f.Data); err != nil {
			return true, truncated(err)
		}
	}
	return true, nil
}

// parseChunkHead parses the start of a chunk frame up to its data: the
// session, the data's size and the head's length.
func (c *codec) parseChunkHead(head []byte) (session uint64, size, k int, ok bool) {
	r := &c.r
	r.Reset(head)
	defer r.Reset(nil)
	c.dec.ResetReader(r)
	if n, err := c.dec.DecodeArrayLen(); err != nil || n != arity[Chunk] {
		return 0, 0, 0, false
	}
	if t, err := c.dec.DecodeUint8(); err != nil || Type(t) != Chunk {
		return 0, 0, 0, false
	}
	session, err := c.dec.DecodeUint64()
	if err != nil {
		return 0, 0, 0, false
	}
	size, err = c.dec.DecodeBytesLen() // bin, str or nil, as Decode takes them
	if err != nil {
		return 0, 0, 0, false
	}
	return session, max(size, 0), len(head) - r.Len(), true
}

// SetGather makes a writer that finds no write in progress yield once
// before its own when gather returns true (say, when other sessions are
// running), so that writers ready to run add their frames to the same
// write. Without it, or when gather returns false, a lone writer writes at
// once. Call it before the first Write.
func (c *Conn) SetGather(gather func() bool) { c.gather = gather }

// Write sends frames in one write to the stream, so that a peer that dies
// right after sees all of them or none (a last chunk and its choke, say).
// It returns once they are written.
//
// Writers that come while another's write is in progress do not queue for
// the socket one by one: their frames gather behind it, and when it returns
// its writer sends all of them in one more write (a group commit), so that
// under load one syscall, and one wake-up of the peer, carries the frames
// of many sessions.
func (c *Conn) Write(fs ...*Frame) error {
	c.wmu.Lock()
	m := c.mark()
	for _, f := range fs {
		if err := c.append(f); err != nil {
			c.rollback(m)
			c.wmu.Unlock()
			return err
		}
	}
	return c.commit(m)
}

// WriteChunks sends each of data as chunk frames of session (cut at
// ChunkSize; empty ones are left out), then end unless it is nil, in one
// write to the stream, as Write does: a response's pieces need no Frame
// each.
func (c *Conn) WriteChunks(session uint64, end *Frame, data ...[]byte) error {
	c.wmu.Lock()
	m := c.mark()
	f := Frame{Type: Chunk, Session: session}
	var err error
	for _, p := range data {
		for len(p) > 0 && err == nil {
			f.Data = p[:min(len(p), ChunkSize)]
			p = p[len(f.Data):]
			err = c.append(&f)
		}
	}
	if end != nil && err == nil {
		err = c.append(end)
	}
	if err != nil {
		c.rollback(m)
		c.wmu.Unlock()
		return err
	}
	return c.commit(m)
}

// vecMin is the least chunk data that goes to the socket from its
// caller's slice, by writev, instead of being copied behind its head.
const vecMin = 16 << 10

// append adds f to what is pending. c.wmu is held.
func (c *Conn) append(f *Frame) error {
	var err error
	if f.Type != Chunk || !c.vec || len(f.Data) < vecMin {
		c.pend, err = c.wc.appendFrame(c.pend, f)
		return err
	}
	// The caller's slice stays valid until it is written: commit returns
	// only then.
	if c.pend, err = c.wc.appendChunkHead(c.pend, f.Session, len(f.Data)); err != nil {
		return err
	}
	c.segs = append(c.segs, c.pend[c.cut:], f.Data)
	c.cut = len(c.pend)
	c.refs += len(f.Data)
	return nil
}

// pendMark is what is pending at a point, to roll back to or to tell how
// much a writer added.
type pendMark struct{ pend, segs, cut, refs int }

func (c *Conn) mark() pendMark { return pendMark{len(c.pend), len(c.segs), c.cut, c.refs} }

func (c *Conn) rollback(m pendMark) {
	c.pend = c.pend[:m.pend]
	clear(c.segs[m.segs:])
	c.segs, c.cut, c.refs = c.segs[:m.segs], m.cut, m.refs
}

// pending is the number of bytes waiting for the socket.
func (c *Conn) pending() int { return len(c.pend) + c.refs }

// commit writes what is pending, or waits for the write in progress to
// be followed by one that carries it. What was added since m is the
// caller's. c.wmu is held on entry and released on return.
func (c *Conn) commit(m pendMark) error {
	if c.werr != nil {
		err := c.werr
		c.rollback(m) // nothing more goes out: hold nothing
		c.wmu.Unlock()
		return err
	}
	if c.pending() == m.pend+m.refs {
		c.wmu.Unlock()
		return nil
	}
	mine := c.queued + uint64(c.pending()) // the stream offset after my frames
	if c.writing {
		for c.written < mine && c.werr == nil {
			c.wcond.Wait()
		}
		err := c.werr
		if c.written >= mine {
			err = nil // written before the failure
		}
		c.wmu.Unlock()
		return err
	}
	c.writing = true
	if c.gather != nil && c.gather() {
		// Let the goroutines that are ready run first: handlers woken by
		// the same read finish their answers into pend, and one write
		// carries them all.
		c.wmu.Unlock()
		runtime.Gosched()
		c.wmu.Lock()
	}
	var err error
	for c.pending() > 0 && c.werr == nil {
		n := c.pending()
		buf, segs := c.pend, c.segs
		if len(segs) > 0 {
			segs = append(segs, buf[c.cut:])
		}
		c.pend, c.segs, c.cut, c.refs = c.spare[:0], c.spareSegs[:0], 0, 0
		c.queued += uint64(n)
		c.wmu.Unlock()
		if len(segs) > 0 {
			// writev. WriteTo consumes c.vbuf, not segs; a field, as a
			// local would escape. Only the writer in progress uses it.
			c.vbuf = segs
			_, err = c.vbuf.WriteTo(c.rw)
			c.vbuf = nil
		} else {
			_, err = c.rw.Write(buf)
		}
		c.wmu.Lock()
		if err != nil {
			c.werr = err
		} else {
			c.written += uint64(n)
		}
		if cap(buf) > 4*ChunkSize {
			buf = nil // do not pin a huge buffer after one big write
		}
		clear(segs) // nor the callers' data
		c.spare, c.spareSegs = buf[:0], segs[:0]
		c.wcond.Broadcast()
	}
	c.writing = false
	if c.written >= mine {
		err = nil
	} else if err == nil {
		err = c.werr
	}
	c.wmu.Unlock()
	return err
}
