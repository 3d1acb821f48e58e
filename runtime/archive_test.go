package runtime

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stack-containers/stack/internal/testenv"
)

// writeTar archives the tree at dir, gzip-compressed when the name says so.
func writeTar(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	if strings.HasSuffix(name, "gz") {
		gz := gzip.NewWriter(f)
		defer gz.Close()
		w = gz
	}
	tw := tar.NewWriter(w)
	defer tw.Close()
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = "./" + filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tarOf writes an archive of the given headers, each regular file holding
// "x".
func tarOf(t *testing.T, hdrs ...*tar.Header) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "evil.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		h.Mode = 0o755
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestArchiveRootfs(t *testing.T) {
	testenv.RequireRoot(t)
	archive := writeTar(t, testenv.BusyboxRootfs(t), "rootfs.tar.gz")
	cache := filepath.Join(t.TempDir(), "cache")
	var inode uint64
	for i := range 2 {
		spec := newSpec(t, archive, "sh", "-c", "echo hello from $(cat /etc/hostname 2>/dev/null || hostname)")
		spec.CacheDir = cache
		out, st := run(t, spec)
		if st.Code != 0 || out != "hello from test\n" {
			t.Fatalf("run %d: exit %+v, output %q", i, st, out)
		}
		unpacked := unpackedRootfs(t, cache)
		if len(unpacked) != 1 {
			t.Fatalf("cache holds %v, want one unpacked rootfs", unpacked)
		}
		fi, err := os.Stat(filepath.Join(cache, unpacked[0]))
		if err != nil {
			t.Fatal(err)
		}
		ino := fi.Sys().(*syscall.Stat_t).Ino
		if i == 1 && ino != inode {
			t.Errorf("the archive was unpacked again (inode %d, then %d)", inode, ino)
		}
		inode = ino
	}
	if sums, err := os.ReadDir(filepath.Join(cache, sumsDir)); err != nil || len(sums) != 1 {
		t.Errorf("remembered sums %v (%v), want the archive's one", sums, err)
	}

	// The same file, rewritten with other content: the remembered sum of
	// the old content must not be taken for it.
	changed := testenv.NewBusyboxRootfs(t)
	if err := os.WriteFile(filepath.Join(changed, "marker"), []byte("second archive\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(writeTar(t, changed, "rootfs.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, content, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := newSpec(t, archive, "cat", "/marker")
	spec.CacheDir = cache
	if out, st := run(t, spec); st.Code != 0 || out != "second archive\n" {
		t.Fatalf("after the archive changed: exit %+v, output %q; want the new archive's content", st, out)
	}
	if unpacked := unpackedRootfs(t, cache); len(unpacked) != 2 {
		t.Errorf("cache holds %v, want the old and the new rootfs", unpacked)
	}
}

// unpackedRootfs lists the unpacked archives in cache, leaving out the
// remembered sums.
func unpackedRootfs(t *testing.T, cache string) []string {
	t.Helper()
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != sumsDir {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestArchiveEscapesRefused(t *testing.T) {
	testenv.RequireRoot(t)
	outside := t.TempDir()
	tests := []struct {
		name string
		hdrs []*tar.Header
		want string
	}{
		{"dot-dot", []*tar.Header{{Name: "../evil", Typeflag: tar.TypeReg}}, `entry "../evil": ".." refused`},
		{"dot-dot inside", []*tar.Header{{Name: "a/../../evil", Typeflag: tar.TypeReg}}, `".." refused`},
		{"absolute", []*tar.Header{{Name: outside + "/evil", Typeflag: tar.TypeReg}}, "absolute path refused"},
		{"symlink out", []*tar.Header{{Name: "bin/evil", Typeflag: tar.TypeSymlink, Linkname: "../../evil"}}, "points outside the rootfs"},
		{"hard link out", []*tar.Header{{Name: "evil", Typeflag: tar.TypeLink, Linkname: "../evil"}}, "points outside the rootfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := newSpec(t, tarOf(t, tt.hdrs...), "true")
			spec.Name = "web"
			c, err := Start(spec)
			if err == nil {
				c.Cleanup()
				t.Fatal("Start succeeded")
			}
			if !strings.HasPrefix(err.Error(), `container "web": rootfs `) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			if entries, err := os.ReadDir(spec.CacheDir); err != nil || len(entries) != 0 {
				t.Errorf("cache left with %v (%v)", entries, err)
			}
			if _, err := os.Stat(spec.LayerDir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("layer dir left behind (stat: %v)", err)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the rootfs: %v", entries)
	}
}

func TestArchiveWritesStayInside(t *testing.T) {
	testenv.RequireRoot(t)
	// An absolute symlink is legitimate in an image (it means the
	// container's root); an entry written through it must land inside.
	outside := t.TempDir()
	archive := tarOf(t,
		&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside},
		&tar.Header{Name: "link/evil", Typeflag: tar.TypeReg},
	)
	dir, err := unpackCached(archive, filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the rootfs: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, outside, "evil")); err != nil {
		t.Errorf("the entry did not land inside the rootfs: %v", err)
	}
}
