package containerinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// Copy-up: a named volume mounted for the first time, empty, first receives
// what the container's rootfs holds at the mount path, as Docker does, so
// that an image's /var/lib/postgresql/data (its files, owners and modes)
// is what the program finds there.
//
// It runs in the init, inside the container's mount namespace, once the
// root is mounted and before anything is mounted on it: the source is the
// root exactly as the container sees it (a directory, an archive's copy,
// or an overlay of any number of lower layers with their whiteouts applied
// by the kernel), reached through openIn so that no symlink of the rootfs
// leads outside it. The volume is still reachable by its host path then;
// pivot_root has not happened yet.

// copyUp fills the empty volume dir with the content of target inside
// root; it does nothing when the volume holds anything, or when the rootfs
// has no directory at target. The volume is locked (flock) for the check
// and the copy, so that two containers of a stack that mount it at once
// copy once.
func copyUp(root int, target, volume string) error {
	dst, err := unix.Open(volume, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open volume", Path: volume, Err: err}
	}
	defer unix.Close(dst)
	if err := linux.IgnoringEINTR(func() error { return unix.Flock(dst, unix.LOCK_EX) }); err != nil {
		return &os.PathError{Op: "lock volume", Path: volume, Err: err}
	}
	// Closing dst drops the lock.
	empty, err := isEmptyDir(dst)
	if err != nil || !empty {
		if err != nil {
			err = &os.PathError{Op: "read volume", Path: volume, Err: err}
		}
		return err
	}
	src, err := openIn(root, target, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(src)
	c := copier{from: target, to: volume}
	if err := c.dir(src, dst); err != nil {
		return err
	}
	// The volume's own directory takes the owner and mode of the one it
	// stands in for, as its content does.
	return c.rootAttrs(src, dst)
}

// isEmptyDir reports whether the directory open at fd has no entries.
func isEmptyDir(fd int) (bool, error) {
	names, err := readNames(fd)
	return len(names) == 0, err
}

// readNames lists the entries of the directory open at fd, without "."
// and "..". It reads through a duplicate, leaving fd's offset alone.
func readNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

// copier copies a tree between two directory descriptors, never following
// a symlink: directories, regular files, symlinks and FIFOs, with their
// owner, mode (setuid and sticky bits too) and times. Device nodes and
// sockets are left out: a volume is a directory on the host, and a device
// node from an image has no business there. from and to name the trees in
// errors.
type copier struct {
	from, to string
}

func (c copier) dir(src, dst int) error {
	names, err := readNames(src)
	if err != nil {
		return &os.PathError{Op: "read directory", Path: c.from, Err: err}
	}
	for _, name := range names {
		if err := c.entry(src, dst, name); err != nil {
			return err
		}
	}
	return nil
}

// entry copies src/name to dst/name.
func (c copier) entry(src, dst int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "stat", Path: path.Join(c.from, name), Err: err}
	}
	sub := copier{from: path.Join(c.from, name), to: path.Join(c.to, name)}
	perm := uint32(st.Mode) & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		// Made private until its content is in, then given its mode.
		if err := unix.Mkdirat(dst, name, 0o700); err != nil {
			return &os.PathError{Op: "mkdir", Path: sub.to, Err: err}
		}
		from, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: sub.from, Err: err}
		}
		defer unix.Close(from)
		to, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: sub.to, Err: err}
		}
		defer unix.Close(to)
		if err := sub.dir(from, to); err != nil {
			return err
		}
		return sub.attrsAt(dst, name, &st, perm)
	case unix.S_IFREG:
		return sub.file(src, dst, name, &st, perm)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(src, name, buf)
		if err != nil {
			return &os.PathError{Op: "readlink", Path: sub.from, Err: err}
		}
		if err := unix.Symlinkat(string(buf[:n]), dst, name); err != nil {
			return &os.PathError{Op: "symlink", Path: sub.to, Err: err}
		}
		// A symlink has no mode of its own.
		return sub.attrsAt(dst, name, &st, 0)
	case unix.S_IFIFO:
		if err := unix.Mkfifoat(dst, name, 0o600); err != nil {
			return &os.PathError{Op: "mkfifo", Path: sub.to, Err: err}
		}
		return sub.attrsAt(dst, name, &st, perm)
	}
	return nil
}

// file copies the regular file src/name to dst/name.
func (c copier) file(src, dst int, name string, st *unix.Stat_t, perm uint32) error {
	from, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: c.from, Err: err}
	}
	in := os.NewFile(uintptr(from), c.from)
	defer in.Close()
	to, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: c.to, Err: err}
	}
	out := os.NewFile(uintptr(to), c.to)
	defer out.Close()
	// io.Copy between two files uses copy_file_range: the data need not
	// pass through this process.
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", c.from, c.to, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", c.from, c.to, err)
	}
	return c.attrsAt(dst, name, st, perm)
}

// attrsAt gives dir/name, which copier has just made (so no symlink of
// the rootfs's can stand there), the owner, mode (perm; none for a symlink)
// and times of st. The owner goes first: chown clears the setuid and
// setgid bits.
func (c copier) attrsAt(dir int, name string, st *unix.Stat_t, perm uint32) error {
	if err := unix.Fchownat(dir, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: c.to, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(dir, name, perm, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: c.to, Err: err}
		}
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dir, name, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "set times", Path: c.to, Err: err}
	}
	return nil
}

// rootAttrs gives the volume's own directory (open at dst) the owner and
// mode of src.
func (c copier) rootAttrs(src, dst int) error {
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return &os.PathError{Op: "stat", Path: c.from, Err: err}
	}
	if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "chown", Path: c.to, Err: err}
	}
	if err := unix.Fchmod(dst, uint32(st.Mode)&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: c.to, Err: err}
	}
	return nil
}
