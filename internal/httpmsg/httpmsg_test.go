package httpmsg

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vmihailenco/msgpack/v5"
)

func sampleMeta() *Meta {
	return &Meta{
		Method:     "POST",
		URL:        "https://example.com:8443/shop/http/caf%C3%A9/x?q=1&r=%20",
		Path:       "/shop/http/caf%C3%A9/x",
		Query:      "q=1&r=%20",
		Host:       "example.com:8443",
		RemoteAddr: "[2001:db8::1]:51234",
		Secure:     true,
		Headers: map[string][]string{
			"Content-Type": {"text/plain; charset=utf-8"},
			"Accept":       {"text/html", "application/json"},
			"Cookie":       {"a=1", "b=2"},
			"X-Latin":      {"caf\xe9"}, // not UTF-8: the bytes pass as they are
		},
		Cookies:    map[string]string{"a": "1", "b": "2"},
		ScriptName: "/shop/http",
		PathInfo:   "/caf%C3%A9/x",
		Protocol:   "HTTP/1.1",
	}
}

func mustEncode(t testing.TB, m *Meta, body []byte) []byte {
	t.Helper()
	p, err := EncodeRequest(nil, m, body)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeAll(t testing.TB, r io.Reader) (*Meta, []byte) {
	t.Helper()
	m, body, err := DecodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return m, b
}

func TestRequestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	cases := []struct {
		name      string
		meta      *Meta
		body      []byte
		after     string // bytes following the map in the stream
		oneByte   bool   // the stream yields one byte per read
		wantBody  string
		wantFixup func(*Meta)
	}{
		{name: "full", meta: sampleMeta(), body: []byte("hello, "), after: "world", wantBody: "hello, world"},
		{name: "no body", meta: sampleMeta(), wantBody: ""},
		{name: "body only after", meta: sampleMeta(), after: "rest", wantBody: "rest"},
		{name: "one byte reads", meta: sampleMeta(), body: []byte("in map"), after: "+after", oneByte: true, wantBody: "in map+after"},
		{name: "big body in map", meta: sampleMeta(), body: big, after: "!", wantBody: string(big) + "!"},
		{name: "empty meta gets defaults", meta: &Meta{}, wantFixup: func(m *Meta) {
			// script_name and path_info are present (""), so no path_info default.
			m.Method, m.Path, m.Protocol = "GET", "/", "HTTP/1.1"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustEncode(t, c.meta, c.body)
			var r io.Reader = io.MultiReader(bytes.NewReader(p), strings.NewReader(c.after))
			if c.oneByte {
				r = iotest.OneByteReader(r)
			}
			m, body := decodeAll(t, r)
			want := *c.meta
			if c.wantFixup != nil {
				c.wantFixup(&want)
			}
			if !reflect.DeepEqual(m, &want) {
				t.Errorf("meta\n%#v\nwant\n%#v", m, &want)
			}
			if string(body) != c.wantBody {
				t.Errorf("body of %d bytes, want %d", len(body), len(c.wantBody))
			}
		})
	}
}

// The encoder's bytes as a generic MessagePack decoder sees them: the
// documented shape, strings as str, the body as bin.
func TestEncodeRequestShape(t *testing.T) {
	p := mustEncode(t, sampleMeta(), []byte{0, 1, 2})
	dec := msgpack.NewDecoder(bytes.NewReader(p))
	got, err := dec.DecodeInterface()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"meta": map[string]any{
			"method": "POST", "url": "https://example.com:8443/shop/http/caf%C3%A9/x?q=1&r=%20",
			"path": "/shop/http/caf%C3%A9/x", "query": "q=1&r=%20", "host": "example.com:8443",
			"remote_addr": "[2001:db8::1]:51234", "secure": true,
			"headers": map[string]any{
				"Content-Type": []any{"text/plain; charset=utf-8"},
				"Accept":       []any{"text/html", "application/json"},
				"Cookie":       []any{"a=1", "b=2"},
				"X-Latin":      []any{"caf\xe9"},
			},
			"cookies":     map[string]any{"a": "1", "b": "2"},
			"script_name": "/shop/http", "path_info": "/caf%C3%A9/x", "protocol": "HTTP/1.1",
		},
		"body": []byte{0, 1, 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%#v\nwant\n%#v", got, want)
	}
	// The body is bin (0xc4), not str, and it is last, so it can stream.
	if i := bytes.LastIndex(p, []byte("\xa4body\xc4\x03")); i != len(p)-10 {
		t.Errorf("body is not the last entry as bin: % x", p[len(p)-10:])
	}
}

