package httpmsg

import (
	"errors"
	"fmt"
	"slices"
)

// EncodeRequest appends the first chunk of a request stream to dst: the map
// {meta, body}. body may be nil; more body follows as chunks of its own.
// Map keys go out sorted, so equal metas encode to equal bytes. The body is
// the map's last entry, so a decoder can stream it.
func EncodeRequest(dst []byte, meta *Meta, body []byte) ([]byte, error) {
	if meta == nil {
		return dst, errors.New("httpmsg: EncodeRequest: nil meta")
	}
	if n := countValues(meta.Headers); n > MaxHeaders {
		return dst, fmt.Errorf("%w: %d header values, at most %d", ErrTooLarge, n, MaxHeaders)
	}
	if len(meta.Cookies) > MaxHeaders {
		return dst, fmt.Errorf("%w: %d cookies, at most %d", ErrTooLarge, len(meta.Cookies), MaxHeaders)
	}
	start := len(dst)
	w := writer{b: dst}
	if len(body) > 0 {
		w.mapLen(2)
	} else {
		w.mapLen(1)
	}
	w.str(keyMeta)
	w.mapLen(12)
	for _, f := range [...]struct{ k, v string }{
		{keyMethod, meta.Method}, {keyURL, meta.URL}, {keyPath, meta.Path}, {keyQuery, meta.Query},
		{keyHost, meta.Host}, {keyRemote, meta.RemoteAddr},
		{keyScript, meta.ScriptName}, {keyPathInfo, meta.PathInfo}, {keyProt, meta.Protocol},
	} {
		w.str(f.k)
		w.str(f.v)
	}
	w.str(keySecure)
	if w.err == nil {
		w.b = appendBool(w.b, meta.Secure)
	}
	w.str(keyHeaders)
	w.mapLen(len(meta.Headers))
	for _, name := range sortedKeys(meta.Headers) {
		w.str(name)
		vs := meta.Headers[name]
		w.arrayLen(len(vs))
		for _, v := range vs {
			w.str(v)
		}
	}
	w.str(keyCookies)
	w.mapLen(len(meta.Cookies))
	for _, name := range sortedKeys(meta.Cookies) {
		w.str(name)
		w.str(meta.Cookies[name])
	}
	if len(body) > 0 {
		w.str(keyBody)
	}
	if w.err != nil {
		return dst, fmt.Errorf("httpmsg: EncodeRequest: %w", w.err)
	}
	n := len(w.b) - start
	if len(body) > 0 {
		n += binHeaderSize(len(body)) // the decoder counts it, not the body
	}
	if n > MaxHeadSize {
		return dst, fmt.Errorf("%w: request meta of %d bytes, at most %d", ErrTooLarge, n, MaxHeadSize)
	}
	if len(body) > 0 {
		if w.b, w.err = appendBin(w.b, body); w.err != nil {
			return dst, fmt.Errorf("httpmsg: EncodeRequest: body: %w", w.err)
		}
	}
	return w.b, nil
}

// EncodeHead appends the first chunk of an answer to dst: {code, headers}.
func EncodeHead(dst []byte, h *Head) ([]byte, error) {
	if h == nil {
		return dst, errors.New("httpmsg: EncodeHead: nil head")
	}
	if h.Code < 100 || h.Code > 999 {
		return dst, fmt.Errorf("httpmsg: EncodeHead: invalid status code %d", h.Code)
	}
	if len(h.Headers) > MaxHeaders {
		return dst, fmt.Errorf("%w: %d headers, at most %d", ErrTooLarge, len(h.Headers), MaxHeaders)
	}
	start := len(dst)
	w := writer{b: dst}
	w.mapLen(2)
	w.str(keyCode)
	if w.err == nil {
		w.b = appendInt(w.b, int64(h.Code))
	}
	w.str(keyHeaders)
	w.arrayLen(len(h.Headers))
	for _, kv := range h.Headers {
		w.arrayLen(2)
		w.str(kv[0])
		w.str(kv[1])
	}
	if w.err != nil {
		return dst, fmt.Errorf("httpmsg: EncodeHead: %w", w.err)
	}
	if n := len(w.b) - start; n > MaxHeadSize {
		return dst, fmt.Errorf("%w: answer head of %d bytes, at most %d", ErrTooLarge, n, MaxHeadSize)
	}
	return w.b, nil
}

func binHeaderSize(n int) int {
	switch {
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	}
	return 5
}

func countValues(h map[string][]string) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
