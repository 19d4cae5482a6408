package sandbox

import (
	"fmt"
	"os"
)

// runtimeDir is the folder of a language runtime: the configured one (a
// node passes the folder UnpackRuntimes made), or else the runtime this
// binary carries, unpacked under the default cache. One place, so that
// how runtimes are found can change for all of them at once.
func runtimeDir(configured, name string) (string, error) {
	dir := configured
	if dir == "" {
		b := runtimeNamed(name)
		if b == nil {
			return "", fmt.Errorf("runtime %s: not carried by this binary; name its folder in the node's config", name)
		}
		var err error
		if dir, err = b.Unpack(RuntimesDir(defaultCacheDir())); err != nil {
			return "", fmt.Errorf("runtime %s: %w", name, err)
		}
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("runtime %s: %s is not a folder", name, dir)
	}
	return dir, nil
}
