package manifest

import (
	"errors"
	"math"
	"math/bits"
	"strings"
)

// sizeUnits maps a lower-cased unit to its multiplier. The bare letters are binary because
// that is what docker, ulimit and most config files mean by "64k" or "1g" for memory.
var sizeUnits = map[string]uint64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kib": 1 << 10,
	"kb":  1e3,
	"m":   1 << 20,
	"mib": 1 << 20,
	"mb":  1e6,
	"g":   1 << 30,
	"gib": 1 << 30,
	"gb":  1e9,
	"t":   1 << 40,
	"tib": 1 << 40,
	"tb":  1e12,
	"p":   1 << 50,
	"pib": 1 << 50,
	"pb":  1e15,
}

var (
	errSizeSyntax = errors.New(`expected a size like "256MiB", "1GiB", "512MB" or "64k"`)
	errSizeUnit   = errors.New("unknown unit; use B, k, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB, TB, P, PiB or PB")
	errSizeRange  = errors.New("size is too large")
	errSizeSmall  = errors.New("size is less than one byte")
)

// parseSize reads "256MiB", "1.5 GiB", "512MB", "64k" or "1048576" as a number of bytes.
// Integer arithmetic keeps "1.1GiB" exact rather than off by float rounding.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[:i]
	var fracPart string
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		fracPart = s[i+1 : j]
		i = j
	}
	if intPart == "" && fracPart == "" {
		return 0, errSizeSyntax
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		if strings.TrimSpace(s[i:]) != "" && !strings.ContainsAny(s[i:], "0123456789.") {
			return 0, errSizeUnit
		}
		return 0, errSizeSyntax
	}

	var whole uint64
	for _, c := range intPart {
		hi, lo := bits.Mul64(whole, 10)
		if hi != 0 || lo > math.MaxUint64-uint64(c-'0') {
			return 0, errSizeRange
		}
		whole = lo + uint64(c-'0')
	}
	hi, total := bits.Mul64(whole, mult)
	if hi != 0 {
		return 0, errSizeRange
	}

	// The fraction adds frac*mult/10^len(frac) bytes. Eighteen digits keep 10^len within 64
	// bits and are more precision than any multiplier here (at most 2^50) can show.
	fracPart = strings.TrimRight(fracPart, "0")
	if len(fracPart) > 18 {
		fracPart = fracPart[:18]
	}
	if fracPart != "" {
		var frac, denom uint64 = 0, 1
		for _, c := range fracPart {
			frac = frac*10 + uint64(c-'0')
			denom *= 10
		}
		// frac*mult can exceed 64 bits, so divide the 128-bit product; frac < denom keeps the
		// quotient below mult, which is Div64's precondition.
		hi, lo := bits.Mul64(frac, mult)
		q, _ := bits.Div64(hi, lo, denom)
		if total > math.MaxUint64-q {
			return 0, errSizeRange
		}
		total += q
	}
	if total > math.MaxInt64 {
		return 0, errSizeRange
	}
	if total == 0 && (strings.Trim(intPart, "0") != "" || fracPart != "") {
		return 0, errSizeSmall
	}
	return int64(total), nil
}

// ParseSize reads a size as the manifest's resource-limits do ("4GiB",
// "512MB", "64k", "1048576"), for configs that take one.
func ParseSize(s string) (int64, error) { return parseSize(s) }
