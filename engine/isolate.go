package engine

import (
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cocaine-cloud/cocaine/slaves/sandbox"
)

// uidRange is how many uids (from Sandbox.UIDBase) apps are spread over.
const uidRange = 1 << 16

// isolation keeps apps apart from the platform and from each other when
// the engine runs as root: each app's slaves run as a uid of their own,
// its package folder is that uid's alone, and the data directory lets
// them reach only their package and their socket (docs/operations.md).
type isolation struct {
	on   bool
	base int

	mu   sync.Mutex
	uids map[string]int // app → uid
	used map[int]string // uid → app
}

// newIsolation decides whether slaves can be isolated and, if so, closes
// the data directory to them.
func newIsolation(cfg *Config, log *slog.Logger) *isolation {
	iso := &isolation{base: cfg.Sandbox.UIDBase, uids: map[string]int{}, used: map[int]string{}}
	if cfg.Sandbox.Isolate == "off" {
		return iso
	}
	if os.Geteuid() != 0 {
		log.Info("slaves run as the engine's user: isolating apps needs root")
		return iso
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err == nil {
		err = reachable(filepath.Dir(abs))
	}
	if err == nil {
		// Search but not list: a slave reaches its own package and
		// socket by name and sees nothing else. Storage and the token
		// keep their own modes (0700, 0600).
		for _, d := range []string{abs, cfg.RunDir(), cfg.SpoolDir(), cfg.CacheDir()} {
			if err = os.Chmod(d, 0o711); err != nil {
				break
			}
		}
	}
	if err != nil {
		log.Warn("slaves run as root, NOT isolated from the platform and each other", "err", err)
		return iso
	}
	iso.on = true
	return iso
}

// reachable checks that every folder from dir up is searchable by others,
// as the path to a slave's package must be.
func reachable(dir string) error {
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (chmod o+x it or move the data directory)", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// user returns the uid and gid app's slaves run as, nil when not isolated.
// An app keeps its uid while the node runs; two apps never share one.
func (iso *isolation) user(app string) *sandbox.User {
	if !iso.on {
		return nil
	}
	iso.mu.Lock()
	defer iso.mu.Unlock()
	uid, ok := iso.uids[app]
	if !ok {
		h := fnv.New32a()
		h.Write([]byte(app))
		off := int(h.Sum32() % uidRange)
		for {
			uid = iso.base + off
			if _, taken := iso.used[uid]; !taken {
				break
			}
			off = (off + 1) % uidRange
		}
		iso.uids[app], iso.used[uid] = uid, app
	}
	return &sandbox.User{UID: uid, GID: uid}
}

// give makes dir (an unpacked package) u's alone.
func give(dir string, u *sandbox.User) error {
	if u == nil {
		return nil
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.UID, u.GID)
	})
	if err == nil {
		err = os.Chmod(dir, 0o700)
	}
	if err != nil {
		return fmt.Errorf("give %s to uid %d: %w", dir, u.UID, err)
	}
	return nil
}
