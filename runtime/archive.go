package runtime

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// isArchive reports whether p names an archive a rootfs may be.
func isArchive(p string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// unpackCached returns the directory holding archive's content, unpacking
// it first if no earlier run did. The cache is keyed by the archive's
// content, so a changed archive gets a new directory and every container
// using the same content shares one.
func unpackCached(archive, cacheDir string) (string, error) {
	key, err := sumKey(archive, cacheDir)
	if err != nil {
		return "", err
	}
	if sum, err := os.Readlink(key); err == nil {
		if dir := filepath.Join(cacheDir, sum); isDir(dir) {
			return dir, nil
		}
	}
	sum, err := fileSHA256(archive)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, sum)
	if !isDir(dir) {
		if err := unpackInto(archive, cacheDir, dir); err != nil {
			return "", err
		}
	}
	return dir, rememberSum(key, sum)
}

// unpackInto unpacks archive into dir, a new directory of cacheDir.
func unpackInto(archive, cacheDir, dir string) error {
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return fmt.Errorf("rootfs cache: %w", err)
	}
	// Unpacked aside and renamed into place: a directory under its final
	// name is always complete, and of two containers unpacking the same
	// archive at once, the second rename fails and its copy is dropped.
	tmp, err := os.MkdirTemp(cacheDir, ".unpack-")
	if err != nil {
		return fmt.Errorf("rootfs cache: %w", err)
	}
	if err := unpack(archive, tmp); err != nil {
		return errors.Join(err, removeAll(tmp))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return removeAll(tmp)
		}
		return errors.Join(fmt.Errorf("rootfs cache: %w", err), removeAll(tmp))
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// sumsDir is where the sums of unpacked archives are remembered, inside
// the cache directory.
const sumsDir = "sums"

// sumKey names where the sum of archive's content is remembered. Hashing
// reads the whole archive, which every start (and every restart of a crash
// loop) would pay again; so once an archive is unpacked its sum is kept as
// a symlink named after the file's identity: device, inode, size, and
// modification and change times. Writing to the archive or replacing it
// changes its change time, and so its name: a stale sum is never found.
func sumKey(archive, cacheDir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(archive, &st); err != nil {
		return "", fmt.Errorf("rootfs: %w", &fs.PathError{Op: "stat", Path: archive, Err: err})
	}
	return filepath.Join(cacheDir, sumsDir, fmt.Sprintf("%x-%x-%x-%x.%x-%x.%x",
		st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)), nil
}

// rememberSum records sum under key. A symlink is made whole in one call,
// so a reader never sees half a sum, and two containers recording the same
// one both succeed.
func rememberSum(key, sum string) error {
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		return fmt.Errorf("rootfs cache: %w", err)
	}
	if err := os.Symlink(sum, key); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("rootfs cache: %w", err)
	}
	return nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("rootfs: hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// unpack extracts archive (tar, or gzip-compressed tar whatever its name)
// into dir. Every entry is created through a directory resolved inside dir
// (openIn), so even an entry that goes through a symlink the archive made
// earlier cannot write outside it; entries that would escape are refused
// outright.
func unpack(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("rootfs %s: %w", archive, err)
		}
		defer gz.Close()
		r = gz
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("rootfs cache: %w", err)
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	u := unpacker{root: root, dir: dir}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("rootfs %s: %w", archive, err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("rootfs %s: entry %q: %w", archive, hdr.Name, err)
		}
	}
	// Last, since creating entries in a directory changes its mtime.
	for i := len(u.dirs) - 1; i >= 0; i-- {
		if err := u.setTimes(u.dirs[i].name, u.dirs[i].mtime); err != nil {
			return fmt.Errorf("rootfs %s: %w", archive, err)
		}
	}
	return nil
}

type unpacker struct {
	root int
	dir  string
	// dirs get their mtimes once everything is in them.
	dirs []dirTime
}

type dirTime struct {
	name  string
	mtime time.Time
}

// entryName checks a name from the archive and returns it relative to the
// root ("" for the root itself).
func entryName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path refused")
	}
	for _, e := range strings.Split(name, "/") {
		if e == ".." {
			return "", errors.New(`".." refused: it would escape the rootfs`)
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
	parent, err := mkdirIn(u.root, path.Dir(name), 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	base := path.Base(name)
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
		return u.setOwnerMode(parent, base, hdr, mode)
	case tar.TypeReg, tar.TypeRegA:
		if err := replace(parent, base); err != nil {
			return err
		}
		fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), name)
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if symlinkEscapes(name, hdr.Linkname) {
			return fmt.Errorf("symlink to %q refused: it points outside the rootfs", hdr.Linkname)
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
			return fmt.Errorf("hard link to %q refused: it points outside the rootfs", hdr.Linkname)
		}
		oldParent, err := openIn(u.root, path.Dir(target), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(oldParent)
		if err := replace(parent, base); err != nil {
			return err
		}
		return unix.Linkat(oldParent, path.Base(target), parent, base, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		if err := replace(parent, base); err != nil {
			return err
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(parent, base, kind|0o600, int(dev)); err != nil {
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
	parent, err := openIn(u.root, path.Dir(name), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	return u.setTimesAt(parent, path.Base(name), mtime)
}
