package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// maxDepth bounds nesting so that a document of a million '[' costs no more than a flat one.
const maxDepth = 100

type kind int

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

// node is a decoded JSON value that keeps object keys in document order, so that problems are
// found in a stable order and duplicate keys can be seen (encoding/json silently keeps the last).
type node struct {
	kind    kind
	b       bool
	num     json.Number
	str     string
	elems   []*node
	members []member
}

type member struct {
	key string
	val *node
}

func (n *node) kindName() string {
	switch n.kind {
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindArray:
		return "an array"
	case kindObject:
		return "an object"
	default:
		return "null"
	}
}

// value converts a node to the shapes encoding/json produces with UseNumber.
func (n *node) value() any {
	switch n.kind {
	case kindBool:
		return n.b
	case kindNumber:
		return n.num
	case kindString:
		return n.str
	case kindArray:
		out := make([]any, len(n.elems))
		for i, e := range n.elems {
			out[i] = e.value()
		}
		return out
	case kindObject:
		out := make(map[string]any, len(n.members))
		for _, m := range n.members {
			out[m.key] = m.val.value()
		}
		return out
	default:
		return nil
	}
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decode checks the document as a whole and returns its root object, or nil after recording
// why there is none. Problems inside a well-formed document (duplicate keys) are recorded and
// decoding goes on.
func (v *validator) decode(data []byte) *node {
	if len(data) > MaxSize {
		v.add("", "manifest is %d bytes; the limit is %d (1 MiB)", len(data), MaxSize)
		return nil
	}
	// RFC 8259 lets a parser ignore a byte order mark, and editors on some systems add one.
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		v.add("", "manifest is empty; expected a JSON object")
		return nil
	}
	if !utf8.Valid(data) {
		v.add("", "manifest is not valid UTF-8 (first bad byte at offset %d)", firstInvalidUTF8(data))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := v.decodeValue(dec, "", 0)
	if err != nil {
		v.add("", "invalid JSON: %s", describeJSONError(err, dec))
		return nil
	}
	if root.kind != kindObject {
		v.add("", "manifest must be a JSON object, not %s", root.kindName())
		return nil
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		v.add("", "unexpected data after the JSON object at byte %d", end)
		return nil
	}
	return root
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

func describeJSONError(err error, dec *json.Decoder) string {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("document ends early (at byte %d)", dec.InputOffset())
	default:
		return fmt.Sprintf("%s (at byte %d)", err.Error(), dec.InputOffset())
	}
}

var errTooDeep = errors.New("nested deeper than 100 levels")

// decodeValue reads one value. Token validates the grammar (commas, colons, keys as strings),
// so the only structure left to check here is depth and duplicate keys.
func (v *validator) decodeValue(dec *json.Decoder, path string, depth int) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &node{kind: kindNull}, nil
	case bool:
		return &node{kind: kindBool, b: t}, nil
	case json.Number:
		return &node{kind: kindNumber, num: t}, nil
	case string:
		return &node{kind: kindString, str: t}, nil
	case json.Delim:
		if depth >= maxDepth {
			return nil, errTooDeep
		}
		switch t {
		case '{':
			return v.decodeObject(dec, path, depth)
		case '[':
			return v.decodeArray(dec, path, depth)
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func (v *validator) decodeObject(dec *json.Decoder, path string, depth int) (*node, error) {
	n := &node{kind: kindObject}
	seen := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is not a string")
		}
		kp := joinPath(path, key)
		val, err := v.decodeValue(dec, kp, depth+1)
		if err != nil {
			return nil, err
		}
		if i, dup := seen[key]; dup {
			v.add(kp, "duplicate key")
			// Later wins, as with encoding/json, so that checks below see one value.
			n.members[i].val = val
			continue
		}
		seen[key] = len(n.members)
		n.members = append(n.members, member{key: key, val: val})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	return n, nil
}

func (v *validator) decodeArray(dec *json.Decoder, path string, depth int) (*node, error) {
	n := &node{kind: kindArray}
	for dec.More() {
		e, err := v.decodeValue(dec, indexPath(path, len(n.elems)), depth+1)
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, e)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, err
	}
	return n, nil
}
