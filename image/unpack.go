package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// Whiteouts as the OCI image spec writes them in a layer's tar.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Overlayfs's own forms of them: a whiteout is a character device 0:0, an
// opaque directory carries the xattr. trusted.* is what overlayfs reads
// when mounted with privilege over the host; user.* what it reads with
// "userxattr" (a container with a user namespace), so both are set.
var opaqueXattrs = []string{"trusted.overlay.opaque", "user.overlay.opaque"}

// unpackMode says what the tar is.
type unpackMode int

const (
	// asRootfs: a whole root filesystem (`docker export` output). Names
	// starting with .wh. are ordinary files.
	asRootfs unpackMode = iota
	// asLayer: one layer of an image, whose whiteouts are turned into
	// overlayfs's, for the layer to serve as a lower directory.
	asLayer
)

// unpackTar extracts the tar read from r into dir, an existing directory,
// and returns the bytes of file content it wrote. Every entry is created
// through a directory resolved inside dir (linux.OpenInRoot), so even an
// entry that goes through a symlink the tar made earlier cannot write
// outside it; entries whose names or link targets would escape are
// refused outright.
//
// Character and block devices other than whiteouts are skipped: a
// container gets its /dev from stack, never from its image, and a device
// node in the store (on the host's filesystem) would be one more way to
// reach a host device.
//
// limit bounds what one unpack may write: file content, and a tar block
// (512 bytes) per entry, so that neither one huge file nor millions of
// empty ones can fill the disk (a few MiB of gzip can hold GiBs of zeros).
// Past it the unpack fails with an *UnpackLimitError.
func unpackTar(r io.Reader, dir string, mode unpackMode, limit int64) (int64, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	u := unpacker{root: root, dir: dir, mode: mode, limit: limit}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return u.size, err
		}
		if u.written += tarBlock; u.written > u.limit {
			return u.size, &UnpackLimitError{Limit: u.limit}
		}
		if err := u.entry(hdr, tr); err != nil {
			return u.size, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	// Last, since creating entries in a directory changes its mtime.
	for i := len(u.dirs) - 1; i >= 0; i-- {
		if err := u.setTimes(u.dirs[i].name, u.dirs[i].mtime); err != nil {
			return u.size, err
		}
	}
	return u.size, nil
}

// tarBlock is what each entry counts toward an unpack's limit besides its
// content: the size of its header in the tar.
const tarBlock = 512

// DefaultUnpackLimit is what one unpack may write unless the store is told
// otherwise (SetUnpackLimit): well above the largest common images.
const DefaultUnpackLimit = 16 << 30

// UnpackLimitError is an unpack that would write more than its limit.
type UnpackLimitError struct {
	Limit int64
}

func (e *UnpackLimitError) Error() string {
	return fmt.Sprintf("unpacking writes more than %s, the most one unpack may write (set STACK_UNPACK_LIMIT to allow more)", formatSize(e.Limit))
}

// formatSize is n in the largest binary unit that divides it, as
// STACK_UNPACK_LIMIT may be written: 16G, 512M, 1000.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"G", 30}, {"M", 20}, {"K", 10}} {
		if n > 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

type unpacker struct {
	root int
	dir  string
	mode unpackMode
	size int64
	// written counts toward limit: content and a tar block per entry.
	written, limit int64
	// dirs get their mtimes once everything is in them.
	dirs []dirTime
}

type dirTime struct {
	name  string
	mtime time.Time
}

