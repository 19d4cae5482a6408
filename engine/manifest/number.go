package manifest

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// maxSeconds bounds every timeout: a day is already far past any useful pool timing, and the
// bound keeps float seconds well inside time.Duration.
const maxSeconds = 24 * 60 * 60

// integer reads a JSON number that must be whole. Numbers too large for int64 are clamped so
// that the caller's bound check reports them as "at most N" rather than as a parse failure.
func (v *validator) integer(path string, n *node) (int64, bool) {
	if n.kind != kindNumber {
		v.add(path, "expected a whole number, got %s", describe(n))
		return 0, false
	}
	s := n.num.String()
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, true
	}
	f, _ := strconv.ParseFloat(s, 64) // ±Inf on overflow, which the clamps below handle
	switch {
	case f != math.Trunc(f) && !math.IsInf(f, 0):
		v.add(path, "expected a whole number, got %s", truncate(s))
		return 0, false
	case f >= math.MaxInt64:
		return math.MaxInt64, true
	case f <= math.MinInt64:
		return math.MinInt64, true
	}
	return int64(f), true
}

// intIn reads a whole number within [lo, hi].
func (v *validator) intIn(path string, n *node, lo, hi int64) (int, bool) {
	i, ok := v.integer(path, n)
	if !ok {
		return 0, false
	}
	return v.bounded(path, i, lo, hi)
}

func (v *validator) bounded(path string, i, lo, hi int64) (int, bool) {
	switch {
	case i < lo && lo == 1:
		v.add(path, "must be greater than 0, got %d", i)
	case i < lo && lo == 0:
		v.add(path, "must not be negative, got %d", i)
	case i < lo:
		v.add(path, "must be at least %d, got %d", lo, i)
	case i > hi:
		v.add(path, "must be at most %d, got %s", hi, clampedString(i))
	default:
		return int(i), true
	}
	return 0, false
}

func clampedString(i int64) string {
	if i == math.MaxInt64 {
		return "a larger number"
	}
	return strconv.FormatInt(i, 10)
}

// float reads any JSON number as a float64.
func (v *validator) float(path string, n *node) (float64, bool) {
	if n.kind != kindNumber {
		v.add(path, "expected a number, got %s", describe(n))
		return 0, false
	}
	f, err := strconv.ParseFloat(n.num.String(), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		v.add(path, "number %s is out of range", truncate(n.num.String()))
		return 0, false
	}
	return f, true
}

// seconds reads a time in seconds, fractions allowed, as 0.9 did.
func (v *validator) seconds(path string, n *node, allowZero bool) (time.Duration, bool) {
	f, ok := v.float(path, n)
	if !ok {
		return 0, false
	}
	switch {
	case f < 0 && allowZero:
		v.add(path, "must not be negative, got %s", n.num)
	case f <= 0 && !allowZero && !underflowed(n.num.String()):
		v.add(path, "must be greater than 0 seconds, got %s", n.num)
	case f > maxSeconds:
		v.add(path, "must be at most %d seconds (1 day), got %s", maxSeconds, truncate(n.num.String()))
	case (f > 0 || underflowed(n.num.String())) && f < 0.001:
		if allowZero {
			v.add(path, "must be 0 or at least 0.001 seconds (1ms), got %s", truncate(n.num.String()))
		} else {
			v.add(path, "must be at least 0.001 seconds (1ms), got %s", truncate(n.num.String()))
		}
	default:
		return time.Duration(math.Round(f * float64(time.Second))), true
	}
	return 0, false
}

// underflowed tells a positive number too small for a float64 ("1e-400", parsed as 0) from a
// real zero, so that it is reported as too small rather than as zero.
func underflowed(num string) bool {
	if strings.HasPrefix(num, "-") {
		return false
	}
	mantissa, _, _ := strings.Cut(strings.ToLower(num), "e")
	return strings.ContainsAny(mantissa, "123456789")
}
