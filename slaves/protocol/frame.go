// Package protocol is the engine ⇄ slave wire format: length-prefixed
// MessagePack arrays over a Unix stream socket. docs/protocol.md is the
// reference every language runtime implements.
package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Version is the protocol version a slave announces in its handshake.
const Version = 1

// MaxFrame bounds one frame's payload. Bodies larger than this travel as
// several chunks; a bigger frame is a protocol violation that kills the slave.
const MaxFrame = 8 << 20

// ChunkSize is how much body the frameworks put in one chunk frame.
const ChunkSize = 1 << 20

// Type is a frame type.
type Type uint8

// Frame types. The numbers are the wire values.
const (
	Handshake Type = 1 // slave → engine: [1, 0, slave-id, pid, version]
	Heartbeat Type = 2 // slave → engine: [2, 0]
	Terminate Type = 3 // both: [3, 0, reason]
	Invoke    Type = 4 // engine → slave: [4, session, event]
	Chunk     Type = 5 // both: [5, session, bytes]
	Error     Type = 6 // both: [6, session, code, message]; engine → slave it cancels
	Choke     Type = 7 // both: [7, session]
)

var typeNames = [...]string{"", "handshake", "heartbeat", "terminate", "invoke", "chunk", "error", "choke"}

func (t Type) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// arity is the array length of each frame type.
var arity = [...]int{0, 5, 2, 3, 3, 3, 4, 2}

// Frame is one protocol message. Which fields matter depends on Type.
type Frame struct {
	Type    Type
	Session uint64
	SlaveID string // Handshake
	PID     int    // Handshake
	Proto   int    // Handshake: protocol version
	Event   string // Invoke
	Data    []byte // Chunk
	Code    int    // Error
	Message string // Error; Terminate reason
}

// ErrMalformed marks a frame that does not follow the protocol.
var ErrMalformed = errors.New("protocol: malformed frame")

// ErrTooLarge marks a frame whose declared length exceeds MaxFrame.
var ErrTooLarge = errors.New("protocol: frame too large")

// codec is the reusable state of one encode or decode: the generic
// encoder and decoder, bound to a slice writer and a bytes.Reader that
// they keep, so that neither allocates per frame.
type codec struct {
	w   sliceWriter
	enc *msgpack.Encoder
	r   bytes.Reader
	dec *msgpack.Decoder
}

// codecs serves the free functions; a Conn has codecs of its own.
var codecs = sync.Pool{New: func() any { return newCodec() }}

// sliceWriter appends to a slice. It has WriteByte, so that the encoder
// writes to it directly instead of wrapping it in a buffer of its own.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *sliceWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

// AppendFrame appends f, length prefix included, to dst.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	c := codecs.Get().(*codec)
	defer codecs.Put(c)
	return c.appendFrame(dst, f)
}

func newCodec() *codec {
	c := &codec{}
	c.enc = msgpack.NewEncoder(&c.w)
	c.dec = msgpack.NewDecoder(&c.r)
	return c
}

