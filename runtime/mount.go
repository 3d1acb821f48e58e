package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// maskedPaths are hidden from the container as runc and Docker do: files
// get /dev/null bound over them, directories an empty read-only tmpfs.
// Paths the kernel does not have are skipped.
var maskedProc = []string{"acpi", "asound", "interrupts", "kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug", "scsi"}

var maskedSys = []string{"firmware", "devices/virtual/powercap"}

// readonlyProc are the /proc entries through which a container could
// change the host's kernel.
var readonlyProc = []string{"bus", "fs", "irq", "sys", "sysrq-trigger"}

// devices are the nodes of /dev: major, minor.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

var devLinks = [][2]string{
	{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"},
	{"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
}

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
	fmt.Fprintf(&b, ": %s: %v", e.op, e.err)
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
// onto target, read-only if asked (recursively with recursive, which
// mount_setattr does in one step where the old API needed a remount per
// submount).
func bind(dirfd int, p string, target int, recursive, readOnly bool, source, targetName string) error {
	var attrs uint64
	if readOnly {
		attrs = unix.MOUNT_ATTR_RDONLY
	}
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
	if readOnly {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(mnt, "", unix.AT_EMPTY_PATH|rec, &attr); err != nil {
			return fail("mount_setattr", err)
		}
	}
	if err := attach(mnt, target); err != nil {
		return fail("move_mount", err)
	}
	return nil
}

// buildRootfs makes the container's root and everything mounted in it,
// then makes it the root of the mount namespace.
func buildRootfs(cfg *initConfig) error {
	// The mount namespace starts as a copy of the host's, in which / is
	// usually shared: made private first, so that nothing mounted here
	// propagates back to the host and pivot_root (which refuses a shared
	// parent mount) works. MS_REC covers every mount under /.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return &mountError{op: "mount", source: "/", target: "/", flags: "recursive, private", err: err}
	}
	root, err := mountRoot(cfg)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	// /dev first: its null is what masks /proc and /sys entries.
	null, err := mountDev(root, cfg.NewUser)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	if err := mountProc(root, null); err != nil {
		return err
	}
	// /sys comes after the namespaces were joined (the caller's ordering):
	// sysfs shows the network devices of the mounting task's namespace.
	ownNet := cfg.NewNet
	for _, j := range cfg.Joins {
		ownNet = ownNet || j.Kind == "net"
	}
	if err := mountSys(root, null, ownNet); err != nil {
		return err
	}
	for _, m := range cfg.Mounts {
		if err := mountBind(root, m); err != nil {
			return err
		}
	}
	return pivot(root)
}

// mountRoot mounts the rootfs onto the layer's merged directory and returns
// its root: an overlay whose writes land in the layer, or a read-only bind.
func mountRoot(cfg *initConfig) (int, error) {
	merged := filepath.Join(cfg.Layer, "merged")
	target, err := unix.Open(merged, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: merged, Err: err}
	}
	defer unix.Close(target)
	if cfg.ReadOnly {
		// Not recursive: a mount under the rootfs directory on the host
		// is not part of the image.
		if err := bind(unix.AT_FDCWD, cfg.Lower, target, false, true, cfg.Lower, merged); err != nil {
			return -1, err
		}
		return unix.Open(merged, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	opts := []string{
		"lowerdir=" + cfg.Lower,
		"upperdir=" + filepath.Join(cfg.Layer, "upper"),
		"workdir=" + filepath.Join(cfg.Layer, "work"),
	}
	if cfg.NewUser {
		// trusted.* xattrs need privilege over the host; overlayfs keeps
		// its metadata in user.* instead.
		opts = append(opts, "userxattr")
	}
	return fsMount{fstype: "overlay", source: "overlay", options: opts, target: merged}.mountOn(target)
}

// mountDev makes /dev a small tmpfs holding only the usual devices, and
// returns a descriptor of its null.
func mountDev(root int, userns bool) (int, error) {
	target, err := mkdirIn(root, "/dev", 0o755)
	if err != nil {
		return -1, err
	}
	defer unix.Close(target)
	dev, err := fsMount{fstype: "tmpfs", source: "tmpfs", options: []string{"mode=755", "size=65536k"},
		attrs: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_STRICTATIME, target: "/dev"}.mountOn(target)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dev)
	for _, d := range devices {
		if err := makeDevice(dev, d.name, d.major, d.minor, userns); err != nil {
			return -1, err
		}
	}
	if err := mountDevDir(dev, "pts", fsMount{fstype: "devpts", source: "devpts",
		options: []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
		attrs:   unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC, target: "/dev/pts"}); err != nil {
		return -1, err
	}
	if err := mountDevDir(dev, "shm", fsMount{fstype: "tmpfs", source: "shm",
		options: []string{"mode=1777", "size=65536k"},
		attrs:   unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC, target: "/dev/shm"}); err != nil {
		return -1, err
	}
	for _, l := range devLinks {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil {
			return -1, &os.PathError{Op: "symlink", Path: "/dev/" + l[1], Err: err}
		}
	}
	null, err := unix.Openat(dev, "null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: "/dev/null", Err: err}
	}
	return null, nil
}

// makeDevice creates /dev/name. In a user namespace mknod is refused, so
// the host's node is bind-mounted onto an empty file instead.
func makeDevice(dev int, name string, major, minor uint32, userns bool) error {
	if !userns {
		if err := unix.Mknodat(dev, name, unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor))); err != nil {
			return &os.PathError{Op: "mknod", Path: "/dev/" + name, Err: err}
		}
		return nil
	}
	f, err := unix.Openat(dev, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return &os.PathError{Op: "create", Path: "/dev/" + name, Err: err}
	}
	defer unix.Close(f)
	return bind(unix.AT_FDCWD, "/dev/"+name, f, false, false, "/dev/"+name, "/dev/"+name)
}