// entryName checks a name from the tar and returns it relative to the
// root ("" for the root itself).
func entryName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path refused")
	}
	for _, e := range strings.Split(name, "/") {
		if e == ".." {
			return "", errors.New(`".." refused: it would escape the root`)
		}
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

// symlinkEscapes reports whether a relative symlink at name climbs above
// the root. An absolute target is fine: it means the container's root.
func symlinkEscapes(name, target string) bool {
	if path.IsAbs(target) {
		return false
	}
	depth := strings.Count(path.Dir("/"+name), "/")
	if path.Dir("/"+name) == "/" {
		depth = 0
	}
	for _, e := range strings.Split(target, "/") {
		switch e {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	mode := uint32(hdr.Mode & 0o7777)
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the root is not a directory")
		}
		if err := os.Lchown(u.dir, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if err := os.Chmod(u.dir, os.FileMode(mode)); err != nil {
			return err
		}
		u.dirs = append(u.dirs, dirTime{name, hdr.ModTime})
		return nil
	}
	parent, err := linux.MkdirInRoot(u.root, path.Dir(name), 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	base := path.Base(name)
	if u.mode == asLayer && strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(parent, base)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		var st unix.Stat_t
		if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := unix.Unlinkat(parent, base, 0); err != nil {
				return err
			}
		}
		if err := unix.Mkdirat(parent, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		u.dirs = append(u.dirs, dirTime{name, hdr.ModTime})
		if err := u.setOwnerMode(parent, base, hdr, mode); err != nil {
			return err
		}
		return setXattrs(parent, base, hdr)
	case tar.TypeReg, tar.TypeRegA:
		if err := replace(parent, base); err != nil {
			return err
		}
		fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), name)
		// One byte past the limit is enough to know it is passed.
		n, err := io.Copy(f, io.LimitReader(r, u.limit-u.written+1))
		u.size += n
		u.written += n
		if err == nil && u.written > u.limit {
			err = &UnpackLimitError{Limit: u.limit}
		}
		if err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := u.setOwnerMode(parent, base, hdr, mode); err != nil {
			return err
		}
		// After chown, which clears security.capability.
		if err := setXattrs(parent, base, hdr); err != nil {
			return err
		}
		return u.setTimesAt(parent, base, hdr.ModTime)
	case tar.TypeSymlink:
		if symlinkEscapes(name, hdr.Linkname) {
			return fmt.Errorf("symlink to %q refused: it points outside the root", hdr.Linkname)
		}
		if err := replace(parent, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return err
		}
		if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		return u.setTimesAt(parent, base, hdr.ModTime)
	case tar.TypeLink:
		target, err := entryName(hdr.Linkname)
		if err != nil || target == "" {
			return fmt.Errorf("hard link to %q refused: it points outside the root", hdr.Linkname)
		}
		oldParent, err := linux.OpenInRoot(u.root, path.Dir(target), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(oldParent)
		if err := replace(parent, base); err != nil {
			return err
		}
		return unix.Linkat(oldParent, path.Base(target), parent, base, 0)
	case tar.TypeChar, tar.TypeBlock:
		// Skipped; see unpackTar.
		return nil
	case tar.TypeFifo:
		if err := replace(parent, base); err != nil {
			return err
		}
		if err := unix.Mknodat(parent, base, unix.S_IFIFO|0o600, 0); err != nil {
			return err
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	if err := u.setOwnerMode(parent, base, hdr, mode); err != nil {
		return err
	}
	return u.setTimesAt(parent, base, hdr.ModTime)
}

// whiteout turns a layer's .wh. entry in parent into overlayfs's form: the
// opaque marker into the xattr on parent itself, .wh.NAME into a
// character device 0:0 named NAME that hides NAME of the layers below.
func (u *unpacker) whiteout(parent int, base string) error {
	if base == opaqueMarker {
		// The xattr calls need a real descriptor, not O_PATH.
		fd, err := unix.Openat(parent, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, attr := range opaqueXattrs {
			err := unix.Fsetxattr(fd, attr, []byte("y"), 0)
			// user.* xattrs are missing on some filesystems (tmpfs
			// before Linux 6.6); only a user-namespaced overlay reads
			// them.
			if err != nil && !(errors.Is(err, unix.EOPNOTSUPP) && strings.HasPrefix(attr, "user.")) {
				return fmt.Errorf("mark opaque (%s): %w", attr, err)
			}
		}
		return nil
	}
	hidden := strings.TrimPrefix(base, whiteoutPrefix)
	if hidden == "" || hidden == "." || strings.HasPrefix(hidden, whiteoutPrefix) {
		return fmt.Errorf("malformed whiteout %q", base)
	}
	if err := replace(parent, hidden); err != nil {
		return err
	}
	if err := unix.Mknodat(parent, hidden, unix.S_IFCHR|0o000, int(unix.Mkdev(0, 0))); err != nil {
		return fmt.Errorf("whiteout %q: %w", hidden, err)
	}
	return nil
}

// setXattrs applies the extended attributes the tar records (file
// capabilities, say). trusted.* is never taken from a tar: overlayfs reads
// its own state there, and a layer must not forge it.
func setXattrs(parent int, base string, hdr *tar.Header) error {
	const prefix = "SCHILY.xattr."
	for key, value := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(key, prefix)
		if !ok || strings.HasPrefix(attr, "trusted.") || strings.HasPrefix(attr, "user.overlay.") {
			continue
		}
		fd, err := linux.OpenInRoot(parent, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
		if err != nil {
			return err
		}
		err = unix.Fsetxattr(fd, attr, []byte(value), 0)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("set xattr %s: %w", attr, err)
		}
	}
	return nil
}

// replace removes what an earlier entry of the same name left: in a tar,
// the last entry of a name wins.
func replace(parent int, base string) error {
	err := unix.Unlinkat(parent, base, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(parent, base, unix.AT_REMOVEDIR)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// setOwnerMode sets owner then mode: chown clears set-uid bits.
func (u *unpacker) setOwnerMode(parent int, base string, hdr *tar.Header, mode uint32) error {
	if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	return unix.Fchmodat(parent, base, mode, 0)
}

func (u *unpacker) setTimesAt(parent int, base string, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(parent, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func (u *unpacker) setTimes(name string, mtime time.Time) error {
	if name == "" {
		return os.Chtimes(u.dir, mtime, mtime)
	}
	parent, err := linux.OpenInRoot(u.root, path.Dir(name), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	return u.setTimesAt(parent, path.Base(name), mtime)
}
