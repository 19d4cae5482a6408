package manifest

import (
	"fmt"
	"strings"
)

// unknownKey reports a key the section does not have, with the best hint available: what an
// older Cocaine meant by it, the known key it was probably meant to be, or the keys there are.
func (v *validator) unknownKey(path, key string, known []string, legacy map[string]string) {
	if hint, ok := legacy[key]; ok {
		v.add(path, "unknown key: %s", hint)
		return
	}
	if s := suggest(key, known); s != "" {
		v.add(path, "unknown key; did you mean %q?", s)
		return
	}
	quoted := make([]string, len(known))
	for i, k := range known {
		quoted[i] = fmt.Sprintf("%q", k)
	}
	v.add(path, "unknown key; expected one of %s", strings.Join(quoted, ", "))
}

// suggest finds the known key a typo was meant to be: the same key spelled with other case or
// separators (poolLimit, pool_limit), or one within two edits.
func suggest(key string, known []string) string {
	// Long keys are not typos of short ones, and the edit distance is quadratic.
	if len(key) > 64 {
		return ""
	}
	nk := normalizeKey(key)
	best, bestDist := "", 3
	for _, k := range known {
		nc := normalizeKey(k)
		if nk == nc {
			return k
		}
		if len(nk) < 4 {
			continue
		}
		if d := editDistance(nk, nc); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func normalizeKey(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ' ', '.':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
