package protocol

import (
	"bytes"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	frames := []Frame{
		{Type: Handshake, SlaveID: "0f3c", PID: 4242, Proto: Version},
		{Type: Heartbeat},
		{Type: Terminate, Message: "idle"},
		{Type: Invoke, Session: 7, Event: "echo"},
		{Type: Chunk, Session: 1 << 40, Data: []byte("hello\x00world")},
		{Type: Chunk, Session: 3, Data: bytes.Repeat([]byte{0xff}, 70000)},
		{Type: Error, Session: 9, Code: 502, Message: "handler failed"},
		{Type: Choke, Session: 9},
	}
	var stream []byte
	for i := range frames {
		var err error
		stream, err = AppendFrame(stream, &frames[i])
		if err != nil {
			t.Fatal(err)
		}
	}
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(stream), io.Discard})
	for i, want := range frames {
		var got Frame
		if err := c.Read(&got); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.Type == Chunk {
			got.Data = append([]byte(nil), got.Data...)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, want)
		}
	}
	var f Frame
	if err := c.Read(&f); err != io.EOF {
		t.Fatalf("after last frame: %v, want EOF", err)
	}
}

func TestMalformed(t *testing.T) {
	good, _ := AppendFrame(nil, &Frame{Type: Error, Session: 1, Code: 500, Message: "x"})
	cases := map[string][]byte{
		"not array":      {0x01},
		"unknown type":   {0x92, 0x09, 0x00},
		"zero type":      {0x92, 0x00, 0x00},
		"wrong arity":    {0x93, 0x02, 0x00, 0x00},
		"session string": {0x92, 0x02, 0xa1, 'x'},
		"chunk int":      {0x93, 0x05, 0x01, 0x05},
		"chunk overrun":  {0x93, 0x05, 0x01, 0xc4, 0x10, 'a'},
		"trailing":       append(append([]byte{}, good[4:]...), 0x00),
		"truncated":      good[4 : len(good)-1],
		"empty":          {},
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			var f Frame
			if err := Decode(payload, &f); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestOversizedFrame(t *testing.T) {
	hdr := []byte{0x7f, 0xff, 0xff, 0xff}
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(hdr), io.Discard})
	var f Frame
	if err := c.Read(&f); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read = %v, want ErrTooLarge", err)
	}
	if _, err := AppendFrame(nil, &Frame{Type: Chunk, Data: make([]byte, MaxFrame)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("AppendFrame = %v, want ErrTooLarge", err)
	}
}

func TestTruncatedStream(t *testing.T) {
	good, _ := AppendFrame(nil, &Frame{Type: Chunk, Session: 1, Data: []byte("abcdef")})
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(good[:len(good)-2]), io.Discard})
	var f Frame
	if err := c.Read(&f); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Read = %v, want ErrUnexpectedEOF", err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	w := NewConn(a)
	const writers, each = 8, 50
	done := make(chan struct{})
	for i := 0; i < writers; i++ {
		go func(i int) {
			for j := 0; j < each; j++ {
				_ = w.Write(&Frame{Type: Chunk, Session: uint64(i), Data: bytes.Repeat([]byte{byte(i)}, 1000+j)})
			}
			done <- struct{}{}
		}(i)
	}
	r := NewConn(b)
	for n := 0; n < writers*each; n++ {
		var f Frame
		if err := r.Read(&f); err != nil {
			t.Fatal(err)
		}
		for _, c := range f.Data {
			if c != byte(f.Session) {
				t.Fatalf("interleaved write: session %d holds byte %d", f.Session, c)
			}
		}
	}
	for i := 0; i < writers; i++ {
		<-done
	}
}

func FuzzDecode(f *testing.F) {
	for _, fr := range []Frame{
		{Type: Handshake, SlaveID: "id", PID: 1, Proto: 1},
		{Type: Invoke, Session: 1, Event: "e"},
		{Type: Chunk, Session: 1, Data: []byte("data")},
		{Type: Error, Session: 1, Code: 502, Message: "m"},
		{Type: Choke, Session: 1},
	} {
		b, _ := AppendFrame(nil, &fr)
		f.Add(b[4:])
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var fr Frame
		if err := Decode(payload, &fr); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		// A frame that decodes re-encodes to a frame that decodes the same.
		b, err := AppendFrame(nil, &fr)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again Frame
		if err := Decode(b[4:], &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(fr.Data) == 0 {
			fr.Data = nil
		}
		if len(again.Data) == 0 {
			again.Data = nil
		}
		if !reflect.DeepEqual(fr, again) {
			t.Fatalf("round trip: %+v != %+v", fr, again)
		}
	})
}
