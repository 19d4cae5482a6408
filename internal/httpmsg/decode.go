package httpmsg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DecodeRequest reads the request map from the start of r and returns the
// meta and the body: the map's body followed by the rest of r. The map may
// arrive split over several reads, and what r yields after it is body; the
// returned reader holds whatever was read ahead, so nothing is lost.
//
// A body that is the map's last entry (as EncodeRequest writes it) is not
// buffered: the returned reader streams it from r.
//
// Absent fields get the payload format's defaults, as the Python runtime
// applies them: method "GET", path "/", protocol "HTTP/1.1", and without
// script_name and path_info, "" and the path.
func DecodeRequest(r io.Reader) (*Meta, io.Reader, error) {
	src, ok := r.(source)
	rest := r
	if !ok {
		br := bufio.NewReaderSize(r, 4096)
		src, rest = br, br
	}
	d := &decoder{r: src, budget: MaxHeadSize, what: "request head"}
	top, err := d.next()
	if err != nil {
		if errors.Is(err, ErrMalformed) && d.budget == MaxHeadSize {
			return nil, nil, fmt.Errorf("%w: HTTP request without its head", ErrMalformed)
		}
		return nil, nil, err
	}
	if top.kind != kMap {
		return nil, nil, d.wrongKind(top, "the request", "map")
	}
	var (
		meta   *Meta
		body   []byte
		stream = -1 // length of a body that ends the map, read from rest
	)
	for i := range top.n {
		k, ok, err := d.key()
		if err == nil && !ok {
			err = d.skipValue()
		}
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			continue
		}
		switch k {
		case keyMeta:
			meta, err = d.meta()
		case keyBody:
			var v value
			if v, err = d.next(); err != nil {
				break
			}
			body, stream = nil, -1
			switch {
			case v.kind == kNil:
			case v.kind != kStr && v.kind != kBin:
				err = d.wrongKind(v, keyBody, "bin")
			case i == top.n-1:
				stream = v.n
			default:
				body, err = d.bytes(v.n)
			}
		default:
			err = d.skipValue()
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if meta == nil {
		return nil, nil, fmt.Errorf("%w: the request has no meta map", ErrMalformed)
	}
	if stream >= 0 {
		rest = io.MultiReader(&exactReader{r: rest, n: stream}, rest)
	}
	if len(body) > 0 {
		rest = io.MultiReader(bytes.NewReader(body), rest)
	}
	return meta, rest, nil
}

func (d *decoder) meta() (*Meta, error) {
	v, err := d.next()
	if err != nil || v.kind == kNil {
		return nil, err
	}
	if v.kind != kMap {
		return nil, d.wrongKind(v, keyMeta, "map")
	}
	m := &Meta{}
	split := false // script_name or path_info present
	for range v.n {
		k, ok, err := d.key()
		if err == nil && !ok {
			err = d.skipValue()
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		switch k {
		case keyMethod:
			m.Method, err = d.textValue(k)
		case keyURL:
			m.URL, err = d.textValue(k)
		case keyPath:
			m.Path, err = d.textValue(k)
		case keyQuery:
			m.Query, err = d.textValue(k)
		case keyHost:
			m.Host, err = d.textValue(k)
		case keyRemote:
			m.RemoteAddr, err = d.textValue(k)
		case keySecure:
			m.Secure, err = d.boolValue(k)
		case keyHeaders:
			m.Headers, err = d.headerMap()
		case keyCookies:
			m.Cookies, err = d.cookies()
		case keyScript:
			m.ScriptName, err = d.textValue(k)
			split = true
		case keyPathInfo:
			m.PathInfo, err = d.textValue(k)
			split = true
		case keyProt:
			m.Protocol, err = d.textValue(k)
		default:
			err = d.skipValue()
		}
		if err != nil {
			return nil, err
		}
	}
	if m.Method == "" {
		m.Method = "GET"
	}
	if m.Path == "" {
		m.Path = "/"
	}
	if m.Protocol == "" {
		m.Protocol = "HTTP/1.1"
	}
	if !split {
		m.PathInfo = m.Path
	}
	return m, nil
}

func (d *decoder) boolValue(field string) (bool, error) {
	v, err := d.next()
	if err != nil {
		return false, err
	}
	switch v.kind {
	case kNil:
		return false, nil
	case kBool:
		return v.b, nil
	case kInt:
		return v.i != 0 || v.big, nil
	}
	return false, d.wrongKind(v, field, "bool")
}

func (d *decoder) tooManyHeaders(what string) error {
	return fmt.Errorf("%w: %w: %s: more than %d", ErrMalformed, ErrTooLarge, what, MaxHeaders)
}

// headerMap reads meta.headers: a map of name to a list of values, as
// documented, or to a single value, or a list of [name, value] pairs, all of
// which the Python runtime accepts too. Names without values are dropped.
func (d *decoder) headerMap() (map[string][]string, error) {
	v, err := d.next()
	if err != nil {
		return nil, err
	}
	h := map[string][]string{}
	count := 0
	add := func(n int) error {
		if count += n; count > MaxHeaders {
			return d.tooManyHeaders("header values")
		}
		return nil
	}
	switch v.kind {
	case kNil:
		return nil, nil
	case kMap:
		for range v.n {
			name, ok, err := d.key()
			if err == nil && !ok {
				err = d.skipValue()
			}
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			vals, err := d.headerValues(name)
			if err == nil {
				err = add(len(vals))
			}
			if err != nil {
				return nil, err
			}
			// Like a dict, a repeated name keeps its last values.
			if len(vals) == 0 {
				delete(h, name)
			} else {
				h[name] = vals
			}
		}
	case kArray:
		for range v.n {
			name, val, ok, err := d.pair("meta.headers")
			if err == nil && ok {
				err = add(1)
			}
			if err != nil {
				return nil, err
			}
			if ok {
				h[name] = append(h[name], val)
			}
		}
	default:
		return nil, d.wrongKind(v, keyHeaders, "map")
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}

func (d *decoder) headerValues(name string) ([]string, error) {
	v, err := d.next()
	if err != nil {
		return nil, err
	}
	switch v.kind {
	case kNil:
		return nil, nil
	case kStr, kBin:
		s, err := d.text(v, "")
		return []string{s}, err
	case kArray:
		if v.n > MaxHeaders {
			return nil, d.tooManyHeaders("header values")
		}
		vals := make([]string, 0, v.n)
		for range v.n {
			e, err := d.next()
			if err != nil {
				return nil, err
			}
			if e.kind == kNil {
				continue
			}
			s, err := d.text(e, "a value of header "+name)
			if err != nil {
				return nil, err
			}
			vals = append(vals, s)
		}
		return vals, nil
	}
	return nil, d.wrongKind(v, "header "+name, "list of str")
}

// pair reads one [name, value] element of a header list. ok is false for an
// element that is not such a pair; it is skipped, as the Python runtime does.
func (d *decoder) pair(field string) (name, val string, ok bool, err error) {
	v, err := d.next()
	if err != nil {
		return "", "", false, err
	}
	if v.kind != kArray || v.n != 2 {
		return "", "", false, d.skip(v)
	}
	if name, err = d.textValue(field + " name"); err == nil {
		val, err = d.textValue(field + " value")
	}
	return name, val, err == nil, err
}

func (d *decoder) cookies() (map[string]string, error) {
	v, err := d.next()
	if err != nil || v.kind == kNil {
		return nil, err
	}
	if v.kind != kMap {
		return nil, d.wrongKind(v, keyCookies, "map")
	}
	if v.n > MaxHeaders {
		return nil, d.tooManyHeaders("cookies")
	}
	c := make(map[string]string, v.n)
	for range v.n {
		name, ok, err := d.key()
		if err == nil && !ok {
			err = d.skipValue()
		}
		if err != nil {
			return nil, err
		}
		if ok {
			if c[name], err = d.textValue("cookie " + name); err != nil {
				return nil, err
			}
		}
	}
	if len(c) == 0 {
		return nil, nil
	}
	return c, nil
}

// DecodeHead parses the head at the start of the first answer chunk and
// returns how many bytes it took. The runtimes send the head alone in its
// chunk; bytes after it are body.
func DecodeHead(p []byte) (*Head, int, error) {
	r := bytes.NewReader(p)
	d := &decoder{r: r, budget: MaxHeadSize, what: "answer head"}
	top, err := d.next()
	if err != nil {
		return nil, 0, err
	}
	if top.kind != kMap {
		return nil, 0, d.wrongKind(top, "the answer head", "map")
	}
	h := &Head{}
	haveCode := false
	for range top.n {
		k, ok, err := d.key()
		if err == nil && !ok {
			err = d.skipValue()
		}
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			continue
		}
		switch k {
		case keyCode:
			var v value
			if v, err = d.next(); err != nil {
				break
			}
			if v.kind != kInt {
				err = d.wrongKind(v, keyCode, "int")
				break
			}
			if v.big || v.i < 100 || v.i > 999 {
				err = fmt.Errorf("%w: answer head: status code %d", ErrMalformed, v.i)
				break
			}
			h.Code, haveCode = int(v.i), true
		case keyHeaders:
			h.Headers, err = d.headList()
		default:
			err = d.skipValue()
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if !haveCode {
		return nil, 0, fmt.Errorf("%w: answer head without a code", ErrMalformed)
	}
	return h, len(p) - r.Len(), nil
}

// headList reads the answer's [[name, value], ...].
func (d *decoder) headList() ([][2]string, error) {
	v, err := d.next()
	if err != nil || v.kind == kNil {
		return nil, err
	}
	if v.kind != kArray {
		return nil, d.wrongKind(v, keyHeaders, "list of [name, value]")
	}
	if v.n > MaxHeaders {
		return nil, d.tooManyHeaders("headers")
	}
	var hs [][2]string
	for range v.n {
		e, err := d.next()
		if err != nil {
			return nil, err
		}
		if e.kind != kArray || e.n != 2 {
			return nil, d.wrongKind(e, "a header", "[name, value]")
		}
		var kv [2]string
		if kv[0], err = d.textValue("header name"); err == nil {
			kv[1], err = d.textValue("header value")
		}
		if err != nil {
			return nil, err
		}
		hs = append(hs, kv)
	}
	return hs, nil
}

// exactReader reads the n bytes of a body that ends the request map, so
// that a stream cut inside it is an error and not a short body.
type exactReader struct {
	r io.Reader
	n int
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if len(p) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= n
	if err == io.EOF {
		err = nil
		if e.n > 0 {
			err = fmt.Errorf("%w: the body in the request map is cut short: %w", ErrMalformed, io.ErrUnexpectedEOF)
		}
	}
	return n, err
}
