package manifest

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a manifest.
type Problem struct {
	// Path is the JSON path of the offending value, like "engine.pool-limit" or
	// "drivers.tick.interval"; keys that are not plain words are quoted: drivers["a.b"].
	// It is empty for problems with the document as a whole.
	Path string
	// Message says what is wrong and, where it helps, what was expected.
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error lists every problem found in a manifest, sorted by path.
type Error struct {
	Problems []Problem
}

// Error lists the problems one per line, sorted by path.
func (e *Error) Error() string {
	if e == nil || len(e.Problems) == 0 {
		return "invalid manifest"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range sortedProblems(e.Problems) {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func sortedProblems(ps []Problem) []Problem {
	out := append([]Problem(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Message < out[j].Message
	})
	return out
}

// plainKey is a key that can follow a dot in a path without ambiguity.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinPath appends an object key to a path. Keys with dots, spaces or quotes are written
// ["like.this"] so that every path reads back to exactly one value.
func joinPath(parent, key string) string {
	if !plainKey.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// prefixPath puts a path relative to some value under that value's path.
func prefixPath(parent, rel string) string {
	switch {
	case rel == "":
		return parent
	case parent == "":
		return rel
	case strings.HasPrefix(rel, "["):
		return parent + rel
	default:
		return parent + "." + rel
	}
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	return &Error{Problems: sortedProblems(v.problems)}
}
