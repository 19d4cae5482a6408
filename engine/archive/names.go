package archive

import (
	"path"
	"strings"
)

// Bounds on names: the kernel refuses longer ones anyway (PATH_MAX, NAME_MAX), and failing
// early names the entry instead of surfacing ENAMETOOLONG from deep inside a write.
const (
	maxNameLen      = 4096
	maxComponentLen = 255
)

// cleanName checks an entry name (or a hard link's target, which tar also gives relative to
// the archive root) and returns it cleaned and slash-separated, "." for the root itself.
// A non-empty reason says why the name is refused.
//
// Names are refused rather than repaired: an archive that says "../x" or "/etc/x" was made by
// something broken or hostile, and quietly unpacking it somewhere else hides that.
func cleanName(raw string) (name, reason string) {
	if reason := checkPathText(raw); reason != "" {
		return "", reason
	}
	if len(raw) > maxNameLen {
		return "", "name is longer than 4096 bytes"
	}
	for _, c := range strings.Split(raw, "/") {
		if c == ".." {
			return "", `path has a ".." component`
		}
		if len(c) > maxComponentLen {
			return "", "a path component is longer than 255 bytes"
		}
	}
	return path.Clean(raw), ""
}

// checkPathText refuses what would mean something else on another system or to another tool:
// absolute paths, Windows drive letters and backslash separators (which a Windows unpacker or
// a later filepath.FromSlash would take as "..\.." or "C:\"), and NUL bytes, which cut the name
// short in C.
func checkPathText(p string) string {
	switch {
	case p == "":
		return "empty path"
	case strings.ContainsRune(p, 0):
		return "path contains a NUL byte"
	case strings.ContainsRune(p, '\\'):
		return "path contains a backslash"
	case strings.HasPrefix(p, "/"):
		return "absolute path"
	case hasDriveLetter(p):
		return "path starts with a Windows drive letter"
	}
	return ""
}

func hasDriveLetter(p string) bool {
	if len(p) < 2 || p[1] != ':' {
		return false
	}
	c := p[0] | 0x20
	return c >= 'a' && c <= 'z'
}

// checkSymlinkTarget checks, by its letter, that a symlink at name pointing at target stays
// inside the tree. Symlinks through other symlinks can still lead out; resolveEscape follows
// them once the tree is complete.
func checkSymlinkTarget(name, target string) string {
	if reason := checkPathText(target); reason != "" {
		return "symlink target: " + reason
	}
	if len(target) > maxNameLen {
		return "symlink target is longer than 4096 bytes"
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return "symlink target " + quote(target) + " leads outside the directory"
	}
	return ""
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
