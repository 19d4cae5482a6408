package archive

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fuzzCanary is where the seeds' absolute and escaping entries aim. It must never exist: the
// seeds are built once in the coordinating process but run in every worker, so they cannot aim
// at a per-process temporary directory, and an escape anywhere else would go unnoticed.
var fuzzCanary = filepath.Join(os.TempDir(), "cocaine-archive-fuzz-canary")

// FuzzUnpack checks that no input panics and that, whatever Unpack returns, nothing changed
// outside the target and nothing inside it leads out.
func FuzzUnpack(f *testing.F) {
	if _, err := os.Lstat(fuzzCanary); err == nil {
		f.Fatalf("%s exists; remove it (an earlier run escaped?)", fuzzCanary)
	}
	for _, c := range hostileArchives(f, filepath.Join(fuzzCanary, "bait")) {
		f.Add(c.data)
		// The tar inside too, so that mutations reach tar headers rather than mostly breaking
		// the gzip layer; the fuzz function compresses input that is not gzip.
		if raw, err := gunzip(c.data, 256<<10); err == nil {
			f.Add(raw)
		}
	}
	f.Add(tarball(f, dir("./"), dir("bin/"), exe("bin/app", "#!/bin/sh\n"), file("manifest.json", `{"type":"go"}`),
		symlink("bin/lib", "../lib"), dir("lib/"), hardlink("lib/copy", "manifest.json"), file("manifest.json", "{}")))
	f.Add(tarball(f, dir("sub/"), symlink("sub/up", ".."), symlink("x", "sub/up/sub"), file("y", "y")))

	lim := Limits{MaxBytes: 1 << 20, MaxFiles: 64, MaxFileBytes: 256 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			data = gzipBytes(t, bytes.NewReader(data))
		}
		parent, target := sandbox(t)
		before := outside(t, parent)

		_ = Unpack(bytes.NewReader(data), target, lim)

		if after := outside(t, parent); after != before {
			t.Fatalf("outside the target changed:\n--- before\n%s\n--- after\n%s", before, after)
		}
		if _, err := os.Lstat(fuzzCanary); err == nil {
			t.Fatalf("%s was created outside the target", fuzzCanary)
		}
		assertContained(t, target)

		_, _ = readFile(bytes.NewReader(data), "manifest.json", 1<<16, lim)
	})
}

// gunzip decompresses a seed, refusing the bombs: a seed larger than max would only slow the
// fuzzer down.
func gunzip(data []byte, max int64) ([]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(gz, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > max {
		return nil, errors.New("seed too large")
	}
	return out, nil
}
