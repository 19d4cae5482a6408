package archive

import (
	"io/fs"
	"path"
	"strings"
)

// linkReader is the part of *os.Root that resolveEscape needs.
type linkReader interface {
	Lstat(name string) (fs.FileInfo, error)
	Readlink(name string) (string, error)
}

// maxHops matches Linux's MAXSYMLINKS: a chain longer than the kernel follows is a loop or an
// attack, either way not part of a working package.
const maxHops = 40

// resolveEscape follows the symlink at name through the tree as it now stands, the way the
// kernel would, and says why it leaves the tree ("" when it does not).
//
// Checking each target by its letter is not enough: with sub/up -> ".." (the root), the target
// "sub/up/.." reads as "sub" but leads to the root's parent. So the walk replaces every symlink
// it meets by its target. Past a component that does not exist or is not a directory the
// kernel would stop, but the app might create it later, so the rest is still checked by its
// letter.
func resolveEscape(fsys linkReader, name string) string {
	target, err := fsys.Readlink(name)
	if err != nil {
		return "cannot read symlink: " + err.Error()
	}
	stack := splitPath(path.Dir(name))
	pending := splitPath(target)
	if path.IsAbs(target) {
		return "symlink target " + quote(target) + " is absolute"
	}
	hops := 0
	physical := true
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "symlink " + quote(target) + " leads outside the directory"
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		if !physical {
			continue
		}
		cur := strings.Join(stack, "/")
		fi, err := fsys.Lstat(cur)
		switch {
		case err != nil:
			physical = false
		case fi.Mode()&fs.ModeSymlink != 0:
			hops++
			if hops > maxHops {
				return "symlink " + quote(target) + " is a loop or a chain of more than 40 links"
			}
			next, err := fsys.Readlink(cur)
			if err != nil {
				return "cannot read symlink " + quote(cur) + ": " + err.Error()
			}
			if path.IsAbs(next) || checkPathText(next) != "" {
				return "symlink " + quote(target) + " leads through " + quote(cur) + " to " + quote(next)
			}
			stack = stack[:len(stack)-1]
			pending = append(splitPath(next), pending...)
		case !fi.IsDir():
			physical = false
		}
	}
	return ""
}

func splitPath(p string) []string {
	if p == "" || p == "." {
		return nil
	}
	return strings.Split(p, "/")
}
