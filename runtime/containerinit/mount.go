package containerinit

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/linux"
)

// Every mount below is made by the init inside the container's own mount
// namespace with the new mount API: a filesystem is configured and mounted
// detached (fsopen, fsconfig, fsmount) or a tree is cloned (open_tree), and
// only then attached with move_mount onto a target given as a descriptor.
// Targets are found with openIn, inside the rootfs, so no path is ever
// looked up twice and none can lead outside the rootfs.

// mountError says what failed to mount where, with the flags in words.
type mountError struct {
	op      string // the syscall that failed
	source  string
	fstype  string
	target  string
	flags   string
	options []string
	err     error
}

func (e *mountError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.prefix(), e.op, e.err)
}

// prefix is the error's text before the failed call: what was mounted
// where.
func (e *mountError) prefix() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mount %s", e.source)
	if e.fstype != "" {
		fmt.Fprintf(&b, " (%s)", e.fstype)
	}
	fmt.Fprintf(&b, " on %s", e.target)
	if e.flags != "" {
		fmt.Fprintf(&b, " with flags %s", e.flags)
	}
	if len(e.options) > 0 {
		fmt.Fprintf(&b, " and options %s", strings.Join(e.options, ","))
	}
	return b.String()
}

func (e *mountError) Unwrap() error { return e.err }

var attrWords = []struct {
	bit  uint64
	word string
}{
	{unix.MOUNT_ATTR_RDONLY, "read-only"}, {unix.MOUNT_ATTR_NOSUID, "nosuid"},
	{unix.MOUNT_ATTR_NODEV, "nodev"}, {unix.MOUNT_ATTR_NOEXEC, "noexec"},
	{unix.MOUNT_ATTR_STRICTATIME, "strictatime"},
}

// words names MOUNT_ATTR_* bits, plus "bind" and "recursive" for clones.
func words(attrs uint64, bind, recursive bool) string {
	var w []string
	if bind {
		w = append(w, "bind")
	}
	if recursive {
		w = append(w, "recursive")
	}
	for _, a := range attrWords {
		if attrs&a.bit != 0 {
			w = append(w, a.word)
		}
	}
	return strings.Join(w, ", ")
}

// fsMount is a filesystem to mount.
type fsMount struct {
	fstype, source string
	// options are "key=value" or a bare flag, as fsconfig takes them.
	options []string
	attrs   uint64
	// target names the mount point in errors.
	target string
}

func (m fsMount) fail(op string, err error) error {
	return &mountError{op: op, source: m.source, fstype: m.fstype, target: m.target, flags: words(m.attrs, false, false), options: m.options, err: err}
}

// create makes the filesystem and returns it as a detached mount.
func (m fsMount) create() (int, error) {
	fs, err := unix.Fsopen(m.fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, m.fail("fsopen", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "source", m.source); err != nil {
		return -1, m.fail("fsconfig source", err)
	}
	for _, o := range m.options {
		k, v, ok := strings.Cut(o, "=")
		if ok {
			err = unix.FsconfigSetString(fs, k, v)
		} else {
			err = unix.FsconfigSetFlag(fs, k)
		}
		if err != nil {
			return -1, m.fail("fsconfig "+k, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, m.fail("fsconfig create", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(m.attrs))
	if err != nil {
		return -1, m.fail("fsmount", err)
	}
	return mnt, nil
}

// mountOn creates the filesystem and attaches it onto target; the returned
// descriptor is the new mount's root.
func (m fsMount) mountOn(target int) (int, error) {
	mnt, err := m.create()
	if err != nil {
		return -1, err
	}
	if err := attach(mnt, target); err != nil {
		unix.Close(mnt)
		return -1, m.fail("move_mount", err)
	}
	return mnt, nil
}

func attach(mnt, target int) error {
	return linux.IgnoringEINTR(func() error {
		return unix.MoveMount(mnt, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	})
}

// bind clones the tree at dirfd/p (p empty: dirfd itself) and attaches it
// onto target with the MOUNT_ATTR_* bits of attrs set (recursively with
// recursive, which mount_setattr does in one step where the old API needed
// a remount per submount).
func bind(dirfd int, p string, target int, recursive bool, attrs uint64, source, targetName string) error {
	fail := func(op string, err error) error {
		return &mountError{op: op, source: source, target: targetName, flags: words(attrs, true, recursive), err: err}
	}
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	var rec uint
	if recursive {
		rec = unix.AT_RECURSIVE
	}
	if p == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	mnt, err := unix.OpenTree(dirfd, p, flags|rec)
	if err != nil {
		return fail("open_tree", err)
	}
	defer unix.Close(mnt)
	if attrs != 0 {
		attr := unix.MountAttr{Attr_set: attrs}
		if err := unix.MountSetattr(mnt, "", unix.AT_EMPTY_PATH|rec, &attr); err != nil {
			return fail("mount_setattr", err)
		}
	}
	if err := attach(mnt, target); err != nil {
		return fail("move_mount", err)
	}
	return nil
}
