package protocol

import (
	"bytes"
	"io"
	"testing"
)

// Benchmarks of one hop each: encoding and decoding a chunk frame, and a
// Conn writing and reading one. Sizes: a small answer (a hello), and the
// 64 KiB a Response buffers before it sends a chunk.
var benchSizes = []struct {
	name string
	n    int
}{{"14B", 14}, {"64KiB", 64 << 10}}

func BenchmarkAppendChunk(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			f := &Frame{Type: Chunk, Session: 12345, Data: bytes.Repeat([]byte{'x'}, sz.n)}
			var buf []byte
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendFrame(buf[:0], f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeChunk(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			enc, _ := AppendFrame(nil, &Frame{Type: Chunk, Session: 12345, Data: bytes.Repeat([]byte{'x'}, sz.n)})
			payload := enc[4:]
			var f Frame
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				if err := Decode(payload, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnWrite writes what a small answer is: a chunk and its choke,
// in one write.
func BenchmarkConnWrite(b *testing.B) {
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{nil, io.Discard})
	chunk := &Frame{Type: Chunk, Session: 7, Data: []byte("Hello, World!\n")}
	choke := &Frame{Type: Choke, Session: 7}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(chunk, choke); err != nil {
			b.Fatal(err)
		}
	}
}

// repeatReader serves the same bytes forever.
type repeatReader struct {
	p   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.p[r.off:])
		n += k
		r.off = (r.off + k) % len(r.p)
	}
	return n, nil
}

// BenchmarkConnRead reads what a small request is: invoke, chunk, choke.
func BenchmarkConnRead(b *testing.B) {
	var stream []byte
	for _, f := range []*Frame{
		{Type: Invoke, Session: 7, Event: "echo"},
		{Type: Chunk, Session: 7, Data: []byte("Hello, World!\n")},
		{Type: Choke, Session: 7},
	} {
		stream, _ = AppendFrame(stream, f)
	}
	c := NewConn(struct {
		io.Reader
		io.Writer
	}{&repeatReader{p: stream}, io.Discard})
	var f Frame
	b.ReportAllocs()
	for b.Loop() {
		for range 3 {
			if err := c.Read(&f); err != nil {
				b.Fatal(err)
			}
		}
	}
}
