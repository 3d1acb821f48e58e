package image

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ArchiveSuffixes are the names of the archives a rootfs may be: a tar,
// gzip-compressed or not.
var ArchiveSuffixes = []string{".tar", ".tar.gz", ".tgz"}

// IsArchive reports whether p names an archive a rootfs may be.
func IsArchive(p string) bool {
	for _, ext := range ArchiveSuffixes {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// Archive returns the directory holding the content of archive (a rootfs
// as a tar, gzip-compressed or not), unpacking it first if no earlier run
// did. The store keys it by the archive's content, so a changed archive
// gets a new directory and every container using the same content shares
// one.
func (s *Store) Archive(archive string) (string, error) {
	key, err := s.sumKey(archive)
	if err != nil {
		return "", err
	}
	if sum, err := os.Readlink(key); err == nil && isHex(sum) {
		if dir := filepath.Join(s.root, archivesDir, sum); isDir(dir) {
			return dir, nil
		}
	}
	sum, err := fileSHA256(archive)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.root, archivesDir, sum)
	if !isDir(dir) {
		if err := s.unpackArchive(archive, sum, dir); err != nil {
			return "", err
		}
	}
	return dir, rememberSum(key, sum)
}

// ArchiveInUse marks the unpacked archive dir (as Archive returned it) in
// use until Release, so that prune keeps it.
func (s *Store) ArchiveInUse(dir string) (*InUse, error) {
	l, err := s.lockFile("use-archive-"+filepath.Base(dir), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	return &InUse{l: l}, nil
}

// unpackArchive unpacks archive into dir, under the store's shared lock so
// that prune does not remove it half-made.
func (s *Store) unpackArchive(archive, sum, dir string) error {
	held, err := s.lockFile(storeLock, unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer held.release()
	// Unpacked aside and renamed into place: a directory under its final
	// name is always complete, and of two containers unpacking the same
	// archive at once, the second rename fails and its copy is dropped.
	tmp, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), "archive-"+sum+"-")
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	f, err := os.Open(archive)
	if err != nil {
		return errors.Join(fmt.Errorf("rootfs: %w", err), os.RemoveAll(tmp))
	}
	defer f.Close()
	r, err := decompressed(bufio.NewReader(f))
	if err == nil {
		_, err = unpackTar(r, tmp, asRootfs, s.unpackLimit)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("rootfs %s: %w", archive, err), os.RemoveAll(tmp))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return os.RemoveAll(tmp)
		}
		return errors.Join(fmt.Errorf("image store: %w", err), os.RemoveAll(tmp))
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// sumKey names where the sum of archive's content is remembered. Hashing
// reads the whole archive, which every start (and every restart of a crash
// loop) would pay again; so once an archive is unpacked its sum is kept as
// a symlink named after the file's identity: device, inode, size, and
// modification and change times. Writing to the archive or replacing it
// changes its change time, and so its name: a stale sum is never found.
func (s *Store) sumKey(archive string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(archive, &st); err != nil {
		return "", fmt.Errorf("rootfs: %w", &fs.PathError{Op: "stat", Path: archive, Err: err})
	}
	return filepath.Join(s.root, sumsDir, fmt.Sprintf("%x-%x-%x-%x.%x-%x.%x",
		st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)), nil
}

// rememberSum records sum under key. A symlink is made whole in one call,
// so a reader never sees half a sum, and two containers recording the same
// one both succeed.
func rememberSum(key, sum string) error {
	if err := os.Symlink(sum, key); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("image store: %w", err)
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

// decompressed reads r as gzip when it starts with gzip's magic number,
// else as it is: a rootfs archive is a tar, gzip-compressed or not. Go's
// own gzip does it, slower than the pull's (image/pull), once per
// archive's content; the pull's would cost every process of stack its
// initialisers at its start.
func decompressed(r *bufio.Reader) (io.Reader, error) {
	magic, err := r.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		// One gzip stream is the archive; what follows it is not tar.
		gz.Multistream(false)
		return gz, nil
	}
	return r, nil
}
