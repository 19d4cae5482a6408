package engine

import (
	"os"
	"path/filepath"
)

// sweep empties dir, a folder the node owns.
func sweep(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
