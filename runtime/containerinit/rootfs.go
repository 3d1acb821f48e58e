package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The rootfs sequence: what the container's mount namespace holds and in
// which order it is built (buildRootfs). The primitives it uses, and why
// every mount goes through descriptors, are in mount.go.

// MaskedProc and maskedSys are hidden from the container as runc and
// Docker do: files get /dev/null bound over them, directories an empty
// read-only tmpfs. Paths the kernel does not have are skipped. MaskedProc
// is exported for the tests of whole containers, which check each.
var MaskedProc = []string{"acpi", "asound", "interrupts", "kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug", "scsi"}

var maskedSys = []string{"firmware", "devices/virtual/powercap"}

// readonlyProc are the /proc entries through which a container could
// change the host's kernel.
var readonlyProc = []string{"bus", "fs", "irq", "sys", "sysrq-trigger"}

// devices are the nodes of /dev, by name, major and minor.
var devices = []Device{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// Devices returns the nodes of every container's /dev, for the parent's
// device rules to allow (runtime.DeviceRules). It is a copy: no caller
// can change what the next container gets.
func Devices() []Device { return slices.Clone(devices) }

// Device is a character device node of /dev.
type Device struct {
	Name         string
	Major, Minor uint32
}

var devLinks = [][2]string{
	{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"},
	{"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
}

// buildRootfs makes the container's root and everything mounted in it,
// then makes it the root of the mount namespace.
func buildRootfs(cfg *Config) error {
	return buildRoot(cfg, mountProc)
}

// buildRootfsDeferringProc is buildRootfs but for /proc, which the caller
// mounts later from a process of the container's pid namespace: it
// returns the rootfs's /proc directory and its /dev/null as O_PATH
// descriptors, still valid after pivot_root. No bind mount goes under
// /proc: the caller's procfs would cover it.
func buildRootfsDeferringProc(cfg *Config) (procDir, null int, err error) {
	procDir, null = -1, -1
	err = buildRoot(cfg, func(root, n int) error {
		fd, err := mkdirIn(root, "/proc", 0o555)
		if err != nil {
			return err
		}
		if null, err = unix.FcntlInt(uintptr(n), unix.F_DUPFD_CLOEXEC, 3); err != nil {
			unix.Close(fd)
			return fmt.Errorf("hold /dev/null: %w", err)
		}
		procDir = fd
		return nil
	})
	if err != nil {
		for _, fd := range []int{procDir, null} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		return -1, -1, err
	}
	return procDir, null, nil
}

// buildRoot is buildRootfs with proc mounting /proc (given the root and
// /dev/null).
func buildRoot(cfg *Config, proc func(root, null int) error) error {
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
	if err := proc(root, null); err != nil {
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

// WorkDir is the overlay's work directory for the layer dir layer, a
// writable root's upper directory: "work" beside it, in the directory
// that is the container's own, since overlayfs needs the two on one
// filesystem and neither inside the other.
func WorkDir(layer string) string { return filepath.Join(filepath.Dir(layer), "work") }

// ClearVolatileMark removes, from the work dir of the layer dir layer, the
// mark that the overlay's volatile option leaves there while it is
// mounted (work/incompat/volatile), so that the layer can be mounted again.
// overlayfs refuses a work dir with the mark, since after a crash of the
// machine a volatile upper directory may have lost writes. stack mounts a
// layer again only to restart its container within the same run, on the
// same boot, after the earlier mount ended with its container's mount
// namespace: nothing was lost. A layer of an earlier run, which a crash
// could have left, is never mounted again: the next up removes it. A
// missing mark is not an error.
func ClearVolatileMark(layer string) error {
	err := os.RemoveAll(filepath.Join(WorkDir(layer), "work", "incompat"))
	if err != nil {
		return fmt.Errorf("clear the overlay's volatile mark: %w", err)
	}
	return nil
}

// mountRoot mounts the rootfs onto the layer directory itself and returns
// its root: an overlay whose writes land in the layer, or, read-only, a
// bind of the one directory or an overlay of an image's layers alone. For
// a writable root the layer dir is the overlay's upper directory too: the
// overlay takes hold of it when it is made, and then covers it, only in
// this mount namespace. A directory of its own to mount on would be one
// more inode to make and remove per start.
func mountRoot(cfg *Config) (int, error) {
	merged := cfg.Layer
	target, err := unix.Open(merged, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: merged, Err: err}
	}
	defer unix.Close(target)
	if cfg.ReadOnly {
		points, err := mountPoints(cfg)
		if err != nil {
			return -1, err
		}
		lower := cfg.Lower
		if points != "" {
			// On top: the mount points the rootfs lacks exist.
			lower = points + ":" + lower
		}
		if strings.Contains(lower, ":") {
			// Without an upper directory overlayfs is read-only itself.
			opt, err := lowerdirOption(cfg.Layer, lower)
			if err != nil {
				return -1, err
			}
			opts := []string{opt}
			if cfg.NewUser {
				opts = append(opts, "userxattr")
			}
			return fsMount{fstype: "overlay", source: "overlay", options: opts, attrs: unix.MOUNT_ATTR_RDONLY, target: merged}.mountOn(target)
		}
		// Not recursive: a mount under the rootfs directory on the host
		// is not part of the image.
		if err := bind(unix.AT_FDCWD, cfg.Lower, target, false, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV, cfg.Lower, merged); err != nil {
			return -1, err
		}
		return unix.Open(merged, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	lowerdir, err := lowerdirOption(cfg.Layer, cfg.Lower)
	if err != nil {
		return -1, err
	}
	opts := []string{lowerdir,
		"upperdir=" + cfg.Layer,
		"workdir=" + WorkDir(cfg.Layer),
		// The layer lives for one run and goes at down: syncing it buys
		// nothing. Without volatile, the end of every container's mount
		// namespace syncs the whole state filesystem (overlayfs' sync_fs
		// on the upper one, a device flush on ext4), and every fsync in
		// the container reaches the disk.
		"volatile",
	}
	if cfg.NewUser {
		// trusted.* xattrs need privilege over the host; overlayfs keeps
		// its metadata in user.* instead.
		opts = append(opts, "userxattr")
	}
	return fsMount{fstype: "overlay", source: "overlay", options: opts, attrs: unix.MOUNT_ATTR_NODEV, target: merged}.mountOn(target)
}

// mountPoints makes, in the layer's "points" directory, the target of
// every mount that a read-only rootfs lacks (the /etc/hosts of a rootfs
// without one, say), as a file or directory like its source. It returns
// the directory, or "" when the rootfs has every target.
func mountPoints(cfg *Config) (string, error) {
	var layers []int
	defer func() {
		for _, fd := range layers {
			unix.Close(fd)
		}
	}()
	for _, l := range strings.Split(cfg.Lower, ":") {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", &os.PathError{Op: "open", Path: l, Err: err}
		}
		layers = append(layers, fd)
	}
	dir := filepath.Join(cfg.Layer, "points")
	made := false
	for _, m := range cfg.Mounts {
		exists, err := inLayers(layers, m.Target)
		if err != nil {
			return "", fmt.Errorf("bind mount %s on %s: target: %w", m.Source, m.Target, err)
		}
		if exists {
			continue
		}
		st, err := os.Stat(m.Source)
		if err != nil {
			return "", fmt.Errorf("bind mount %s on %s: source: %w", m.Source, m.Target, err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+m.Target))
		if st.IsDir() {
			err = os.MkdirAll(p, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil {
			return "", fmt.Errorf("bind mount %s on %s: make its mount point: %w", m.Source, m.Target, err)
		}
		made = true
	}
	if !made {
		return "", nil
	}
	return dir, nil
}

// inLayers reports whether p exists in one of the layers.
func inLayers(layers []int, p string) (bool, error) {
	for _, l := range layers {
		fd, err := openIn(l, p, unix.O_PATH)
		if err == nil {
			unix.Close(fd)
			return true, nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return false, err
		}
	}
	return false, nil
}

// maxFsconfigString is the longest value fsconfig takes as a string
// (the kernel copies at most 256 bytes, the NUL included).
const maxFsconfigString = 255

// lowerdirOption gives the overlay its lower directories (top first,
// ':'-separated) in one lowerdir option. fsconfig takes at most 255 bytes
// a value, which an image's layers in the store soon pass; then, as
// Docker's overlay2 does, each directory gets a short link in the layer's
// "l" directory and the option names the links, relative to it, which
// becomes the working directory for the mount (the init's own: it changes
// it again after pivot_root). "lowerdir+", which takes the directories one
// at a time, would need Linux 6.8, and Debian 12 runs 6.1.
func lowerdirOption(layer, lower string) (string, error) {
	if len(lower) <= maxFsconfigString {
		return "lowerdir=" + lower, nil
	}
	links := filepath.Join(layer, "l")
	if err := os.RemoveAll(links); err != nil {
		return "", fmt.Errorf("overlay lower links: %w", err)
	}
	if err := os.Mkdir(links, 0o700); err != nil {
		return "", fmt.Errorf("overlay lower links: %w", err)
	}
	dirs := strings.Split(lower, ":")
	names := make([]string, len(dirs))
	for i, dir := range dirs {
		names[i] = strconv.FormatInt(int64(i), 36)
		if err := os.Symlink(dir, filepath.Join(links, names[i])); err != nil {
			return "", fmt.Errorf("overlay lower links: %w", err)
		}
	}
	short := strings.Join(names, ":")
	if len(short) > maxFsconfigString {
		return "", fmt.Errorf("overlay of %d lower directories: more than its lowerdir option can name", len(dirs))
	}
	if err := unix.Chdir(links); err != nil {
		return "", fmt.Errorf("overlay lower links: chdir: %w", err)
	}
	return "lowerdir=" + short, nil
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
		if err := makeDevice(dev, d.Name, d.Major, d.Minor, userns); err != nil {
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
	return bind(unix.AT_FDCWD, "/dev/"+name, f, false, 0, "/dev/"+name, "/dev/"+name)
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
	if err := mask(proc, "/proc", MaskedProc, null); err != nil {
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
		err = bind(fd, "", fd, true, unix.MOUNT_ATTR_RDONLY, "/proc/"+p, "/proc/"+p)
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
		if err := bind(unix.AT_FDCWD, "/sys", target, true, unix.MOUNT_ATTR_RDONLY, "/sys", "/sys"); err != nil {
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
		return bind(null, "", fd, false, 0, "/dev/null", name)
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
	if m.CopyUp && st.IsDir() {
		// Before the target is made (which would make the rootfs's
		// directory there, empty, when it has none) and bound over.
		if err := copyUp(root, m.Target, m.Source); err != nil {
			return fmt.Errorf("volume %s: copy %s of the rootfs into it: %w", m.Source, m.Target, err)
		}
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
	var attrs uint64
	if m.ReadOnly {
		attrs = unix.MOUNT_ATTR_RDONLY
	}
	return bind(unix.AT_FDCWD, m.Source, target, true, attrs, m.Source, m.Target)
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
		// pivoted away: move the rootfs over / and chroot instead, as
		// switch_root does. The initramfs stays underneath, covered: ".."
		// at the new root leads back onto the covering mount. Nothing of
		// the host's /proc needs masking here, since the container's own
		// /proc was mounted and masked above and is the only one it sees.
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
