package linux

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// fsTopdirFL is FS_TOPDIR_FL from linux/fs.h (chattr +T), which x/sys
// does not name.
const fsTopdirFL = 0x00020000

// MarkTopDir marks dir as the top of unrelated directory trees (chattr
// +T), a hint to the Orlov allocator of ext2, ext3 and ext4: it places
// each directory made in dir in a block group of its own choosing, the
// emptiest, rather than next to dir, and what is made inside one goes
// with it.
//
// It matters for directories that come and go by the hundred. Without a
// journal, ext4 will not reuse an inode freed in the last seconds (longer
// while its inode table is not written back), and searches past every
// one of them in the group at each allocation: with all of a run's
// directories in one group, each up after a down searched past all that
// the down freed, a cost growing with the square of the containers.
// Spread over groups, each group holds a few.
//
// A file system without the flag (tmpfs, xfs, btrfs, overlayfs) is not
// an error: the hint is then simply not given.
func MarkTopDir(dir string) error {
	fd, err := IgnoringEINTRN(func() (int, error) {
		return unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return fmt.Errorf("mark %s as a top directory: %w", dir, err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err == nil && flags&fsTopdirFL == 0 {
		err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|fsTopdirFL)
	}
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark %s as a top directory: %w", dir, err)
	}
	return nil
}
