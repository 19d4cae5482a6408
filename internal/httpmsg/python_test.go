package httpmsg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The Python runtime is the other implementation of the payload: these
// tests run its code (slaves/python/cocaine/http.py) on what this package
// encodes, and decode what it writes. Debian's interpreter is required, not
// whatever python3 comes first on PATH: a pyenv one cannot see
// python3-msgpack.
const python = "/usr/bin/python3"

// pyScript bridges bytes to JSON. Strings cross as PEP 3333 native
// strings, each byte one latin-1 character, so that bytes that are not
// UTF-8 survive both ways.
const pyScript = `
import json, sys
sys.path.insert(0, sys.argv[1])
import msgpack
from cocaine import http

def native(x):
    if isinstance(x, str):
        return x.encode("utf-8", "surrogateescape").decode("latin-1")
    if isinstance(x, bytes):
        return {"bin": x.decode("latin-1")}
    if isinstance(x, dict):
        return {native(k): native(v) for k, v in x.items()}
    if isinstance(x, list):
        return [native(v) for v in x]
    return x

def unnative(x):
    if isinstance(x, str):
        return x.encode("latin-1").decode("utf-8", "surrogateescape")
    if isinstance(x, dict):
        if list(x) == ["bin"]:
            return x["bin"].encode("latin-1")
        return {unnative(k): unnative(v) for k, v in x.items()}
    if isinstance(x, list):
        return [unnative(v) for v in x]
    return x

class Sink:
    def __init__(self):
        self.chunks = [b""]
    def write(self, data):
        self.chunks[-1] += data
    def _end_chunk(self):
        self.chunks.append(b"")

mode = sys.argv[2]
if mode == "read_request":
    # The stream as chunks cut at the given offsets, as a front might send it.
    data = sys.stdin.buffer.read()
    cuts = [0] + [int(c) for c in sys.argv[3:]] + [len(data)]
    chunks = iter([data[a:b] for a, b in zip(cuts, cuts[1:])])
    meta, body = http.read_request(chunks)
    body += b"".join(chunks)
    json.dump({"meta": native(meta), "body": body.decode("latin-1")}, sys.stdout)
elif mode == "unpack":
    packer = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape")
    packer.feed(sys.stdin.buffer.read())
    json.dump(native(packer.unpack()), sys.stdout)
elif mode == "pack":
    value = unnative(json.load(sys.stdin))
    sys.stdout.buffer.write(msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape").pack(value))
elif mode == "write_head":
    # WSGI header strings are native strings: latin-1 stand-ins for bytes.
    head = json.load(sys.stdin)
    sink = Sink()
    http.write_head(sink, head["code"], head["headers"])
    sys.stdout.buffer.write(b"".join(sink.chunks))
    if sink.chunks[-1] != b"" or len(sink.chunks) != 2:
        sys.exit("write_head did not end its chunk")
`

var havePython = sync.OnceValue(func() error {
	if out, err := exec.Command(python, "-c", "import msgpack").CombinedOutput(); err != nil {
		return fmt.Errorf("these tests need %s with msgpack (apt-get install -y python3 python3-msgpack): %v\n%s", python, err, out)
	}
	return nil
})

