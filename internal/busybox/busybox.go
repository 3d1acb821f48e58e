// Package busybox lays out a minimal root filesystem around a static busybox
// binary, for tests and example rootfs. The same inputs always give the same
// tree, down to modes and modification times.
package busybox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Epoch is the modification time given to every file Install creates, so
// that two builds are byte-identical. A function, not a variable, so that
// nothing can change it between builds.
func Epoch() time.Time { return time.Unix(0, 0) }

// candidates are where Debian's busybox-static and other distributions put a
// static busybox.
var candidates = []string{"/bin/busybox", "/usr/bin/busybox", "/usr/lib/busybox/busybox-static"}

// ErrNotFound means no static busybox is installed.
var ErrNotFound = errors.New("static busybox not found (install it: apt-get install -y busybox-static)")

// Path returns the path of a static busybox binary on this host.
func Path() (string, error) {
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && isStatic(p) {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// isStatic reports whether the ELF file at p has no program interpreter; a
// dynamic busybox would not run inside a rootfs without its libraries.
func isStatic(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	return !bytes.Contains(head[:n], []byte("/lib64/ld-linux")) && !bytes.Contains(head[:n], []byte("/lib/ld-"))
}

// skeleton are the directories a container expects to find.
var skeleton = []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "usr", "usr/bin", "sbin"}

// Install lays out a rootfs in dir: the skeleton directories, /bin/busybox
// and a symlink in /bin for each of its applets, /etc/passwd and /etc/group.
func Install(dir string) error {
	src, err := Path()
	if err != nil {
		return err
	}
	for _, d := range skeleton {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		return err
	}
	bin := filepath.Join(dir, "bin", "busybox")
	if err := copyFile(src, bin, 0o755); err != nil {
		return err
	}
	applets, err := listApplets(src)
	if err != nil {
		return err
	}
	for _, a := range applets {
		link := filepath.Join(dir, "bin", a)
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", link); err != nil && !os.IsExist(err) {
			return fmt.Errorf("link applet %s: %w", a, err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return Normalize(dir)
}

// listApplets asks busybox for its applets, sorted.
func listApplets(bin string) ([]string, error) {
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bin, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	return applets, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Normalize sets every entry under dir (dir included) to Epoch, links
// included, so that archives and hashes of the tree do not depend on when
// it was built.
func Normalize(dir string) error {
	var paths []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	// Children first: touching a file does not change its directory's
	// mtime, but creating one did, so directories are stamped last.
	for i := len(paths) - 1; i >= 0; i-- {
		if err := lchtimes(paths[i], Epoch()); err != nil {
			return fmt.Errorf("set mtime of %s: %w", paths[i], err)
		}
	}
	return nil
}
