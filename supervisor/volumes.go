package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/stack-containers/stack/manifest"
)

// What a stack's mounts need on the host before its containers start:
// the directories of its named volumes, which outlive the stack (down -v
// removes them), and the host paths of bind mounts that do not exist yet,
// which are made as directories, as Docker does, and are never removed.

// Owner is a user and group on the host.
type Owner struct {
	UID, GID int
}

// volumesDir is where every stack's named volumes live.
func volumesDir(dataDir string) string { return filepath.Join(dataDir, "volumes") }

// VolumeDir is the directory of a stack's named volume.
func VolumeDir(dataDir, stack, volume string) string {
	return filepath.Join(volumesDir(dataDir), stack, volume)
}

// makeMountSources creates the named volumes the containers mount and the
// missing host paths of their bind mounts.
func (s *Supervisor) makeMountSources() error {
	for _, name := range s.graph.names() {
		for _, m := range s.stack.Containers[name].Mounts {
			var err error
			if m.Volume != "" {
				err = s.makeVolume(m.Volume)
			} else {
				err = makeBindSource(m.Source, s.cfg.Owner)
			}
			if err != nil {
				return fmt.Errorf("container %q: %w", name, err)
			}
		}
	}
	return nil
}

// makeVolume creates a named volume's directory, empty, unless it exists.
// The stack's volumes directory is root's alone: the containers reach
// their volumes through their mounts, other users of the host have no
// business in a database's files.
func (s *Supervisor) makeVolume(volume string) error {
	stackDir := filepath.Join(volumesDir(s.cfg.DataDir), s.stack.Name)
	if err := os.MkdirAll(stackDir, 0o700); err != nil {
		return fmt.Errorf("volume %q: create %s: %w", volume, stackDir, err)
	}
	dir := VolumeDir(s.cfg.DataDir, s.stack.Name, volume)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("volume %q: create %s: %w", volume, dir, err)
	}
	return nil
}

// makeBindSource creates the missing host path of a bind mount as a
// directory (mode 0755), and each missing parent, owned by owner: the user
// who ran stack (through sudo, the one behind it), so that what looks like
// their project's ./data is theirs to use.
func makeBindSource(p string, owner Owner) error {
	if _, err := os.Lstat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
		// An existing path, or one whose trouble the mount will name.
		return nil
	}
	if err := makeBindSource(filepath.Dir(p), owner); err != nil {
		return err
	}
	err := os.Mkdir(p, 0o755)
	if errors.Is(err, fs.ErrExist) {
		// Made at the same time for another container.
		return nil
	}
	if err != nil {
		return fmt.Errorf("create bind mount source: %w", err)
	}
	// Changed through a descriptor of the directory just made, never by
	// its path: in a parent others may write to (/tmp), the path could
	// be a symlink to a host file by now, which chmod would follow.
	dir, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("create bind mount source: %w", err)
	}
	defer dir.Close()
	// Mkdir's mode went through the umask; the mode is the one Docker
	// gives.
	if err := dir.Chmod(0o755); err != nil {
		return fmt.Errorf("create bind mount source: %w", err)
	}
	if err := dir.Chown(owner.UID, owner.GID); err != nil {
		return fmt.Errorf("create bind mount source: %w", err)
	}
	return nil
}

// RemoveVolumes removes every named volume of the stack (down -v). The
// stack must not be running: Down stops it first. Volumes that were never
// made are not an error.
func RemoveVolumes(cfg Config, stack string) error {
	if err := manifest.ValidateName(stack); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	if !filepath.IsAbs(cfg.DataDir) {
		return fmt.Errorf("stack %q: remove volumes: the data directory %q is not an absolute path", stack, cfg.DataDir)
	}
	dir := filepath.Join(volumesDir(cfg.DataDir), stack)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("stack %q: remove volumes: %w", stack, err)
	}
	return nil
}
