package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	dl := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	for _, h := range []Header{
		{Type: MsgInvoke, ID: "r1", App: "echo", Event: "http", Policy: Policy{Urgent: true, Timeout: 1500 * time.Millisecond, Deadline: dl, Retries: 2}},
		{Type: MsgInvoke, ID: "r2", App: "a", Event: "e"},
		{Type: MsgError, ID: "r3", Code: CodeUnavailable, Message: "queue is full"},
		{Type: MsgAck, ID: "r4"}, {Type: MsgChunk, ID: "r5"}, {Type: MsgChoke, ID: "r6"},
		{Type: MsgInfo, ID: "r7"}, {Type: MsgCancel, ID: "r8"}, {Type: MsgNode, ID: "r9"},
		{Type: MsgInvoke, ID: "r10", App: "a", Event: "e", Flags: FlagMore, Policy: Policy{Timeout: 200 * time.Millisecond}},
		{Type: MsgCredit, ID: "r11", Credit: 1 << 20},
		{Type: MsgError, ID: strings.Repeat("x", 40), Code: CodeDeadline, Message: strings.Repeat("long ", 100)},
		{Type: MsgInvoke, ID: "r12", App: strings.Repeat("a", 300), Event: "e", Policy: Policy{Retries: 1000, Timeout: 366 * 24 * time.Hour}},
	} {
		b, err := AppendHeader(nil, &h)
		if err != nil {
			t.Fatal(err)
		}
		var got Header
		if err := DecodeHeader(b, &got); err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Fatalf("round trip: got %+v, want %+v", got, h)
		}
	}
}

func TestHeaderRejects(t *testing.T) {
	enc := func(v ...any) []byte {
		b, err := msgpackMarshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, b := range map[string][]byte{
		"garbage":       {0xc1},
		"short":         enc(1, 1),
		"version":       enc(2, 1, "id"),
		"unknown type":  enc(1, 99, "id"),
		"empty id":      enc(1, 10, ""),
		"invoke arity":  enc(1, 1, "id", "app"),
		"empty app":     enc(1, 1, "id", "", "e", []any{false, 0, 0, 0}),
		"policy shape":  enc(1, 1, "id", "a", "e", []any{false, 0}),
		"policy types":  enc(1, 1, "id", "a", "e", []any{"yes", 0, 0, 0}),
		"negative time": enc(1, 1, "id", "a", "e", []any{false, -5, 0, 0}),
		"error shape":   enc(1, 12, "id", "x", 1),
	} {
		var h Header
		if err := DecodeHeader(b, &h); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: %v, want ErrBadMessage", name, err)
		}
	}
}

func FuzzDecodeHeader(f *testing.F) {
	for _, h := range []Header{
		{Type: MsgInvoke, ID: "r1", App: "echo", Event: "http", Policy: Policy{Urgent: true, Timeout: time.Second, Retries: 2}},
		{Type: MsgError, ID: "r3", Code: 503, Message: "full"},
		{Type: MsgAck, ID: "r4"},
	} {
		b, _ := AppendHeader(nil, &h)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		if err := DecodeHeader(b, &h); err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error without ErrBadMessage: %v", err)
			}
			return
		}
		out, err := AppendHeader(nil, &h)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", h, err)
		}
		var again Header
		if err := DecodeHeader(out, &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
