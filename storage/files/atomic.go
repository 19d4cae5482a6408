package files

import (
	"context"
	"io"
	"os"
	"path/filepath"
)

// writeAtomic replaces dir/name with what fill writes, so that readers see
// the old file or the whole new one. The data goes to a temp file in the
// same directory (rename is only atomic within a filesystem), is fsynced
// before the rename (or a crash could leave the new name pointing at
// unwritten blocks), and the directory is fsynced after it (or a crash could
// forget the rename). If fill fails or ctx ends first, the old file stays
// and the temp file is removed.
func writeAtomic(ctx context.Context, dir, name string, fill func(w io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	// Last chance to honour a cancellation: after the rename the write
	// has happened.
	if err = ctx.Err(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes changes to dir's entries (creations, renames, removals)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ctxReader stops a long copy once ctx is done, so a cancelled upload is not
// committed.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
