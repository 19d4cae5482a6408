// Package bundle carries the files a sandbox needs beside an app (a
// language runtime, the Go SDK) inside the cocaine binary and unpacks them
// on a node, one folder per content hash. A node started from an installed
// binary thereby finds its runtimes without a checkout of this project, and
// a newer binary brings, and uses, its own copy.
package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Bundle is one tree of files carried in the binary, usually an embed.FS.
type Bundle struct {
	// Name keys the bundle in a table and prefixes its folder ("python").
	Name string
	// Version is what `cocaine version` shows beside the hash, such as the
	// versions of the modules inside. Optional.
	Version string
	// FS is the tree to unpack.
	FS fs.FS
	// Keep says whether a file of FS is unpacked (and hashed); nil keeps
	// every file. It drops what lives beside the sources but is not part of
	// the runtime, such as tests.
	Keep func(path string) bool
	// Finish writes files derived from FS into the folder before it is
	// published (a go.mod, a go.sum). What it writes must depend on FS
	// alone, since the hash covers FS only. Optional.
	Finish func(dir string) error

	once sync.Once
	hash string
	err  error
}

// hashLen is how many hex digits of the hash name the folder: 64 bits is
// plenty to tell versions of one bundle apart.
const hashLen = 16

// Hash is the SHA-256 of the kept files' paths, modes and contents, in hex.
// It is computed once.
func (b *Bundle) Hash() (string, error) {
	b.once.Do(func() { b.hash, b.err = b.computeHash() })
	return b.hash, b.err
}

func (b *Bundle) computeHash() (string, error) {
	files, err := b.files()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "cocaine bundle v1 %s\n", b.Name)
	for _, p := range files {
		data, err := fs.ReadFile(b.FS, p)
		if err != nil {
			return "", fmt.Errorf("bundle %s: %w", b.Name, err)
		}
		fmt.Fprintf(h, "%s %d\n", p, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// files lists the kept regular files, sorted.
func (b *Bundle) files() ([]string, error) {
	if b.FS == nil {
		return nil, fmt.Errorf("bundle %s: no files", b.Name)
	}
	var out []string
	err := fs.WalkDir(b.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && (b.Keep == nil || b.Keep(p)) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bundle %s: no files", b.Name)
	}
	sort.Strings(out)
	return out, nil
}

// Dir is the folder under root the bundle unpacks to: NAME-HASH.
func (b *Bundle) Dir(root string) (string, error) {
	h, err := b.Hash()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, b.Name+"-"+h[:hashLen]), nil
}

// Unpack makes sure the bundle is unpacked under root and returns its
// folder. A folder already there is used as it is: it was published
// complete, by a rename. Otherwise the files go to a temporary folder
// beside it that is then renamed into place, so that a reader never sees
// half a bundle and two nodes unpacking at once both end with the one
// complete copy (the loser of the rename removes its own). Other versions
// stay: see Prune.
func (b *Bundle) Unpack(root string) (string, error) {
	dir, err := b.Dir(root)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+b.Name+"-")
	if err != nil {
		return "", fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	if err := b.write(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it 0700
		os.RemoveAll(tmp)
		return "", fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		// Another process published the same content first.
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			return dir, nil
		}
		return "", fmt.Errorf("bundle %s: publish: %w", b.Name, err)
	}
	return dir, nil
}

func (b *Bundle) write(dir string) error {
	files, err := b.files()
	if err != nil {
		return err
	}
	for _, p := range files {
		if err := copyFile(b.FS, p, filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return fmt.Errorf("bundle %s: %w", b.Name, err)
		}
	}
	if b.Finish != nil {
		if err := b.Finish(dir); err != nil {
			return fmt.Errorf("bundle %s: %w", b.Name, err)
		}
	}
	return nil
}

func copyFile(fsys fs.FS, name, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	src, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer src.Close()
	mode := fs.FileMode(0o644)
	if st, err := src.Stat(); err == nil && st.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Prune removes the versions of the bundle under root other than this
// binary's, and the temporary folders of unpacks that crashed (old enough
// not to be another unpack in progress). Only the owner of root may call
// it, such as a node in its own data folder: in a folder that processes of
// several builds share (the system's temporary folder), one would remove
// a copy another still runs. Failures only leave clutter.
func (b *Bundle) Prune(root string) {
	keep, err := b.Dir(root)
	if err != nil {
		return
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(root, name)
		if p == keep || !e.IsDir() {
			continue
		}
		if rest, ok := strings.CutPrefix(name, b.Name+"-"); ok && isHex(rest) && len(rest) == hashLen {
			os.RemoveAll(p)
		}
		if strings.HasPrefix(name, ".tmp-"+b.Name+"-") {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
				os.RemoveAll(p)
			}
		}
	}
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return s != ""
}

// staleTemp is the age past which a temporary folder is a crashed unpack's.
const staleTemp = time.Hour

// NotTests keeps everything but Go test files: they would drag test-only
// dependencies into the bundle's hash for nothing.
func NotTests(p string) bool { return !strings.HasSuffix(path.Base(p), "_test.go") }
