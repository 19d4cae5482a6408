// Package node carries the Node.js runtime inside the binary: its
// JavaScript, and its npm dependencies as the registry's tarballs
// (deps/), which Install puts in node_modules when the node unpacks the
// runtime, as `npm ci` would, with no network. The runtime itself is
// JavaScript: see README.md.
package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Files is the runtime: cocaine_slave.js, lib/, the package files and the
// dependencies' tarballs.
//
//go:embed cocaine_slave.js lib package.json package-lock.json deps
var Files embed.FS

// maxUnpacked bounds what one tarball may unpack to.
const maxUnpacked = 64 << 20

// lockPackage is an entry of package-lock.json's "packages".
type lockPackage struct {
	Version   string `json:"version"`
	Integrity string `json:"integrity"`
	Link      bool   `json:"link"`
}

// Install fills dir/node_modules from dir/deps: every package that
// dir/package-lock.json lists, from the tarball `npm pack` names for it,
// checked against the lock's sha512 integrity. Run `npm pack NAME@VERSION`
// in deps/ after changing the lock; TestNodeRuntimeInstalls says when.
func Install(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("node runtime: %w", err)
	}
	var lock struct {
		Packages map[string]lockPackage `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		return fmt.Errorf("node runtime: package-lock.json: %w", err)
	}
	for key, p := range lock.Packages {
		if key == "" || p.Link {
			continue // the root package; a link to a folder
		}
		i := strings.LastIndex(key, "node_modules/")
		if i < 0 {
			return fmt.Errorf("node runtime: package-lock.json: unexpected package %q", key)
		}
		name := key[i+len("node_modules/"):]
		tarball := TarballName(name, p.Version)
		data, err := os.ReadFile(filepath.Join(dir, "deps", tarball))
		if err != nil {
			return fmt.Errorf("node runtime: %s@%s: %w", name, p.Version, err)
		}
		if err := checkIntegrity(data, p.Integrity); err != nil {
			return fmt.Errorf("node runtime: %s: %w", tarball, err)
		}
		if err := untar(data, filepath.Join(dir, filepath.FromSlash(key))); err != nil {
			return fmt.Errorf("node runtime: %s: %w", tarball, err)
		}
	}
	return nil
}

// TarballName is the file `npm pack` writes for a package: the name
// without its scope's '@', '/' turned to '-', then the version.
func TarballName(name, version string) string {
	return strings.ReplaceAll(strings.TrimPrefix(name, "@"), "/", "-") + "-" + version + ".tgz"
}

func checkIntegrity(data []byte, integrity string) error {
	want, ok := strings.CutPrefix(integrity, "sha512-")
	if !ok {
		return fmt.Errorf("integrity %q is not sha512", integrity)
	}
	sum := sha512.Sum512(data)
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("integrity mismatch: the lock says sha512-%s, the tarball is sha512-%s", want, got)
	}
	return nil
}

// untar unpacks an npm tarball, whose files lie under "package/", into dst.
func untar(data []byte, dst string) error {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue // npm tarballs hold files; folders are implied
		}
		_, rel, ok := strings.Cut(path.Clean(h.Name), "/")
		if !ok || !filepath.IsLocal(rel) {
			return fmt.Errorf("unsafe path %q", h.Name)
		}
		if total += h.Size; total > maxUnpacked {
			return fmt.Errorf("unpacks to more than %d bytes", maxUnpacked)
		}
		out := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, io.LimitReader(tr, h.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}
