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
const Version = 1

// MsgType is a dealer ⇄ engine message type.
type MsgType uint8

// Client → engine.
const (
	MsgInvoke MsgType = 1 // [1, 1, id, app, event, policy] + body frame
	MsgInfo   MsgType = 2 // [1, 2, id]: ask for the node's info
	MsgCancel MsgType = 3 // [1, 3, id]: the caller went away
)

// Engine → client.
const (
	MsgAck   MsgType = 10 // [1, 10, id]: queued on the engine
	MsgChunk MsgType = 11 // [1, 11, id] + data frame
	MsgError MsgType = 12 // [1, 12, id, code, message]
	MsgChoke MsgType = 13 // [1, 13, id]: end of the response
	MsgNode  MsgType = 14 // [1, 14, id] + JSON frame: the node's info
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
}

// ErrBadMessage marks a message that does not follow the protocol.
var ErrBadMessage = errors.New("wire: bad message")

// MaxHeader bounds a header frame; bodies travel in their own frame.
const MaxHeader = 64 << 10

// AppendHeader encodes h.
func AppendHeader(dst []byte, h *Header) ([]byte, error) {
	var v []any
	switch h.Type {
	case MsgInvoke:
		p := h.Policy
		var deadline int64
		if !p.Deadline.IsZero() {
			deadline = p.Deadline.UnixMilli()
		}
		v = []any{Version, uint8(h.Type), h.ID, h.App, h.Event, []any{p.Urgent, p.Timeout.Milliseconds(), deadline, p.Retries}}
	case MsgError:
		v = []any{Version, uint8(h.Type), h.ID, int(h.Code), h.Message}
	case MsgInfo, MsgCancel, MsgAck, MsgChunk, MsgChoke, MsgNode:
		v = []any{Version, uint8(h.Type), h.ID}
	default:
		return dst, fmt.Errorf("%w: unknown type %d", ErrBadMessage, h.Type)
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("wire: encode: %w", err)
	}
	return append(dst, b...), nil
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
	if err != nil || n < 3 || n > 6 {
		return bad(fmt.Sprintf("header must be an array of 3 to 6 elements (got %d)", n), err)
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
	want := map[MsgType]int{MsgInvoke: 6, MsgError: 5, MsgInfo: 3, MsgCancel: 3, MsgAck: 3, MsgChunk: 3, MsgChoke: 3, MsgNode: 3}[h.Type]
	if want == 0 {
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
