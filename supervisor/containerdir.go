package supervisor

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stack-containers/stack/internal/linux"
)

// Each container of a run has a directory of its own under
// Paths.Containers, named <container>.<random hex> and made at each up:
// its log files (<container>.log and their rotated elders), which stay
// until down, and its writable layer ("layer", the overlay's upper
// directory and the mount point of its root) with the overlay's "work"
// directory beside it, which go when the container is removed.
//
// The layout is for ext4 without a journal, whose inode allocator is
// slow where inodes were freed in the last minutes: it searches past each
// of them at every allocation in their block group. Containers is marked
// as the top of unrelated trees (linux.MarkTopDir), so that ext4's Orlov
// allocator places each container's directory, and everything made in it,
// in a block group of its own choosing. Its choice starts from a hash of
// the directory's name: under a fixed name, a container would go to the
// block group that the same container of the last up freed, and search
// past all of it there. The random part, like Docker's random container
// ids, sends each up elsewhere. One directory a container, with the log
// in it, also means one such placement a container, each a walk over
// every block group, where a layer, a work directory and a shared
// directory of logs took two, and the logs' group gathered the freed
// inodes of every run.

// containerDirRandom is how many random bytes a container's directory
// name has.
const containerDirRandom = 4

// newContainerDir names a new directory of the container's own for this
// run (not made here: its log makes it, see logs.Config.Dirs).
func newContainerDir(p Paths, container string) (string, error) {
	b := make([]byte, containerDirRandom)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("container %q: name its directory: %w", container, err)
	}
	return filepath.Join(p.Containers(), container+"."+hex.EncodeToString(b)), nil
}

// layerDir is the writable layer in the container's directory dir.
func layerDir(dir string) string { return filepath.Join(dir, "layer") }

// makeContainersDir makes the directory of the containers' directories,
// marked as the top of unrelated trees (see above). It must come before
// the first of them.
func makeContainersDir(p Paths) error {
	if err := os.Mkdir(p.Containers(), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("make the containers' directory: %w", err)
	}
	return linux.MarkTopDir(p.Containers())
}

// ContainerDirs maps the name of each container of the stack's last run
// to its directory, for `stack logs`; a stack without one (never up, or
// down since) has none, and that is os.ErrNotExist.
func ContainerDirs(p Paths) (map[string]string, error) {
	entries, err := os.ReadDir(p.Containers())
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	dirs := make(map[string]string, len(entries))
	for _, e := range entries {
		// Container names have no '.'.
		name, _, ok := strings.Cut(e.Name(), ".")
		if ok && e.IsDir() {
			dirs[name] = filepath.Join(p.Containers(), e.Name())
		}
	}
	return dirs, nil
}
