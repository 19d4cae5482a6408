package wire

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Dealer ⇄ engine messages travel as ZeroMQ multipart messages between a
// DEALER (the client) and the engine's ROUTER. The first frame is a
// MessagePack header [version, type, id, ...]; a body or chunk travels raw
// in a second frame so that it is never copied into the header.
//
// Bodies stream both ways under flow control: an invoke carries the first
// piece of the request body (all of it, usually); when Flags has
// FlagMore, the client sends more as MsgChunk and ends it with MsgChoke.
// Each side may have at most Window bytes of body or answer unconsumed at
// the other; MsgCredit returns what was consumed.
const Version = 1

// Window is the most body (client → engine) or answer (engine → client)
// bytes one request may have in flight, sent but not yet credited back.
const Window = 256 << 10

// Flags of an invoke.
const (
	FlagMore uint8 = 1 // the request body continues in MsgChunk, ended by MsgChoke
)

// MsgType is a dealer ⇄ engine message type.
type MsgType uint8

// Client → engine.
const (
	MsgInvoke MsgType = 1 // [1, 1, id, app, event, policy(, flags)] + body frame
	MsgInfo   MsgType = 2 // [1, 2, id]: ask for the node's info
	MsgCancel MsgType = 3 // [1, 3, id]: the caller went away
	// MsgChunk (+ data frame) and MsgChoke also go client → engine: more
	// request body, and its end, for an invoke with FlagMore.
)

// Engine → client.
const (
	MsgAck   MsgType = 10 // [1, 10, id]: queued on the engine
	MsgChunk MsgType = 11 // [1, 11, id] + data frame
	MsgError MsgType = 12 // [1, 12, id, code, message]
	MsgChoke MsgType = 13 // [1, 13, id]: end of the response
	MsgNode  MsgType = 14 // [1, 14, id] + JSON frame: the node's info
	// MsgCredit goes both ways: [1, 15, id, bytes], that many bytes of the
	// request body (engine → client) or of the answer (client → engine)
	// were consumed, so as many more may be sent.
	MsgCredit MsgType = 15
)

// Policy is how a request is to be handled.
type Policy struct {
	Urgent   bool
	Timeout  time.Duration // job run time limit; 0 = none
	Deadline time.Time     // absolute; zero = none
	Retries  int           // re-sends the dealer may still make
	// FailFast makes the dealer answer 404 at once for a route no node
	// serves instead of waiting for one until the deadline. It stays in
	// the dealer: it is not sent to engines.
	FailFast bool
}

// Header is the first frame of every message.
type Header struct {
	Type    MsgType
	ID      string
	App     string // MsgInvoke
	Event   string // MsgInvoke
	Policy  Policy // MsgInvoke
	Code    Code   // MsgError
	Message string // MsgError
	Flags   uint8  // MsgInvoke
	Credit  int64  // MsgCredit
}

// ErrBadMessage marks a message that does not follow the protocol.
var ErrBadMessage = errors.New("wire: bad message")

// MaxHeader bounds a header frame; bodies travel in their own frame.
const MaxHeader = 64 << 10

// AppendHeader encodes h. It appends MessagePack by hand: a header is a
// handful of small values on every message, and a generic encoder cost
// more than the rest of a small request's framing.
func AppendHeader(dst []byte, h *Header) ([]byte, error) {
	n := 3
	switch h.Type {
	case MsgInvoke:
		n = 6
		if h.Flags != 0 {
			n = 7
		}
	case MsgError:
		n = 5
	case MsgCredit:
		n = 4
	case MsgInfo, MsgCancel, MsgAck, MsgChunk, MsgChoke, MsgNode:
	default:
		return dst, fmt.Errorf("%w: unknown type %d", ErrBadMessage, h.Type)
	}
	dst = append(dst, 0x90|byte(n), Version, byte(h.Type))
	dst = appendStr(dst, h.ID)
	switch h.Type {
	case MsgInvoke:
		p := h.Policy
		var deadline int64
		if !p.Deadline.IsZero() {
			deadline = p.Deadline.UnixMilli()
		}
		dst = appendStr(dst, h.App)
		dst = appendStr(dst, h.Event)
		dst = append(dst, 0x94)
		if p.Urgent {
			dst = append(dst, 0xc3)
		} else {
			dst = append(dst, 0xc2)
		}
		dst = appendInt(dst, p.Timeout.Milliseconds())
		dst = appendInt(dst, deadline)
		dst = appendInt(dst, int64(p.Retries))
		if n == 7 {
			dst = appendInt(dst, int64(h.Flags))
		}
	case MsgError:
		dst = appendInt(dst, int64(h.Code))
		dst = appendStr(dst, h.Message)
	case MsgCredit:
		dst = appendInt(dst, h.Credit)
	}
	return dst, nil
}

