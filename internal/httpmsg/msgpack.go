package httpmsg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The few MessagePack forms the payload uses, written and read by hand: the
// decoder must stream (the map is followed by body in the same stream, and
// a body that ends the map is not buffered), count what it reads against
// MaxHeadSize, and skip unknown values without recursion, none of which the
// generic decoder offers.

func appendLen(b []byte, n int, fix, fixMax byte, c8, c16, c32 byte) ([]byte, error) {
	switch {
	case n <= int(fixMax) && fix != 0:
		return append(b, fix|byte(n)), nil
	case n <= math.MaxUint8 && c8 != 0:
		return append(b, c8, byte(n)), nil
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n)), nil
	case uint64(n) <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, c32), uint32(n)), nil
	}
	return b, fmt.Errorf("%w: %d elements or bytes in one value", ErrTooLarge, n)
}

func appendStr(b []byte, s string) ([]byte, error) {
	b, err := appendLen(b, len(s), 0xa0, 31, 0xd9, 0xda, 0xdb)
	return append(b, s...), err
}

func appendBin(b []byte, p []byte) ([]byte, error) {
	b, err := appendLen(b, len(p), 0, 0, 0xc4, 0xc5, 0xc6)
	return append(b, p...), err
}

func appendMapLen(b []byte, n int) ([]byte, error) {
	return appendLen(b, n, 0x80, 15, 0, 0xde, 0xdf)
}

func appendArrayLen(b []byte, n int) ([]byte, error) {
	return appendLen(b, n, 0x90, 15, 0, 0xdc, 0xdd)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= 0x7f:
		return append(b, byte(v))
	case v >= -32 && v < 0:
		return append(b, byte(v))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

// writer appends values, keeping the first error.
type writer struct {
	b   []byte
	err error
}

func (w *writer) str(s string) {
	if w.err == nil {
		w.b, w.err = appendStr(w.b, s)
	}
}

func (w *writer) mapLen(n int) {
	if w.err == nil {
		w.b, w.err = appendMapLen(w.b, n)
	}
}

func (w *writer) arrayLen(n int) {
	if w.err == nil {
		w.b, w.err = appendArrayLen(w.b, n)
	}
}

type kind uint8

const (
	kNil kind = iota
	kBool
	kInt
	kFloat
	kStr
	kBin
	kArray
	kMap
	kExt
)

var kindNames = [...]string{"nil", "bool", "int", "float", "str", "bin", "array", "map", "ext"}

func (k kind) String() string { return kindNames[k] }

// value is the header of one MessagePack value: its kind, and its length
// (str, bin, ext: bytes; array: elements; map: pairs) or its scalar value.
type value struct {
	kind kind
	n    int   // length; for ext, the payload after the type byte
	i    int64 // int value
	big  bool  // int above MaxInt64
	b    bool  // bool value
}

// source is what the decoder reads: a bufio.Reader over a stream, or a
// bytes.Reader over one chunk.
type source interface {
	io.Reader
	io.ByteReader
}

// decoder reads MessagePack values, charging every byte to budget.
type decoder struct {
	r      source
	budget int
	what   string // "request head" or "answer head", for messages
}

func (d *decoder) tooLarge() error {
	return fmt.Errorf("%w: %w: %s over %d bytes", ErrMalformed, ErrTooLarge, d.what, MaxHeadSize)
}

func (d *decoder) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated %s: %w", ErrMalformed, d.what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("httpmsg: reading the %s: %w", d.what, err)
}

func (d *decoder) byte() (byte, error) {
	if d.budget <= 0 {
		return 0, d.tooLarge()
	}
	c, err := d.r.ReadByte()
	if err != nil {
		return 0, d.readErr(err)
	}
	d.budget--
	return c, nil
}

