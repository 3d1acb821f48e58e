package supervisor

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stack-containers/stack/image"
)

// Root filesystems: before anything of the stack starts, every container's
// root comes from the image store (an archive unpacked once), and stays
// marked in use there until the stack's resources are released, so that a
// prune meanwhile keeps it.

// roots is what the stack holds of the image store.
type roots struct {
	mu   sync.Mutex
	uses []*image.InUse
}

func (r *roots) hold(u *image.InUse) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uses = append(r.uses, u)
}

// release ends every use; the store's content stays for prune to judge.
func (r *roots) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.uses {
		u.Release()
	}
	r.uses = nil
}

// resolveRoots finds every container's root filesystem, side by side; the
// first failure names its container.
func (s *Supervisor) resolveRoots(ctx context.Context) error {
	var store *image.Store
	g, _ := errgroup.WithContext(ctx)
	for _, name := range s.graph.names() {
		c := s.ctrs[name]
		c.rootfs = c.def.Rootfs
		if !image.IsArchive(c.def.Rootfs) {
			continue
		}
		// Opened only when needed: a stack of rootfs directories makes
		// no data directory.
		if store == nil {
			var err error
			if store, err = openStore(s.cfg.DataDir, s.cfg.UnpackLimit); err != nil {
				return err
			}
		}
		g.Go(func() error {
			dir, err := store.Archive(c.def.Rootfs)
			if err != nil {
				return fmt.Errorf("container %q: %w", name, err)
			}
			use, err := store.ArchiveInUse(dir)
			if err != nil {
				return fmt.Errorf("container %q: %w", name, err)
			}
			s.roots.hold(use)
			c.rootfs = dir
			return nil
		})
	}
	return g.Wait()
}

func openStore(dataDir string, unpackLimit int64) (*image.Store, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("no data directory for the image store (STACK_DATA_DIR)")
	}
	store, err := image.Open(dataDir)
	if err != nil {
		return nil, err
	}
	if unpackLimit > 0 {
		store.SetUnpackLimit(unpackLimit)
	}
	return store, nil
}
