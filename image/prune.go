package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Pruned is what Prune removed.
type Pruned struct {
	Images   []string // the references whose records went
	Layers   int
	Archives int
}

// Prune removes every image and unpacked archive that no container uses
// (see Use and ArchiveInUse) and that keep does not name (image IDs, and
// archive directories as Archive returns them), then every layer and blob
// that no image left needs, and whatever killed pulls left in tmp/. It
// waits for the pulls under way to end, and pulls wait for it.
func (s *Store) Prune(keep map[string]bool) (Pruned, error) {
	var out Pruned
	held, err := s.lockFile(storeLock, unix.LOCK_EX)
	if err != nil {
		return out, err
	}
	defer held.release()
	recs, err := s.Records()
	if err != nil {
		return out, err
	}
	needed := map[string]bool{}
	for _, rec := range recs {
		if keep[rec.ID] || s.inUse("use-"+strings.TrimPrefix(rec.ID, "sha256:")) {
			for _, id := range append([]string{rec.ID, rec.Digest}, rec.Layers...) {
				needed[strings.TrimPrefix(id, "sha256:")] = true
			}
			continue
		}
		if err := os.Remove(filepath.Join(s.root, refsDir, refFile(rec.Reference))); err != nil {
			return out, fmt.Errorf("image store: %w", err)
		}
		out.Images = append(out.Images, rec.Reference)
	}
	layers, err := s.removeUnneeded(layersDir, func(name string) bool { return needed[name] })
	if err != nil {
		return out, err
	}
	out.Layers = layers
	if _, err := s.removeUnneeded(blobsDir, func(name string) bool { return needed[name] }); err != nil {
		return out, err
	}
	archives, err := s.removeUnneeded(archivesDir, func(name string) bool {
		return name == filepath.Base(sumsDir) || keep[filepath.Join(s.root, archivesDir, name)] || s.inUse("use-archive-"+name)
	})
	if err != nil {
		return out, err
	}
	out.Archives = archives
	if err := s.removeDanglingSums(); err != nil {
		return out, err
	}
	// Holding the store exclusively, nothing is being made in tmp/.
	if err := s.removeStale(""); err != nil {
		return out, err
	}
	return out, nil
}

// inUse reports whether some process holds the use lock name.
func (s *Store) inUse(name string) bool {
	l, err := s.lockFile(name, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil {
		// Busy, or the lock cannot even be tried: keep what may be used.
		return true
	}
	l.release()
	return false
}

// removeUnneeded removes the entries of dir (under the root) that needed
// refuses, and counts them.
func (s *Store) removeUnneeded(dir string, needed func(name string) bool) (int, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, dir))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("image store: %w", err)
	}
	n := 0
	for _, e := range entries {
		if needed(e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.root, dir, e.Name())); err != nil {
			return n, fmt.Errorf("image store: %w", err)
		}
		n++
	}
	return n, nil
}

// removeDanglingSums removes the remembered sums of archives no longer
// unpacked.
func (s *Store) removeDanglingSums() error {
	dir := filepath.Join(s.root, sumsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	for _, e := range entries {
		sum, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && isDir(filepath.Join(s.root, archivesDir, sum)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("image store: %w", err)
		}
	}
	return nil
}
