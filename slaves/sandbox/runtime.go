package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
)

// runtimeDir is the folder of a language runtime that lives in this
// project's slaves/ (slaves/c, slaves/node, slaves/perl): the configured
// one, or slaves/NAME of the checkout found as the Go sandbox finds its
// framework. One place, so that how runtimes are found can change for all
// of them at once.
func runtimeDir(configured, name string) (string, error) {
	dir := configured
	if dir == "" {
		fw, err := findFramework()
		if err != nil {
			return "", fmt.Errorf("runtime %s: %w", name, err)
		}
		dir = filepath.Join(fw, "slaves", name)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("runtime %s: %s is not a folder", name, dir)
	}
	return dir, nil
}