// bytes reads n bytes; the budget check comes first, so a declared length
// never allocates more than the budget.
func (d *decoder) bytes(n int) ([]byte, error) {
	if n > d.budget {
		return nil, d.tooLarge()
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(d.r, p); err != nil {
		return nil, d.readErr(err)
	}
	d.budget -= n
	return p, nil
}

func (d *decoder) discard(n int) error {
	if n > d.budget {
		return d.tooLarge()
	}
	if _, err := io.CopyN(io.Discard, d.r, int64(n)); err != nil {
		return d.readErr(err)
	}
	d.budget -= n
	return nil
}

func (d *decoder) uint(size int) (uint64, error) {
	var v uint64
	for range size {
		c, err := d.byte()
		if err != nil {
			return 0, err
		}
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// length reads a big-endian length of size bytes. Counts of arrays and maps
// are checked against the budget at once (each element takes a byte at
// least); byte lengths are checked when read, since a body may stream past
// the budget.
func (d *decoder) length(size int, count bool) (int, error) {
	v, err := d.uint(size)
	if err != nil {
		return 0, err
	}
	if count && v > uint64(d.budget) || v > math.MaxInt {
		return 0, d.tooLarge()
	}
	return int(v), nil
}

// next reads the header of the next value; the payload of str, bin and ext
// is left to read.
func (d *decoder) next() (value, error) {
	c, err := d.byte()
	if err != nil {
		return value{}, err
	}
	switch {
	case c <= 0x7f:
		return value{kind: kInt, i: int64(c)}, nil
	case c >= 0xe0:
		return value{kind: kInt, i: int64(int8(c))}, nil
	case c <= 0x8f:
		return value{kind: kMap, n: int(c & 0x0f)}, nil
	case c <= 0x9f:
		return value{kind: kArray, n: int(c & 0x0f)}, nil
	case c <= 0xbf:
		return value{kind: kStr, n: int(c & 0x1f)}, nil
	}
	var v value
	switch c {
	case 0xc0:
		return value{kind: kNil}, nil
	case 0xc2, 0xc3:
		return value{kind: kBool, b: c == 0xc3}, nil
	case 0xc4, 0xc5, 0xc6:
		v.kind = kBin
		v.n, err = d.length(1<<(c-0xc4), false)
	case 0xc7, 0xc8, 0xc9:
		v.kind = kExt
		if v.n, err = d.length(1<<(c-0xc7), false); err == nil {
			_, err = d.byte() // the ext type
		}
	case 0xca:
		v.kind, v.n = kFloat, 4
	case 0xcb:
		v.kind, v.n = kFloat, 8
	case 0xcc, 0xcd, 0xce, 0xcf:
		var u uint64
		u, err = d.uint(1 << (c - 0xcc))
		v.kind, v.i, v.big = kInt, int64(u), u > math.MaxInt64
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		var u uint64
		u, err = d.uint(size)
		shift := 64 - 8*size // sign-extend
		v.kind, v.i = kInt, int64(u<<shift)>>shift
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		v.kind, v.n = kExt, 1<<(c-0xd4)
		_, err = d.byte()
	case 0xd9, 0xda, 0xdb:
		v.kind = kStr
		v.n, err = d.length(1<<(c-0xd9), false)
	case 0xdc, 0xdd:
		v.kind = kArray
		v.n, err = d.length(2<<(c-0xdc), true)
	case 0xde, 0xdf:
		v.kind = kMap
		v.n, err = d.length(2<<(c-0xde), true)
	default: // 0xc1, never used
		return value{}, fmt.Errorf("%w: %s: invalid MessagePack byte 0x%02x", ErrMalformed, d.what, c)
	}
	return v, err
}

// skipPayload skips what follows v's header, for scalars and byte strings.
func (d *decoder) skipPayload(v value) error {
	switch v.kind {
	case kStr, kBin, kExt, kFloat:
		return d.discard(v.n)
	}
	return nil
}

// skip skips the value whose header is v, nested values included. It counts
// the values still to skip instead of recursing, so nesting depth costs
// nothing; every value costs a byte of budget, so it ends.
func (d *decoder) skip(v value) error {
	pending := 0
	for {
		switch v.kind {
		case kArray:
			pending += v.n
		case kMap:
			pending += 2 * v.n
		default:
			if err := d.skipPayload(v); err != nil {
				return err
			}
		}
		if pending == 0 {
			return nil
		}
		pending--
		var err error
		if v, err = d.next(); err != nil {
			return err
		}
	}
}

// text reads a str or bin payload as a string: the runtimes differ in which
// they send for bytes that are not UTF-8.
func (d *decoder) text(v value, field string) (string, error) {
	switch v.kind {
	case kNil:
		return "", nil
	case kStr, kBin:
		p, err := d.bytes(v.n)
		return string(p), err
	}
	return "", d.wrongKind(v, field, "str")
}

// textValue reads a whole value as text.
func (d *decoder) textValue(field string) (string, error) {
	v, err := d.next()
	if err != nil {
		return "", err
	}
	return d.text(v, field)
}

func (d *decoder) wrongKind(v value, field, want string) error {
	return fmt.Errorf("%w: %s: %s is %s, want %s", ErrMalformed, d.what, field, v.kind, want)
}

// key reads a map key. ok is false for a key that is not a string, which
// the caller skips with its value, as a Python dict lookup would ignore it.
func (d *decoder) key() (k string, ok bool, err error) {
	v, err := d.next()
	if err != nil {
		return "", false, err
	}
	if v.kind != kStr && v.kind != kBin {
		return "", false, d.skip(v)
	}
	k, err = d.text(v, "key")
	return k, err == nil, err
}

// skipValue skips the next value.
func (d *decoder) skipValue() error {
	v, err := d.next()
	if err != nil {
		return err
	}
	return d.skip(v)
}