// mountDevDir mounts m on a new directory name of /dev.
func mountDevDir(dev int, name string, m fsMount) error {
	if err := unix.Mkdirat(dev, name, 0o755); err != nil {
		return &os.PathError{Op: "mkdir", Path: m.target, Err: err}
	}
	target, err := unix.Openat(dev, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: m.target, Err: err}
	}
	defer unix.Close(target)
	mnt, err := m.mountOn(target)
	if err != nil {
		return err
	}
	return unix.Close(mnt)
}

// mountProc mounts a procfs of the container's pid namespace and hides or
// freezes what runc does.
func mountProc(root, null int) error {
	target, err := mkdirIn(root, "/proc", 0o555)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	proc, err := fsMount{fstype: "proc", source: "proc",
		attrs: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC, target: "/proc"}.mountOn(target)
	if err != nil {
		return err
	}
	defer unix.Close(proc)
	if err := mask(proc, "/proc", maskedProc, null); err != nil {
		return err
	}
	for _, p := range readonlyProc {
		fd, err := unix.Openat(proc, p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "open", Path: "/proc/" + p, Err: err}
		}
		err = bind(fd, "", fd, true, true, "/proc/"+p, "/proc/"+p)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return nil
}

// mountSys mounts /sys read-only: a sysfs of the container's own network
// namespace, or, when it shares the host's network, a bind of the host's
// (a new sysfs would need privilege over that namespace in a user ns).
func mountSys(root, null int, ownNet bool) error {
	target, err := mkdirIn(root, "/sys", 0o555)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	var sys int
	if ownNet {
		sys, err = fsMount{fstype: "sysfs", source: "sysfs",
			attrs:  unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
			target: "/sys"}.mountOn(target)
		if err != nil {
			return err
		}
	} else {
		if err := bind(unix.AT_FDCWD, "/sys", target, true, true, "/sys", "/sys"); err != nil {
			return err
		}
		if sys, err = openIn(root, "/sys", unix.O_PATH|unix.O_DIRECTORY); err != nil {
			return err
		}
	}
	defer unix.Close(sys)
	return mask(sys, "/sys", maskedSys, null)
}

// mask hides each of paths under the mount mnt (named dir in errors).
func mask(mnt int, dir string, paths []string, null int) error {
	for _, p := range paths {
		name := dir + "/" + p
		fd, err := unix.Openat(mnt, p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "open", Path: name, Err: err}
		}
		err = maskOne(fd, name, null)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return nil
}

func maskOne(fd int, name string, null int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return bind(null, "", fd, false, false, "/dev/null", name)
	}
	mnt, err := fsMount{fstype: "tmpfs", source: "tmpfs",
		attrs: unix.MOUNT_ATTR_RDONLY, target: name}.mountOn(fd)
	if err != nil {
		return err
	}
	return unix.Close(mnt)
}

// mountBind binds a host path at its target inside the rootfs, creating
// the target as a directory or a file like the source.
func mountBind(root int, m Mount) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("bind mount %s on %s: source: %w", m.Source, m.Target, err)
	}
	var target int
	if st.IsDir() {
		target, err = mkdirIn(root, m.Target, 0o755)
	} else {
		target, err = fileIn(root, m.Target)
	}
	if err != nil {
		return fmt.Errorf("bind mount %s on %s: target: %w", m.Source, m.Target, err)
	}
	defer unix.Close(target)
	return bind(unix.AT_FDCWD, m.Source, target, true, m.ReadOnly, m.Source, m.Target)
}

// pivot makes root the root of the mount namespace and detaches the old
// one, so that nothing of the host stays reachable.
func pivot(root int) error {
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one at
	// the same place; unmounting "." then detaches the old root without
	// needing a directory for it inside the rootfs.
	err := unix.PivotRoot(".", ".")
	switch {
	case errors.Is(err, unix.EINVAL):
		// The host root is the initramfs (ramfs), which cannot be
		// pivoted away: move the rootfs over / and chroot instead.
		if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
			return &mountError{op: "mount", source: "rootfs", target: "/", flags: "move", err: err}
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot to rootfs: %w", err)
		}
	case err != nil:
		return fmt.Errorf("pivot_root to rootfs: %w", err)
	default:
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach the host root: %w", err)
		}
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to /: %w", err)
	}
	return nil
}