// DecodeRequest must leave everything after the map to the body reader.
// With the map split over reads and followed by body in the same read, the
// body is what followed it, byte for byte.
func TestDecodeRequestReadsNoFurther(t *testing.T) {
	p := mustEncode(t, sampleMeta(), nil)
	for split := 1; split < len(p); split += 7 {
		chunks := [][]byte{p[:split], append(append([]byte(nil), p[split:]...), "abc"...), []byte("def")}
		_, body := decodeAll(t, &chunkReader{chunks: chunks})
		if string(body) != "abcdef" {
			t.Fatalf("split at %d: body %q", split, body)
		}
	}
}

// chunkReader yields one chunk per Read, like slave.Request.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// A body that ends the map is not read by DecodeRequest: it streams.
func TestDecodeRequestStreamsBody(t *testing.T) {
	p := mustEncode(t, sampleMeta(), make([]byte, 50<<20))
	head := p[:len(p)-50<<20] // everything up to the bin payload
	boom := errors.New("stream broke")
	m, body, err := DecodeRequest(io.MultiReader(bytes.NewReader(head), iotest.ErrReader(boom)))
	if err != nil {
		t.Fatalf("DecodeRequest read into the body: %v", err)
	}
	if m.Method != "POST" {
		t.Errorf("meta %+v", m)
	}
	if _, err := io.ReadAll(body); !errors.Is(err, boom) {
		t.Errorf("reading the body: %v, want the stream's error", err)
	}
	// A stream ending inside that body is an error, not a short body.
	_, body, err = DecodeRequest(bytes.NewReader(p[:len(p)-10]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(body); !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrMalformed) {
		t.Errorf("body cut short: %v", err)
	}
}

// Forms the encoder does not produce but the Python runtime accepts.
func TestDecodeRequestVariants(t *testing.T) {
	pack := func(v any) []byte {
		p, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		in   []byte
		want Meta
		body string
	}{
		{"body first, as str", pack(map[string]any{"body": "early", "meta": map[string]any{"method": "PUT"}}),
			Meta{Method: "PUT", Path: "/", PathInfo: "/", Protocol: "HTTP/1.1"}, "early"},
		{"nil fields", pack(map[string]any{"meta": map[string]any{"method": nil, "headers": nil, "cookies": nil, "secure": nil}, "body": nil}),
			Meta{Method: "GET", Path: "/", PathInfo: "/", Protocol: "HTTP/1.1"}, ""},
		{"single header values, bin strings", pack(map[string]any{"meta": map[string]any{
			"path": []byte("/p"), "headers": map[string]any{"A": "1", "B": []any{"2", nil, []byte("3")}, "C": []any{}}}}),
			Meta{Method: "GET", Path: "/p", PathInfo: "/p", Protocol: "HTTP/1.1", Headers: map[string][]string{"A": {"1"}, "B": {"2", "3"}}}, ""},
		{"header pairs", pack(map[string]any{"meta": map[string]any{
			"headers": []any{[]any{"A", "1"}, []any{"A", "2"}, "junk", []any{"x"}}}}),
			Meta{Method: "GET", Path: "/", PathInfo: "/", Protocol: "HTTP/1.1", Headers: map[string][]string{"A": {"1", "2"}}}, ""},
		{"unknown keys and nesting", pack(map[string]any{"x": []any{map[string]any{"y": []any{1.5, true, nil}}}, "meta": map[string]any{
			"future": map[string]any{"a": []any{1, 2}}, "secure": true, "script_name": "/s", "path": "/s/t"}}),
			Meta{Method: "GET", Path: "/s/t", ScriptName: "/s", Secure: true, Protocol: "HTTP/1.1"}, ""},
		{"non-string keys", append([]byte{0x82, 0x01, 0x02, 0xa4}, append([]byte("meta"), 0x81, 0x05, 0xc0)...),
			Meta{Method: "GET", Path: "/", PathInfo: "/", Protocol: "HTTP/1.1"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, body := decodeAll(t, bytes.NewReader(c.in))
			if !reflect.DeepEqual(*m, c.want) {
				t.Errorf("meta\n%#v\nwant\n%#v", *m, c.want)
			}
			if string(body) != c.body {
				t.Errorf("body %q, want %q", body, c.body)
			}
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	pack := func(v any) []byte {
		p, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	manyHeaders := map[string][]string{}
	for i := range MaxHeaders + 1 {
		manyHeaders[strings.Repeat("h", i+1)] = []string{""}
	}
	full := mustEncode(t, sampleMeta(), []byte("body"))
	cases := []struct {
		name     string
		in       []byte
		tooLarge bool
	}{
		{"empty", nil, false},
		{"not a map", pack([]any{1, 2}), false},
		{"no meta", pack(map[string]any{"body": []byte("x")}), false},
		{"nil meta", pack(map[string]any{"meta": nil}), false},
		{"meta not a map", pack(map[string]any{"meta": "GET /"}), false},
		{"method not str", pack(map[string]any{"meta": map[string]any{"method": 1}}), false},
		{"secure not bool", pack(map[string]any{"meta": map[string]any{"secure": "yes"}}), false},
		{"headers not a map", pack(map[string]any{"meta": map[string]any{"headers": 3}}), false},
		{"header value a map", pack(map[string]any{"meta": map[string]any{"headers": map[string]any{"A": map[string]any{}}}}), false},
		{"cookie not str", pack(map[string]any{"meta": map[string]any{"cookies": map[string]any{"a": 1}}}), false},
		{"body not bin", pack(map[string]any{"meta": map[string]any{}, "body": 3}), false},
		{"truncated", full[:len(full)/2], false},
		{"reserved byte", []byte{0x81, 0xa4, 'm', 'e', 't', 'a', 0xc1}, false},
		{"huge map count", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, true},
		{"huge string", append([]byte{0x81, 0xa4, 'm', 'e', 't', 'a', 0x81, 0xa3, 'u', 'r', 'l', 0xdb}, 0x10, 0, 0, 0), true},
		{"too many headers", pack(map[string]any{"meta": map[string]any{"headers": manyHeaders}}), true},
		{"too big", pack(map[string]any{"meta": map[string]any{"x": strings.Repeat("x", MaxHeadSize)}}), true},
		{"deep nesting", append(append([]byte{0x81, 0xa4, 'm', 'e', 't', 'a', 0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, MaxHeadSize)...), 0xc0), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := DecodeRequest(bytes.NewReader(c.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
			if errors.Is(err, ErrTooLarge) != c.tooLarge {
				t.Errorf("error %v: ErrTooLarge %v, want %v", err, !c.tooLarge, c.tooLarge)
			}
		})
	}
	// An error of the stream itself is passed on, not called malformed.
	boom := errors.New("cancelled")
	_, _, err := DecodeRequest(io.MultiReader(bytes.NewReader(full[:10]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Errorf("stream error: %v", err)
	}
}

func TestEncodeRequestLimits(t *testing.T) {
	m := sampleMeta()
	m.Headers = map[string][]string{"X": make([]string, MaxHeaders+1)}
	if _, err := EncodeRequest(nil, m, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many headers: %v", err)
	}
	m = sampleMeta()
	m.URL = strings.Repeat("u", MaxHeadSize)
	if _, err := EncodeRequest(nil, m, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too big: %v", err)
	}
	// The limit is the decoder's, body payload excluded: the largest meta
	// the encoder takes decodes, one byte more is refused.
	m.URL = ""
	base := len(mustEncode(t, m, []byte("b"))) - 1
	m.URL = strings.Repeat("u", MaxHeadSize-base-4) // from fixstr to str32: 4 more header bytes
	p, err := EncodeRequest(nil, m, []byte("b"))
	if err != nil {
		t.Fatalf("largest meta: %v", err)
	}
	if _, _, err := DecodeRequest(bytes.NewReader(p)); err != nil {
		t.Errorf("largest meta does not decode: %v", err)
	}
	m.URL += "u"
	if _, err := EncodeRequest(nil, m, []byte("b")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over: %v", err)
	}
	// And the decoder's side of it: {"meta": {"url": X}} is 16 bytes plus X.
	for x, ok := range map[int]bool{MaxHeadSize - 16: true, MaxHeadSize - 15: false} {
		p, _ := msgpack.Marshal(map[string]any{"meta": map[string]any{"url": strings.Repeat("u", x)}})
		if len(p) != x+16 {
			t.Fatalf("%d bytes, want %d", len(p), x+16)
		}
		if _, _, err := DecodeRequest(bytes.NewReader(p)); (err == nil) != ok || !ok && !errors.Is(err, ErrTooLarge) {
			t.Errorf("map of %d bytes: %v", len(p), err)
		}
	}
	if _, err := EncodeRequest(nil, nil, nil); err == nil {
		t.Error("nil meta encoded")
	}
	// dst is appended to.
	p, _ = EncodeRequest([]byte("prefix"), sampleMeta(), nil)
	if !bytes.HasPrefix(p, []byte("prefix")) {
		t.Error("dst not kept")
	}
}

func TestHeadRoundTrip(t *testing.T) {
	cases := []*Head{
		{Code: 200, Headers: [][2]string{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}}},
		{Code: 404},
		{Code: 999, Headers: [][2]string{{"X-Bytes", "\xff\x00"}}},
		{Code: 100},
	}
	for _, h := range cases {
		p, err := EncodeHead(nil, h)
		if err != nil {
			t.Fatal(err)
		}
		// Body bytes after the head are tolerated and not consumed.
		got, n, err := DecodeHead(append(p, "body"...))
		if err != nil {
			t.Fatal(err)
		}
		if n != len(p) || !reflect.DeepEqual(got, h) {
			t.Errorf("decoded %+v (%d bytes), want %+v (%d bytes)", got, n, h, len(p))
		}
	}
	var generic struct {
		Code    int        `msgpack:"code"`
		Headers [][]string `msgpack:"headers"`
	}
	p, _ := EncodeHead(nil, cases[0])
	if err := msgpack.Unmarshal(p, &generic); err != nil || generic.Code != 200 || len(generic.Headers) != 3 || generic.Headers[2][1] != "b=2" {
		t.Errorf("generic decoder sees %+v, %v", generic, err)
	}
	// An empty list, as Python sends it, and nil decode alike.
	p, _ = msgpack.Marshal(map[string]any{"code": 204, "headers": []any{}})
	if h, _, err := DecodeHead(p); err != nil || h.Code != 204 || len(h.Headers) != 0 {
		t.Errorf("empty headers: %+v, %v", h, err)
	}
}

func TestHeadErrors(t *testing.T) {
	pack := func(v any) []byte {
		p, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, in := range map[string][]byte{
		"empty":          nil,
		"not a map":      pack("200"),
		"no code":        pack(map[string]any{"headers": []any{}}),
		"code not int":   pack(map[string]any{"code": "200"}),
		"code too small": pack(map[string]any{"code": 99}),
		"code too big":   pack(map[string]any{"code": 1000}),
		"code uint64":    pack(map[string]any{"code": uint64(1 << 63)}),
		"headers a map":  pack(map[string]any{"code": 200, "headers": map[string]any{"A": "1"}}),
		"header triple":  pack(map[string]any{"code": 200, "headers": []any{[]any{"A", "1", "2"}}}),
		"header int":     pack(map[string]any{"code": 200, "headers": []any{[]any{"A", 1}}}),
		"truncated":      pack(map[string]any{"code": 200, "headers": []any{[]any{"A", "1"}}})[:12],
		"too many":       append(append([]byte{0x82, 0xa4, 'c', 'o', 'd', 'e', 0xcc, 200, 0xa7}, "headers"...), 0xdc, 0xff, 0xff),
	} {
		if _, _, err := DecodeHead(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed", name, err)
		}
	}
	for _, h := range []*Head{nil, {Code: 99}, {Code: 1000}, {Code: 200, Headers: make([][2]string, MaxHeaders+1)}} {
		if _, err := EncodeHead(nil, h); err == nil {
			t.Errorf("EncodeHead(%+v) succeeded", h)
		}
	}
}

func TestNewMeta(t *testing.T) {
	r := httptest.NewRequest("POST", "http://example.com:8080/shop/http/caf%C3%A9/a%2Fb?x=1&y=%20", strings.NewReader("body"))
	r.RemoteAddr = "192.0.2.7:40000"
	r.Header.Add("Cookie", "a=1; b=2; a=3")
	r.Header.Add("Accept", "text/html")
	r.Header.Add("Accept", "application/json")
	r.Header["x-lower"] = []string{"v"} // as the fastcgi package may leave a name
	r.Header.Set("Host", "spoofed")
	r.Header.Set("X-Forwarded-Proto", "https") // not trusted
	r.ContentLength = 4
	m := NewMeta(r, "/shop/http")
	want := &Meta{
		Method: "POST", URL: "http://example.com:8080/shop/http/caf%C3%A9/a%2Fb?x=1&y=%20",
		Path: "/shop/http/caf%C3%A9/a%2Fb", Query: "x=1&y=%20", Host: "example.com:8080",
		RemoteAddr: "192.0.2.7:40000",
		Headers: map[string][]string{
			"Cookie": {"a=1; b=2; a=3"}, "Accept": {"text/html", "application/json"}, "X-Lower": {"v"},
			"X-Forwarded-Proto": {"https"}, "Content-Length": {"4"},
		},
		Cookies:    map[string]string{"a": "1", "b": "2"},
		ScriptName: "/shop/http", PathInfo: "/caf%C3%A9/a%2Fb", Protocol: "HTTP/1.1",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("meta\n%#v\nwant\n%#v", m, want)
	}

	r = httptest.NewRequest("GET", "https://example.com/other", nil)
	r.TLS = &tls.ConnectionState{}
	r.Proto = "HTTP/2.0"
	m = NewMeta(r, "/shop")
	if !m.Secure || m.URL != "https://example.com/other" || m.ScriptName != "" || m.PathInfo != "/other" ||
		m.Protocol != "HTTP/2.0" || len(m.Cookies) != 0 || m.Query != "" {
		t.Errorf("meta %+v", m)
	}
	if m.ScriptName+m.PathInfo != m.Path {
		t.Errorf("script_name + path_info != path")
	}
	// What NewMeta makes, the decoder takes back unchanged.
	got, _ := decodeAll(t, bytes.NewReader(mustEncode(t, m, nil)))
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip\n%#v\nwant\n%#v", got, m)
	}
}