func (c *codec) appendFrame(dst []byte, f *Frame) ([]byte, error) {
	if f.Type == 0 || int(f.Type) >= len(arity) {
		return dst, fmt.Errorf("%w: unknown type %d", ErrMalformed, f.Type)
	}
	start := len(dst)
	c.w.b = append(dst, 0, 0, 0, 0)
	defer func() { c.w.b = nil }() // the pool must not pin the caller's buffer
	enc := c.enc
	enc.ResetWriter(&c.w)
	enc.UseCompactInts(true)
	err := enc.EncodeArrayLen(arity[f.Type])
	if err == nil {
		err = enc.EncodeUint(uint64(f.Type))
	}
	if err == nil {
		err = enc.EncodeUint(f.Session)
	}
	if err == nil {
		switch f.Type {
		case Handshake:
			if err = enc.EncodeString(f.SlaveID); err == nil {
				if err = enc.EncodeInt(int64(f.PID)); err == nil {
					err = enc.EncodeInt(int64(f.Proto))
				}
			}
		case Terminate:
			err = enc.EncodeString(f.Message)
		case Invoke:
			err = enc.EncodeString(f.Event)
		case Chunk:
			err = enc.EncodeBytes(f.Data)
		case Error:
			if err = enc.EncodeInt(int64(f.Code)); err == nil {
				err = enc.EncodeString(f.Message)
			}
		}
	}
	out := c.w.b
	if err != nil {
		return out[:start], fmt.Errorf("protocol: encode %s: %w", f.Type, err)
	}
	n := len(out) - start - 4
	if n > MaxFrame {
		return out[:start], fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	out[start], out[start+1], out[start+2], out[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return out, nil
}

// appendChunkHead appends a chunk frame of session whose data, of size
// bytes, is to follow: its length prefix and everything before the data.
func (c *codec) appendChunkHead(dst []byte, session uint64, size int) ([]byte, error) {
	start := len(dst)
	c.w.b = append(dst, 0, 0, 0, 0)
	defer func() { c.w.b = nil }()
	enc := c.enc
	enc.ResetWriter(&c.w)
	enc.UseCompactInts(true)
	err := enc.EncodeArrayLen(arity[Chunk])
	if err == nil {
		err = enc.EncodeUint(uint64(Chunk))
	}
	if err == nil {
		err = enc.EncodeUint(session)
	}
	if err == nil {
		err = enc.EncodeBytesLen(size)
	}
	out := c.w.b
	if err != nil {
		return out[:start], fmt.Errorf("protocol: encode chunk: %w", err)
	}
	n := len(out) - start - 4 + size
	if n > MaxFrame {
		return out[:start], fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	out[start], out[start+1], out[start+2], out[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return out, nil
}

// Decode parses one frame payload (without its length prefix). Data of a
// Chunk aliases payload.
func Decode(payload []byte, f *Frame) error {
	c := codecs.Get().(*codec)
	defer codecs.Put(c)
	return c.decode(payload, f, nil)
}

// decode is Decode, taking the event names of invokes from names when it
// holds them.
func (c *codec) decode(payload []byte, f *Frame, names *names) error {
	*f = Frame{}
	r := &c.r
	r.Reset(payload)
	defer r.Reset(nil) // the pool must not pin the caller's buffer
	dec := c.dec
	dec.ResetReader(r)
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return fmt.Errorf("%w: not an array: %v", ErrMalformed, err)
	}
	t, err := dec.DecodeUint8()
	if err != nil {
		return fmt.Errorf("%w: type: %v", ErrMalformed, err)
	}
	if t == 0 || int(t) >= len(arity) {
		return fmt.Errorf("%w: unknown type %d", ErrMalformed, t)
	}
	f.Type = Type(t)
	if n != arity[t] {
		return fmt.Errorf("%w: %s has %d elements, want %d", ErrMalformed, f.Type, n, arity[t])
	}
	if f.Session, err = dec.DecodeUint64(); err != nil {
		return fmt.Errorf("%w: session: %v", ErrMalformed, err)
	}
	var b []byte
	switch f.Type {
	case Handshake:
		if f.SlaveID, err = dec.DecodeString(); err == nil {
			if f.PID, err = dec.DecodeInt(); err == nil {
				f.Proto, err = dec.DecodeInt()
			}
		}
	case Terminate:
		f.Message, err = dec.DecodeString()
	case Invoke:
		// The few event names of an app come again and again.
		if b, err = decodeBin(dec, payload, r); err == nil {
			f.Event = names.get(b)
		}
	case Chunk:
		f.Data, err = decodeBin(dec, payload, r)
	case Error:
		if f.Code, err = dec.DecodeInt(); err == nil {
			f.Message, err = dec.DecodeString()
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, f.Type, err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, r.Len())
	}
	return nil
}

// names interns strings for one reader: a map lookup keyed by string(b)
// does not allocate, so a name seen before costs none.
type names struct{ m map[string]string }

// maxNames bounds the table against a peer that sends many names.
const maxNames = 64

func (n *names) get(b []byte) string {
	if n == nil {
		return string(b)
	}
	if s, ok := n.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if n.m == nil {
		n.m = make(map[string]string)
	}
	if len(n.m) < maxNames {
		n.m[s] = s
	}
	return s
}

// decodeBin reads a bin or str value without copying: chunks are the bulk
// of the traffic. Runtimes may send bodies as str (msgpack < 2.0 packers).
func decodeBin(dec *msgpack.Decoder, payload []byte, r *bytes.Reader) ([]byte, error) {
	n, err := dec.DecodeBytesLen() // accepts bin, str and nil headers
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	off := len(payload) - r.Len()
	if n > r.Len() {
		return nil, fmt.Errorf("chunk of %d bytes overruns frame", n)
	}
	if _, err := r.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, err
	}
	return payload[off : off+n : off+n], nil
}
