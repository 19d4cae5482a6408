package appstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
)

// CheckPackage makes the Validator engines agree with: the manifest.json
// that Unpack would leave is parsed with parse, and the whole package is
// unpacked once into a scratch folder under scratchDir ("" for the system
// temp folder) within lim, so that a hostile package is refused at upload
// rather than on every node that deploys it. The scratch folder is removed
// before it returns.
func CheckPackage(parse func([]byte) (*manifest.Manifest, error), lim archive.Limits, scratchDir string) Validator {
	return func(pkg []byte) (*manifest.Manifest, error) {
		raw, err := archive.ReadFile(bytes.NewReader(pkg), "manifest.json", manifest.MaxSize)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("package: %w", ErrNoManifest)
		}
		if err != nil {
			return nil, fmt.Errorf("package: %w", err)
		}
		m, err := parse(raw)
		if err != nil {
			return nil, err
		}
		scratch, err := os.MkdirTemp(scratchDir, "cocaine-check-")
		if err != nil {
			return nil, fmt.Errorf("package check: %w", err)
		}
		defer os.RemoveAll(scratch)
		if err := archive.Unpack(bytes.NewReader(pkg), scratch, lim); err != nil {
			return nil, fmt.Errorf("package: %w", err)
		}
		return m, nil
	}
}