// runPython runs pyScript in mode with stdin and returns its stdout.
func runPython(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	if err := havePython(); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../../slaves/python")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{"-c", pyScript, root}, args...)...)
	cmd.Env = append(cmd.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// latin1 turns a native string back into its bytes.
func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// toNative is the reverse: each byte one character.
func toNative(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// fromJSON decodes the script's JSON, strings back to their bytes.
func fromJSON(t *testing.T, p []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(p, &v); err != nil {
		t.Fatalf("python's JSON: %v\n%s", err, p)
	}
	var fix func(any) any
	fix = func(v any) any {
		switch v := v.(type) {
		case string:
			return latin1(v)
		case []any:
			for i := range v {
				v[i] = fix(v[i])
			}
		case map[string]any:
			m := map[string]any{}
			for k, e := range v {
				m[latin1(k)] = fix(e)
			}
			return m
		}
		return v
	}
	return fix(v)
}

// metaJSON is how the Python side should see m, in fromJSON's terms.
func metaJSON(m *Meta) map[string]any {
	headers := map[string]any{}
	for k, vs := range m.Headers {
		l := []any{}
		for _, v := range vs {
			l = append(l, v)
		}
		headers[k] = l
	}
	cookies := map[string]any{}
	for k, v := range m.Cookies {
		cookies[k] = v
	}
	return map[string]any{
		"method": m.Method, "url": m.URL, "path": m.Path, "query": m.Query, "host": m.Host,
		"remote_addr": m.RemoteAddr, "secure": m.Secure, "headers": headers, "cookies": cookies,
		"script_name": m.ScriptName, "path_info": m.PathInfo, "protocol": m.Protocol,
	}
}

func TestPythonReadsRequest(t *testing.T) {
	weird := sampleMeta()
	weird.Path, weird.PathInfo, weird.ScriptName = "/\xff\xfe/\x00x", "/\x00x", "/\xff\xfe"
	weird.Headers["X-\xe9"] = []string{"\xc3", "\xed\xa0\x80"} // lone bytes, a UTF-8 surrogate
	weird.Cookies["\xe9"] = "\x80"
	cases := []struct {
		name string
		meta *Meta
		body []byte
		tail string
		cuts func(n int) []int // chunk boundaries in the map
	}{
		{"whole", sampleMeta(), []byte("hello, "), "world", nil},
		{"not UTF-8", weird, []byte{0xff, 0, 0xc3}, "", nil},
		{"no body", &Meta{Method: "GET", Path: "/", PathInfo: "/"}, nil, "tail", nil},
		{"big body", sampleMeta(), bytes.Repeat([]byte{0xab}, 100_000), "", nil},
		{"split map", sampleMeta(), []byte("b"), "t", func(n int) []int { return []int{1, n / 2, n - 1} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustEncode(t, c.meta, c.body)
			var args []string
			if c.cuts != nil {
				for _, cut := range c.cuts(len(p)) {
					args = append(args, strconv.Itoa(cut))
				}
			}
			got := fromJSON(t, runPython(t, append(p, c.tail...), append([]string{"read_request"}, args...)...))
			want := map[string]any{"meta": metaJSON(c.meta), "body": string(c.body) + c.tail}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("python read\n%#v\nwant\n%#v", got, want)
			}
		})
	}
}

// The Python packer's idea of the same request (its own int and length
// encodings, body first) decodes to the same meta.
func TestDecodeRequestFromPython(t *testing.T) {
	m := sampleMeta()
	m.Headers["X-\xe9"] = []string{"\xff"}
	in := map[string]any{"body": map[string]any{"bin": toNative("\x00body\xff")}, "meta": nativeTree(metaJSON(m))}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	p := runPython(t, js, "pack")
	got, body := decodeAll(t, bytes.NewReader(append(p, "+rest"...)))
	if !reflect.DeepEqual(got, m) {
		t.Errorf("meta\n%#v\nwant\n%#v", got, m)
	}
	if string(body) != "\x00body\xff+rest" {
		t.Errorf("body %q", body)
	}
}

// nativeTree turns the strings of v into native strings for the script.
func nativeTree(v any) any {
	switch v := v.(type) {
	case string:
		return toNative(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = nativeTree(v[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[toNative(k)] = nativeTree(e)
		}
		return out
	}
	return v
}

func TestHeadWithPython(t *testing.T) {
	heads := []*Head{
		{Code: 200, Headers: [][2]string{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}}},
		{Code: 404, Headers: [][2]string{}},
		{Code: 301, Headers: [][2]string{{"Location", "/caf\xc3\xa9"}}},
		// Bytes that are not UTF-8 go both ways (PEP 3333 native strings).
		{Code: 599, Headers: [][2]string{{"X-Raw", "\xff\xed\xa0\x80"}}},
	}
	for i, h := range heads {
		t.Run(fmt.Sprint(h.Code), func(t *testing.T) {
			// What the Python runtime writes, DecodeHead reads: the head
			// alone in its chunk.
			pairs := []any{}
			for _, kv := range h.Headers {
				pairs = append(pairs, []any{toNative(kv[0]), toNative(kv[1])})
			}
			{
				js, _ := json.Marshal(map[string]any{"code": h.Code, "headers": pairs})
				p := runPython(t, js, "write_head")
				got, n, err := DecodeHead(p)
				if err != nil {
					t.Fatalf("DecodeHead of python's head % x: %v", p, err)
				}
				if n != len(p) || got.Code != h.Code || len(got.Headers) != len(h.Headers) ||
					len(h.Headers) > 0 && !reflect.DeepEqual(got.Headers, h.Headers) {
					t.Errorf("python's head decodes to %+v (%d of %d bytes), want %+v", got, n, len(p), h)
				}
			}
			// And what EncodeHead writes, Python reads back the same.
			p, err := EncodeHead(nil, h)
			if err != nil {
				t.Fatal(err)
			}
			back := fromJSON(t, runPython(t, p, "unpack"))
			want := map[string]any{"code": float64(h.Code), "headers": []any{}}
			for _, kv := range h.Headers {
				want["headers"] = append(want["headers"].([]any), []any{kv[0], kv[1]})
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("python unpacks %d: %#v, want %#v", i, back, want)
			}
		})
	}
}
