package linux

import (
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// OpenInRoot opens p inside the tree rooted at the directory root as if
// root were "/": "..", absolute symlinks and absolute paths all stay inside
// it (openat2 RESOLVE_IN_ROOT). A rootfs whose /proc is a symlink to a host
// path therefore resolves to that path inside the rootfs, never on the
// host; a layer being unpacked cannot write through a link it made.
func OpenInRoot(root int, p string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := IgnoringEINTRN(func() (int, error) {
		for {
			fd, err := unix.Openat2(root, p, &how)
			// EAGAIN: a rename elsewhere in the tree raced the lookup,
			// which RESOLVE_IN_ROOT refuses to guess about; look again.
			if !errors.Is(err, unix.EAGAIN) {
				return fd, err
			}
		}
	})
	if err != nil {
		return -1, &os.PathError{Op: "open in rootfs", Path: p, Err: err}
	}
	return fd, nil
}

// MkdirInRoot returns an O_PATH descriptor of directory p inside root,
// making it and its missing parents with mode. A dangling symlink on the
// way is followed as MkdirAll would, its target made inside root.
func MkdirInRoot(root int, p string, mode uint32) (int, error) {
	return mkdirLinks(root, p, mode, 0)
}

// maxLinks bounds the symlinks MkdirInRoot follows, as the kernel's ELOOP
// does.
const maxLinks = 40

func mkdirLinks(root int, p string, mode uint32, links int) (int, error) {
	p = path.Clean("/" + p)
	fd, err := OpenInRoot(root, p, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) || p == "/" {
		return fd, err
	}
	parent, err := mkdirLinks(root, path.Dir(p), mode, links)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	err = unix.Mkdirat(parent, path.Base(p), mode)
	if errors.Is(err, unix.EEXIST) {
		// There is an entry, yet p did not resolve: a symlink to
		// something missing.
		target, lerr := readlinkAt(parent, path.Base(p))
		if lerr == nil {
			if links >= maxLinks {
				return -1, &os.PathError{Op: "mkdir in rootfs", Path: p, Err: unix.ELOOP}
			}
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			return mkdirLinks(root, target, mode, links+1)
		}
	} else if err != nil {
		return -1, &os.PathError{Op: "mkdir in rootfs", Path: p, Err: err}
	}
	// Looked up again from root: whatever now sits at p, the lookup stays
	// inside root.
	return OpenInRoot(root, p, unix.O_PATH|unix.O_DIRECTORY)
}

// readlinkAt reads the symlink name in dir. Its buffer is on its own
// stack frame, not mkdirLinks': every container's init calls mkdirLinks
// for each mount point, where a frame of 4 KiB made the goroutine's stack
// grow, and pages be touched, in each of them.
func readlinkAt(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// FileInRoot returns an O_PATH descriptor of p inside root, creating an
// empty file there (and its parents) when it does not exist: a mount point
// for a bind-mounted file.
func FileInRoot(root int, p string) (int, error) {
	p = path.Clean("/" + p)
	fd, err := OpenInRoot(root, p, unix.O_PATH)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	parent, err := MkdirInRoot(root, path.Dir(p), 0o755)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	f, err := unix.Openat(parent, path.Base(p), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, &os.PathError{Op: "create in rootfs", Path: p, Err: err}
	}
	if err == nil {
		if err := unix.Close(f); err != nil {
			return -1, &os.PathError{Op: "create in rootfs", Path: p, Err: err}
		}
	}
	return OpenInRoot(root, p, unix.O_PATH)
}
