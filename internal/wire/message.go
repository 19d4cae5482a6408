package wire

import (
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

// DecodeHeader parses a header frame.
func DecodeHeader(b []byte, h *Header) error {
	*h = Header{}
	if len(b) > MaxHeader {
		return fmt.Errorf("%w: header of %d bytes", ErrBadMessage, len(b))
	}
	var v []any
	if err := msgpack.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if len(v) < 3 {
		return fmt.Errorf("%w: %d elements", ErrBadMessage, len(v))
	}
	if ver, ok := asInt(v[0]); !ok || ver != Version {
		return fmt.Errorf("%w: version %v, want %d", ErrBadMessage, v[0], Version)
	}
	t, ok := asInt(v[1])
	if !ok {
		return fmt.Errorf("%w: type %v", ErrBadMessage, v[1])
	}
	h.Type = MsgType(t)
	if h.ID, ok = v[2].(string); !ok || h.ID == "" || len(h.ID) > 256 {
		return fmt.Errorf("%w: id %v", ErrBadMessage, v[2])
	}
	want := map[MsgType]int{MsgInvoke: 6, MsgError: 5, MsgInfo: 3, MsgCancel: 3, MsgAck: 3, MsgChunk: 3, MsgChoke: 3, MsgNode: 3}[h.Type]
	if want == 0 {
		return fmt.Errorf("%w: unknown type %d", ErrBadMessage, t)
	}
	if len(v) != want {
		return fmt.Errorf("%w: type %d has %d elements, want %d", ErrBadMessage, t, len(v), want)
	}
	switch h.Type {
	case MsgInvoke:
		app, ok1 := v[3].(string)
		ev, ok2 := v[4].(string)
		if !ok1 || !ok2 || app == "" || ev == "" {
			return fmt.Errorf("%w: app and event must be non-empty strings", ErrBadMessage)
		}
		h.App, h.Event = app, ev
		p, ok := v[5].([]any)
		if !ok || len(p) != 4 {
			return fmt.Errorf("%w: policy must be [urgent, timeout-ms, deadline-ms, retries]", ErrBadMessage)
		}
		urgent, ok1 := p[0].(bool)
		timeout, ok2 := asInt(p[1])
		deadline, ok3 := asInt(p[2])
		retries, ok4 := asInt(p[3])
		if !ok1 || !ok2 || !ok3 || !ok4 || timeout < 0 || deadline < 0 || retries < 0 {
			return fmt.Errorf("%w: bad policy %v", ErrBadMessage, p)
		}
		h.Policy = Policy{Urgent: urgent, Timeout: time.Duration(timeout) * time.Millisecond, Retries: int(retries)}
		if deadline > 0 {
			h.Policy.Deadline = time.UnixMilli(deadline)
		}
	case MsgError:
		code, ok1 := asInt(v[3])
		msg, ok2 := v[4].(string)
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: error must be [code, message]", ErrBadMessage)
		}
		h.Code, h.Message = Code(code), msg
	}
	return nil
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		if n > 1<<62 {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}
