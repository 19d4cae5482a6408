package httpmsg

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func FuzzDecodeRequest(f *testing.F) {
	f.Add(mustEncode(f, sampleMeta(), []byte("body")), uint16(3))
	f.Add(mustEncode(f, &Meta{}, nil), uint16(0))
	for _, v := range []any{
		map[string]any{"body": "early", "meta": map[string]any{"headers": []any{[]any{"A", "1"}}}},
		map[string]any{"meta": map[string]any{"headers": map[string]any{"A": "1", "B": []any{nil, []byte("x")}}, "secure": 1}},
		map[string]any{"meta": map[string]any{"x": []any{map[string]any{"y": 1.5}}}, "z": nil},
	} {
		p, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p, uint16(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		// Half the time through the buffered path, the map cut in two reads.
		var r io.Reader = bytes.NewReader(data)
		if split%2 == 1 {
			cut := min(int(split/2), len(data))
			r = &chunkReader{chunks: [][]byte{data[:cut], data[cut:]}}
		}
		m, bodyR, err := DecodeRequest(r)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		body, err := io.ReadAll(bodyR)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("body error not ErrMalformed: %v", err)
			}
			return
		}
		if len(body) > len(data) {
			t.Fatalf("%d bytes of body from %d of input", len(body), len(data))
		}
		p, err := EncodeRequest(nil, m, body)
		if err != nil {
			// Absent fields are written out, so a map at the limit may not fit.
			if errors.Is(err, ErrTooLarge) && len(data) > MaxHeadSize-4096 {
				return
			}
			t.Fatalf("re-encoding %#v: %v", m, err)
		}
		m2, body2 := decodeAll(t, bytes.NewReader(p))
		if !reflect.DeepEqual(m, m2) || !bytes.Equal(body, body2) {
			t.Fatalf("round trip\n%#v\n%q\nbecame\n%#v\n%q", m, body, m2, body2)
		}
	})
}

func FuzzDecodeHead(f *testing.F) {
	for _, h := range []*Head{
		{Code: 200, Headers: [][2]string{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}}},
		{Code: 404},
	} {
		p, err := EncodeHead(nil, h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(p, "body"...))
	}
	// As the Python runtime packs it: code as uint8, an empty list.
	f.Add([]byte("\x82\xa4code\xcc\xc8\xa7headers\x90"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, n, err := DecodeHead(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("consumed %d of %d bytes", n, len(data))
		}
		p, err := EncodeHead(nil, h)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", h, err)
		}
		h2, n2, err := DecodeHead(p)
		if err != nil || n2 != len(p) || !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip %#v became %#v (%d of %d bytes), %v", h, h2, n2, len(p), err)
		}
	})
}
