package nats

import (
	"fmt"
	"strconv"
	"strings"
)

// NATS subjects split on '.', and KV keys may only hold [-/_=.A-Za-z0-9],
// while storage names also have ':' and '@' (and '.', which would make a
// name two subject tokens). encode keeps letters, digits, '-' and '_' and
// writes every other byte as '=' and two upper-case hex digits. The result
// is one token, and different names never encode alike, since '=' itself
// is escaped.
func encode(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// decode reverses encode.
func decode(token string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+3 > len(token) {
			return "", fmt.Errorf("nats: bad escape at %d in %q", i, token)
		}
		v, err := strconv.ParseUint(token[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("nats: bad escape at %d in %q", i, token)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// objectKey is an object's key in the KV bucket: namespace and key, each
// one token.
func objectKey(ns, key string) string { return encode(ns) + "." + encode(key) }
