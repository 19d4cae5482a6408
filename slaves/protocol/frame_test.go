package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"
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
		err := Decode(payload, &fr)
		// A Conn reading chunks into buffers of its caller's reads the
		// same frames, and refuses the same.
		var viaConn Frame
		cerr := NewConnAlloc(append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)).Read(&viaConn)
		if (err == nil) != (cerr == nil) || err == nil && !reflect.DeepEqual(normal(fr), normal(viaConn)) {
			t.Fatalf("Decode: %+v, %v; Conn with SetChunkAlloc: %+v, %v", fr, err, viaConn, cerr)
		}
		if err != nil {
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

// NewConnAlloc reads stream with a Conn that puts chunks in buffers of its own.
func NewConnAlloc(stream []byte) *Conn {
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(stream), io.Discard})
	c.SetChunkAlloc(func(n int) []byte { return make([]byte, n, n+7) })
	return c
}

func normal(f Frame) Frame {
	if len(f.Data) == 0 {
		f.Data = nil
	}
	return f
}

// With SetChunkAlloc, chunk data lands in the caller's buffers, which
// later reads leave alone, and frames that are not well-formed chunks read
// and fail as without it.
func TestChunkAlloc(t *testing.T) {
	frames := []Frame{
		{Type: Invoke, Session: 7, Event: "echo"},
		{Type: Chunk, Session: 7, Data: []byte("hello")},
		{Type: Chunk, Session: 1 << 40, Data: bytes.Repeat([]byte{0xfe}, 70000)},
		{Type: Chunk, Session: 7},
		{Type: Choke, Session: 7},
	}
	var stream []byte
	for i := range frames {
		stream, _ = AppendFrame(stream, &frames[i])
	}
	// A chunk whose data is a str (older packers), and one with nil data.
	stream = append(stream, 0, 0, 0, 6, 0x93, 0x05, 0x03, 0xa2, 'h', 'i')
	stream = append(stream, 0, 0, 0, 4, 0x93, 0x05, 0x03, 0xc0)
	frames = append(frames, Frame{Type: Chunk, Session: 3, Data: []byte("hi")}, Frame{Type: Chunk, Session: 3})
	c := NewConnAlloc(stream)
	var got []Frame
	for range frames {
		var f Frame
		if err := c.Read(&f); err != nil {
			t.Fatal(err)
		}
		if f.Type == Chunk && len(f.Data) > 0 && cap(f.Data) != len(f.Data)+7 {
			t.Errorf("chunk of session %d not in an allocated buffer", f.Session)
		}
		got = append(got, normal(f))
	}
	for i := range frames {
		if !reflect.DeepEqual(got[i], normal(frames[i])) {
			t.Errorf("frame %d: got %+v, want %+v", i, got[i], frames[i])
		}
	}
	for name, payload := range map[string][]byte{
		"chunk overrun":  {0x93, 0x05, 0x01, 0xc4, 0x10, 'a'},
		"trailing":       {0x93, 0x05, 0x01, 0xc4, 0x01, 'a', 'b'},
		"chunk int":      {0x93, 0x05, 0x01, 0x05},
		"session string": {0x93, 0x05, 0xa1, 'x', 0xc0},
	} {
		t.Run(name, func(t *testing.T) {
			var f Frame
			err := NewConnAlloc(append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)).Read(&f)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Read = %v, want ErrMalformed", err)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		var f Frame
		good, _ := AppendFrame(nil, &Frame{Type: Chunk, Session: 1, Data: []byte("abcdef")})
		if err := NewConnAlloc(good[:len(good)-2]).Read(&f); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Read = %v, want ErrUnexpectedEOF", err)
		}
		if err := NewConnAlloc(good[:6]).Read(&f); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Read of a cut head = %v, want ErrUnexpectedEOF", err)
		}
	})
}

// gate is a writer that blocks each write until released, recording what
// each write carried.
type gate struct {
	mu      sync.Mutex
	writes  [][]byte
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.writes = append(g.writes, bytes.Clone(p))
	g.mu.Unlock()
	return len(p), nil
}

// Writes that come while one is in progress go out together in the next
// write, each writer's frames whole, and every writer returns only once
// its frames are written.
func TestGroupCommit(t *testing.T) {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{nil, g})
	first := make(chan error, 1)
	go func() { first <- c.Write(&Frame{Type: Heartbeat}) }()
	<-g.entered // the first write is in progress
	const writers = 5
	done := make(chan error, writers)
	for i := range writers {
		go func() {
			done <- c.WriteChunks(uint64(i+1), &Frame{Type: Choke, Session: uint64(i + 1)}, []byte("abc"))
		}()
	}
	// Every follower has queued its frames once the pending stream holds
	// all of them; none may have returned yet.
	one, _ := AppendFrame(nil, &Frame{Type: Chunk, Session: 1, Data: []byte("abc")})
	one, _ = AppendFrame(one, &Frame{Type: Choke, Session: 1})
	each := len(one)
	poll := time.Now().Add(10 * time.Second)
	for {
		c.wmu.Lock()
		n := len(c.pend)
		c.wmu.Unlock()
		if n == writers*each {
			break
		}
		if time.Now().After(poll) {
			t.Fatalf("pending %d bytes", n)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("a writer returned (%v) before its frames were written", err)
	default:
	}
	g.release <- struct{}{} // the first write completes
	<-g.entered             // and its writer sends what gathered, at once
	g.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(g.writes) != 2 {
		t.Fatalf("%d writes, want 2", len(g.writes))
	}
	r := NewConn(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(g.writes[1]), io.Discard})
	seen := map[uint64]int{}
	for range 2 * writers {
		var f Frame
		if err := r.Read(&f); err != nil {
			t.Fatal(err)
		}
		if f.Type == Chunk && seen[f.Session] != 0 || f.Type == Choke && seen[f.Session] != 1 {
			t.Fatalf("session %d: %s out of order", f.Session, f.Type)
		}
		seen[f.Session]++
	}
}
