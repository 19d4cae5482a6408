package protocol

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// Conn reads and writes frames on a stream. Reads are for one goroutine;
// writes may come from many (they are serialized).
type Conn struct {
	rw  io.ReadWriter
	r   *bufio.Reader
	hdr [4]byte
	buf []byte // read buffer, reused
	names names

	wmu  sync.Mutex
	wbuf []byte
}

// NewConn wraps a stream, usually a *net.UnixConn.
func NewConn(rw io.ReadWriter) *Conn {
	return &Conn{rw: rw, r: bufio.NewReaderSize(rw, 64<<10)}
}

// Read reads the next frame. f.Data is valid until the next Read.
func (c *Conn) Read(f *Frame) error {
	hdr := c.hdr[:] // a field: a local would escape through io.ReadFull
	if _, err := io.ReadFull(c.r, hdr); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n > MaxFrame {
		return fmt.Errorf("%w: %d bytes declared", ErrTooLarge, n)
	}
	if cap(c.buf) < int(n) {
		c.buf = make([]byte, n)
	}
	c.buf = c.buf[:n]
	if _, err := io.ReadFull(c.r, c.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("protocol: truncated frame: %w", err)
	}
	return decode(c.buf, f, &c.names)
}

// Write sends frames in one write to the stream, so that a peer that dies
// right after sees all of them or none (a last chunk and its choke, say).
func (c *Conn) Write(fs ...*Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.wbuf = c.wbuf[:0]
	for _, f := range fs {
		if c.wbuf, err = AppendFrame(c.wbuf, f); err != nil {
			return err
		}
	}
	_, err = c.rw.Write(c.wbuf)
	if cap(c.wbuf) > 4*ChunkSize {
		c.wbuf = nil // do not pin a huge buffer after one big frame
	}
	return err
}
