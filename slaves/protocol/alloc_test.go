//go:build !race

// The race detector drops sync.Pool items on purpose, so these counts hold
// only without it.

package protocol

import (
	"io"
	"testing"
)

// The codec costs no allocation per frame: chunks are most of the traffic,
// and every hop of a request goes through it.
func TestNoAllocsPerFrame(t *testing.T) {
	chunk := &Frame{Type: Chunk, Session: 1 << 33, Data: make([]byte, 100)}
	buf, _ := AppendFrame(nil, chunk)
	if n := testing.AllocsPerRun(100, func() { buf, _ = AppendFrame(buf[:0], chunk) }); n != 0 {
		t.Errorf("AppendFrame: %v allocations a frame, want 0", n)
	}
	var f Frame
	if n := testing.AllocsPerRun(100, func() { _ = Decode(buf[4:], &f) }); n != 0 {
		t.Errorf("Decode: %v allocations a frame, want 0", n)
	}

	var stream []byte
	for _, f := range []*Frame{{Type: Invoke, Session: 7, Event: "echo"}, chunk, {Type: Choke, Session: 7}} {
		stream, _ = AppendFrame(stream, f)
	}
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{&repeatReader{p: stream}, io.Discard})
	if err := c.Read(&f); err != nil || f.Event != "echo" {
		t.Fatalf("Read: %v %+v", err, f)
	}
	read := func() {
		if err := c.Read(&f); err != nil {
			t.Fatal(err)
		}
	}
	read()
	read() // back at the invoke: its event name is known now
	if n := testing.AllocsPerRun(99, read); n != 0 {
		t.Errorf("Conn.Read: %v allocations a frame, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = c.Write(chunk, &Frame{Type: Choke, Session: 7}) }); n != 0 {
		t.Errorf("Conn.Write: %v allocations a write, want 0", n)
	}
}