func appendStr(dst []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n < 1<<8:
		dst = append(dst, 0xd9, byte(n))
	case n < 1<<16:
		dst = append(dst, 0xda, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, s...)
}

func appendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0 && v < 128:
		return append(dst, byte(v))
	case v >= 0:
		return append(dst, 0xd3, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	case v >= -32:
		return append(dst, byte(v))
	default:
		return append(dst, 0xd3, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

// DecodeHeader parses a header frame. It reads typed values one by one
// and checks every array's length before anything is allocated: a
// generic decode would trust a length header of four billion elements
// from seven bytes of input and run the node out of memory.
func DecodeHeader(b []byte, h *Header) error {
	*h = Header{}
	if len(b) > MaxHeader {
		return fmt.Errorf("%w: header of %d bytes", ErrBadMessage, len(b))
	}
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	bad := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadMessage, what, err)
		}
		return fmt.Errorf("%w: %s", ErrBadMessage, what)
	}
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 3 || n > 7 {
		return bad(fmt.Sprintf("header must be an array of 3 to 7 elements (got %d)", n), err)
	}
	ver, err := dec.DecodeInt64()
	if err != nil || ver != Version {
		return bad(fmt.Sprintf("version %d, want %d", ver, Version), err)
	}
	t, err := dec.DecodeUint8()
	if err != nil {
		return bad("type", err)
	}
	h.Type = MsgType(t)
	want := 0
	switch h.Type {
	case MsgInvoke:
		want = 6
		if n == 7 { // with flags
			want = 7
		}
	case MsgError:
		want = 5
	case MsgCredit:
		want = 4
	case MsgInfo, MsgCancel, MsgAck, MsgChunk, MsgChoke, MsgNode:
		want = 3
	default:
		return bad(fmt.Sprintf("unknown type %d", t), nil)
	}
	if n != want {
		return bad(fmt.Sprintf("type %d has %d elements, want %d", t, n, want), nil)
	}
	if h.ID, err = dec.DecodeString(); err != nil || h.ID == "" || len(h.ID) > 256 {
		return bad("id must be a string of 1 to 256 bytes", err)
	}
	switch h.Type {
	case MsgInvoke:
		if h.App, err = dec.DecodeString(); err != nil || h.App == "" {
			return bad("app must be a non-empty string", err)
		}
		if h.Event, err = dec.DecodeString(); err != nil || h.Event == "" {
			return bad("event must be a non-empty string", err)
		}
		if pn, err := dec.DecodeArrayLen(); err != nil || pn != 4 {
			return bad("policy must be [urgent, timeout-ms, deadline-ms, retries]", err)
		}
		urgent, err1 := dec.DecodeBool()
		timeout, err2 := dec.DecodeInt64()
		deadline, err3 := dec.DecodeInt64()
		retries, err4 := dec.DecodeInt64()
		// Bounds keep the durations from overflowing: a year of timeout,
		// a deadline before year 9999.
		const year, y9999 = 366 * 24 * 3600 * 1000, 253402300799000
		if err := errors.Join(err1, err2, err3, err4); err != nil || timeout < 0 || timeout > year ||
			deadline < 0 || deadline > y9999 || retries < 0 || retries > 1<<20 {
			return bad("bad policy", err)
		}
		h.Policy = Policy{Urgent: urgent, Timeout: time.Duration(timeout) * time.Millisecond, Retries: int(retries)}
		if deadline > 0 {
			h.Policy.Deadline = time.UnixMilli(deadline)
		}
		if n == 7 {
			flags, err := dec.DecodeUint8()
			if err != nil || flags&^FlagMore != 0 {
				return bad("flags", err)
			}
			h.Flags = flags
		}
	case MsgCredit:
		c, err := dec.DecodeInt64()
		if err != nil || c <= 0 || c > 1<<40 {
			return bad("credit must be a positive byte count", err)
		}
		h.Credit = c
	case MsgError:
		code, err := dec.DecodeInt64()
		if err != nil || code < 0 || code > 1<<20 {
			return bad("error code", err)
		}
		if h.Message, err = dec.DecodeString(); err != nil {
			return bad("error message", err)
		}
		h.Code = Code(code)
	}
	if r.Len() != 0 {
		return bad(fmt.Sprintf("%d trailing bytes", r.Len()), nil)
	}
	return nil
}
