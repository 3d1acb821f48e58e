package containerinit

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stack-containers/stack/internal/testenv"
)

// openRoot opens dir the way buildRootfs holds the container's root.
func openRoot(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// tree lists the entries under dir with their type, mode and owner.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + string(b) + " " + fi.ModTime().UTC().Format(time.RFC3339)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCopyUp(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := t.TempDir()
	src := filepath.Join(rootfs, "var/lib/db")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub/deeper"), 0o755))
	must(os.WriteFile(filepath.Join(src, "sub/file"), []byte("content"), 0o640))
	must(os.Chown(filepath.Join(src, "sub/file"), 70, 71))
	must(os.Chmod(filepath.Join(src, "sub"), 0o2750))
	must(os.Symlink("sub/file", filepath.Join(src, "link")))
	must(os.Lchown(filepath.Join(src, "link"), 72, 73))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	stamp := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "sub/file"), stamp, stamp))
	must(os.Chown(src, 999, 998))
	must(os.Chmod(src, 0o700))

	volume := t.TempDir()
	if err := copyUp(openRoot(t, rootfs), "/var/lib/db", volume); err != nil {
		t.Fatal(err)
	}
	got, want := tree(t, volume), tree(t, src)
	// A device node is not copied; everything else is, as it was.
	delete(want, "null")
	if len(got) != len(want) {
		t.Errorf("copied %d entries, want %d:\n got %v\nwant %v", len(got), len(want), keys(got), keys(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}

	// A volume that holds anything is left as it is.
	must(os.WriteFile(filepath.Join(src, "new"), nil, 0o644))
	if err := copyUp(openRoot(t, rootfs), "/var/lib/db", volume); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(volume, "new")); !os.IsNotExist(err) {
		t.Errorf("a volume with content was copied into again: %v", err)
	}
}

func TestCopyUpStaysInTheRootfs(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := t.TempDir()
	// The mount path is an absolute symlink: it means the rootfs's /etc,
	// never the host's.
	if err := os.Mkdir(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/mine"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(rootfs, "data")); err != nil {
		t.Fatal(err)
	}
	volume := t.TempDir()
	if err := copyUp(openRoot(t, rootfs), "/data", volume); err != nil {
		t.Fatal(err)
	}
	if got := keys(tree(t, volume)); len(got) != 2 || got[1] != "mine" {
		t.Errorf("copied %v; want the rootfs's /etc alone", got)
	}

	// No directory at the mount path: nothing to copy, no error.
	empty := t.TempDir()
	for _, target := range []string{"/missing", "/etc/mine"} {
		if err := copyUp(openRoot(t, rootfs), target, empty); err != nil {
			t.Errorf("copyUp of %s: %v", target, err)
		}
	}
	if got := keys(tree(t, empty)); len(got) != 1 {
		t.Errorf("copied %v from paths that are no directories", got)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
