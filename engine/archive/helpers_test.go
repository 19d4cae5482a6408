package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// entry describes one tar entry for tests; hostile archives are built from these directly with
// archive/tar, so nothing in the package under test shapes them.
type entry struct {
	name  string
	typ   byte
	body  string
	zeros int64 // file data of this many zero bytes instead of body
	mode  int64
	link  string
	size  int64 // header size when > 0 and no body (a directory that claims data)
	major int64
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func exe(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o755}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// tarball writes entries as a gzip-compressed tar stream.
func tarball(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // test archives are many and large
	if err != nil {
		tb.Fatal(err)
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Devmajor: e.major}
		switch {
		case e.zeros > 0:
			hdr.Size = e.zeros
		case e.body != "":
			hdr.Size = int64(len(e.body))
		default:
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatalf("header %q: %v", e.name, err)
		}
		var data io.Reader = strings.NewReader(e.body)
		if e.zeros > 0 {
			data = io.LimitReader(zeroReader{}, e.zeros)
		} else if e.size > 0 {
			data = io.LimitReader(zeroReader{}, e.size)
		}
		if _, err := io.Copy(tw, data); err != nil {
			tb.Fatalf("body %q: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func gzipBytes(tb testing.TB, data io.Reader) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.CopyBuffer(gz, data, make([]byte, 1<<20)); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox gives a test a parent directory holding a bait file, and the path of a target inside
// it that does not exist yet. The bait is what escaping entries aim at.
func sandbox(tb testing.TB) (parent, target string) {
	tb.Helper()
	parent = tb.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "bait"), []byte("do not touch"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return parent, filepath.Join(parent, "target")
}

// outside fingerprints everything in parent except the target, so a test can show that
// Unpack changed nothing there.
func outside(tb testing.TB, parent string) string {
	tb.Helper()
	var lines []string
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(parent, p)
		if rel == "target" {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d", rel, fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// assertContained checks the target as Unpack left it: only regular files, directories and
// symlinks, modes normalized, and no symlink that resolves outside the target.
func assertContained(tb testing.TB, target string) {
	tb.Helper()
	realTarget, err := filepath.EvalSymlinks(target)
	if err != nil {
		if os.IsNotExist(err) {
			return
		}
		tb.Fatal(err)
	}
	err = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		m := fi.Mode()
		switch {
		case p == target:
		case m.IsDir():
			if m.Perm() != 0o755 || m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				tb.Errorf("%s: directory mode %v", p, m)
			}
		case m.IsRegular():
			if (m.Perm() != 0o644 && m.Perm() != 0o755) || m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				tb.Errorf("%s: file mode %v", p, m)
			}
		case m&fs.ModeSymlink != 0:
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil // dangling or a loop: it reaches nothing now
			}
			if resolved != realTarget && !strings.HasPrefix(resolved, realTarget+string(filepath.Separator)) {
				tb.Errorf("%s: symlink resolves outside the target, to %s", p, resolved)
			}
		default:
			tb.Errorf("%s: special file %v", p, m)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// tree describes a directory as sorted lines: path, kind, mode and content or link target.
func tree(tb testing.TB, root string) string {
	tb.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m.IsDir():
			lines = append(lines, fmt.Sprintf("%s/ dir %o", rel, m.Perm()))
		case m&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%s -> %s", rel, t))
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if len(b) > 64 {
				lines = append(lines, fmt.Sprintf("%s file %o %d bytes sha256:%x", rel, m.Perm(), len(b), sha256.Sum256(b)))
			} else {
				lines = append(lines, fmt.Sprintf("%s file %o %q", rel, m.Perm(), b))
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
