package linux

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// ext4SuperMagic is EXT4_SUPER_MAGIC, which ext2 and ext3 share.
const ext4SuperMagic = 0xef53

// topDirState reports how dir stands: its FS_TOPDIR_FL, and whether its
// file system is one of ext2, ext3 and ext4, which have the flag.
func topDirState(t *testing.T, dir string) (marked, ext bool) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	return err == nil && flags&fsTopdirFL != 0, st.Type == ext4SuperMagic
}

// TestMarkTopDir marks a directory on the test's temporary file system,
// and one on a tmpfs: on ext2/3/4 the flag must be set (and stay set when
// marked again), and not inherited by a directory made inside; elsewhere
// the hint is dropped without an error.
func TestMarkTopDir(t *testing.T) {
	testenv.RequireRoot(t)
	tmpfs := t.TempDir()
	if err := unix.Mount("tmpfs", tmpfs, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(tmpfs, unix.MNT_DETACH) })
	for _, dir := range []string{filepath.Join(t.TempDir(), "layers"), filepath.Join(tmpfs, "layers")} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := MarkTopDir(dir); err != nil {
				t.Fatalf("MarkTopDir(%s): %v", dir, err)
			}
		}
		marked, ext := topDirState(t, dir)
		if marked != ext {
			t.Errorf("%s: marked %v, on ext2/3/4 %v", dir, marked, ext)
		}
		sub := filepath.Join(dir, "c01")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if marked, _ := topDirState(t, sub); marked {
			t.Errorf("%s inherited the mark", sub)
		}
		t.Logf("%s: marked %v", dir, marked)
	}
	if err := MarkTopDir(filepath.Join(tmpfs, "missing")); err == nil {
		t.Error("MarkTopDir of a missing directory: no error")
	}
}
